"""The dr contract on the in-memory world: commands, declarations, readings, aggregates, settlement; who may do
what (identity rules), who sees what (seed figure 7), and that every bad input is refused and changes nothing."""

import json
from datetime import timedelta

import pytest
from meter_keys import OPERATOR_AUTHORITY, signed_transient
from seed_examples import (
    AC1_WH,
    BEFORE,
    C1_WH,
    C2_WH,
    C3_WH,
    COMMAND,
    DUE,
    ENDED,
    FIGURES,
    ISSUED,
    OWNER,
    SEED_METERS,
    SEES,
    WINDOW,
)

from chaincode.contracts.dr import MAX_READING_WH
from chaincode.shim.memory import MVCC_READ_CONFLICT
from chaincode.shim.testing import make_identity
from consortium import topology as topology_file
from consortium.units import minute_index, minute_label

TOPOLOGY = topology_file.load()
USERS = {org: make_identity(f"{org}MSP", f"User1@{org.lower()}") for org in TOPOLOGY.org_names}
# Meter identities are the meter operator's (the TSO's MSP issues them), each naming its consumer.
METERS = {
    consumer: make_identity("TSOMSP", f"meter-{consumer}", {"role": "meter", "consumer": consumer})
    for org in TOPOLOGY.organisations
    for consumer in org.consumers
}
ORGS = TOPOLOGY.org_names


@pytest.fixture
def ledger(new_ledger):
    """Figure 6's moments: transactions run at ISSUED (before the window) until a test moves `ledger.now` on (to
    ENDED to post readings, to DUE to settle)."""
    ledger = new_ledger("dr", now=ISSUED)
    ledger.chaincode.contracts["dr"].meter_authority = OPERATOR_AUTHORITY
    return ledger


def issue(ledger, **changes):
    return ledger.ok(USERS["TSO"], "issue_command", json.dumps({**COMMAND, **changes}))


def declare(ledger, ra, consumers, method="mean-before", command="1", expected=100, slots=5):
    entries = {c: {"expected_wh": [expected] * slots} for c in consumers}
    if method == "declared":
        for c in consumers:
            entries[c]["baseline_wh"] = [5000] * slots
    summary = ledger.ok(
        USERS[ra],
        "declare",
        command,
        transient={"declaration": json.dumps({"baseline_method": method, "consumers": entries})},
    )
    return ledger.ok(USERS[ra], "publish_declaration", command, json.dumps(summary))


def readings(consumer, values, minutes=WINDOW):
    return [{"consumer": consumer, "minute": m, "wh": wh} for m, wh in zip(minutes, values, strict=False)]


def transient_for(identity, batch, command="1"):
    """A meter posts its own readings plain (it signs the proposal); an RA relays them signed by each meter."""
    if identity in METERS.values():
        return {"readings": json.dumps(batch)}
    return signed_transient(command, batch, SEED_METERS)


def post(ledger, identity, batch, command="1"):
    return ledger.ok(identity, "post_readings", command, transient=transient_for(identity, batch, command))


@pytest.fixture
def figure_6(ledger):
    """Command 1 declared by RA1 (C1), RA2 (C2), RA3 (C3), with every reading posted."""
    issue(ledger)
    for ra, consumer in (("RA1", "C1"), ("RA2", "C2"), ("RA3", "C3")):
        declare(ledger, ra, [consumer])
    ledger.now = ENDED
    post(ledger, METERS["C1"], readings("C1", C1_WH))
    post(ledger, USERS["RA2"], readings("C2", C2_WH))
    post(ledger, USERS["RA3"], readings("C3", C3_WH))
    return ledger


def minutes_wh(aggregate):
    return [m["wh"] for m in aggregate["minutes"]]


# Time.


