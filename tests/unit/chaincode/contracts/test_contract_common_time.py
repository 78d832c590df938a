"""Bounded time (chaincode.contracts.common): every contract's every transaction is refused when its timestamp is
further from the endorser's clock than the topology's tolerance, whichever way, before anything else runs."""

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from seed_examples import COMMAND, dr_command

from chaincode.contracts.common import Refusal, check_transaction_time, endorser_time
from chaincode.shim.testing import make_identity
from consortium import topology as topology_file
from consortium.units import JST

TOPOLOGY = topology_file.load()
TSO = make_identity("TSOMSP", "User1@tso")
RA1 = make_identity("RA1MSP", "User1@ra1")
CLOCK = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # the endorser's clock in these tests
TOLERANCE = TOPOLOGY.time_tolerance_seconds

# (contract, identity, function, arguments): a write and a read of each contract.
TRANSACTIONS = [
    ("dr", TSO, "issue_command", (json.dumps(COMMAND),)),
    ("dr", RA1, "list_declarations", ("1",)),
    ("records", RA1, "put_record", ("k", json.dumps({"a": 1}))),
    ("records", RA1, "get_record", ("k",)),
    ("market", RA1, "place_orders", (json.dumps([{"participant": "C1", "side": "buy", "price": 20, "quantity": 1}]),)),
    ("market", RA1, "get_gate", ("2026-12-01T12:00:00",)),
]


@pytest.fixture
def ledger(new_ledger):
    ledger = new_ledger("dr")
    for contract in ledger.chaincode.contracts.values():
        contract.clock = lambda: CLOCK
    return ledger


def test_the_tolerance_comes_from_the_topology():
    assert TOLERANCE == 30


@pytest.mark.parametrize("contract, identity, function, args", TRANSACTIONS)
@pytest.mark.parametrize("off, direction", [(TOLERANCE + 1, "ahead"), (-(TOLERANCE + 1), "behind"), (3600, "ahead")])
def test_a_transaction_dated_beyond_the_tolerance_is_refused(
    ledger, contract, identity, function, args, off, direction
):
    when = CLOCK + timedelta(seconds=off)
    message = ledger.refused(identity, function, *args, contract=contract, when=when)
    assert message.startswith("failed to ")
    assert (
        f"transaction time {when.astimezone(JST).isoformat(timespec='seconds')} is {abs(off)} s off "
        f"this endorser's clock ({direction}); tolerance 30 s"
    ) in message


@pytest.mark.parametrize("off", [0, TOLERANCE, -TOLERANCE])
def test_a_transaction_within_the_tolerance_runs(ledger, off):
    ahead = dr_command("ahead", "2026-12-01T13:00", "2026-12-01T13:04", requested_kw=1)  # an hour after CLOCK
    recorded = ledger.ok(TSO, "issue_command", json.dumps(ahead), when=CLOCK + timedelta(seconds=off))
    assert recorded["id"] == "ahead"
    assert ledger.ok(
        RA1, "put_record", "k", json.dumps({"a": 1}), contract="records", when=CLOCK - timedelta(seconds=off)
    )


def test_the_endorsers_clock_is_the_system_clock_on_a_peer_and_none_in_process():
    on_peer = SimpleNamespace(stub=SimpleNamespace(get_signed_proposal=lambda: object()))
    in_process = SimpleNamespace(stub=SimpleNamespace(get_signed_proposal=lambda: None))
    before = datetime.now(UTC)
    assert before <= endorser_time(on_peer, None) <= datetime.now(UTC)
    assert endorser_time(in_process, None) is None
    assert endorser_time(in_process, lambda: CLOCK) == CLOCK


def test_a_proposal_without_a_timestamp_is_refused_where_there_is_a_clock():
    ctx = SimpleNamespace(stub=SimpleNamespace(get_tx_timestamp=lambda: None))
    with pytest.raises(Refusal, match="the proposal carries no timestamp"):
        check_transaction_time(ctx, TOLERANCE, CLOCK)
    check_transaction_time(ctx, TOLERANCE, None)  # no endorser clock: nothing to compare with
