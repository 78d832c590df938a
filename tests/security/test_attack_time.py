"""Forged transaction times on the real network. The chaincode decides by the transaction's timestamp (gates,
settlement, when a command was issued), and that timestamp is the client's: a client builds its proposal with a
time an hour ahead or behind, signs it and sends it to the gateway itself (gateway.protoutil.chaincode_proposal
takes the timestamp; nothing in the gateway client was changed). What refuses it:

- 45 s or 10 minutes off, either way: the endorser's check on every peer (chaincode.contracts.common
  .check_transaction_time, run by @action before the transaction itself): "transaction time … is 600 s off this
  endorser's clock (ahead); tolerance 30 s", the tolerance from the topology;
- an hour off: already the peer itself, before any chaincode runs: Fabric refuses a proposal whose timestamp is
  outside its `peer.authentication.timewindow` (15 minutes in sampleconfig's core.yaml), far wider than the 30 s
  the contracts need.

A proposal a few seconds off, within the tolerance, is endorsed and commits.

Then the DR rules that the bounded time makes real, each refused by the endorsers' check of the transaction's
timestamp (chaincode.contracts.dr_time), with the moments it names: a command for a past window or for one
already running, or whose declarations would be due already; a declaration after declare_by, also once the window
has started, and one backdated to before it (beyond the tolerance, so the time check refuses it first); a reading
for a minute not yet ended, and for one far ahead; readings after readings_due; settlement before it. What is in
time commits: a baseline minute already over at once, the window's minute once it has ended, the settlement once
the readings are due. The module's commands are issued first (`live`), and it lets real time pass once: about
three minutes."""

import json
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import proposal_pb2
from live_commands import live_command, moment_of, now_minute, wait_until_begun, wait_until_ended
from seed_examples import dr_command

from consortium import CHAINCODE_NAME
from consortium.units import minute_label
from gateway.client import FabricTransaction, result_from_envelope
from gateway.errors import EndorseError, GatewayError
from gateway.protoutil import NONCE_BYTES, chaincode_proposal, transaction_id
from network.connections import Sessions, open_session
from network.crypto import MeterOperator

pytestmark = [pytest.mark.timeout(420)]


def dated_proposal(
    session, function: str, args: list[str], when: datetime, transient: dict[str, bytes] | None = None
) -> tuple[str, proposal_pb2.SignedProposal]:
    """(transaction id, signed proposal) of `function` of the dr contract, stamped `when`, signed by the session."""
    gateway = session.gateway
    creator = gateway.identity.serialize()
    nonce = secrets.token_bytes(NONCE_BYTES)
    proposal = chaincode_proposal(
        session.gateway.get_network("grid").name,
        CHAINCODE_NAME,
        [f"dr:{function}".encode(), *(arg.encode() for arg in args)],
        transient or {},
        creator,
        nonce,
        timestamp=when,
    ).SerializeToString()
    signed = proposal_pb2.SignedProposal(proposal_bytes=proposal, signature=gateway.signer.sign(proposal))
    return transaction_id(nonce, creator), signed


def endorse(
    session, function: str, args: list[str], when: datetime, organisations: list[str], transient: dict | None = None
):
    tx_id, signed = dated_proposal(session, function, args, when, transient)
    request = gateway_pb2.EndorseRequest(
        transaction_id=tx_id, channel_id="grid", proposed_transaction=signed, endorsing_organizations=organisations
    )
    gateway = session.gateway
    envelope = gateway.call("endorse", gateway.stub.Endorse, request, 30, EndorseError, tx_id).prepared_transaction
    return FabricTransaction(gateway, "grid", tx_id, envelope, result_from_envelope(envelope))


def evaluate_on(session, function: str, args: list[str], when: datetime, organisation: str) -> bytes:
    tx_id, signed = dated_proposal(session, function, args, when)
    request = gateway_pb2.EvaluateRequest(
        transaction_id=tx_id, channel_id="grid", proposed_transaction=signed, target_organizations=[organisation]
    )
    gateway = session.gateway
    return gateway.call("evaluate", gateway.stub.Evaluate, request, 30).result.payload


def command() -> str:
    """A one-minute command for the first minute at least 20 s ahead: in time, so only the dating decides."""
    return json.dumps(live_command(f"time-{uuid.uuid4().hex[:8]}", minutes=1, baseline_minutes=1, target_acs=["AC1"]))


