"""The security suites' figures: fuzz cases tried and failing, printed at the end of the run and written as JSON
to $GRIDLEDGER_FIGURES_DIR/fuzz.json when set. (Their network is tests/conftest.py's `security_network`.)"""

import json
import os
from pathlib import Path

import pytest

FUZZ_FIGURES: dict[str, dict] = {}


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
