"""A real Fabric network for the fault tests, on ports of its own (GRIDLEDGER_FAULT_PORT_BASE, default 25100), in a
temporary run directory, always taken down (the tests kill and restart its nodes). The figures each fault test
records are printed at the end of the run and written as JSON to $GRIDLEDGER_FIGURES_DIR/chaos.json when set.

GRIDLEDGER_CHAOS=1 (`make chaos`) runs the long version of each fault: longer load before, during and after."""

import json
import os
from pathlib import Path

import pytest

from consortium import topology as topology_file
from network.bringup import Network

FAULT_PORT_BASE = int(os.environ.get("GRIDLEDGER_FAULT_PORT_BASE", "25100"))
LONG = os.environ.get("GRIDLEDGER_CHAOS") == "1"  # as fault_load.LONG
FIGURES: list[dict] = []


def pytest_configure(config):
    config.addinivalue_line("markers", "chaos: part of `make chaos` (long fault runs, many fuzz cases)")


@pytest.fixture(scope="package")
def fault_network(tmp_path_factory):
    network = Network(tmp_path_factory.mktemp("fault") / "run", topology_file.load(port_base=FAULT_PORT_BASE))
    try:
        network.up(log=print)
        yield network
    finally:
        network.down(clean=False, log=lambda line: None)


@pytest.fixture
def figures():
    """Append one fault's figures (a dict); they are printed and saved at the end of the run."""
    return FIGURES


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    write = terminalreporter.write_line
    write("")
    write("fault figures" + (" (long runs)" if LONG else " (short runs; `make chaos` for the long ones)"))
    columns = (
        "fault",
        "load_before_wps",
        "load_during_wps",
        "acked_readings",
        "lost",
        "duplicates",
        "recovery_seconds",
        "longest_stall_seconds",
        "client_errors",
    )
    widths = [max(len(c), *(len(str(row.get(c, "-"))) for row in FIGURES)) for c in columns]
    write("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in FIGURES:
        write("  ".join(str(row.get(c, "-")).ljust(w) for c, w in zip(columns, widths)))
    out = os.environ.get("GRIDLEDGER_FIGURES_DIR")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "chaos.json").write_text(json.dumps(FIGURES, indent=2))
        write(f"fault figures written to {Path(out) / 'chaos.json'}")