@pytest.mark.parametrize("off_seconds, direction", [(45, "ahead"), (-45, "behind"), (600, "ahead"), (-600, "behind")])
def test_a_transaction_dated_beyond_the_tolerance_is_refused_by_every_endorser(
    security_network, off_seconds, direction
):
    tso = open_session(security_network, "TSO")
    every_msp = [org.msp_id for org in security_network.topology.organisations]
    when = datetime.now(UTC) + timedelta(seconds=off_seconds)
    with pytest.raises(EndorseError) as refused:
        endorse(tso, "issue_command", [command()], when, every_msp)
    message = str(refused.value)
    assert refused.value.refused, message  # the chaincode refused it
    assert "failed to issue command: transaction time" in message
    assert f"s off this endorser's clock ({direction}); tolerance 30 s" in message
    # Each organisation's own peer (its own chaincode server, its own clock) refuses it too.
    for msp_id in every_msp:
        with pytest.raises(GatewayError) as each:
            evaluate_on(tso, "list_declarations", ["none"], when, msp_id)
        assert "off this endorser's clock" in str(each.value), (msp_id, str(each.value))


@pytest.mark.parametrize("off_seconds", [3600, -3600])
def test_a_transaction_dated_an_hour_off_is_refused_by_the_peer_before_the_chaincode(security_network, off_seconds):
    tso = open_session(security_network, "TSO")
    every_msp = [org.msp_id for org in security_network.topology.organisations]
    with pytest.raises(EndorseError) as refused:
        endorse(tso, "issue_command", [command()], datetime.now(UTC) + timedelta(seconds=off_seconds), every_msp)
    assert not refused.value.refused  # no chaincode ran
    assert "incorrect timestamp" in str(refused.value) and "peer.authentication.timewindow" in str(refused.value)


def test_a_transaction_a_few_seconds_off_is_endorsed_and_commits(security_network):
    tso = open_session(security_network, "TSO")
    every_msp = [org.msp_id for org in security_network.topology.organisations]
    text = command()
    transaction = endorse(tso, "issue_command", [text], datetime.now(UTC) - timedelta(seconds=10), every_msp)
    transaction.submit().committed()
    assert tso.dr.command(json.loads(text)["id"])["id"] == json.loads(text)["id"]


# The DR rules in real time.


@pytest.fixture(scope="module", autouse=True)
def live(security_network):
    """Issued before the module's first test: command "soon", a one-minute window S (the first minute at least
    20 s ahead), 3 baseline minutes, readings due at S+2, declared by RA1 for C1; command "later" for minute S+2
    whose declarations are due before S. Sessions of every organisation, RAs relaying what their meters sign."""
    sessions = Sessions(str(security_network.root))
    meters = MeterOperator(security_network.layout)
    for org in ("RA1", "RA2"):
        sessions(org).dr.meters = meters
    tag = uuid.uuid4().hex[:6]
    soon = live_command(f"soon-{tag}", minutes=1, baseline_minutes=3, due_minutes=1, target_acs=["AC1"])
    start = soon["start"]
    after_two = minute_label(now_minute(moment_of(start)) + 2)
    later = dr_command(
        f"later-{tag}", after_two, after_two, requested_kw=10, target_acs=["AC1"], declare_by=start, baseline_minutes=1
    )
    tso = sessions("TSO").dr
    tso.issue(soon)
    tso.issue(later)
    sessions("RA1").dr.wait_for_command(soon["id"])
    sessions("RA1").dr.declare(soon["id"], declaration(soon, "C1"))
    try:
        yield SimpleNamespace(sessions=sessions, soon=soon, later=later, network=security_network)
    finally:
        sessions.close()


def declaration(command: dict, consumer: str) -> dict:
    return {"baseline_method": "mean-before", "consumers": {consumer: {"expected_wh": [10]}}}


def refusal(call) -> str:
    """The endorsers' refusal of `call()`: the chaincode's own message (it refused, not the peer or the client)."""
    with pytest.raises(EndorseError) as refused:
        call()
    assert refused.value.refused, str(refused.value)
    return str(refused.value)


def reading(consumer: str, minute: str, wh: int = 100):
    from clients.dr import Reading

    return [Reading("RA1" if consumer in ("C1", "C4") else "RA2", consumer, minute, wh)]


def minute_of(moment: datetime, offset: int = 0) -> str:
    return minute_label(now_minute(moment) + offset)


def test_a_command_for_a_past_window_is_refused(live):
    past = minute_of(datetime.now(UTC), -10)
    message = refusal(lambda: live.sessions("TSO").dr.issue(dr_command("past", past, past, requested_kw=1)))
    assert f"failed to issue command: command past's window starts {past} (JST), and it is " in message
    assert "a command is issued before its window starts" in message


