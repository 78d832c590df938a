"""The meter simulator and the aggregation-system stand-in: a repeatable load model, batching by RA, the AS's own
aggregates and injected discrepancies, and the whole flow through the dr contract on the embedded ledger."""

import json
from datetime import datetime

import pytest
from meter_keys import OPERATOR_AUTHORITY
from seed_examples import SEED_METERS, dr_command

from chaincode.server import build_chaincode
from chaincode.shim.testing import make_identity
from clients.dr import DrClient
from consortium import topology as topology_file
from consortium.units import JST, minute_index
from gateway.embedded import EmbeddedGateway, EmbeddedLedger
from sim.aggregation_system import AggregationSystem
from sim.meters import MeterFleet, Reading, batches, post_all

TOPOLOGY = topology_file.load()
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
