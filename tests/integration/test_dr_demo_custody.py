"""`gridledger dr demo` on the real network, each organisation's part a process of its own: a live command with a
1-minute window is issued, declared, relayed and settled; every file each process opened in the run directory
(the audit hook of tests/integration/test_demo_custody.py) is checked: the TSO's command part and the meters' part
read the TSO's private files only (the meters' keys under the TSO), each RA's relay its own keys and its own
outbox only (never a meter key), and the demo's own process no organisation's private file at all."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from network.connections import Sessions
from tests.integration.test_demo_custody import SITECUSTOMIZE, acting_as, owner_of_private

pytestmark = [pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
DEMO_SECONDS = 330  # lead (20 s) + the window's minute + readings due a minute later + the network's pace


def owner(network, path: Path) -> str | None:
    """Whose private file `path` is: an RA's outbox is "outbox:<RA>", otherwise as test_demo_custody says."""
    relative = path.relative_to(network.root)
    if relative.parts[:2] == ("meters", "outbox") and len(relative.parts) > 2:
        return f"outbox:{relative.parts[2]}"
    return owner_of_private(network, path)


def test_the_dr_demos_parts_settle_a_command_each_as_its_organisation_only(fabric_network, tmp_path):
    network = fabric_network
    hook, records, log = tmp_path / "hook", tmp_path / "opens", tmp_path / "dr-demo.log"
    hook.mkdir()
    records.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hook), str(REPO)]),
        "GRIDLEDGER_TEST_OPENS": str(records),
        "GRIDLEDGER_TEST_OPENS_UNDER": str(network.root),
    }
    argv = [
        *(sys.executable, "-c", "from cli import main; main()", "dr", "demo", "--run-dir", str(network.root)),
        *("--consumers", "9", "--minutes", "1", "--baseline-minutes", "2", "--readings-due-minutes", "1"),
        *("--lead-seconds", "20", "--discrepancy-rate", "0.2"),
    ]
    with open(log, "wb") as out:
        demo = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        code = demo.wait(DEMO_SECONDS)
    finally:
        if demo.poll() is None:
            demo.terminate()
            demo.wait(60)
    output = log.read_text()
    assert code == 0, output[-4000:]
    command_id = re.search(r"^dr demo: command (\S+) from", output, re.M).group(1)
    ras = sorted(org.name for org in network.topology.organisations if org.role == "ra")
    for ra in ras:
        assert re.search(rf"^{ra} relay\s+\| {ra} relayed \d+ readings$", output, re.M), ra
    assert re.search(r"^TSO command\s+\| comparison as TSO: ", output, re.M), output[-3000:]
    assert re.search(rf"^TSO command\s+\| command {command_id}: settled$", output, re.M), output[-3000:]
    settlement = Sessions(network.root)("TSO").dr.settlement(command_id)  # the test looks on as the TSO
    assert settlement["settled"]
    assert {f["org"] for f in settlement["figures"]} >= set(ras)

    seen: dict[tuple[str, str], set[str]] = {}  # (part, org) -> owners of the private files it opened
    meter_keys = network.layout.org_dir(network.topology.meter_operator) / "meters"
    for record in records.glob("*.jsonl"):
        entries = [json.loads(line) for line in record.read_text().splitlines() if line.strip()]
        process_argv, opened = entries[0]["argv"], [Path(e["path"]).resolve() for e in entries[1:]]
        owners = {o for o in (owner(network, path) for path in opened) if o is not None}
        org = acting_as(process_argv)
        if org is None:
            assert "demo" in process_argv, process_argv
            assert owners == set(), f"the demo's own process opened private files of {owners}"
            continue
        if org in ras:  # an RA relays what the meters signed: it never opens a meter's key or certificate
            assert not any(path.is_relative_to(meter_keys) for path in opened), process_argv
        seen[(process_argv[process_argv.index("dr") + 1], org)] = owners
    assert seen[("demo-command", "TSO")] == {"TSO"}
    assert seen[("demo-meters", "TSO")] == {"TSO", *(f"outbox:{ra}" for ra in ras)}  # signs, spools to each RA
    for ra in ras:
        assert seen[("demo-relay", ra)] == {ra, f"outbox:{ra}"}, (ra, seen[("demo-relay", ra)])
    assert set(seen) == {("demo-command", "TSO"), ("demo-meters", "TSO"), *(("demo-relay", ra) for ra in ras)}
