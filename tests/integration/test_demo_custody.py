"""`gridledger demo` on the real network, each organisation's part a process of its own: gates are finalised with
orders placed by at least two RAs' trader processes and printed by the TSO's; every file each process opened in
the run directory (Python's audit hook "open", installed in each by a sitecustomize on the demo's PYTHONPATH) is
checked: a process acting as an organisation read that organisation's private files only (its keys, its market
salts and contribution key, its web sign-ins), and the demo's own process read no organisation's. Ctrl-C stops
every process; a process that dies stops the demo with exit 1, naming it."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli.demo import web_servers
from network.connections import Sessions

pytestmark = [pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
GATE_SECONDS, PROPOSAL_SECONDS = 10, 3
DEMO_SECONDS = 110  # the demo's bound: its start, a gate missed while starting, one traded and finalised
# Installed in every Python process the demo starts: appends each file it opens under the run directory to
# <records>/<pid>.jsonl, after the process's command line.
SITECUSTOMIZE = """
import json, os, sys
_records, _run = os.environ.get("GRIDLEDGER_TEST_OPENS"), os.environ.get("GRIDLEDGER_TEST_OPENS_UNDER", "")
if _records:
    with open("/proc/self/cmdline", "rb") as _cmdline:
        _argv = _cmdline.read().decode(errors="replace").split("\\0")[:-1]
    _out = open(os.path.join(_records, f"{os.getpid()}.jsonl"), "a", buffering=1)
    _out.write(json.dumps({"argv": _argv}) + "\\n")

    def _record_open(event, args):
        if event == "open" and isinstance(args[0], (str, bytes)):
            path = os.path.abspath(os.fsdecode(args[0]))
            if path.startswith(_run):
                _out.write(json.dumps({"path": path}) + "\\n")

    sys.addaudithook(_record_open)
