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

A proposal a few seconds off, within the tolerance, is endorsed and commits."""

import json
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import proposal_pb2

from consortium import CHAINCODE_NAME
from gateway.client import FabricTransaction, result_from_envelope
from gateway.errors import EndorseError, GatewayError
from gateway.protoutil import NONCE_BYTES, chaincode_proposal, transaction_id
from network.connections import open_session

pytestmark = [pytest.mark.timeout(300)]


def dated_proposal(session, function: str, args: list[str], when: datetime) -> tuple[str, proposal_pb2.SignedProposal]:
    """(transaction id, signed proposal) of `function` of the dr contract, stamped `when`, signed by the session."""
    gateway = session.gateway
    creator = gateway.identity.serialize()
    nonce = secrets.token_bytes(NONCE_BYTES)
    proposal = chaincode_proposal(
        session.gateway.get_network("grid").name,
        CHAINCODE_NAME,
        [f"dr:{function}".encode(), *(arg.encode() for arg in args)],
        {},
        creator,
        nonce,
        timestamp=when,
    ).SerializeToString()
    signed = proposal_pb2.SignedProposal(proposal_bytes=proposal, signature=gateway.signer.sign(proposal))
    return transaction_id(nonce, creator), signed


def endorse(session, function: str, args: list[str], when: datetime, organisations: list[str]):
    tx_id, signed = dated_proposal(session, function, args, when)
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


def command(minute: str = "2021-04-01T10:00") -> str:
    return json.dumps(
        {
            "id": f"time-{uuid.uuid4().hex[:8]}",
            "start": minute,
            "end": minute,
            "requested_kw": 10,
            "target_acs": ["AC1"],
            "price_per_kwh": 100,
            "baseline_minutes": 1,
        }
    )


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
