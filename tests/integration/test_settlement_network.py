"""Settlement by Japan's rules end to end on the real Fabric network: five weeks of 30-minute history for three
consumers (one per RA) relayed by their RAs with their meters' signatures, a kWh-type DR command for a window that
starts a few seconds ahead, declarations, readings posted minute by minute once each minute has ended, the dr
contract's settle, and the units contract's figures per 30-minute unit, checked against the pure functions
(baselines.baseline, settlement_units.unit_row and settle) applied here to the same data, and seen as figure 7
allows."""

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from waiting import eventually

from chaincode.contracts import baselines, settlement_units
from cli import main
from clients.dr_units import UnitsClient
from consortium import topology as topology_file
from consortium.units import EPOCH, JST, minute_index, minute_label
from gateway.errors import EndorseError, GatewayError
from network.connections import open_session
from network.crypto import MeterOperator
from sim.history import fleet_history
from sim.meters import MeterFleet, SimulatedConsumer

TOPOLOGY = topology_file.load()
WINDOW_MINUTES = 3
SAME_DAY = {"starts_before_minutes": 60, "ends_before_minutes": 30, "cap_percent": 20}
BASELINE_MINUTES = 100  # covers the same-day window before the first unit, wherever in its unit the window starts
PRICE = 2500
EXPECTED_WH = 3  # declared per consumer and minute


def minute_at(moment: datetime) -> int:
    """The minute index `moment` falls in."""
    return (moment - EPOCH) // timedelta(minutes=1)


def wait_until_ended(minute: int) -> None:
    """Sleeps until `minute` (a minute index) has ended, plus a second for clocks."""
    ends = EPOCH + timedelta(minutes=minute + 1, seconds=1)
    time.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()))


def succeeded(result):
    """A CLI run's result if it succeeded, else None (for eventually)."""
    return result if result.exit_code == 0 else None


def expected_settlement(fleet, history_days, readings, command) -> dict:
    """The figures by the pure functions, assembled here: units of the window, each consumer's High 4 of 5 (or
    High 2 of 3) baseline with the same-day adjustment from its readings before the first unit, pro-rated to the
    unit's minutes in the window; contracted = declared Wh in those minutes; split by settle."""
    first, last = minute_index(command["start"]), minute_index(command["end"])
    first_unit = first - first % 30
    units = []
    for start in range(first_unit, last + 1, 30):
        units.append((start, [m for m in range(start, start + 30) if first <= m <= last]))
    end = units[-1][0] + 30
    event_day = baselines.jst_date(first_unit)
    calendar = baselines.japanese_holidays({event_day.year - 1, event_day.year})
    adjustment = baselines.SameDayAdjustment(**SAME_DAY)
    rows = {}
    for consumer in fleet.consumers:
        slots = {}
        for day in history_days:
            if day.consumer == consumer.id:
                start = baselines.day_start(datetime.fromisoformat(day.day).date())
                slots |= {start + 30 * i: wh for i, wh in enumerate(day.wh)}
        own = readings[consumer.id]
        for slot in range(first_unit - 60, first_unit, 30):
            if all(m in own for m in range(slot, slot + 30)):
                slots[slot] = sum(own[m] for m in range(slot, slot + 30))
        found = baselines.baseline(slots, first_unit, end, (), calendar, adjustment)
        rows[consumer.id] = [
            settlement_units.unit_row(
                start,
                found.slots_wh[k] * len(minutes) // 30,
                sum(own[m] for m in minutes),
                EXPECTED_WH * len(minutes),
                all(m in own for m in minutes),
            )
            for k, (start, minutes) in enumerate(units)
        ]
    ra_of = {c.id: c.ra for c in fleet.consumers}
    ac_of = {ra: TOPOLOGY.organisation(ra).parent for ra in set(ra_of.values())}
    return settlement_units.settle(rows, ra_of, ac_of, settlement_units.kwh_payable(PRICE))


