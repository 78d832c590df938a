"""The units contract on the embedded ledger: 30-minute history (past days only, meter-signed, once, seen as figure 7
allows), 基準値計画 forecasts locked at the gate closure, and settlement per 30-minute unit by the product's rules:
the hand-computed figures of a weekday baseline (holiday skipped, low day replaced, same-day adjustment capped), a
holiday baseline, a DR day left out, a unit the window covers in part, a balancing product failing Assessments I and
II with its penalties, and sen that add up exactly at every level."""

import hashlib
import json
from datetime import date, datetime, timedelta

import pytest
from meter_keys import OPERATOR_AUTHORITY, OPERATOR_METERS, CertificateAuthority, Meters

from chaincode.contracts import products
from chaincode.contracts.common import canonical_json
from chaincode.shim.keys import create_composite_key
from chaincode.shim.memory import Height, Write
from chaincode.shim.testing import make_identity
from clients.dr_units import HistoryDay, history_signatures
from consortium import topology as topology_file
from consortium.units import JST, minute_index, minute_label

TOPOLOGY = topology_file.load()
USERS = {org: make_identity(f"{org}MSP", f"User1@{org.lower()}") for org in TOPOLOGY.org_names}
EVENT_DAY = date(
    2027, 10, 13
)  # a Wednesday; Monday 10-11 is スポーツの日 (meter certificates are valid for a year from now)
LATER = datetime(2027, 10, 30, tzinfo=JST)  # every transaction of a test runs after the days it posts


