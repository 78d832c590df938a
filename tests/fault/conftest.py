"""The fault tests' figures (their network is tests/conftest.py's `fault_network`, whose nodes they kill and restart):
each fault test's figures are printed at the end of the run and written as JSON to $GRIDLEDGER_FIGURES_DIR/chaos.json
when set.

GRIDLEDGER_CHAOS=1 (`make chaos`) runs the long version of each fault: longer load before, during and after."""

import json
import os
from pathlib import Path

import pytest

LONG = os.environ.get("GRIDLEDGER_CHAOS") == "1"  # as fault_load.LONG
FIGURES: list[dict] = []


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
        "network_up_seconds",
        "submit_after_up_seconds",
        "longest_stall_seconds",
        "client_errors",
    )
    widths = [max(len(c), *(len(str(row.get(c, "-"))) for row in FIGURES)) for c in columns]
    write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=False)))
    for row in FIGURES:
        write("  ".join(str(row.get(c, "-")).ljust(w) for c, w in zip(columns, widths, strict=False)))
    out = os.environ.get("GRIDLEDGER_FIGURES_DIR")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "chaos.json").write_text(json.dumps(FIGURES, indent=2))
        write(f"fault figures written to {Path(out) / 'chaos.json'}")
