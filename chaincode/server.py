"""Runs the gridledger chaincode as a service: `python -m chaincode.server --address HOST:PORT --id PACKAGE_ID`.

The peer dials this server (its connection.json names the address) for every transaction of the chaincode.
Options fall back to the environment the way fabric-samples' CCaaS servers read it: CHAINCODE_SERVER_ADDRESS,
CHAINCODE_ID, CORE_PEER_LOCALMSPID (the MSP id of the peer this server serves), and CHAINCODE_TLS_CERT,
CHAINCODE_TLS_KEY, CHAINCODE_CLIENT_CA_CERT (PEM files; the client CA turns on mutual TLS).
SIGTERM or SIGINT stops it cleanly: no new peers, running transactions get a few seconds to finish.
"""

import argparse
import logging
import os
import signal
import threading
from pathlib import Path

from chaincode.contracts.dr import DrContract
from chaincode.contracts.dr_units import UnitsContract
from chaincode.contracts.market import MarketContract
from chaincode.contracts.records import RecordsContract
from chaincode.shim import Chaincode

STOP_GRACE_SECONDS = 3.0


def build_chaincode() -> Chaincode:
    """Every contract the gridledger chaincode serves; the first is the default for unprefixed function names."""
    return Chaincode([RecordsContract(), DrContract(), MarketContract(), UnitsContract()])


# Every option falls back to an environment variable: (flag, destination, type, variable, help).
OPTIONS = (
    ("--address", "address", str, "CHAINCODE_SERVER_ADDRESS", "where to listen, HOST:PORT"),
    ("--id", "package_id", str, "CHAINCODE_ID", "the chaincode package id the peer installed, label:hash"),
    ("--peer-msp-id", "peer_msp_id", str, "CORE_PEER_LOCALMSPID", "MSP id of the peer this server serves"),
    ("--tls-cert", "tls_cert", Path, "CHAINCODE_TLS_CERT", "server TLS certificate, PEM"),
    ("--tls-key", "tls_key", Path, "CHAINCODE_TLS_KEY", "server TLS private key, PEM"),
    ("--client-ca", "client_ca", Path, "CHAINCODE_CLIENT_CA_CERT", "CA of the peer's client certificate: mutual TLS"),
)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m chaincode.server", description=__doc__.splitlines()[0])
    for flag, dest, kind, variable, what in OPTIONS:
        parser.add_argument(flag, dest=dest, type=kind, default=env(variable), help=f"{what} (env {variable})")
    parser.add_argument("--log-level", default=env("CHAINCODE_LOG_LEVEL", "INFO"))
    arguments = parser.parse_args(argv)
    missing = [flag for flag, value in (("--address", arguments.address), ("--id", arguments.package_id)) if not value]
    if missing:
        parser.error(f"missing {' and '.join(missing)} (or their environment variables)")
    if bool(arguments.tls_cert) != bool(arguments.tls_key):
        parser.error("TLS needs both --tls-cert and --tls-key")
    if arguments.client_ca and not arguments.tls_cert:
        parser.error("--client-ca (mutual TLS) needs --tls-cert and --tls-key")
    return arguments


def main(argv: list[str] | None = None) -> None:
    # Imported here: the gRPC server needs Fabric's generated protobufs, build_chaincode() (which the embedded
    # ledger uses) must not.
    from chaincode.shim.server import ChaincodeServer

    arguments = parse_arguments(argv)
    logging.basicConfig(level=arguments.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def read(path: Path | None) -> bytes | None:
        return path.read_bytes() if path else None

    server = ChaincodeServer(
        build_chaincode(),
        arguments.package_id,
        arguments.address,
        peer_msp_id=arguments.peer_msp_id,
        tls_cert=read(arguments.tls_cert),
        tls_key=read(arguments.tls_key),
        client_ca=read(arguments.client_ca),
    )
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    server.start()
    while not stopping.wait(1.0):
        pass
    logging.getLogger(__name__).info("stopping the chaincode server")
    server.stop(STOP_GRACE_SECONDS)


if __name__ == "__main__":
    main()