def test_minutes_are_jst_labels_that_round_trip():
    assert minute_label(minute_index("2021-01-14T00:00")) == "2021-01-14T00:00"
    assert minute_index("2021-01-14T00:00+09:00") == minute_index("2021-01-14T00:00")
    assert minute_index("2021-01-14T00:00") - minute_index("2021-01-13T23:59") == 1
    # 00:00 JST is 15:00 UTC the day before.
    assert minute_index("2021-01-14T00:00") % 1440 == 15 * 60
    for bad in ("2021-01-14 00:00", "2021-01-14T00:00Z", "2021-02-30T00:00", "1999-01-01T00:00", 7):
        with pytest.raises(ValueError):
            minute_index(bad)


# Commands.


def test_the_tso_issues_a_public_command_and_everyone_reads_it(ledger):
    stub = ledger.world.new_stub(["dr:issue_command", json.dumps(COMMAND)], identity=USERS["TSO"], timestamp=ISSUED)
    response = ledger.chaincode.invoke(stub)
    assert response.ok, response.message
    ledger.world.commit(stub)
    command = json.loads(response.payload)
    assert command["granularity_minutes"] == 1 and command["target_acs"] == ["AC1", "AC2"]
    assert (stub.event.name, json.loads(stub.event.payload)) == ("CommandIssued", command)
    for org in ORGS:
        assert ledger.ok(USERS[org], "get_command", "1", commit=False) == command
    assert ledger.ok(METERS["C3"], "list_commands", commit=False) == [command]


@pytest.mark.parametrize("identity", ["AC1", "RA1", "meter:C1"])
def test_only_the_tso_issues_commands(ledger, identity):
    who = METERS["C1"] if identity.startswith("meter") else USERS[identity]
    assert "only the TSO issues DR commands" in ledger.refused(who, "issue_command", json.dumps(COMMAND))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"id": ""}, "command id must be 1-64 letters"),
        ({"start": "2021-01-14 00:00"}, "start must be a JST minute"),
        ({"end": "2021-01-13T23:00"}, "the window must be 1 to 1440 minutes"),
        ({"end": "2021-01-16T00:00"}, "the window must be 1 to 1440 minutes"),
        ({"granularity_minutes": 2}, "not a whole number of 2-minute slots"),
        ({"requested_kw": 0}, "requested_kw must be an integer from 1"),
        ({"requested_kw": 1.5}, "requested_kw must be an integer"),
        ({"price_per_kwh": -1}, "price_per_kwh (hundredths of a yen) must be an integer from 0"),
        ({"target_acs": ["AC9"]}, "target_acs must list distinct ACs of AC1, AC2"),
        ({"target_acs": []}, "target_acs must list distinct ACs"),
        ({"baseline_minutes": 0}, "baseline_minutes must be an integer from 1"),
        ({"colour": "red"}, "unknown field(s) colour"),
    ],
)
def test_bad_commands_are_refused(ledger, changes, message):
    assert message in ledger.refused(USERS["TSO"], "issue_command", json.dumps({**COMMAND, **changes}))


def test_a_command_id_is_issued_once_and_malformed_json_is_refused(ledger):
    issue(ledger)
    assert "command '1' already exists" in ledger.refused(USERS["TSO"], "issue_command", json.dumps(COMMAND))
    response = ledger.call(USERS["TSO"], "issue_command", "{oops")
    assert response.status == 400 and "malformed JSON" in response.message


# Declarations.


def test_an_ra_declares_privately_and_publishes_a_checked_summary(ledger):
    issue(ledger)
    summary = declare(ledger, "RA1", ["C1", "C4"], expected=300)
    assert summary == {"command": "1", "ra": "RA1", "consumers": 2, "expected_wh": 3000}
    assert ledger.ok(USERS["RA3"], "list_declarations", "1", commit=False) == [summary]
    detail = ledger.ok(USERS["AC1"], "get_declaration", "1", "RA1", commit=False)
    assert detail["consumers"] == ["C1", "C4"] and detail["detail"]["C4"] == {"expected_wh": [300] * 5}
    # The consumers never reach public state.
    assert not any(b"C4" in value for value in ledger.world.public_state().values())


def test_an_ra_cannot_declare_another_ras_consumer(ledger):
    issue(ledger)
    declaration = {"baseline_method": "mean-before", "consumers": {"C2": {"expected_wh": [1] * 5}}}
    message = ledger.refused(USERS["RA1"], "declare", "1", transient={"declaration": json.dumps(declaration)})
    assert "consumer C2 belongs to RA2; RA1 may declare only its own consumers" in message


