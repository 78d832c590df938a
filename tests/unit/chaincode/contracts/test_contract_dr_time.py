"""The dr contract holds each step to the transaction's time (chaincode.contracts.dr_time), at exactly the minute
boundaries: commands only for a window ahead, declarations before declare_by (by default the window's start),
readings once their minute has ended and before readings_due (by default the topology's dr.readings_due_minutes
after the window's end), settlement from readings_due on. Seed figure 6's window, 2021-01-14 00:00-00:04 JST."""

import json
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from meter_keys import OPERATOR_AUTHORITY, signed_transient
from seed_examples import C1_WH, COMMAND, DUE, ENDED, ISSUED, SEED_METERS, WINDOW

from chaincode.contracts.common import Refusal
from chaincode.contracts.dr_inputs import Command
from chaincode.shim.testing import make_identity
from consortium import topology as topology_file
from consortium.units import JST

TOPOLOGY = topology_file.load()
TSO = make_identity("TSOMSP", "User1@tso")
RA1 = make_identity("RA1MSP", "User1@ra1")
METER_C1 = make_identity("TSOMSP", "meter-C1", {"role": "meter", "consumer": "C1"})
START = datetime(2021, 1, 14, 0, 0, tzinfo=JST)  # the window's first minute begins
SECOND = timedelta(seconds=1)
INSTANT = timedelta(microseconds=1)


@pytest.fixture
def ledger(new_ledger):
    ledger = new_ledger("dr", now=ISSUED)
    ledger.chaincode.contracts["dr"].meter_authority = OPERATOR_AUTHORITY
    return ledger


def issue(ledger, when=ISSUED, **changes):
    return ledger.ok(TSO, "issue_command", json.dumps({**COMMAND, **changes}), when=when)


def declaration(consumers=("C1",)):
    return {
        "declaration": json.dumps(
            {"baseline_method": "mean-before", "consumers": {c: {"expected_wh": [1] * 5} for c in consumers}}
        )
    }


def declared(ledger, **changes):
    """Command 1 (with `changes`) issued and declared by RA1 for C1 at ISSUED."""
    command = issue(ledger, **changes)
    ledger.ok(RA1, "declare", "1", transient=declaration(), when=ISSUED)
    return command


def reading(minute, wh=1):
    return [{"consumer": "C1", "minute": minute, "wh": wh}]


def relayed(batch):
    return signed_transient("1", batch, SEED_METERS)


# Commands: only for a window ahead.


def test_a_command_is_issued_until_the_instant_its_window_starts(ledger):
    assert issue(ledger, when=START - INSTANT)["issued_at"] == "2021-01-13T23:59:59+09:00"


@pytest.mark.parametrize(
    "when",
    [START, START + timedelta(minutes=2, seconds=30), ENDED, DUE + timedelta(days=400)],
    ids=["at-its-start", "while-it-runs", "after-it-ended", "long-past"],
)
def test_a_command_for_a_running_or_past_window_is_refused(ledger, when):
    message = ledger.refused(TSO, "issue_command", json.dumps(COMMAND), when=when)
    assert "failed to issue command: command 1's window starts 2021-01-14T00:00 (JST), and it is " in message
    assert "a command is issued before its window starts" in message


def test_a_command_whose_declare_by_has_passed_is_refused(ledger):
    changes = {"declare_by": "2021-01-13T23:55"}
    at_deadline = datetime(2021, 1, 13, 23, 55, tzinfo=JST)
    message = ledger.refused(TSO, "issue_command", json.dumps({**COMMAND, **changes}), when=at_deadline)
    assert (
        "command 1's declarations would be due before 2021-01-13T23:55 (JST), already past at "
        "2021-01-13T23:55:00+09:00: give a later declare_by"
    ) in message
    assert issue(ledger, when=at_deadline - INSTANT, **changes)["declare_by"] == "2021-01-13T23:55"


# Declarations: before declare_by.