def at(day: date, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{day.isoformat()}T{hhmm}:00+09:00")


def meter(consumer: str):
    return make_identity("TSOMSP", f"meter-{consumer}", {"role": "meter", "consumer": consumer})


def history(consumer: str, values: dict[date, int], ra: str = "RA1") -> list[HistoryDay]:
    """Flat days: the same Wh in each of the 48 slots."""
    return [HistoryDay(ra, consumer, day.isoformat(), (wh,) * 48) for day, wh in sorted(values.items())]


def history_transient(days: list[HistoryDay], meters=OPERATOR_METERS, signatures=None) -> dict[str, str]:
    signed = history_signatures(days, meters) if signatures is None else signatures
    return {"history": json.dumps([d.as_json() for d in days]), "meter_signatures": json.dumps(signed)}


def post_history(ledger, ra: str, days: list[HistoryDay], when=LATER):
    return ledger.ok(USERS[ra], "post_history", transient=history_transient(days), when=when)


def weekdays_before(day: date, count: int) -> list[date]:
    found, back = [], 1
    while len(found) < count:
        candidate = day - timedelta(days=back)
        if candidate.weekday() < 5:
            found.append(candidate)
        back += 1
    return found


def command(command_id: str, start: str, end: str, product: dict, **fields) -> dict:
    return {
        "id": command_id,
        "start": start,
        "end": end,
        "requested_kw": 10,
        "target_acs": ["AC1", "AC2"],
        "price_per_kwh": 2500,
        "product": product,
        **fields,
    }


def readings(consumer: str, first: str, values: list[int]) -> list[dict]:
    start = minute_index(first)
    return [{"consumer": consumer, "minute": minute_label(start + n), "wh": wh} for n, wh in enumerate(values)]


def post_readings(ledger, command_id: str, batch: list[dict]):
    """Each consumer's readings by its meter, under its own identity, a minute after the last has ended."""
    ended = datetime.fromisoformat(max(r["minute"] for r in batch) + "+09:00") + timedelta(minutes=2)
    for consumer in sorted({r["consumer"] for r in batch}):
        own = json.dumps([r for r in batch if r["consumer"] == consumer])
        ledger.ok(meter(consumer), "post_readings", command_id, transient={"readings": own}, contract="dr", when=ended)


def declare(ledger, ra: str, command_id: str, expected: dict[str, list[int]], when: datetime):
    declaration = {"baseline_method": "mean-before", "consumers": {c: {"expected_wh": e} for c, e in expected.items()}}
    transient = {"declaration": json.dumps(declaration)}
    ledger.ok(USERS[ra], "declare", command_id, transient=transient, contract="dr", when=when)


def settlement(ledger, who: str = "TSO", command_id: str = "7", peer: str | None = None) -> dict:
    return ledger.ok(USERS[who], "get_unit_settlement", command_id, peer=peer, commit=False, when=LATER)


def by_org(figures: list[dict]) -> dict[str, dict]:
    return {f["org"]: f for f in figures}


@pytest.fixture
def ledger(new_ledger):
    ledger = new_ledger("units")
    ledger.chaincode.contracts["units"].meter_authority = OPERATOR_AUTHORITY
    ledger.chaincode.contracts["dr"].meter_authority = OPERATOR_AUTHORITY
    return ledger


# History.


def test_an_ra_relays_history_its_meters_signed_and_each_day_is_recorded_once(ledger):
    days = history("C1", {date(2027, 10, 8): 100, date(2027, 10, 7): 90})
    summary = post_history(ledger, "RA1", days)
    assert summary == {"ra": "RA1", "consumers": 1, "days": 2, "first_day": "2027-10-07", "last_day": "2027-10-08"}
    shown = ledger.ok(USERS["TSO"], "get_history", "C1", "2027-10-06", "2027-10-08", commit=False)
    assert [(d["day"], d["wh"][0], len(d["wh"])) for d in shown["days"]] == [
        ("2027-10-07", 90, 48),
        ("2027-10-08", 100, 48),
    ]
    again = history("C1", {date(2027, 10, 8): 100})
    message = ledger.refused(USERS["RA1"], "post_history", transient=history_transient(again), when=LATER)
    assert "duplicate history: C1 on 2027-10-08 is already recorded" in message
    twice = again + again
    message = ledger.refused(USERS["RA1"], "post_history", transient=history_transient(twice), when=LATER)
    assert "duplicate history in the batch: C1 on 2027-10-08" in message


def test_a_day_is_accepted_only_once_it_has_ended_in_jst(ledger):
    day = date(2027, 10, 12)
    days = history("C1", {day: 100})
    message = ledger.refused(USERS["RA1"], "post_history", transient=history_transient(days), when=at(day, "23:59"))
    assert "the day 2027-10-12 has not ended (JST)" in message
    # 00:00 JST the next day is 15:00 UTC the day itself: the day has ended.
    assert post_history(ledger, "RA1", days, when=at(day + timedelta(days=1), "00:00"))["days"] == 1


def test_history_needs_its_own_meters_signature_over_exactly_those_values(ledger):
    days = history("C1", {date(2027, 10, 8): 100})
    unsigned = {"history": json.dumps([d.as_json() for d in days])}
    assert "the history of C1 carries no meter signature" in ledger.refused(
        USERS["RA1"], "post_history", transient=unsigned, when=LATER
    )
    signed = history_signatures(days, OPERATOR_METERS)
    inflated = history("C1", {date(2027, 10, 8): 1000})
    message = ledger.refused(
        USERS["RA1"], "post_history", transient=history_transient(inflated, signatures=signed), when=LATER
    )
    assert "does not verify" in message
    c4 = history_signatures(history("C4", {date(2027, 10, 8): 100}), OPERATOR_METERS)
    message = ledger.refused(
        USERS["RA1"], "post_history", transient=history_transient(days, signatures={"C1": c4["C4"]}), when=LATER
    )
    assert "signed by the meter of C4, not by C1's own" in message
    made_up = Meters(CertificateAuthority("ca.tso.grid.local"))
    message = ledger.refused(USERS["RA1"], "post_history", transient=history_transient(days, made_up), when=LATER)
    assert "was not issued by the meter operator's CA" in message


def test_history_is_posted_only_for_the_rais_own_consumers_and_a_meter_posts_only_its_own(ledger):
    days = history("C2", {date(2027, 10, 8): 100})
    message = ledger.refused(USERS["RA1"], "post_history", transient=history_transient(days), when=LATER)
    assert "consumer C2 belongs to RA2; RA1 posts only its own consumers'" in message
    own = {"history": json.dumps([d.as_json() for d in history("C1", {date(2027, 10, 8): 100})])}
    assert ledger.ok(meter("C1"), "post_history", transient=own, when=LATER)["days"] == 1
    other = {"history": json.dumps([d.as_json() for d in history("C4", {date(2027, 10, 8): 100})])}
    assert "may post only its own history" in ledger.refused(meter("C1"), "post_history", transient=other, when=LATER)
    assert "not by TSO" in ledger.refused(USERS["TSO"], "post_history", transient=own, when=LATER)


@pytest.mark.parametrize(
    "wh, message",
    [
        ([1] * 47, "must list 48 whole Wh values"),
        ([-1] * 48, "values must be integers from 0 to 3000000 Wh"),
        ([True] * 48, "values must be integers"),
    ],
)
def test_malformed_history_is_refused(ledger, wh, message):
    items = [{"consumer": "C1", "day": "2027-10-08", "wh": wh}]
    assert message in ledger.refused(meter("C1"), "post_history", transient={"history": json.dumps(items)}, when=LATER)


@pytest.mark.parametrize("day", ["2026-13-01", "20261120", 3])
def test_a_malformed_day_is_refused(ledger, day):
    items = [{"consumer": "C1", "day": day, "wh": [1] * 48}]
    message = ledger.refused(meter("C1"), "post_history", transient={"history": json.dumps(items)}, when=LATER)
    assert "day" in message


@pytest.mark.parametrize("who, sees", [("TSO", True), ("AC1", True), ("RA1", True), ("AC2", False), ("RA2", False)])
def test_history_is_seen_as_figure_7_allows(ledger, who, sees):
    post_history(ledger, "RA1", history("C1", {date(2027, 10, 8): 100}))
    if sees:
        shown = ledger.ok(USERS[who], "get_history", "C1", "2027-10-08", "2027-10-08", commit=False)
        assert shown["days"][0]["wh"] == [100] * 48
    else:
        message = ledger.refused(USERS[who], "get_history", "C1", "2027-10-08", "2027-10-08")
        assert f"consumer 'C1' is not one {who} may see" in message


def test_a_meter_sees_only_its_own_history(ledger):
    post_history(ledger, "RA1", history("C1", {date(2027, 10, 8): 100}))
    assert ledger.ok(meter("C1"), "get_history", "C1", "2027-10-08", "2027-10-08", commit=False)["days"]
    assert "is not one RA1 may see" in ledger.refused(meter("C4"), "get_history", "C1", "2027-10-08", "2027-10-08")


# kWh-type DR settlement.


def five_weeks(consumer: str, overrides: dict[date, int], base: int = 100, ra: str = "RA1") -> list[HistoryDay]:
    values = {EVENT_DAY - timedelta(days=back): base for back in range(1, 36)}
    return history(consumer, values | overrides, ra)


KWH = {"name": "kwh-dr"}


def kwh_event(ledger, start="14:00", end="14:59", baseline_minutes=240, event_day=EVENT_DAY, command_id="7"):
    """Command 7 on `event_day`, issued at 09:00; C1 (RA1) declared 50 Wh per 30-minute slot."""
    cmd = command(
        command_id,
        f"{event_day}T{start}",
        f"{event_day}T{end}",
        KWH,
        granularity_minutes=30 if (start, end) == ("14:00", "14:59") else 1,
        baseline_minutes=baseline_minutes,
    )
    ledger.ok(USERS["TSO"], "issue_command", json.dumps(cmd), contract="dr", when=at(event_day, "09:00"))
    slots = 2 if cmd["granularity_minutes"] == 30 else minute_index(cmd["end"]) - minute_index(cmd["start"]) + 1
    declare(ledger, "RA1", command_id, {"C1": [50 if slots == 2 else 2] * slots}, at(event_day, "09:01"))
    return cmd


def test_a_weekday_baseline_skips_the_holiday_replaces_the_low_day_and_caps_the_same_day_adjustment(ledger):
    """Event Wed 10-13 14:00-15:00. Weekdays before it: 10-12 (low: 10 Wh a slot), 10-11 スポーツの日 (skipped),
    10-08, 10-07, 10-06 (100), 10-05 (90), 10-04 (80). Candidates after replacing the low day: 10-08 … 10-04;
    High 4 of 5 keeps 10-08, 10-07, 10-06, 10-05: (3 × 100 + 90) / 4 = 97.5 a slot. Same-day adjustment: 10:00-13:00
    on the event day read 150 a slot (5 Wh a minute), 52.5 above the kept days, capped at 20 % of 97.5 = 19.5:
    97.5 + 19.5 = 117 a unit. Actual 60 a unit (2 Wh a minute): 57 delivered, 50 contracted; 114 Wh rewarded at
    25 yen/kWh = 285 sen."""
    post_history(
        ledger,
        "RA1",
        five_weeks(
            "C1", {date(2027, 10, 12): 10, date(2027, 10, 11): 500, date(2027, 10, 5): 90, date(2027, 10, 4): 80}
        ),
    )
    kwh_event(ledger)
    post_readings(ledger, "7", readings("C1", f"{EVENT_DAY}T10:00", [5] * 240 + [2] * 60))
    result = settlement(ledger)
    c1 = by_org(result["consumers"])["C1"]
    assert c1["baseline"]["method"] == "high-4-of-5"
    assert c1["baseline"]["low_days"] == ["2027-10-12"]
    assert c1["baseline"]["candidate_days"] == ["2027-10-08", "2027-10-07", "2027-10-06", "2027-10-05", "2027-10-04"]
    assert c1["baseline"]["selected_days"] == ["2027-10-08", "2027-10-07", "2027-10-06", "2027-10-05"]
    assert c1["baseline"]["unadjusted_wh"] == [97, 97] and c1["baseline"]["capped"] == [True, True]
    assert [(u["baseline_wh"], u["actual_wh"], u["delivered_wh"], u["contracted_wh"]) for u in c1["units"]] == [
        (117, 60, 57, 50),
        (117, 60, 57, 50),
    ]
    assert (c1["reward_sen"], c1["penalty_sen"], c1["amount_sen"]) == (285, 0, 285)
    assert result["tso"]["amount_sen"] == by_org(result["acs"])["AC1"]["amount_sen"] == 285


def test_an_uncapped_adjustment_goes_down_as_far_as_the_event_day_says(ledger):
    """Cap off (null): the event day read 60 a slot before the window against 100: 100 − 40 = 60 a unit."""
    post_history(ledger, "RA1", five_weeks("C1", {}))
    cmd = command(
        "7",
        f"{EVENT_DAY}T14:00",
        f"{EVENT_DAY}T14:59",
        {"name": "kwh-dr", "same_day": {"cap_percent": None}},
        granularity_minutes=30,
        baseline_minutes=240,
    )
    ledger.ok(USERS["TSO"], "issue_command", json.dumps(cmd), contract="dr", when=at(EVENT_DAY, "09:00"))
    declare(ledger, "RA1", "7", {"C1": [0, 0]}, at(EVENT_DAY, "09:01"))
    post_readings(ledger, "7", readings("C1", f"{EVENT_DAY}T10:00", [2] * 240 + [1] * 60))
    c1 = by_org(settlement(ledger)["consumers"])["C1"]
    assert [u["baseline_wh"] for u in c1["units"]] == [60, 60]
    assert c1["baseline"]["adjustment_wh"] == [-40, -40] and c1["baseline"]["capped"] == [False, False]


def test_a_product_may_turn_the_same_day_adjustment_off(ledger):
    """same_day null: the kept days' average alone (100 a unit), whatever the event day read before the window."""
    post_history(ledger, "RA1", five_weeks("C1", {}))
    cmd = command(
        "7",
        f"{EVENT_DAY}T14:00",
        f"{EVENT_DAY}T14:59",
        {"name": "kwh-dr", "same_day": None},
        granularity_minutes=30,
        baseline_minutes=1,
    )
    ledger.ok(USERS["TSO"], "issue_command", json.dumps(cmd), contract="dr", when=at(EVENT_DAY, "09:00"))
    declare(ledger, "RA1", "7", {"C1": [0, 0]}, at(EVENT_DAY, "09:01"))
    post_readings(ledger, "7", readings("C1", f"{EVENT_DAY}T13:59", [9] + [1] * 60))
    result = settlement(ledger)
    c1 = by_org(result["consumers"])["C1"]
    assert [u["baseline_wh"] for u in c1["units"]] == [100, 100] and result["product"]["same_day"] is None


def test_a_holiday_event_uses_high_2_of_3_of_weekends_and_holidays(ledger):
    """Event on 10-11 (スポーツの日, a Monday): the 3 most recent weekend days or holidays are 10-10, 10-09, 10-03;
    the 2 highest, 10-10 (300) and 10-03 (200), make 250 a slot before the same-day adjustment."""
    holiday = date(2027, 10, 11)
    values = {holiday - timedelta(days=back): 100 for back in range(1, 36)}
    values |= {date(2027, 10, 10): 300, date(2027, 10, 9): 150, date(2027, 10, 3): 200}
    post_history(ledger, "RA1", history("C1", values))
    kwh_event(ledger, event_day=holiday)
    post_readings(ledger, "7", readings("C1", f"{holiday}T10:00", [250 // 30 + 1] * 240 + [0] * 60))
    c1 = by_org(settlement(ledger)["consumers"])["C1"]
    assert c1["baseline"]["method"] == "high-2-of-3" and c1["baseline"]["day_type"] == "weekend-or-holiday"
    assert c1["baseline"]["candidate_days"] == ["2027-10-10", "2027-10-09", "2027-10-03"]
    assert c1["baseline"]["selected_days"] == ["2027-10-10", "2027-10-03"]
    assert c1["baseline"]["unadjusted_wh"] == [250, 250]


def test_a_day_the_consumer_was_dispatched_is_no_candidate(ledger):
    """C1 was declared for command 6 on 10-08: its baseline days skip 10-08 and reach back to 10-04."""
    post_history(ledger, "RA1", five_weeks("C1", {}))
    earlier = command("6", "2027-10-08T14:00", "2027-10-08T14:29", KWH)
    ledger.ok(USERS["TSO"], "issue_command", json.dumps(earlier), contract="dr", when=at(date(2027, 10, 8), "09:00"))
    declare(ledger, "RA1", "6", {"C1": [1] * 30}, at(date(2027, 10, 8), "09:01"))
    kwh_event(ledger)
    post_readings(ledger, "7", readings("C1", f"{EVENT_DAY}T10:00", [3] * 300))
    c1 = by_org(settlement(ledger)["consumers"])["C1"]
    assert "2027-10-08" not in c1["baseline"]["candidate_days"]
    assert c1["baseline"]["candidate_days"] == ["2027-10-12", "2027-10-07", "2027-10-06", "2027-10-05", "2027-10-04"]


def test_a_window_off_the_unit_boundaries_is_settled_on_its_minutes_of_each_unit(ledger):
    """14:10-14:39: 20 minutes of unit 14:00 and 10 of unit 14:30, each unit's 100 Wh baseline pro-rated (our rule):
    66 and 33 Wh; actual 1 Wh a minute."""
    post_history(ledger, "RA1", five_weeks("C1", {}))
    kwh_event(ledger, start="14:10", end="14:39")
    post_readings(ledger, "7", readings("C1", f"{EVENT_DAY}T10:10", [100 // 30] * 240 + [1] * 30))
    result = settlement(ledger)
    assert result["units"] == [
        {"unit": f"{EVENT_DAY}T14:00", "minutes": 20},
        {"unit": f"{EVENT_DAY}T14:30", "minutes": 10},
    ]
    c1 = by_org(result["consumers"])["C1"]
    # Event-day slots before the window: 10:30 … 12:30 complete (10:00 lacks 10 minutes), 99 Wh vs 100, and the
    # adjustment window 10:00-13:00 misses its first slot: no baseline, nothing delivered.
    assert not c1["baseline"]["ok"] and "same-day adjustment needs" in c1["baseline"]["error"]
    assert [u["complete"] for u in c1["units"]] == [False, False] and c1["delivered_wh"] == 0


def test_a_window_off_the_unit_boundaries_pro_rates_each_units_baseline(ledger):
    post_history(ledger, "RA1", five_weeks("C1", {}))
    cmd = command(
        "7",
        f"{EVENT_DAY}T14:10",
        f"{EVENT_DAY}T14:39",
        {"name": "kwh-dr", "same_day": {"starts_before_minutes": 120, "ends_before_minutes": 60}},
        baseline_minutes=130,
    )
    ledger.ok(USERS["TSO"], "issue_command", json.dumps(cmd), contract="dr", when=at(EVENT_DAY, "09:00"))
    declare(ledger, "RA1", "7", {"C1": [2] * 30}, at(EVENT_DAY, "09:01"))
    # 12:00-13:00 read 100 a slot (as history): no adjustment; the window reads 1 Wh a minute.
    values = ([4] * 10 + [3] * 20) * 2 + [3] * 70 + [1] * 30
    post_readings(ledger, "7", readings("C1", f"{EVENT_DAY}T12:00", values))
    c1 = by_org(settlement(ledger)["consumers"])["C1"]
    assert c1["baseline"]["ok"], c1["baseline"]
    assert [(u["baseline_wh"], u["actual_wh"], u["contracted_wh"]) for u in c1["units"]] == [(66, 20, 40), (33, 10, 20)]


def test_without_history_no_baseline_is_set_and_nothing_is_delivered(ledger):
    kwh_event(ledger)
    post_readings(ledger, "7", readings("C1", f"{EVENT_DAY}T10:00", [3] * 300))
    c1 = by_org(settlement(ledger)["consumers"])["C1"]
    assert "the history lacks 30 of the 30 days" in c1["baseline"]["error"] and c1["amount_sen"] == 0


def test_a_day_left_out_of_the_history_sets_no_baseline_and_posting_it_after_the_settlement_changes_nothing(ledger):
    """Leaving out low day 10-12 would lift C1's baseline (the rule would reach back to a 100 Wh day instead); so a
    baseline needs all 30 days, and a day posted after the TSO settled the command does not count."""
    days = five_weeks("C1", {date(2027, 10, 12): 10})
    post_history(ledger, "RA1", [d for d in days if d.day != "2027-10-12"], when=at(EVENT_DAY, "00:30"))
    kwh_event(ledger)
    post_readings(ledger, "7", readings("C1", f"{EVENT_DAY}T10:00", [5] * 240 + [2] * 60))
    c1 = by_org(settlement(ledger)["consumers"])["C1"]
    assert "the history lacks 1 of the 30 days" in c1["baseline"]["error"] and c1["delivered_wh"] == 0
    ledger.ok(USERS["TSO"], "settle", "7", contract="dr", when=at(EVENT_DAY, "16:00"))  # after the readings due
    post_history(ledger, "RA1", [d for d in days if d.day == "2027-10-12"])
    assert "lacks 1 of the 30 days" in by_org(settlement(ledger)["consumers"])["C1"]["baseline"]["error"]


# A balancing product.


TERTIARY = {"name": "tertiary-1", "contracted_w": {"AC1": 6000, "AC2": 1000}, "baseline": "measured"}


def balancing_event(ledger):
    """Tertiary ① (15-minute response) for 14:00-14:29, issued at 13:00 so every window minute is assessed; AC1
    contracted 6 kW; C1 (RA1) and C2 (RA2) each declared 50 Wh a minute (3 kW). Both read 100 Wh a minute before the window (baseline 200
    Wh a minute for AC1); C1 sheds 50 a minute throughout, C2 50 a minute for 20 minutes and nothing for the last 10.
    Delivered 2,500 Wh in the unit = 5 kW: Assessment I short 1 kW (1/6); Assessment II fails the last 10 of 30
    minutes (3 kW delivered, 6 ± 0.6 instructed). Price 100 sen/kW: payment 5 × 100 = 500 sen; penalty I 1 × 100 ×
    3/2 = 150; penalty II 6 × 100 × 10/30 = 200."""
    cmd = command("7", f"{EVENT_DAY}T14:00", f"{EVENT_DAY}T14:29", TERTIARY, baseline_minutes=10)
    ledger.ok(USERS["TSO"], "issue_command", json.dumps(cmd), contract="dr", when=at(EVENT_DAY, "13:00"))
    declare(ledger, "RA1", "7", {"C1": [50] * 30}, at(EVENT_DAY, "13:01"))
    declare(ledger, "RA2", "7", {"C2": [50] * 30}, at(EVENT_DAY, "13:01"))
    post_readings(ledger, "7", readings("C1", f"{EVENT_DAY}T13:50", [100] * 10 + [50] * 30))
    post_readings(ledger, "7", readings("C2", f"{EVENT_DAY}T13:50", [100] * 10 + [50] * 20 + [100] * 10))


def test_a_balancing_product_fails_assessments_i_and_ii_and_pays_its_penalties(ledger):
    balancing_event(ledger)
    result = settlement(ledger)
    ac1 = by_org(result["acs"])["AC1"]
    (note,) = ac1["assessments"]
    assert note["available_w"] == 5000
    assert note["assessment_i"] == {"passed": False, "shortfall_w": 1000, "shortfall_rate": "1/6"}
    assert note["assessment_ii"]["intervals"] == 30 and note["assessment_ii"]["failed"] == 10
    assert note["assessment_ii"]["failed_intervals"][0] == f"{EVENT_DAY}T14:20"
    assert (note["payment_sen"], note["penalty_i_sen"], note["penalty_ii_sen"]) == (500, 150, 200)
    assert (ac1["reward_sen"], ac1["penalty_sen"], ac1["amount_sen"]) == (500, 350, 150)
    ras = by_org(result["ras"])
    # Reward by rewarded Wh (1,500 : 1,000), penalty by shortfall Wh (C1 met its declared 1,500 Wh, C2 was 500 short).
    assert (ras["RA1"]["reward_sen"], ras["RA1"]["penalty_sen"]) == (300, 0)
    assert (ras["RA2"]["reward_sen"], ras["RA2"]["penalty_sen"]) == (200, 350)
    assert ras["RA2"]["amount_sen"] == -150
    assert result["product"]["label"] == "三次調整力①"


def test_a_measured_baseline_without_the_minutes_before_the_window_delivers_nothing(ledger):
    cmd = command("7", f"{EVENT_DAY}T14:00", f"{EVENT_DAY}T14:29", TERTIARY, baseline_minutes=10)
    ledger.ok(USERS["TSO"], "issue_command", json.dumps(cmd), contract="dr", when=at(EVENT_DAY, "13:00"))
    declare(ledger, "RA1", "7", {"C1": [1] * 30}, at(EVENT_DAY, "13:01"))
    post_readings(ledger, "7", readings("C1", f"{EVENT_DAY}T14:00", [0] * 30))
    c1 = by_org(settlement(ledger)["consumers"])["C1"]
    assert "measured baseline needs a reading" in c1["baseline"]["error"] and c1["delivered_wh"] == 0


FORECAST = {"name": "tertiary-2", "contracted_w": {"AC1": 6000, "AC2": 1000}, "baseline": "forecast"}


def test_a_forecast_baseline_is_locked_at_the_gate_closure_and_settles_as_submitted(ledger):
    cmd = command("7", f"{EVENT_DAY}T14:00", f"{EVENT_DAY}T14:29", FORECAST, baseline_minutes=10)
    ledger.ok(USERS["TSO"], "issue_command", json.dumps(cmd), contract="dr", when=at(EVENT_DAY, "09:00"))
    plan = {"forecast": json.dumps({"C1": [3000]})}
    late = ledger.refused(
        USERS["RA1"], "submit_forecast", "7", transient=plan, when=at(EVENT_DAY, "13:00") + timedelta(seconds=30)
    )
    assert "must be submitted 60 minutes before its first unit" in late
    assert ledger.ok(USERS["RA1"], "submit_forecast", "7", transient=plan, when=at(EVENT_DAY, "13:00"))["units"] == 1
    moved = {"forecast": json.dumps({"C1": [9000]})}
    assert "already submitted and locked" in ledger.refused(
        USERS["RA1"], "submit_forecast", "7", transient=moved, when=at(EVENT_DAY, "12:00")
    )
    declare(ledger, "RA1", "7", {"C1": [1] * 30}, at(EVENT_DAY, "09:30"))
    post_readings(ledger, "7", readings("C1", f"{EVENT_DAY}T14:00", [0] * 30))
    result = settlement(ledger)
    c1 = by_org(result["consumers"])["C1"]
    assert c1["baseline"]["plan_wh"] == [3000] and c1["units"][0]["baseline_wh"] == 3000
    # 3,000 Wh delivered in 30 minutes = 6 kW: both assessments pass, 6 kW × 100 sen.
    ac1 = by_org(result["acs"])["AC1"]
    assert ac1["assessments"][0]["assessment_i"]["passed"] and ac1["assessments"][0]["assessment_ii"]["passed"]
    assert (ac1["reward_sen"], ac1["penalty_sen"]) == (600, 0)


def test_only_a_forecast_product_takes_a_forecast_and_only_from_an_ra(ledger):
    balancing_event(ledger)
    plan = {"forecast": json.dumps({"C1": [3000]})}
    assert "has a measured baseline" in ledger.refused(USERS["RA1"], "submit_forecast", "7", transient=plan)
    assert "the RA's to submit, not TSO's" in ledger.refused(USERS["TSO"], "submit_forecast", "7", transient=plan)


# Who sees what, and sen that add up.


def test_each_organisation_sees_its_own_figures_and_an_ra_no_sen_of_its_acs_payment(ledger):
    balancing_event(ledger)
    tso = settlement(ledger)
    assert [f["org"] for f in tso["acs"]] == ["AC1"] and {f["org"] for f in tso["ras"]} == {"RA1", "RA2"}
    ac1 = settlement(ledger, "AC1")
    assert ac1["tso"] is None and [f["org"] for f in ac1["acs"]] == ["AC1"]
    assert {f["org"] for f in ac1["consumers"]} == {"C1", "C2"}
    # An RA, on its own peer: its own and its consumers' energy figures, the same as the TSO's, and no sen (its
    # share depends on RA2's data, which neither its peer nor its identity may read).
    ra1 = settlement(ledger, "RA1")
    assert ra1["tso"] is None and ra1["acs"] == [] and [f["org"] for f in ra1["ras"]] == ["RA1"]
    assert [f["org"] for f in ra1["consumers"]] == ["C1"]
    assert ra1["ras"][0]["units"] == by_org(tso["ras"])["RA1"]["units"]
    assert ra1["ras"][0]["amount_sen"] is None and ra1["consumers"][0]["reward_sen"] is None
    message = ledger.refused(USERS["AC1"], "get_unit_settlement", "7", peer="RA1MSP", when=LATER)
    assert "this peer (RA1MSP) is not a member of collection RA2" in message
    ac2 = settlement(ledger, "AC2")
    assert ac2["acs"] == [] and ac2["consumers"] == []
    assert "a smart meter may read only its own history" in ledger.refused(meter("C1"), "get_unit_settlement", "7")


def test_a_command_without_a_product_settles_as_before(ledger):
    plain = {k: v for k, v in command("7", f"{EVENT_DAY}T14:00", f"{EVENT_DAY}T14:29", KWH).items() if k != "product"}
    ledger.ok(USERS["TSO"], "issue_command", json.dumps(plain), contract="dr")
    assert "names no product" in ledger.refused(USERS["TSO"], "get_unit_settlement", "7")
    assert "product" not in ledger.ok(USERS["TSO"], "get_command", "7", contract="dr", commit=False)


@pytest.mark.parametrize(
    "product, message",
    [
        ({"name": "tertiary-9"}, "product name must be one of"),
        ({"name": "tertiary-1"}, "contracted_w must give the contracted ΔkW (W) of each target AC (AC1, AC2)"),
        ({"name": "tertiary-1", "contracted_w": {"AC1": 1}}, "of each target AC"),
        ({"name": "kwh-dr", "contracted_w": {"AC1": 1, "AC2": 1}}, "for balancing products, not kwh-dr"),
        ({"name": "tertiary-1", "contracted_w": {"AC1": 1, "AC2": 0}}, "contracted_w of AC2 must be an integer"),
        ({"name": "kwh-dr", "same_day": {"cap_percent": 101}}, "cap_percent must be an integer from 0 to 100"),
        ({"name": "kwh-dr", "colour": 1}, "unknown product field(s) colour"),
        ("kwh-dr", "product must be an object"),
    ],
)
def test_a_malformed_product_is_refused(ledger, product, message):
    cmd = command("7", f"{EVENT_DAY}T14:00", f"{EVENT_DAY}T14:29", product)
    assert message in ledger.refused(USERS["TSO"], "issue_command", json.dumps(cmd), contract="dr")


def test_sen_add_up_exactly_at_every_level(ledger):
    """Six consumers under both ACs with uneven history and response: every level's reward and penalty are the sum
    of the level below, to the sen."""
    consumers = {"C1": "RA1", "C4": "RA1", "C2": "RA2", "C5": "RA2", "C3": "RA3", "C6": "RA3"}
    for n, (consumer, ra) in enumerate(consumers.items()):
        post_history(ledger, ra, five_weeks(consumer, {}, base=97 + 13 * n, ra=ra))
    cmd = command(
        "7",
        f"{EVENT_DAY}T14:00",
        f"{EVENT_DAY}T14:59",
        {"name": "kwh-dr", "penalty_sen_per_kwh": 777},
        baseline_minutes=240,
        price_per_kwh=3333,
    )
    ledger.ok(USERS["TSO"], "issue_command", json.dumps(cmd), contract="dr", when=at(EVENT_DAY, "09:00"))
    for ra in ("RA1", "RA2", "RA3"):
        own = [c for c, r in consumers.items() if r == ra]
        declare(ledger, ra, "7", {c: [7 + 5 * i] * 60 for i, c in enumerate(own)}, at(EVENT_DAY, "09:01"))
    for n, consumer in enumerate(consumers):
        base = (97 + 13 * n) // 30
        values = [base + (m % 3 == 0) for m in range(240)] + [
            max(base - 1 - n % 3, 0) + (m % 7 == 0) for m in range(60)
        ]
        post_readings(ledger, "7", readings(consumer, f"{EVENT_DAY}T10:00", values))
    result = settlement(ledger)
    ras, acs = by_org(result["ras"]), by_org(result["acs"])
    for field in ("reward_sen", "penalty_sen", "amount_sen"):
        for ra in ras.values():
            assert ra[field] == sum(c[field] for c in result["consumers"] if c["parent"] == ra["org"])
        for ac in acs.values():
            assert ac[field] == sum(r[field] for r in ras.values() if r["parent"] == ac["org"])
        assert result["tso"][field] == sum(a[field] for a in acs.values())
    assert result["tso"]["reward_sen"] > 0 and result["tso"]["penalty_sen"] > 0


def test_an_ra_may_not_state_its_own_baseline_for_a_command_that_names_its_product(ledger):
    cmd = command("7", f"{EVENT_DAY}T14:00", f"{EVENT_DAY}T14:59", KWH, granularity_minutes=30)
    ledger.ok(USERS["TSO"], "issue_command", json.dumps(cmd), contract="dr", when=at(EVENT_DAY, "09:00"))
    stated = {"baseline_method": "declared", "consumers": {"C1": {"expected_wh": [50, 50], "baseline_wh": [9000] * 2}}}
    message = ledger.refused(
        USERS["RA1"],
        "declare",
        "7",
        transient={"declaration": json.dumps(stated)},
        contract="dr",
        when=at(EVENT_DAY, "09:01"),
    )
    assert "command 7 names its product: the ledger sets the baseline, declare none" in message


def test_an_issued_product_carries_the_topologys_defaults_so_no_later_topology_moves_its_rules(ledger):
    cmd = command("7", f"{EVENT_DAY}T14:00", f"{EVENT_DAY}T14:59", KWH, granularity_minutes=30)
    ledger.ok(USERS["TSO"], "issue_command", json.dumps(cmd), contract="dr", when=at(EVENT_DAY, "09:00"))
    recorded = ledger.ok(USERS["TSO"], "get_command", "7", contract="dr", commit=False, when=at(EVENT_DAY, "09:01"))
    defaults = ledger.chaincode.contracts["dr"].topology.settlement
    assert recorded["product"] == products.frozen(KWH, defaults)
    assert recorded["product"] != KWH  # the defaults are written in, not left to the deployed topology


# Statements: what the TSO pays an AC, recorded once the command is settled.


SALT = "5a" * 16


def record_statement(ledger, who: str, ac: str = "AC1", peer: str | None = None, **options):
    return ledger.ok(
        USERS[who], "record_statement", "7", ac, peer=peer, transient={"salt": SALT}, when=LATER, **options
    )


def deliver_share(ledger, who: str, ra: str, share: dict):
    return ledger.ok(USERS[who], "deliver_share", "7", ra, transient={"share": json.dumps(share)}, when=LATER)


def statement_of(ledger, who: str = "AC1", ac: str = "AC1") -> dict:
    return ledger.ok(USERS[who], "get_statement", "7", ac, commit=False, when=LATER)


def settled_balancing_event(ledger):
    balancing_event(ledger)
    ledger.ok(USERS["TSO"], "settle", "7", contract="dr", when=LATER)


def test_an_acs_statement_is_recorded_once_settled_once_and_says_what_the_settlement_computes(ledger):
    balancing_event(ledger)
    assert "is not settled yet" in ledger.refused(USERS["AC1"], "record_statement", "7", "AC1", when=LATER)
    ledger.ok(USERS["TSO"], "settle", "7", contract="dr", when=LATER)
    summary = record_statement(ledger, "AC1")
    # The answer is in the block every member receives: it names no money.
    assert summary == {"command": "7", "ac": "AC1", "recorded_by": "AC1", "recorded_at": "2027-10-30T00:00:00+09:00"}
    computed = settlement(ledger, "AC1")
    for who in ("AC1", "TSO"):
        statement = statement_of(ledger, who)
        ac1 = {k: v for k, v in by_org(computed["acs"])["AC1"].items() if k != "statement"}
        assert statement["ac_figure"] == ac1 and statement["ac_figure"]["amount_sen"] == 150
        assert statement["ras"] == computed["ras"] and statement["consumers"] == 2
        digest = hashlib.sha256(canonical_json(sorted(computed["consumers"], key=lambda f: f["org"]))).hexdigest()
        assert statement["consumers_digest"] == digest and statement["settled_at"] == computed["settled_at"]
    for who in ("AC1", "TSO"):
        assert "already recorded (at 2027-10-30T00:00:00+09:00); it never changes" in ledger.refused(
            USERS[who], "record_statement", "7", "AC1", when=LATER
        )
    shown = by_org(settlement(ledger)["acs"])["AC1"]["statement"]
    assert shown == {
        "recorded_at": "2027-10-30T00:00:00+09:00",
        "recorded_by": "AC1",
        "matches": True,
        "shares_delivered": [],
    }


def test_a_statement_needs_a_random_salt_so_that_its_public_hashes_reveal_nothing(ledger):
    settled_balancing_event(ledger)
    for salt in (None, "", "5A" * 16, "5a" * 15, "zz" * 16):
        transient = {} if salt is None else {"salt": salt}
        message = ledger.refused(USERS["AC1"], "record_statement", "7", "AC1", transient=transient, when=LATER)
        assert "needs a random salt, 32 lowercase hex digits" in message
    record_statement(ledger, "AC1")
    shares = statement_of(ledger)["shares"]
    assert set(shares) == {"RA1", "RA2"} and shares["RA1"]["salt"] != shares["RA2"]["salt"] != SALT


def test_the_tso_may_record_an_acs_statement_and_nobody_else_may_record_or_read_it(ledger):
    settled_balancing_event(ledger)
    for who in ("RA1", "AC2"):
        assert f"recorded by that AC or the TSO, not by {who}" in ledger.refused(
            USERS[who], "record_statement", "7", "AC1", when=LATER
        )
    assert "not by C1" in ledger.refused(meter("C1"), "record_statement", "7", "AC1", when=LATER)
    assert "this peer (RA1MSP) is not a member of collection AC1" in ledger.refused(
        USERS["TSO"], "record_statement", "7", "AC1", peer="RA1MSP", when=LATER
    )
    assert "none of AC2's RAs declared" in ledger.refused(USERS["TSO"], "record_statement", "7", "AC2", when=LATER)
    assert "does not target 'AC3'" in ledger.refused(USERS["TSO"], "record_statement", "7", "AC3", when=LATER)
    assert "is not recorded yet" in ledger.refused(USERS["AC1"], "get_statement", "7", "AC1", commit=False)
    assert "statement of command 7 records no share of RA1" in ledger.refused(
        USERS["AC1"], "deliver_share", "7", "RA1", transient={"share": "{}"}, when=LATER
    )
    assert record_statement(ledger, "TSO")["recorded_by"] == "TSO"
    for who in ("RA1", "AC2"):
        assert f"seen by that AC or the TSO, not by {who}" in ledger.refused(
            USERS[who], "get_statement", "7", "AC1", commit=False
        )
    # An RA's view carries no statement: its peer cannot read the AC's collection.
    assert "statement" not in settlement(ledger, "RA1")["ras"][0]


def test_a_statement_that_no_longer_matches_the_ledgers_figures_is_shown_as_such(ledger):
    settled_balancing_event(ledger)
    record_statement(ledger, "AC1")
    key = create_composite_key("statement", ["7"])
    stored = json.loads(ledger.world.private_state("AC1")[key])
    stored["ac_figure"]["amount_sen"] += 1000  # as if one peer's copy were edited behind the ledger's back
    ledger.world.apply([Write("AC1", key, canonical_json(stored))], Height(99), "edited", None)
    for who in ("AC1", "TSO"):
        assert by_org(settlement(ledger, who)["acs"])["AC1"]["statement"]["matches"] is False


def test_each_ra_gets_its_own_share_as_recorded_and_then_sees_its_sen_as_the_tso_does(ledger):
    settled_balancing_event(ledger)
    record_statement(ledger, "AC1")
    shares = statement_of(ledger)["shares"]
    assert (shares["RA1"]["amount_sen"], shares["RA2"]["amount_sen"]) == (300, -150)
    before = settlement(ledger, "RA1")
    assert before["share"] is None and before["ras"][0]["amount_sen"] is None and "delivered" in before["money"]
    forged = {**shares["RA1"], "reward_sen": 3000, "amount_sen": 3000}
    for sent, who in ((forged, "AC1"), (shares["RA2"], "AC1"), ({**shares["RA1"], "salt": "00" * 16}, "TSO")):
        message = ledger.refused(
            USERS[who], "deliver_share", "7", "RA1", transient={"share": json.dumps(sent)}, when=LATER
        )
        assert "the share sent is not the one AC1's statement records for RA1" in message
    for who in ("RA1", "AC2"):
        message = ledger.refused(
            USERS[who], "deliver_share", "7", "RA1", transient={"share": json.dumps(shares["RA1"])}, when=LATER
        )
        assert f"delivered by its AC or the TSO, not by {who}" in message
    # RA1's own peer cannot read AC1's collection, and need not: it checks the share against the hash it holds.
    summary = ledger.ok(
        USERS["AC1"],
        "deliver_share",
        "7",
        "RA1",
        peer="RA1MSP",
        transient={"share": json.dumps(shares["RA1"])},
        when=LATER,
    )
    assert summary == {"command": "7", "ra": "RA1", "delivered_by": "AC1", "delivered_at": "2027-10-30T00:00:00+09:00"}
    assert "is already delivered" in ledger.refused(
        USERS["TSO"], "deliver_share", "7", "RA1", transient={"share": json.dumps(shares["RA1"])}, when=LATER
    )
    after, tso = settlement(ledger, "RA1"), settlement(ledger)
    assert after["money"] == "sen" and after["share"]["delivered_by"] == "AC1"
    for level in ("ras", "consumers"):
        for figure in after[level]:
            mine = by_org(tso[level])[figure["org"]]
            assert (figure["reward_sen"], figure["penalty_sen"], figure["amount_sen"]) == (
                mine["reward_sen"],
                mine["penalty_sen"],
                mine["amount_sen"],
            )
    assert by_org(tso["acs"])["AC1"]["statement"]["shares_delivered"] == ["RA1"]
    assert settlement(ledger, "RA2")["ras"][0]["amount_sen"] is None  # RA2's is not delivered yet
    deliver_share(ledger, "TSO", "RA2", shares["RA2"])
    assert settlement(ledger, "RA2")["ras"][0]["amount_sen"] == -150


@pytest.fixture
def every_statement(ledger):
    """The balancing event with RA3's C3 declared too (so both ACs have figures), settled; every AC's statement
    recorded and none of the shares delivered."""
    balancing_event(ledger)
    declare(ledger, "RA3", "7", {"C3": [50] * 30}, at(EVENT_DAY, "13:01"))
    ledger.ok(USERS["TSO"], "settle", "7", contract="dr", when=LATER)
    for ac in ("AC1", "AC2"):
        record_statement(ledger, "TSO", ac)
    statements = {ac: statement_of(ledger, "TSO", ac) for ac in ("AC1", "AC2")}
    assert {ac: set(s["shares"]) for ac, s in statements.items()} == {"AC1": {"RA1", "RA2"}, "AC2": {"RA3"}}
    return statements


@pytest.mark.parametrize("org", TOPOLOGY.org_names)
def test_statements_are_read_and_shares_delivered_only_as_the_topologys_collections_allow(ledger, every_statement, org):
    """Generated from the topology, as the access matrix is: an AC's statement is read by the members of its
    collection; an RA's share is delivered by the other members of the RA's collection."""
    collections = TOPOLOGY.collections()
    for ac in every_statement:
        response = ledger.call(USERS[org], "get_statement", "7", ac, commit=False, when=LATER)
        assert response.ok == (org in collections[ac]), f"{org} reading {ac}'s statement: {response.message}"
    for statement in every_statement.values():
        for ra, share in statement["shares"].items():
            transient = {"share": json.dumps(share)}
            response = ledger.call(USERS[org], "deliver_share", "7", ra, transient=transient, commit=False, when=LATER)
            allowed = org in collections[ra] and org != ra
            assert response.ok == allowed, f"{org} delivering {ra}'s share: {response.message}"
