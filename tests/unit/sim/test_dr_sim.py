"""The meter simulator and the aggregation-system stand-in: a repeatable load model, batching by RA, the AS's own
aggregates and injected discrepancies, the whole flow through the dr contract on the embedded ledger, and the live
run (simulate_dr) on a clock the test moves."""

import base64
import json
from datetime import datetime, timedelta

import pytest
from embedded_dr import TOPOLOGY, SimulatedTime, embedded_dr
from meter_keys import OPERATOR_AUTHORITY
from seed_examples import SEED_METERS, dr_command

from chaincode.server import build_chaincode
from chaincode.shim.testing import make_identity
from clients.dr import DrClient
from consortium.units import JST, minute_index
from gateway.embedded import EmbeddedGateway, EmbeddedLedger
from sim.aggregation_system import AggregationSystem
from sim.dr_run import simulate_dr
from sim.meters import MeterFleet, Reading, batches, minute_begins, post_all

COMMAND = dr_command(
    "7", "2021-01-14T18:00", "2021-01-14T18:09", requested_kw=5, granularity_minutes=1, baseline_minutes=10
)


def test_the_fleet_starts_with_the_topologys_consumers_and_is_repeatable():
    fleet = MeterFleet.for_topology(TOPOLOGY, 9, seed=3)
    assert [(c.id, c.ra) for c in fleet.consumers[:4]] == [("C1", "RA1"), ("C2", "RA2"), ("C3", "RA3"), ("C4", "RA1")]
    assert [c.id for c in fleet.consumers[6:]] == ["RA1-S00001", "RA2-S00001", "RA3-S00001"]
    again = MeterFleet.for_topology(TOPOLOGY, 9, seed=3)
    assert fleet.readings_for(COMMAND) == again.readings_for(COMMAND)
    assert fleet.readings_for(COMMAND) != MeterFleet.for_topology(TOPOLOGY, 9, seed=4).readings_for(COMMAND)


def test_readings_cover_the_accepted_window_and_drop_during_the_command():
    fleet = MeterFleet.for_topology(TOPOLOGY, 200, seed=1)
    readings = fleet.readings_for(COMMAND)
    minutes = sorted({r.minute for r in readings})
    assert minutes[0] == "2021-01-14T17:50" and minutes[-1] == "2021-01-14T18:09" and len(minutes) == 20
    assert all(isinstance(r.wh, int) and r.wh >= 0 for r in readings)
    first = minute_index(COMMAND["start"])
    before = sum(r.wh for r in readings if minute_index(r.minute) < first)
    during = sum(r.wh for r in readings if minute_index(r.minute) >= first)
    assert 0.6 * before < during < 0.9 * before  # 10-40 % shed, same evening hour


def test_batches_hold_one_ras_whole_consumer_hours():
    fleet = MeterFleet.for_topology(TOPOLOGY, 30, seed=0)
    readings = fleet.readings_for(COMMAND)  # 17:50-18:09: two hours per consumer, 10 readings each
    groups = list(batches(readings, 25))
    assert all(len({r.ra for r in group}) == 1 and 1 <= len(group) <= 25 for _, group in groups)
    assert sorted((r for _, group in groups for r in group), key=str) == sorted(readings, key=str)
    where = {}
    for number, (_, group) in enumerate(groups):
        for r in group:
            assert where.setdefault((r.consumer, r.minute[:13]), number) == number, "a consumer-hour was split"


def test_the_aggregation_system_keeps_its_own_aggregates_and_can_be_made_wrong(tmp_path):
    system = AggregationSystem(tmp_path / "as.sqlite", TOPOLOGY)
    batch = [
        Reading("RA1", "C1", "2021-01-14T00:00", 1000),
        Reading("RA2", "C2", "2021-01-14T00:00", 3000),
        Reading("RA3", "C3", "2021-01-14T00:00", 500),
    ]
    assert system.receive("1", batch) == 3
    assert system.receive("1", batch[:1]) == 0  # a reading received twice is kept once
    assert system.aggregates("1", "AC1") == {"2021-01-14T00:00": 4000}
    assert system.aggregates("1", "RA2") == {"2021-01-14T00:00": 3000}
    assert system.aggregates("1", "AC2") == {"2021-01-14T00:00": 500}
    system.inject_discrepancy("1", "C1", "2021-01-14T00:00", 250)
    assert system.aggregates("1", "AC1") == {"2021-01-14T00:00": 4250}
    assert system.readings("1", "C1") == {"2021-01-14T00:00": 1250}
    with pytest.raises(KeyError, match="no reading of C1 at 2021-01-14T00:01"):
        system.inject_discrepancy("1", "C1", "2021-01-14T00:01", 1)
    always_wrong = AggregationSystem(tmp_path / "wrong.sqlite", TOPOLOGY, discrepancy_rate=1.0)
    always_wrong.receive("1", batch)
    assert all(wh > 0 for wh in always_wrong.aggregates("1", "AC1").values())
    assert always_wrong.aggregates("1", "AC1")["2021-01-14T00:00"] > 4000