def test_declarations_are_due_by_default_before_the_window_starts(ledger):
    command = issue(ledger)
    assert command["declare_by"] == "2021-01-14T00:00"
    late = ledger.refused(RA1, "declare", "1", transient=declaration(), when=START)
    assert "failed to declare: declarations for command 1 were due before 2021-01-14T00:00 (JST); it is " in late
    assert "it is 2021-01-14T00:00:00+09:00" in late
    assert ledger.refused(RA1, "declare", "1", transient=declaration(), when=ENDED + timedelta(minutes=1))
    ledger.ok(RA1, "declare", "1", transient=declaration(), when=START - INSTANT)


def test_a_declare_by_earlier_than_the_start_closes_declarations_then(ledger):
    issue(ledger, declare_by="2021-01-13T23:55")
    deadline = datetime(2021, 1, 13, 23, 55, tzinfo=JST)
    assert "were due before 2021-01-13T23:55 (JST)" in ledger.refused(
        RA1, "declare", "1", transient=declaration(), when=deadline
    )
    ledger.ok(RA1, "declare", "1", transient=declaration(), when=deadline - INSTANT)


def test_a_declaration_recorded_in_time_may_be_published_later_until_settlement(ledger):
    issue(ledger, readings_due="2021-01-14T00:06")
    summary = ledger.ok(RA1, "declare", "1", transient=declaration(), when=ISSUED)
    ledger.ok(TSO, "settle", "1", when=datetime(2021, 1, 14, 0, 6, tzinfo=JST))
    assert "command 1 is settled" in ledger.refused(RA1, "publish_declaration", "1", json.dumps(summary), when=DUE)


def test_a_late_publication_before_settlement_is_accepted(ledger):
    issue(ledger)
    summary = ledger.ok(RA1, "declare", "1", transient=declaration(), when=ISSUED)
    assert ledger.ok(RA1, "publish_declaration", "1", json.dumps(summary), when=ENDED) == summary


# Readings: once their minute has ended, before readings_due.


def test_a_reading_is_accepted_from_the_instant_its_minute_ends(ledger):
    declared(ledger)
    end_of_last = START + timedelta(minutes=5)  # 00:04 ends at 00:05:00
    message = ledger.refused(
        RA1, "post_readings", "1", transient=relayed(reading(WINDOW[4])), when=end_of_last - INSTANT
    )
    assert (
        "failed to post readings: reading 0: minute 2021-01-14T00:04 (JST) has not ended at 2021-01-14T00:04:59+09:00; "
        "its reading may be posted from 2021-01-14T00:05"
    ) in message
    assert (
        ledger.ok(RA1, "post_readings", "1", transient=relayed(reading(WINDOW[4])), when=end_of_last)["readings"] == 1
    )


@pytest.mark.parametrize(
    "minute, when, shown",
    [
        (WINDOW[2], START + timedelta(minutes=2, seconds=30), "minute 2021-01-14T00:02 (JST) has not ended"),  # running
        (WINDOW[3], START + timedelta(minutes=2, seconds=30), "minute 2021-01-14T00:03 (JST) has not ended"),  # ahead
        ("2022-02-18T00:00", ENDED, "minute 2022-02-18T00:00 (JST) has not ended"),  # 400 days ahead
    ],
    ids=["the-minute-running", "the-next-minute", "far-ahead"],
)
def test_a_reading_for_a_minute_not_yet_ended_is_refused(ledger, minute, when, shown):
    declared(ledger)
    message = ledger.refused(RA1, "post_readings", "1", transient={"readings": json.dumps(reading(minute))}, when=when)
    assert shown in message


def test_a_meter_posting_for_itself_is_held_to_the_same_minutes(ledger):
    declared(ledger)
    batch = {"readings": json.dumps(reading(WINDOW[0]))}
    assert "has not ended" in ledger.refused(METER_C1, "post_readings", "1", transient=batch, when=START + 59 * SECOND)
    ledger.ok(METER_C1, "post_readings", "1", transient=batch, when=START + 60 * SECOND)


def test_one_minute_not_ended_refuses_the_whole_batch(ledger):
    declared(ledger)
    batch = reading(WINDOW[0]) + reading(WINDOW[1])
    message = ledger.refused(RA1, "post_readings", "1", transient=relayed(batch), when=START + 90 * SECOND)
    assert "reading 1: minute 2021-01-14T00:01 (JST) has not ended" in message


