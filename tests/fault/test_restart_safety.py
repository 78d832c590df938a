"""Restart safety of the simulators: a meter simulator killed in the middle of posting and started again resumes
without losing or double-posting a reading, on the embedded ledger and on the real network (a real process, killed
with SIGKILL). The submission key is the contract's own: (command, consumer, minute).

Commands start a little ahead (the endorsers hold DR to real time): the readings are of their baseline minutes,
which have ended, so nothing waits for the window."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from live_commands import live_command, past_baseline_minutes
from meter_keys import OPERATOR_AUTHORITY, OPERATOR_METERS

from chaincode.server import build_chaincode
from chaincode.shim.testing import make_identity
from clients.dr import DrClient
from consortium import topology as topology_file
from gateway.embedded import EmbeddedGateway, EmbeddedLedger
from gateway.errors import EndorseError
from network.connections import open_session
from sim.meters import MeterFleet, Reading, batches

TOPOLOGY = topology_file.load()
REPO = Path(__file__).resolve().parents[2]
SIMULATED_MINUTES = 180  # of each of six consumers, ended before the window: 1,080 readings in 18 to 24 batches


def test_a_batch_posted_again_is_recognised_and_a_changed_one_refused():
    collections = {n: {TOPOLOGY.organisation(m).msp_id for m in ms} for n, ms in TOPOLOGY.collections().items()}
    chaincode = build_chaincode()
    chaincode.contracts["dr"].meter_authority = OPERATOR_AUTHORITY  # checks the meters' signatures RA1 relays
    ledger = EmbeddedLedger(chaincode, collections)
    tso, ra1 = make_identity("TSOMSP"), make_identity("RA1MSP")
    dr = lambda who: EmbeddedGateway(who, ledger).get_network("grid").get_contract("gridledger", "dr")  # noqa: E731
    command = live_command("restart", minutes=1, baseline_minutes=7, due_minutes=10, price_per_kwh=100)
    minutes = past_baseline_minutes(command)[:5]  # all but the latest two of its seven have ended
    dr(tso).submit("issue_command", json.dumps(command))
    summary = json.loads(
        dr(ra1).submit(
            "declare",
            "restart",
            transient={
                "declaration": json.dumps({"baseline_method": "mean-before", "consumers": {"C1": {"expected_wh": [1]}}})
            },
        )
    )
    dr(ra1).submit("publish_declaration", "restart", json.dumps(summary))
    batch = [Reading("RA1", "C1", minute, 100 + m) for m, minute in enumerate(minutes)]
    meters = DrClient(EmbeddedGateway(ra1, ledger).get_network("grid"), TOPOLOGY.organisation("RA1"))
    meters.meters = OPERATOR_METERS  # each consumer's meter signs what RA1 relays
    first = meters.post_readings("restart", batch)
    height = ledger.height
    with pytest.raises(EndorseError, match="already recorded"):  # posting it twice by hand is refused
        meters.post_readings("restart", batch)
    again = meters.post_readings("restart", batch, resume=True)
    assert "already_recorded" not in first and again["already_recorded"] and again["readings"] == 5
    assert ledger.height == height  # recognised, not posted again
    changed = [*batch[:4], Reading("RA1", "C1", minutes[4], 999)]
    with pytest.raises(EndorseError, match="already recorded"):
        meters.post_readings("restart", changed, resume=True)
    readings = json.loads(dr(ra1).evaluate("get_readings", "C1", "restart"))["readings"]
    assert [r["wh"] for r in readings] == [100, 101, 102, 103, 104]


def readings_committed(network, command_id: str) -> int:
    """The readings of every VALID post_readings transaction of the command on the TSO's peer (their ReadingsPosted
    events): more than were posted means a batch committed twice. (Not the aggregates: they count the window only.)"""
    from gateway import grpc_channel_for
    from gateway.blocks import fetch_blocks

    peer = network.topology.peer_of("TSO")
    channel = grpc_channel_for(peer.address, network.layout.node_dir(peer) / "tls" / "ca.crt")
    session = open_session(network, "TSO")
    total = 0
    for block in fetch_blocks(session.gateway, network.topology.channel, channel=channel):
        for tx in block.transactions:
            if tx.valid and tx.event_name == "ReadingsPosted":
                summary = json.loads(tx.event_payload)
                total += summary["readings"] if summary["command"] == command_id else 0
    return total


SIMULATOR = textwrap.dedent("""
    # A meter simulator: every reading of the fleet for the command, one batch at a time, to the ledger and then
    # to the aggregation system; started again after a kill, it posts the same batches in the same order.
    import json
    import sys
    from network.bringup import Network
    from network.connections import open_session
    from network.crypto import MeterOperator
    from sim.aggregation_system import AggregationSystem
    from sim.meters import MeterFleet, batches, post_all

    run_dir, command_id, as_db, progress, command, last_minute = sys.argv[1:7]
    network = Network(run_dir)
    topology = network.topology
    command = json.loads(command)
    fleet = MeterFleet.for_topology(topology, 6, seed=7)
    system = AggregationSystem(as_db, topology)
    clients = {ra: open_session(network, ra).dr for ra in fleet.by_ra()}
    meters = MeterOperator(network.layout)  # the meters sign what their RAs relay
    for client in clients.values():
        client.meters = meters
    # Its baseline minutes up to the last that has ended (the window's are still to come).
    groups = [group for _, group in batches([r for r in fleet.readings_for(command) if r.minute <= last_minute], 60)]

    def posted(group, summary):
        system.receive(command_id, group)
        with open(progress, "a") as out:
            out.write(("again" if summary.get("already_recorded") else "new") + "\\n")

    post_all(lambda r: clients[r.ra], command_id, groups, workers=1, on_posted=posted)
    print("done")