def test_a_command_for_a_window_already_running_is_refused(live):
    running, last = minute_of(datetime.now(UTC)), minute_of(datetime.now(UTC), 2)
    message = refusal(lambda: live.sessions("TSO").dr.issue(dr_command("running", running, last, requested_kw=1)))
    assert f"command running's window starts {running} (JST), and it is " in message


def test_a_command_whose_declarations_would_be_due_already_is_refused(live):
    now = datetime.now(UTC)
    ahead = minute_of(now, 3)
    late = dr_command("late", ahead, ahead, requested_kw=1, declare_by=minute_of(now))
    message = refusal(lambda: live.sessions("TSO").dr.issue(late))
    assert f"command late's declarations would be due before {minute_of(now)} (JST), already past at " in message


def test_a_reading_for_a_minute_not_yet_ended_is_refused(live):
    ra1, command = live.sessions("RA1").dr, live.soon["id"]
    running = minute_of(datetime.now(UTC) + timedelta(seconds=5))  # this minute, or the next if it ends within 5 s
    message = refusal(lambda: ra1.post_readings(command, reading("C1", running)))
    assert f"failed to post readings: reading 0: minute {running} (JST) has not ended at " in message
    assert f"its reading may be posted from {minute_of(moment_of(running), 1)}" in message
    far = minute_of(datetime.now(UTC), 400 * 1440)
    assert f"minute {far} (JST) has not ended" in refusal(lambda: ra1.post_readings(command, reading("C1", far)))


def test_a_baseline_minute_already_over_is_posted_at_once(live):
    first_baseline = minute_of(moment_of(live.soon["start"]), -3)  # ended: the window is at least 20 s ahead
    summary = live.sessions("RA1").dr.post_readings(live.soon["id"], reading("C1", first_baseline))
    assert summary["readings"] == 1 and summary["first_minute"] == first_baseline


def test_a_declaration_after_declare_by_is_refused_also_once_the_window_started(live):
    soon, later = live.soon, live.later
    wait_until_begun(soon["start"])  # the declarations of both are due before it
    ra2 = live.sessions("RA2").dr
    for command, why in ((soon, "the window has started"), (later, "its window is still ahead")):
        message = refusal(lambda command=command: ra2.declare(command["id"], declaration(command, "C2")))
        assert (
            f"failed to declare: declarations for command {command['id']} were due before {soon['start']} (JST); it is "
        ) in message, why


def test_a_declaration_backdated_to_before_declare_by_is_refused_by_the_time_check(live):
    ra2 = open_session(live.network, "RA2")
    when = datetime.now(UTC) - timedelta(seconds=40)  # beyond the tolerance, and still before the deadline
    assert when < moment_of(live.later["declare_by"]), "run within 40 s of the deadline"
    transient = {"declaration": json.dumps(declaration(live.later, "C2")).encode()}
    message = refusal(
        lambda: endorse(ra2, "declare", [live.later["id"]], when, ["RA2MSP", "AC1MSP"], transient).submit()
    )
    assert "failed to declare: transaction time" in message and "s off this endorser's clock (behind)" in message


def test_settlement_before_readings_due_is_refused_and_the_ended_minute_is_posted(live):
    soon = live.soon
    wait_until_ended(soon["end"])
    message = refusal(lambda: live.sessions("TSO").dr.settle(soon["id"]))
    assert (
        f"failed to settle: command {soon['id']}'s readings are due until {soon['readings_due']} (JST); "
        "settle it from then on"
    ) in message
    summary = live.sessions("RA1").dr.post_readings(soon["id"], reading("C1", soon["end"]))
    assert summary["first_minute"] == soon["end"]


def test_readings_after_readings_due_are_refused_and_the_settlement_then_commits(live):
    soon = live.soon
    wait_until_begun(soon["readings_due"])
    baseline = minute_of(moment_of(soon["start"]), -2)  # ended long ago, never posted, now too late
    message = refusal(lambda: live.sessions("RA1").dr.post_readings(soon["id"], reading("C1", baseline)))
    assert (
        f"failed to post readings: readings for command {soon['id']} were due before {soon['readings_due']} (JST)"
        in (message)
    )
    settled = live.sessions("TSO").dr.settle(soon["id"])
    assert settled["command"] == soon["id"] and settled["declared_ras"] == ["RA1"]