"""


def start_demo(network, tmp_path, name: str):
    """The demo on the test network (its web servers on the network's ports), recording what each process opens."""
    hook = tmp_path / f"{name}-hook"
    records = tmp_path / f"{name}-opens"
    hook.mkdir()
    records.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / f"{name}.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hook), str(REPO)]),
        "GRIDLEDGER_TEST_OPENS": str(records),
        "GRIDLEDGER_TEST_OPENS_UNDER": str(network.root),
    }
    with open(log, "wb") as out:
        demo = subprocess.Popen(
            [
                *(sys.executable, "-c", "from cli import main; main()", "demo", "--run-dir", str(network.root)),
                *("--gate-seconds", str(GATE_SECONDS), "--proposal-seconds", str(PROPOSAL_SECONDS)),
                *("--traders", "12"),
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return demo, log, records


def stop_demo(demo) -> None:
    """Stops a demo the test left running: SIGTERM (it stops its processes), SIGKILL if it does not end."""
    if demo.poll() is None:
        demo.terminate()
        try:
            demo.wait(60)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()


def wait_for(condition, seconds: float, what: str, demo, log: Path):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        assert demo.poll() is None, f"the demo exited ({demo.returncode}):\n{log.read_text()[-4000:]}"
        time.sleep(1)
    raise AssertionError(f"{what} not within {seconds} s:\n{log.read_text()[-4000:]}")


def child_pids(log: Path) -> dict[str, int]:
    """The demo's listing of its parts: label ("RA1 traders") -> pid."""
    return {
        m["label"]: int(m["pid"])
        for m in re.finditer(r"^  (?P<label>\S+ \S+)\s+pid (?P<pid>\d+)  gridledger ", log.read_text(), re.M)
    }


def owner_of_private(network, path: Path) -> str | None:
    """The organisation whose private file `path` is (a key, its market salts or seed key, its web sign-ins), or
    None for public material (certificates, the network's state, logs)."""
    relative = path.relative_to(network.root)
    top = relative.parts[0] if relative.parts else ""
    if top in ("market", "web") and len(relative.parts) > 2:
        return relative.parts[1]
    if top == "chaincode" and path.suffix == ".key":
        return relative.parts[1]
    if top == "crypto" and ("keystore" in relative.parts or path.suffix == ".key" or path.name.endswith("_sk")):
        for org in network.topology.org_names:
            if path.is_relative_to(network.layout.org_dir(org)):
                return org
        return "the orderers"
    return None


def opened_by_process(network, records: Path) -> list[tuple[list[str], dict[str, set[Path]]]]:
    """Each recorded process: (its command line, {owner: private files of that owner it opened})."""
    processes = []
    for record in records.glob("*.jsonl"):
        lines = [json.loads(line) for line in record.read_text().splitlines() if line.strip()]
        private: dict[str, set[Path]] = {}
        for line in lines[1:]:
            path = Path(line["path"]).resolve()
            owner = owner_of_private(network, path)
            if owner:
                private.setdefault(owner, set()).add(path)
        processes.append((lines[0]["argv"], private))
    return processes


def acting_as(argv: list[str]) -> str | None:
    for flag in ("--as", "--org"):
        if flag in argv:
            return argv[argv.index(flag) + 1]
    return None


def test_the_demos_processes_trade_each_as_its_organisation_only_and_stop_on_ctrl_c(fabric_network, tmp_path):
    network = fabric_network
    tso = Sessions(network.root)("TSO").market  # the test looks on as every organisation; the demo does not
    known = {g["id"] for g in tso.gates(50)}
    demo, log, records = start_demo(network, tmp_path, "demo")
    try:

        def traded_gate():
            for gate in tso.gates(10):
                if gate["id"] not in known and gate["status"] == "finalised":
                    placed_by = {o["placed_by"] for o in tso.book(gate["id"])["orders"]}
                    if len(placed_by) >= 2:
                        return gate["id"], placed_by
            return None

        gate, placed_by = wait_for(traded_gate, DEMO_SECONDS, "a gate finalised with two RAs' orders", demo, log)
        report = re.compile(rf"^TSO gates\s+\| gate {re.escape(gate)}: \d+ orders, 3 proposals", re.M)
        wait_for(lambda: report.search(log.read_text()), 15, f"the TSO's report of {gate}", demo, log)
        pids = child_pids(log)
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        assert demo.wait(60) == 0, log.read_text()[-4000:]
    finally:
        stop_demo(demo)
    output = log.read_text()
    for ra in placed_by:
        assert re.search(rf"^{ra} traders\s+\| gate \S+: \d+ orders from {ra}$", output, re.M), ra
    assert set(pids) == {
        *(f"{m} matcher" for m in network.topology.market.matchers),
        *(f"{o.name} traders" for o in network.topology.organisations if o.role == "ra"),
        "TSO gates",
    }
    assert all(not Path(f"/proc/{pid}").exists() for pid in pids.values()), "a part outlived the demo"

    processes = opened_by_process(network, records)
    signed, kept = set(), set()  # parts that opened their organisation's User1 key; any private file of theirs
    for argv, private in processes:
        org = acting_as(argv)
        if "demo" in argv and org is None:  # the demo's own process
            assert private == {}, f"the demo's process opened private files: {private}"
            continue
        assert org is not None, argv
        others = {owner: paths for owner, paths in private.items() if owner != org}
        assert others == {}, f"{' '.join(argv[3:])} opened others' private files: {others}"
        part = (argv[3], argv[4], org)
        user_key = network.layout.user_dir(org, "User1") / "msp" / "keystore"
        if any(path.is_relative_to(user_key) for path in private.get(org, ())):
            signed.add(part)
        if private.get(org):
            kept.add(part)
    # What each part opened was seen (so the check above is not vacuous): the operator's configure and watch, every
    # matcher's serve and every RA's trade signed with its own key; every web server read its own sign-ins (it
    # loads its key at the first sign-in: tests/security/test_attack_custody.py watches that).
    operator = network.topology.market.operator
    assert signed == {
        ("market", "configure", operator),
        ("market", "watch", operator),
        *(("market", "serve", m) for m in network.topology.market.matchers),
        *(("market", "trade", o.name) for o in network.topology.organisations if o.role == "ra"),
    }
    assert kept - signed == {("web", "serve", org) for org in network.topology.org_names}


def test_a_part_that_dies_stops_the_demo_which_names_it(fabric_network, tmp_path):
    network = fabric_network
    demo, log, _ = start_demo(network, tmp_path, "dying")
    try:
        wait_for(lambda: "demo: Ctrl-C stops" in log.read_text(), 90, "the demo's start", demo, log)
        victim = child_pids(log)["RA2 traders"]
        os.kill(victim, signal.SIGKILL)
        assert demo.wait(60) == 1, log.read_text()[-4000:]
    finally:
        stop_demo(demo)
    output = log.read_text()
    assert "error: the demo stopped: RA2 traders (exit -9) ended" in output, output[-3000:]
    assert all(not Path(f"/proc/{pid}").exists() for pid in child_pids(log).values())
    assert all(server.pid() is None for server in web_servers(str(network.root), network.topology).values())


def test_the_parts_of_a_demo_killed_outright_stop_by_themselves(fabric_network, tmp_path):
    network = fabric_network
    demo, log, _ = start_demo(network, tmp_path, "killed")
    servers = web_servers(str(network.root), network.topology)
    parts: dict[str, int] = {}
    try:
        wait_for(lambda: "demo: Ctrl-C stops" in log.read_text(), 90, "the demo's start", demo, log)
        parts = child_pids(log)
        demo.kill()  # no chance to stop its parts
        demo.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in parts.values()):
            time.sleep(0.5)
        left = {label for label, pid in parts.items() if Path(f"/proc/{pid}").exists()}
        assert left == set(), f"still running after their demo was killed: {left}"
    finally:
        stop_demo(demo)
        for pid in parts.values():  # those the test failed on
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
        for server in servers.values():  # detached: `network down` would stop them
            server.stop()
