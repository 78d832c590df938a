"""A dishonest member's chaincode server: an organisation's honest server replaced by a modified program, served
where the honest one was (its address, package id and TLS pair), so that its peer runs the modified contract for
every transaction it endorses; the honest one is started again afterwards."""

from contextlib import contextmanager

from network.chaincode import CHECKOUT, SERVER_ENVIRONMENT, ChaincodeDeployment
from network.processes import ManagedProcess


@contextmanager
def modified_server(network, org: str, program: str):
    """`org`'s chaincode server replaced by the Python `program` (its source) until the block ends."""
    deployment = ChaincodeDeployment(network)
    script = network.root / "attack" / f"modified_chaincode_server_{org.lower()}.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(program)
    modified = ManagedProcess(network.root, f"chaincode.{org.lower()}-modified")
    deployment.server_process(org).stop()
    try:
        environment = dict(SERVER_ENVIRONMENT, PYTHONPATH=str(CHECKOUT))
        deployment.start_server(org, process=modified, program=(str(script),), environment=environment)
        deployment.wait_listening(org, process=modified)
        yield deployment
    finally:
        modified.stop()
        deployment.start_servers(log=lambda line: None)