@pytest.mark.parametrize(
    "declaration, message",
    [
        ({"baseline_method": "guess", "consumers": {"C1": {"expected_wh": [1] * 5}}}, "baseline_method must be one of"),
        ({"baseline_method": "mean-before", "consumers": {}}, "consumers must map 1 to"),
        ({"baseline_method": "mean-before", "consumers": {"C9": {"expected_wh": [1] * 5}}}, "consumer C9 is unknown"),
        (
            {"baseline_method": "mean-before", "consumers": {"C1": {"expected_wh": [1] * 4}}},
            "C1 expected_wh must list one value per slot (5)",
        ),
        (
            {"baseline_method": "mean-before", "consumers": {"C1": {"expected_wh": [1, 1, 1, 1, -1]}}},
            "C1 expected_wh[4] must be an integer from 0 to 100000, got -1",
        ),
        (
            {"baseline_method": "declared", "consumers": {"C1": {"expected_wh": [1] * 5}}},
            "C1 needs exactly baseline_wh and expected_wh",
        ),
        (
            {"baseline_method": "mean-before", "consumers": {"C1": {"expected_wh": [1] * 5}}, "x": 1},
            "unknown field(s) x",
        ),
    ],
)
def test_bad_declarations_are_refused(ledger, declaration, message):
    issue(ledger)
    assert message in ledger.refused(USERS["RA1"], "declare", "1", transient={"declaration": json.dumps(declaration)})


def declaring(consumer: str) -> dict:
    """The transient data of a declaration of one consumer, 1 Wh per slot of command 1, against "mean-before"."""
    declaration = {"baseline_method": "mean-before", "consumers": {consumer: {"expected_wh": [1] * 5}}}
    return {"declaration": json.dumps(declaration)}


def test_declaration_rules(ledger):
    issue(ledger, target_acs=["AC1"])
    assert "command 1 targets AC1; RA3 answers to AC2" in ledger.refused(
        USERS["RA3"], "declare", "1", transient=declaring("C3")
    )
    assert "only an RA may declare, not AC1" in ledger.refused(
        USERS["AC1"], "declare", "1", transient={"declaration": "{}"}
    )
    assert "a smart meter may post and read only its own readings" in ledger.refused(
        METERS["C1"], "declare", "1", transient={"declaration": "{}"}
    )
    assert "no command '2'" in ledger.refused(USERS["RA1"], "declare", "2", transient={"declaration": "{}"})
    assert "malformed JSON" in ledger.refused(USERS["RA1"], "declare", "1", transient={"declaration": "{"})
    assert "under 'declaration'" in ledger.refused(USERS["RA1"], "declare", "1")
    declare(ledger, "RA1", ["C1"])
    assert "RA1 has already declared for command 1" in ledger.refused(
        USERS["RA1"], "declare", "1", transient=declaring("C4")
    )


def test_a_published_summary_must_match_the_private_declaration(ledger):
    issue(ledger)
    declaration = {"baseline_method": "mean-before", "consumers": {"C1": {"expected_wh": [100] * 5}}}
    summary = ledger.ok(USERS["RA1"], "declare", "1", transient={"declaration": json.dumps(declaration)})
    inflated = {**summary, "expected_wh": 10**6}
    assert "does not match RA1's declaration" in ledger.refused(
        USERS["RA1"], "publish_declaration", "1", json.dumps(inflated)
    )
    assert "RA2 may publish only its own summary" in ledger.refused(
        USERS["RA2"], "publish_declaration", "1", json.dumps(summary)
    )
    assert "RA2 has not declared" in ledger.refused(
        USERS["RA2"], "publish_declaration", "1", json.dumps({**summary, "ra": "RA2"})
    )
    ledger.ok(USERS["RA1"], "publish_declaration", "1", json.dumps(summary))
    assert "already published" in ledger.refused(USERS["RA1"], "publish_declaration", "1", json.dumps(summary))


