"""A real Fabric network for the security suites (access matrix, tamper evidence, fuzzing through the gateway): one
per package run, in a temporary run directory on ports of its own (GRIDLEDGER_SECURITY_PORT_BASE, default 23100),
always taken down, also when a test fails. GRIDLEDGER_SECURITY_RUN_DIR names a network to reuse instead (it is
brought up if needed and left as it was found)."""

import json
import os
from pathlib import Path

import pytest

from consortium import topology as topology_file
from network.bringup import Network

SECURITY_PORT_BASE = int(os.environ.get("GRIDLEDGER_SECURITY_PORT_BASE", "23100"))
FUZZ_FIGURES: dict[str, dict] = {}


def pytest_configure(config):
    config.addinivalue_line("markers", "chaos: part of `make chaos` (long fault runs, many fuzz cases)")


@pytest.fixture(scope="session")
def fuzz_figures():
    """{suite: {"fuzz_cases", "fuzz_failures", …}}: printed at the end of the run, and written as JSON to
    $GRIDLEDGER_FIGURES_DIR/fuzz.json when set."""
    return FUZZ_FIGURES


def pytest_terminal_summary(terminalreporter):
    if not FUZZ_FIGURES:
        return
    terminalreporter.write_line("")
    for suite, row in FUZZ_FIGURES.items():
        terminalreporter.write_line(
            f"fuzz ({suite}): {row['fuzz_cases']} cases tried, {row['fuzz_failures']} failing"
            + (f" ({', '.join(row.get('failed_transactions', []))})" if row.get("failed_transactions") else "")
        )
    out = os.environ.get("GRIDLEDGER_FIGURES_DIR")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "fuzz.json").write_text(json.dumps(FUZZ_FIGURES, indent=2))


@pytest.fixture(scope="package")
def security_network(tmp_path_factory):
    reuse = os.environ.get("GRIDLEDGER_SECURITY_RUN_DIR")
    if reuse:
        network = Network(reuse, topology_file.load(port_base=SECURITY_PORT_BASE))
        network.up(log=print)
        yield network
        return
    network = Network(tmp_path_factory.mktemp("security") / "run", topology_file.load(port_base=SECURITY_PORT_BASE))
    try:
        network.up(log=print)
        yield network
    finally:
        network.down(clean=False, log=lambda line: None)