def test_baseline_minutes_may_be_posted_before_the_window_starts(ledger):
    declared(ledger)
    assert ledger.ok(
        RA1, "post_readings", "1", transient=relayed(reading("2021-01-13T23:57")), when=START - 60 * SECOND
    )


def test_readings_are_due_by_default_thirty_minutes_after_the_window_ends(ledger):
    command = declared(ledger)
    assert command["readings_due"] == "2021-01-14T00:35" and TOPOLOGY.dr_readings_due_minutes == 30
    message = ledger.refused(RA1, "post_readings", "1", transient=relayed(reading(WINDOW[0])), when=DUE)
    assert "failed to post readings: readings for command 1 were due before 2021-01-14T00:35 (JST); it is " in message
    assert ledger.ok(RA1, "post_readings", "1", transient=relayed(reading(WINDOW[0])), when=DUE - INSTANT)


def test_readings_due_set_by_the_command_closes_readings_then(ledger):
    declared(ledger, readings_due="2021-01-14T00:06")
    due = START + timedelta(minutes=6)
    assert "were due before 2021-01-14T00:06 (JST)" in ledger.refused(
        RA1, "post_readings", "1", transient=relayed(reading(WINDOW[4])), when=due
    )
    ledger.ok(RA1, "post_readings", "1", transient=relayed(reading(WINDOW[4])), when=due - INSTANT)


def test_the_topologys_readings_due_is_the_default(ledger):
    contract = ledger.chaincode.contracts["dr"]
    contract.topology = replace(contract.topology, dr_readings_due_minutes=2)
    assert issue(ledger)["readings_due"] == "2021-01-14T00:07"


@pytest.mark.parametrize(
    "readings_due, accepted",
    [
        ("2021-01-14T00:05", False),  # the window's end: its last minute could never be posted
        ("2021-01-14T00:06", True),
        ("2021-01-21T00:05", True),  # a week after the end
        ("2021-01-21T00:06", False),
        ("2021-01-14T00:04", False),
    ],
)
def test_readings_due_is_from_a_minute_to_a_week_after_the_window_ends(ledger, readings_due, accepted):
    if accepted:
        assert issue(ledger, readings_due=readings_due)["readings_due"] == readings_due
    else:
        message = ledger.refused(TSO, "issue_command", json.dumps({**COMMAND, "readings_due": readings_due}))
        assert (
            "readings_due must be from a minute after the window's end 2021-01-14T00:05 to 7 days after it, "
            f"got {readings_due}"
        ) in message


def test_the_command_checks_its_readings_due_default_by_the_argument():
    command = Command.checked({**COMMAND, "target_acs": ["AC1"]}, ["AC1", "AC2"], readings_due_minutes=1)
    assert command.record()["readings_due"] == "2021-01-14T00:06"
    with pytest.raises(Refusal, match="declare_by must be at or before the window's start 2021-01-14T00:00"):
        Command.checked({**COMMAND, "declare_by": "2021-01-14T00:01"}, ["AC1", "AC2"], readings_due_minutes=1)


# Settlement: from readings_due on.


def test_settlement_waits_for_readings_due(ledger):
    declared(ledger)
    ledger.ok(
        RA1,
        "post_readings",
        "1",
        transient=relayed([{"consumer": "C1", "minute": m, "wh": wh} for m, wh in zip(WINDOW, C1_WH, strict=True)]),
        when=ENDED,
    )
    for early in (ENDED, DUE - INSTANT):
        message = ledger.refused(TSO, "settle", "1", when=early)
        assert (
            "failed to settle: command 1's readings are due until 2021-01-14T00:35 (JST); settle it from then on"
            in message
        )
    assert ledger.ok(TSO, "settle", "1", when=DUE)["settled_at"] == "2021-01-14T00:35:00+09:00"


def test_an_earlier_readings_due_allows_an_earlier_settlement(ledger):
    declared(ledger, readings_due="2021-01-14T00:06")
    due = START + timedelta(minutes=6)
    assert "readings are due until 2021-01-14T00:06 (JST)" in ledger.refused(TSO, "settle", "1", when=due - INSTANT)
    ledger.ok(TSO, "settle", "1", when=due)