# Readings.


def test_readings_are_private_and_announced_without_values(ledger):
    issue(ledger)
    declare(ledger, "RA1", ["C1"])
    stub = ledger.world.new_stub(
        ["dr:post_readings", "1"],
        timestamp=ENDED,
        identity=METERS["C1"],
        transient={"readings": json.dumps(readings("C1", C1_WH)).encode()},
    )
    response = ledger.chaincode.invoke(stub)
    assert response.ok, response.message
    assert ledger.world.commit(stub) == "VALID"
    assert json.loads(stub.event.payload) == {
        "command": "1",
        "ra": "RA1",
        "readings": 5,
        "first_minute": WINDOW[0],
        "last_minute": WINDOW[-1],
    }
    assert not [w for w in stub.writes if not w.collection], "a reading transaction must write no public state"
    assert {w.collection for w in stub.writes} == {"RA1"}
    assert b"6000" not in stub.event.payload and b"C1" not in stub.event.payload
    for org in ("TSO", "AC1", "RA1"):
        got = ledger.ok(USERS[org], "get_readings", "C1", "1", commit=False)
        assert [r["wh"] for r in got["readings"]] == C1_WH


def test_a_meter_cannot_post_for_another_consumer(ledger):
    issue(ledger)
    declare(ledger, "RA1", ["C1", "C4"])
    declare(ledger, "RA2", ["C2"])
    ledger.now = ENDED
    assert "the meter of consumer C1 may post only its own readings, not 'C4'" in ledger.refused(
        METERS["C1"], "post_readings", "1", transient={"readings": json.dumps(readings("C4", [1]))}
    )
    # A meter certificate RA1 issued itself, naming RA2's consumer, is no meter at all.
    forged = make_identity("RA1MSP", "meter-C2", {"role": "meter", "consumer": "C2"})
    assert "a meter certificate must be issued by the meter operator TSO, not by RA1" in ledger.refused(
        forged, "post_readings", "1", transient={"readings": json.dumps(readings("C2", [1]))}
    )


@pytest.mark.parametrize(
    "batch, message",
    [
        (readings("C1", [-3]), "reading 0: wh must be an integer from 0 to 100000, got -3"),
        (readings("C1", [MAX_READING_WH + 1]), "wh must be an integer from 0 to 100000, got 100001"),
        (readings("C1", [1.5]), "wh must be an integer from 0 to 100000, got 1.5"),
        (readings("C1", [True]), "wh must be an integer"),
        (readings("C9", [1]), "consumer 'C9' is unknown"),
        (readings("C4", [1]), "consumer 'C4' is not declared by RA1 for command 1"),
        (readings("C3", [1]), "consumer 'C3' belongs to RA3, not RA1"),
        (
            readings("C1", [1], ["2021-01-14T00:05"]),
            "minute 2021-01-14T00:05 is outside what command 1 accepts (2021-01-13T23:57 to 2021-01-14T00:04",
        ),
        (readings("C1", [1], ["2021-01-13T23:56"]), "outside what command 1 accepts"),
        (readings("C1", [1], ["2021-01-14 00:01"]), "reading 0: minute must be a JST minute"),
        (readings("C1", [1, 2], [WINDOW[0], WINDOW[0]]), "duplicate reading in the batch: C1 at 2021-01-14T00:00"),
        ([{"consumer": "C1", "minute": WINDOW[0]}], "must be an object with exactly consumer, minute and wh"),
        ([{"consumer": ["C1"], "minute": WINDOW[0], "wh": 1}], "consumer must be a string"),
        ([], "a batch holds 1 to 5000 readings, got 0"),
        # All or nothing: one bad reading and none of the batch is kept.
        (readings("C1", [1, 2, 3, -1]), "reading 3: wh must be an integer"),
    ],
)
def test_bad_readings_are_refused_and_the_batch_changes_nothing(ledger, batch, message):
    issue(ledger)
    declare(ledger, "RA1", ["C1"])
    ledger.now = ENDED + timedelta(minutes=1)  # a minute after the window: minute 00:05 has ended, still outside
    assert message in ledger.refused(USERS["RA1"], "post_readings", "1", transient={"readings": json.dumps(batch)})