def test_a_command_settles_per_unit_from_history_on_chain_as_the_pure_functions_say(fabric_network):
    network = fabric_network
    tag = uuid.uuid4().hex[:6]
    consumers = [
        SimulatedConsumer(f"U{tag}-{n}", ra, base_kw, response)
        for n, (ra, base_kw, response) in enumerate((("RA1", 1.2, 0.3), ("RA2", 2.4, 0.2), ("RA3", 0.9, 0.4)))
    ]
    fleet = MeterFleet(consumers, seed=14)
    meters = MeterOperator(network.layout)
    sessions = {org: open_session(network, org) for org in TOPOLOGY.org_names}
    units = {org: UnitsClient.of(session, TOPOLOGY, meters) for org, session in sessions.items()}
    for consumer in consumers:
        sessions[consumer.ra].dr.register_consumers([consumer.id])
        sessions[consumer.ra].dr.meters = meters

    # Five weeks of history, through each RA, its meters' signatures checked by every endorser.
    today = datetime.now(JST).date()
    history = fleet_history(fleet, today, 35)
    for consumer in consumers:
        summary = units[consumer.ra].post_history([d for d in history if d.consumer == consumer.id])
        assert summary["days"] == 35
    shown = eventually(
        lambda: units["AC1"].history(consumers[0].id, history[0].day, history[34].day)["days"], "history"
    )
    assert [tuple(d["wh"]) for d in shown] == [d.wh for d in history if d.consumer == consumers[0].id]

    # A window starting 40 to 100 seconds ahead: time to declare before it starts.
    first = minute_at(datetime.now(UTC) + timedelta(seconds=40)) + 1
    command = {
        "id": f"units-{tag}",
        "start": minute_label(first),
        "end": minute_label(first + WINDOW_MINUTES - 1),
        "requested_kw": 1,
        "target_acs": ["AC1", "AC2"],
        "price_per_kwh": PRICE,
        "baseline_minutes": BASELINE_MINUTES,
        "readings_due": minute_label(first + WINDOW_MINUTES + 1),
        "product": {"name": "kwh-dr", "same_day": SAME_DAY},
    }
    sessions["TSO"].dr.issue(command)
    for consumer in consumers:
        dr = sessions[consumer.ra].dr
        dr.wait_for_command(command["id"])
        declaration = {"baseline_method": "mean-before", "consumers": {consumer.id: {"expected_wh": [EXPECTED_WH] * 3}}}
        dr.declare(command["id"], declaration)

    # Readings: the minutes before the window at once (they have ended), each window minute once it has ended.
    readings: dict[str, dict[int, int]] = {c.id: {} for c in consumers}

    def post(minutes: range) -> None:
        for consumer in consumers:
            batch = [fleet.reading(consumer, m, m >= first) for m in minutes]
            sessions[consumer.ra].dr.post_readings(command["id"], batch)
            readings[consumer.id] |= {minute_index(r.minute): r.wh for r in batch}

    ended = minute_at(datetime.now(UTC))  # the first minute not yet ended
    post(range(first - BASELINE_MINUTES, ended))
    for minute in range(ended, first + WINDOW_MINUTES):
        wait_until_ended(minute)
        post(range(minute, minute + 1))
    wait_until_ended(first + WINDOW_MINUTES)  # readings are due when that minute ends; settlement comes after
    eventually(lambda: sessions["TSO"].dr.settle(command["id"]), "the settlement", seconds=60)

    expected = expected_settlement(fleet, history, readings, command)

    def tso_figures():
        result = units["TSO"].unit_settlement(command["id"])
        assert result["settled"]
        assert {c["org"]: c["units"] for c in result["consumers"]} == {
            c: f["units"] for c, f in expected["consumers"].items()
        }
        return result

    result = eventually(tso_figures, seconds=60)
    for level, figures in (("acs", result["acs"]), ("ras", result["ras"]), ("consumers", result["consumers"])):
        for figure in figures:
            mine = expected[level][figure["org"]]
            assert (figure["reward_sen"], figure["penalty_sen"], figure["amount_sen"]) == (
                mine["reward_sen"],
                mine["penalty_sen"],
                mine["amount_sen"],
            ), figure["org"]
    assert result["tso"]["amount_sen"] == expected["tso"]["amount_sen"] == sum(a["amount_sen"] for a in result["acs"])
    assert all(
        c["baseline"]["ok"] and c["baseline"]["method"] in ("high-4-of-5", "high-2-of-3") for c in result["consumers"]
    )
    assert result["tso"]["rewarded_wh"] > 0

    # The CLI says the same.
    cli = CliRunner().invoke(
        main, ["dr", "units", "show", "--as", "TSO", "--id", command["id"], "--run-dir", str(network.root), "--json"]
    )
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout)["tso"] == result["tso"]
    shown = CliRunner().invoke(
        main,
        [
            "dr",
            "history",
            "show",
            "--as",
            "RA1",
            "--consumer",
            consumers[0].id,
            "--from",
            history[0].day,
            "--to",
            history[34].day,
            "--run-dir",
            str(network.root),
        ],
    )
    assert shown.exit_code == 0 and "35 days" in shown.stdout, shown.output

    # Figure 7: AC1 its own and its RAs' consumers, RA1 its own without the sen.
    ac1 = eventually(lambda: units["AC1"].unit_settlement(command["id"]), "AC1's view")
    assert [f["org"] for f in ac1["acs"]] == ["AC1"] and {f["org"] for f in ac1["ras"]} == {"RA1", "RA2"}
    assert {c["org"] for c in ac1["consumers"]} == {consumers[0].id, consumers[1].id}
    ra1 = eventually(lambda: units["RA1"].unit_settlement(command["id"]), "RA1's view")
    assert [c["org"] for c in ra1["consumers"]] == [consumers[0].id] and ra1["ras"][0]["amount_sen"] is None
    assert ra1["consumers"][0]["units"] == expected["consumers"][consumers[0].id]["units"]

    # What the TSO pays is recorded: AC1 records its statement, endorsed by its peer and the TSO's; the answer,
    # which is in the block every member receives, holds no money.
    recorded = units["AC1"].record_statement(command["id"])
    assert set(recorded) == {"command", "ac", "recorded_by", "recorded_at", "transaction"}
    statement = eventually(lambda: units["TSO"].statement(command["id"], "AC1"), "AC1's statement at the TSO")
    assert statement == units["AC1"].statement(command["id"])
    assert statement["ac_figure"]["amount_sen"] == expected["acs"]["AC1"]["amount_sen"]
    assert {r["org"]: r["amount_sen"] for r in statement["ras"]} == {
        ra: expected["ras"][ra]["amount_sen"] for ra in ("RA1", "RA2")
    }
    shown = eventually(lambda: units["TSO"].unit_settlement(command["id"])["acs"][0].get("statement"), "the status")
    assert shown == {
        "recorded_at": statement["recorded_at"],
        "recorded_by": "AC1",
        "matches": True,
        "shares_delivered": [],
    }
    with pytest.raises(EndorseError, match="already recorded"):
        units["TSO"].record_statement(command["id"], "AC1")
    # Each RA's share goes to its own collection, checked by its own peer against the recorded share's hash; RA1
    # then sees its sen, and its consumer's, as the TSO does.
    assert [d["ra"] for d in units["AC1"].deliver_shares(command["id"])] == ["RA1", "RA2"]
    ra1 = eventually(lambda: (v := units["RA1"].unit_settlement(command["id"]))["share"] and v, "RA1's share")
    assert ra1["money"] == "sen" and ra1["share"]["delivered_by"] == "AC1"
    for figure in (*ra1["ras"], *ra1["consumers"]):
        level = "ras" if figure["level"] == "ra" else "consumers"
        assert figure["amount_sen"] == expected[level][figure["org"]]["amount_sen"], figure["org"]
    assert units["AC1"].deliver_shares(command["id"]) == []  # delivered once
    # AC2's peer alone: ordered, and invalid on every peer (the AC2 collection's policy needs the TSO's peer too).
    alone = units["AC2"].contract.new_proposal(
        "record_statement", command["id"], "AC2", transient={"salt": "ab" * 16}, endorsing_organizations=["AC2MSP"]
    )
    assert alone.endorse().submit().status().code == "ENDORSEMENT_POLICY_FAILURE"
    with pytest.raises(GatewayError, match="is not recorded yet"):
        units["TSO"].statement(command["id"], "AC2")
    # The TSO records AC2's; the CLI shows it to AC2.
    assert units["TSO"].record_statement(command["id"], "AC2")["recorded_by"] == "TSO"
    arguments = ["dr", "units", "statement", "--as", "AC2", "--id", command["id"], "--run-dir", str(network.root)]
    cli = eventually(lambda: succeeded(CliRunner().invoke(main, arguments)), "AC2's statement in the CLI")
    assert "recorded" in cli.stdout and "by TSO" in cli.stdout and "RA3" in cli.stdout
    with pytest.raises(GatewayError, match="seen by that AC or the TSO, not by RA1"):
        units["RA1"].statement(command["id"], "AC1")