""")


@pytest.mark.chaos
@pytest.mark.timeout(300)
def test_a_meter_simulator_killed_and_restarted_posts_every_reading_once(fault_network, tmp_path, figures):
    network = fault_network
    command_id = f"restart-{int(time.time())}"
    command = live_command(
        command_id,
        minutes=1,
        baseline_minutes=SIMULATED_MINUTES + 2,
        due_minutes=10,
        lead_seconds=30,
        price_per_kwh=100,
    )
    open_session(network, "TSO").dr.submit("issue_command", json.dumps(command))
    fleet = MeterFleet.for_topology(network.topology, 6, seed=7)
    for ra, consumers in fleet.by_ra().items():
        session = open_session(network, ra)
        session.dr.wait_for_command(command_id)
        session.dr.declare(command_id, fleet.declaration({**command, "granularity_minutes": 1}, consumers))
    last = past_baseline_minutes(command)[SIMULATED_MINUTES - 1]  # all but the latest two have ended
    every = [r for r in fleet.readings_for(command) if r.minute <= last]
    total_batches = len(list(batches(every, 60)))
    as_db, progress = tmp_path / "as.sqlite", tmp_path / "progress"
    argv = [
        sys.executable,
        "-c",
        SIMULATOR,
        str(network.root),
        command_id,
        str(as_db),
        str(progress),
        json.dumps(command),
        last,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def done_batches() -> list[str]:
        return progress.read_text().split() if progress.exists() else []

    first = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while len(done_batches()) < total_batches // 3 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # mid-run, maybe mid-transaction
    first.wait(10)
    killed_after = len(done_batches())
    assert 0 < killed_after < total_batches, f"the first run posted {killed_after} of {total_batches} batches"

    again = subprocess.run(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=180)
    assert again.returncode == 0 and b"done" in again.stdout, again.stdout.decode()[-2000:]
    outcomes = done_batches()[killed_after:]
    assert outcomes.count("again") >= killed_after and len(outcomes) == total_batches

    # The ledger holds every reading once, with its value; so does the aggregation system.
    expected = {(r.consumer, r.minute): r.wh for r in every}
    held = {}
    for ra in fleet.by_ra():
        session = open_session(network, ra)
        for consumer in [c.id for c in fleet.by_ra()[ra]]:
            shown = session.dr.evaluate("get_readings", consumer, command_id)["readings"]
            held.update({(consumer, r["minute"]): r["wh"] for r in shown})
    lost = sum(1 for k, wh in expected.items() if held.get(k) != wh)
    duplicates = readings_committed(network, command_id) - len(expected)
    with sqlite3.connect(as_db) as db:
        as_count = db.execute("SELECT COUNT(*) FROM as_readings").fetchone()[0]
    figures.append(
        {
            "fault": "meter simulator killed and restarted",
            "acked_readings": len(expected),
            "lost": lost,
            "duplicates": duplicates,
            "recovered_batches": outcomes.count("again"),
            "killed_after_batches": killed_after,
        }
    )
    assert lost == 0 and duplicates == 0 and held == expected
    assert as_count == len(expected)