def test_duplicates_malformed_json_and_missing_declarations_are_refused(ledger):
    issue(ledger)
    declare(ledger, "RA2", ["C2"])
    ledger.now = ENDED
    assert "RA1 has not declared for command 1" in ledger.refused(
        USERS["RA1"], "post_readings", "1", transient={"readings": json.dumps(readings("C1", [1]))}
    )
    ledger.now = ISSUED
    declare(ledger, "RA1", ["C1"])
    ledger.now = ENDED
    post(ledger, USERS["RA1"], readings("C1", [7]))
    assert "duplicate reading: C1 at 2021-01-14T00:00 is already recorded" in ledger.refused(
        METERS["C1"], "post_readings", "1", transient={"readings": json.dumps(readings("C1", [7]))}
    )
    assert "transient 'readings' is malformed JSON" in ledger.refused(
        USERS["RA1"], "post_readings", "1", transient={"readings": '[{"consumer": '}
    )
    assert "transient 'readings' must be a JSON list, got dict" in ledger.refused(
        USERS["RA1"], "post_readings", "1", transient={"readings": "{}"}
    )
    assert "readings are posted by an RA or its consumers' meters, not by TSO" in ledger.refused(
        USERS["TSO"], "post_readings", "1", transient={"readings": json.dumps(readings("C1", [1]))}
    )


def test_a_minute_in_two_commands_windows_is_posted_to_each(ledger):
    issue(ledger)
    issue(ledger, id="2", start="2021-01-14T00:05", end="2021-01-14T00:09")  # its baseline is command 1's end
    declare(ledger, "RA1", ["C1"])
    declare(ledger, "RA1", ["C1"], command="2")
    ledger.now = ENDED
    post(ledger, USERS["RA1"], readings("C1", C1_WH))
    post(ledger, USERS["RA1"], readings("C1", C1_WH[2:], WINDOW[2:]), command="2")
    assert [r["wh"] for r in ledger.ok(USERS["RA1"], "get_readings", "C1", "2", commit=False)["readings"]] == C1_WH[2:]
    assert "duplicate reading: C1 at 2021-01-14T00:04 is already recorded" in ledger.refused(
        USERS["RA1"], "post_readings", "2", transient=transient_for(USERS["RA1"], readings("C1", [1], WINDOW[4:]), "2")
    )


def test_concurrent_batches_do_not_conflict_but_the_same_reading_twice_does(ledger):
    issue(ledger)
    declare(ledger, "RA1", ["C1", "C4"])

    def simulate(identity, batch):
        transient = {name: value.encode() for name, value in transient_for(identity, batch).items()}
        stub = ledger.world.new_stub(["dr:post_readings", "1"], identity=identity, transient=transient, timestamp=ENDED)
        assert ledger.chaincode.invoke(stub).ok
        return stub

    first = simulate(USERS["RA1"], readings("C1", C1_WH))
    second = simulate(USERS["RA1"], readings("C4", C1_WH))
    same_again = simulate(METERS["C1"], readings("C1", [5]))
    assert ledger.world.commit(first) == "VALID"
    assert ledger.world.commit(second) == "VALID"  # aggregate deltas are keys of their own: no hot spot
    assert ledger.world.commit(same_again) == MVCC_READ_CONFLICT
    aggregate = ledger.ok(USERS["RA1"], "get_aggregates", "1", "RA1", commit=False)["aggregates"][0]
    assert minutes_wh(aggregate) == [2 * wh for wh in C1_WH]


# Aggregates and visibility (seed figures 6 and 7).