def test_the_whole_flow_on_the_embedded_ledger_agrees_until_the_as_is_made_wrong(tmp_path):
    chaincode = build_chaincode()
    chaincode.contracts["dr"].meter_authority = OPERATOR_AUTHORITY
    ledger = EmbeddedLedger(
        chaincode,
        collections={
            name: [TOPOLOGY.organisation(m).msp_id for m in members] for name, members in TOPOLOGY.collections().items()
        },
        clock=lambda: datetime(2021, 1, 14, 17, 0, tzinfo=JST),  # an hour before the window: issue and declare
    )
    users = {org: make_identity(f"{org}MSP", f"User1@{org}") for org in TOPOLOGY.org_names}

    def client(org):
        dr = DrClient(EmbeddedGateway(users[org], ledger).get_network("grid"), TOPOLOGY.organisation(org))
        dr.meters = SEED_METERS  # each consumer's meter signs what its RA relays
        return dr

    def contract(org):
        return client(org).contract

    contract("TSO").submit("issue_command", json.dumps(COMMAND))
    fleet = MeterFleet.for_topology(TOPOLOGY, 12, seed=5)
    for ra, consumers in fleet.by_ra().items():
        synthetic = [c.id for c in consumers if c.id.startswith(ra)]
        contract(ra).submit("register_consumers", transient={"consumers": json.dumps(synthetic)})
        summary = contract(ra).submit(
            "declare", "7", transient={"declaration": json.dumps(fleet.declaration(COMMAND, consumers))}
        )
        contract(ra).submit("publish_declaration", "7", summary)
    ledger.clock = lambda: datetime(2021, 1, 14, 18, 10, tzinfo=JST)  # every minute of the window has ended
    system = AggregationSystem(tmp_path / "as.sqlite", TOPOLOGY)
    groups = [group for _, group in batches(fleet.readings_for(COMMAND), 25)]
    summaries = post_all(
        lambda r: client(r.ra),
        "7",
        groups,
        workers=3,
        on_posted=lambda group, _: system.receive("7", group),
    )
    assert sum(s["readings"] for s in summaries) == 12 * 20

    comparison = client("TSO").compare("7", system).as_json()
    assert comparison["mismatches"] == 0 and len(comparison["rows"]) == 5 * 10
    system.inject_discrepancy("7", "C2", "2021-01-14T18:03", 40)
    wrong = [(r["org"], r["minute"]) for r in client("TSO").compare("7", system).as_json()["rows"] if not r["match"]]
    assert wrong == [("AC1", "2021-01-14T18:03"), ("RA2", "2021-01-14T18:03")]
    ledger.clock = lambda: datetime(2021, 1, 14, 18, 40, tzinfo=JST)  # readings are due: the window's end + 30 min
    contract("TSO").submit("settle", "7")
    settlement = json.loads(contract("TSO").evaluate("get_settlement", "7"))
    assert (
        settlement["settled"]
        and settlement["total"]["delivered_wh"] > 0
        and settlement["total"]["reward_hundredth_yen"] > 0
    )


def test_a_live_run_posts_each_minute_once_it_ends_and_settles_once_readings_are_due(tmp_path):
    """simulate_dr (what `gridledger dr simulate` runs) on the embedded ledger, the contract holding each step to
    the ledger's clock: it issues for the next minute at least 20 s ahead, posts the baseline at once and each window
    minute as it ends, and settles when the readings are due, a minute after the window."""
    clock = SimulatedTime(datetime(2021, 1, 14, 17, 58, 50, tzinfo=JST))
    ledger, sessions = embedded_dr(clock, SEED_METERS)
    system = AggregationSystem(tmp_path / "as.sqlite", TOPOLOGY)
    heard = []
    result, ras = simulate_dr(
        sessions,
        system,
        consumer_count=6,
        command_id="live",
        minutes=3,
        baseline_minutes=2,
        clock=clock,
        sleep=clock.sleep,
        log=heard.append,
    )
    command = result["command"]
    # 17:58:50 + 20 s is in 17:59: the window starts at 18:00.
    assert (command["start"], command["end"], command["readings_due"]) == (
        "2021-01-14T18:00",
        "2021-01-14T18:02",
        "2021-01-14T18:04",
    )
    assert command["issued_at"] == "2021-01-14T17:58:50+09:00" and command["declare_by"] == "2021-01-14T18:00"
    assert ras == ["RA1", "RA2", "RA3"] and result["readings"] == 6 * 5 and result["mismatches"] == 0
    posted = [
        (datetime.fromisoformat(t["timestamp"]), json.loads(base64.b64decode(t["event"]["payload"])))
        for block in ledger.blocks
        for t in block.transactions
        if t["event"] and t["event"]["name"] == "ReadingsPosted"
    ]
    rounds = sorted({(at, event["first_minute"], event["last_minute"]) for at, event in posted})
    # 17:58 ended before the run began; 17:59 once it ends; then each window minute, a second after its end.
    assert [(first, last) for _, first, last in rounds] == [
        ("2021-01-14T17:58", "2021-01-14T17:58"),
        ("2021-01-14T17:59", "2021-01-14T17:59"),
        ("2021-01-14T18:00", "2021-01-14T18:00"),
        ("2021-01-14T18:01", "2021-01-14T18:01"),
        ("2021-01-14T18:02", "2021-01-14T18:02"),
    ]
    for at, first, _ in rounds:
        assert timedelta(0) <= at - (minute_begins(first) + timedelta(minutes=1)) <= timedelta(seconds=1.5)
    settled = result["settlement"]
    assert settled["settled"] and settled["settled_at"] == "2021-01-14T18:04:01+09:00"
    assert settled["total"]["delivered_wh"] > 0 and result["transactions"] == len(posted)
    assert "waiting for minute 2021-01-14T18:02 JST to end (2021-01-14T18:03) to post its readings" in heard
    assert "waiting until the readings are due (2021-01-14T18:04 JST) to settle" in heard
