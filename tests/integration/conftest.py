"""A real Fabric network for the integration tests: one per test session, in a temporary run directory, on
ports of its own so that it runs beside a demo network; always taken down, also when a test fails."""

import os

import pytest

from consortium import topology as topology_file
from network.bringup import Network

TEST_PORT_BASE = int(os.environ.get("GRIDLEDGER_TEST_PORT_BASE", "17100"))


@pytest.fixture(scope="session")
def fabric_network(tmp_path_factory):
    network = Network(tmp_path_factory.mktemp("fabric") / "run", topology_file.load(port_base=TEST_PORT_BASE))
    try:
        network.up(log=lambda line: print(line))
        yield network
    finally:
        network.down(clean=False, log=lambda line: None)