def test_figure_6_ac1_aggregates_are_4_3_5_10_2_kwh(figure_6):
    result = figure_6.ok(USERS["TSO"], "get_aggregates", "1", commit=False)
    by_org = {a["org"]: a for a in result["aggregates"]}
    assert [a["org"] for a in result["aggregates"]] == ["AC1", "RA1", "RA2", "AC2", "RA3"]
    assert minutes_wh(by_org["AC1"]) == AC1_WH
    assert [m["minute"] for m in by_org["AC1"]["minutes"]] == WINDOW
    assert minutes_wh(by_org["RA1"]) == C1_WH and minutes_wh(by_org["RA2"]) == C2_WH
    assert minutes_wh(by_org["AC2"]) == minutes_wh(by_org["RA3"]) == C3_WH
    assert all(m["readings"] == 2 for m in by_org["AC1"]["minutes"])


@pytest.mark.parametrize("org", ORGS)
def test_figure_7_each_organisation_sees_its_group_and_nothing_else(figure_6, org):
    for consumer in ("C1", "C2", "C3"):
        if consumer in SEES[org]:
            assert figure_6.ok(USERS[org], "get_readings", consumer, "1", commit=False)["ra"] == OWNER[consumer]
            assert figure_6.ok(USERS[org], "get_declaration", "1", OWNER[consumer], commit=False)
        else:
            assert f"is not one {org} may see" in figure_6.refused(
                USERS[org], "get_readings", consumer, "1", commit=False
            )
            assert "may not see" in figure_6.refused(USERS[org], "get_declaration", "1", OWNER[consumer], commit=False)
    visible = [a["org"] for a in figure_6.ok(USERS[org], "get_aggregates", "1", commit=False)["aggregates"]]
    assert visible == FIGURES[org]
    for target in ("AC1", "AC2", "RA1", "RA2", "RA3"):
        if target not in FIGURES[org]:
            assert f"{org} may not see the figures of '{target}'" in figure_6.refused(
                USERS[org], "get_aggregates", "1", target, commit=False
            )
    settlement = figure_6.ok(USERS[org], "get_settlement", "1", commit=False)
    assert [f["org"] for f in settlement["figures"]] == FIGURES[org]
    assert ("total" in settlement) == (org == "TSO")
    listed = figure_6.ok(USERS[org], "list_consumers", commit=False)
    assert set().union(*listed.values()) & {"C1", "C2", "C3"} == SEES[org]


def test_meters_read_only_their_own_readings(figure_6):
    assert figure_6.ok(METERS["C1"], "get_readings", "C1", "1", commit=False)["consumer"] == "C1"
    assert "is not one RA1 may see" in figure_6.refused(METERS["C1"], "get_readings", "C4", "1", commit=False)
    for function, args in (("get_aggregates", ("1",)), ("get_settlement", ("1",)), ("list_consumers", ())):
        assert "a smart meter may post and read only its own readings" in figure_6.refused(
            METERS["C1"], function, *args, commit=False
        )


def test_a_query_on_a_peer_outside_the_group_gets_a_clear_error(figure_6):
    message = figure_6.refused(USERS["TSO"], "get_aggregates", "1", "RA1", commit=False, peer="RA3MSP")
    assert "this peer (RA3MSP) is not a member of collection RA1; send the request to your own" in message


# Settlement.


def test_settlement_from_a_mean_before_baseline(ledger):
    issue(ledger)
    declare(ledger, "RA1", ["C1"], expected=1000)
    ledger.now = ENDED
    post(ledger, USERS["RA1"], readings("C1", [3000, 3000, 3001], BEFORE) + readings("C1", C1_WH))
    figure = ledger.ok(USERS["RA1"], "get_settlement", "1", commit=False)["figures"][0]
    assert figure["baseline_minutes_used"] == 3
    assert [s["baseline_wh"] for s in figure["slots"]] == [3000] * 5  # 9001 // 3
    assert [s["delivered_wh"] for s in figure["slots"]] == [2000, 1000, 1000, -3000, 2000]
    assert [s["shortfall_wh"] for s in figure["slots"]] == [0, 0, 0, 4000, 0]
    assert figure["rewarded_wh"] == 6000
    assert figure["reward_hundredth_yen"] == 6000 * 2500 // 1000  # 6 kWh at 25.00 yen = 150.00 yen


