"""What every suite shares: one factory of real Fabric networks (a port base and a run directory per suite), and
the `fabric` marker on every test of the suites that use one.

Each suite's network runs on ports of its own below 32768 (the kernel hands out ephemeral client ports from 32768
up: a server port there once collided with a health probe's own socket), beside a demo network at 7100:

    suite         fixture            port base (GRIDLEDGER_<SUITE>_PORT_BASE)   reuse (GRIDLEDGER_<SUITE>_RUN_DIR)
    integration   fabric_network     17100
    browser       web_network        18100                                      yes
    security      security_network   23100                                      yes
    fault         fault_network      25100

A suite's network is started in a temporary run directory and always taken down, also when a test fails. Naming
the run directory of a running network in GRIDLEDGER_<SUITE>_RUN_DIR reuses it instead (brought up if needed and
left running), for fast iteration on one suite.
"""

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

from consortium import topology as topology_file
from network.bringup import Network

PORT_BASES = {"integration": 17100, "browser": 18100, "security": 23100, "fault": 25100}
REUSABLE = {"browser", "security"}


@contextmanager
def suite_network(tmp_path_factory, suite: str):
    """The real network of one suite: started for it (and always stopped), or the running one it names."""
    prefix = f"GRIDLEDGER_{suite.upper()}"
    port_base = int(os.environ.get(f"{prefix}_PORT_BASE", PORT_BASES[suite]))
    reused = os.environ.get(f"{prefix}_RUN_DIR") if suite in REUSABLE else None
    if reused:
        network = Network(reused)
        network.up(log=print)
        yield network
        return
    network = Network(tmp_path_factory.mktemp(suite) / "run", topology_file.load(port_base=port_base))
    try:
        network.up(log=print)
        yield network
    finally:
        network.down(clean=False, log=lambda line: None)


def _network_fixture(name: str, suite: str):
    """A session fixture `name` yielding the suite's network (the table above)."""

    @pytest.fixture(scope="session", name=name)
    def fixture(tmp_path_factory):
        with suite_network(tmp_path_factory, suite) as network:
            yield network

    return fixture


fabric_network = _network_fixture("fabric_network", "integration")
web_network = _network_fixture("web_network", "browser")
security_network = _network_fixture("security_network", "security")
fault_network = _network_fixture("fault_network", "fault")


FABRIC_SUITES = ("integration", "security", "fault", "browser")


def pytest_collection_modifyitems(items):
    """`fabric` marks every test of a suite that runs a real network (`make fabric` builds it); `browser` every
    test that drives chromium."""
    here = Path(__file__).parent
    for item in items:
        path = Path(str(item.path))
        if any(path.is_relative_to(here / suite) for suite in FABRIC_SUITES):
            item.add_marker(pytest.mark.fabric)
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
