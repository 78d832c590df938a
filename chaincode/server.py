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
from chaincode.contracts.market import MarketContract
from chaincode.contracts.records import RecordsContract
from chaincode.shim import Chaincode

STOP_GRACE_SECONDS = 3.0


def build_chaincode() -> Chaincode:
    """Every contract the gridledger chaincode serves; the first is the default for unprefixed function names."""
    return Chaincode([RecordsContract(), DrContract(), MarketContract()])


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m chaincode.server", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--address",
        default=env("CHAINCODE_SERVER_ADDRESS"),
        help="where to listen, HOST:PORT (env CHAINCODE_SERVER_ADDRESS)",
    )
    parser.add_argument(
        "--id",
        dest="package_id",
        default=env("CHAINCODE_ID"),
        help="the chaincode package id the peer installed, label:hash (env CHAINCODE_ID)",
    )
    parser.add_argument(
        "--peer-msp-id",
        default=env("CORE_PEER_LOCALMSPID"),
        help="MSP id of the peer this server serves (env CORE_PEER_LOCALMSPID)",
    )
    parser.add_argument(
        "--tls-cert",
        type=Path,
        default=env("CHAINCODE_TLS_CERT"),
        help="server TLS certificate, PEM (env CHAINCODE_TLS_CERT)",
    )
    parser.add_argument(
        "--tls-key",
        type=Path,
        default=env("CHAINCODE_TLS_KEY"),
        help="server TLS private key, PEM (env CHAINCODE_TLS_KEY)",
    )
    parser.add_argument(
        "--client-ca",
        type=Path,
        default=env("CHAINCODE_CLIENT_CA_CERT"),
        help="CA whose client certificates the peer must present: mutual TLS (env CHAINCODE_CLIENT_CA_CERT)",
    )
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