def test_settlement_with_declared_baselines_and_missing_readings(ledger):
    issue(ledger)
    declare(ledger, "RA2", ["C2", "C5"], method="declared", expected=2000)  # baseline 5000 Wh each per slot
    ledger.now = ENDED
    post(ledger, USERS["RA2"], readings("C2", C2_WH) + readings("C5", [1000] * 4))  # C5 misses 00:04
    figure = ledger.ok(USERS["AC1"], "get_settlement", "1", commit=False)["figures"][2]
    assert figure["org"] == "RA2"
    assert [s["complete"] for s in figure["slots"]] == [True] * 4 + [False]
    assert [s["delivered_wh"] for s in figure["slots"]] == [6000, 8000, 6000, 5000, 0]
    assert figure["shortfall_wh"] == 4000  # the incomplete slot delivers nothing against 4000 expected
    assert figure["reward_hundredth_yen"] == 25000 * 2500 // 1000


def test_the_tso_settles_once_and_then_the_command_is_closed(figure_6):
    before = figure_6.ok(USERS["TSO"], "get_settlement", "1", commit=False)
    assert not before["settled"]
    assert "only the TSO settles" in figure_6.refused(USERS["AC1"], "settle", "1")
    figure_6.now = DUE
    record = figure_6.ok(USERS["TSO"], "settle", "1")
    assert record["declared_ras"] == ["RA1", "RA2", "RA3"]
    view = figure_6.ok(USERS["TSO"], "get_settlement", "1", commit=False)
    assert view["settled"] and view["figures"] == before["figures"]
    assert [f["org"] for f in view["figures"]] == FIGURES["TSO"]
    assert view["total"]["reward_hundredth_yen"] == sum(
        f["reward_hundredth_yen"] for f in view["figures"] if f["level"] == "ra"
    )
    ac1 = figure_6.ok(USERS["AC1"], "get_settlement", "1", commit=False)
    assert ac1["settled"] and ac1["figures"] == view["figures"][:3]
    ra3 = figure_6.ok(USERS["RA3"], "get_settlement", "1", commit=False)
    assert ra3["settled"] and ra3["figures"] == [view["figures"][4]]
    assert "command 1 is settled" in figure_6.refused(
        USERS["RA1"], "post_readings", "1", transient={"readings": json.dumps(readings("C1", [1], BEFORE))}
    )
    assert "command 1 is settled" in figure_6.refused(USERS["TSO"], "settle", "1")


# Consumers beyond the topology.


def test_an_ra_registers_consumers_that_no_other_ra_may_take(ledger):
    assert ledger.ok(USERS["RA1"], "register_consumers", transient={"consumers": json.dumps(["S-1", "S-2"])}) == {
        "ra": "RA1",
        "registered": 2,
    }
    assert "consumer S-1 belongs to RA1, not RA2's" in ledger.refused(
        USERS["RA2"], "register_consumers", transient={"consumers": json.dumps(["S-1"])}
    )
    assert "consumer C2 belongs to RA2, not RA1's" in ledger.refused(
        USERS["RA1"], "register_consumers", transient={"consumers": json.dumps(["C2"])}
    )
    assert "consumer S-2 is already RA1's" in ledger.refused(
        USERS["RA1"], "register_consumers", transient={"consumers": json.dumps(["S-2"])}
    )
    assert "only an RA may register consumers" in ledger.refused(
        USERS["AC1"], "register_consumers", transient={"consumers": json.dumps(["S-3"])}
    )
    assert ledger.ok(USERS["AC1"], "list_consumers", commit=False) == {
        "RA1": ["C1", "C4", "S-1", "S-2"],
        "RA2": ["C2", "C5"],
    }
    issue(ledger)
    declare(ledger, "RA1", ["S-1"])
    ledger.now = ENDED
    post(ledger, USERS["RA1"], readings("S-1", C1_WH))
    assert ledger.ok(USERS["TSO"], "get_readings", "S-1", "1", commit=False)["ra"] == "RA1"
    assert "is not one RA3 may see" in ledger.refused(USERS["RA3"], "get_readings", "S-1", "1", commit=False)
