"""The embedded ledger behind the gateway client's interface: round trips, collection membership, history, events
with resume, the chaincode's errors, MVCC, and a hash chain that verifies and catches tampering."""

import hashlib
import json
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chaincode.server import build_chaincode
from chaincode.shim.memory import Height, Write
from chaincode.shim.testing import make_identity
from gateway.embedded import EmbeddedGateway, EmbeddedLedger, LedgerIntegrityError, block_hash
from gateway.errors import CommitError, EndorseError, GatewayError

COLLECTIONS = {"RA1": {"TSOMSP", "AC1MSP", "RA1MSP"}, "RA2": {"TSOMSP", "AC1MSP", "RA2MSP"}}
TSO, RA1, RA2 = make_identity("TSOMSP", "tso"), make_identity("RA1MSP", "ra1"), make_identity("RA2MSP", "ra2")
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def ledger():
    ledger = EmbeddedLedger(build_chaincode(), COLLECTIONS)
    yield ledger
    ledger.close()


def records(ledger, identity):
    return EmbeddedGateway(identity, ledger).get_network("grid").get_contract("gridledger", "records")


def put_private(ledger, identity, key, record, collection="RA1", **options):
    return json.loads(
        records(ledger, identity).submit(
            "put_private_record", collection, key, transient={"record": json.dumps(record)}, **options
        )
    )


def test_public_record_round_trip(ledger):
    summary = json.loads(records(ledger, RA1).submit("put_record", "k1", '{"kwh": 3, "at": "10:00"}'))
    assert summary == {"key": "k1", "collection": None, "hash": hashlib.sha256(b'{"at":"10:00","kwh":3}').hexdigest()}
    assert records(ledger, TSO).evaluate("get_record", "k1") == b'{"at":"10:00","kwh":3}'
    assert ledger.height == 1  # an evaluation records nothing


def test_proposals_are_stamped_by_the_ledgers_clock_the_system_clock_by_default(ledger):
    before = datetime.now(UTC)
    records(ledger, RA1).submit("put_record", "now", "{}")
    stamped = datetime.fromisoformat(ledger.blocks[-1].transactions[0]["timestamp"])
    assert before <= stamped <= datetime.now(UTC)
    moment = datetime(2021, 1, 14, 0, 5, tzinfo=UTC)
    ledger.clock = lambda: moment  # a test replaying fixed dates moves it step by step
    records(ledger, RA1).submit("put_record", "then", "{}")
    assert datetime.fromisoformat(ledger.blocks[-1].transactions[0]["timestamp"]) == moment


def test_member_reads_private_data_and_a_non_member_is_refused(ledger):
    summary = put_private(ledger, RA1, "c1", {"kwh": 7})
    assert records(ledger, TSO).evaluate("get_private_record", "RA1", "c1") == b'{"kwh":7}'
    with pytest.raises(GatewayError) as refused:
        records(ledger, RA2).evaluate("get_private_record", "RA1", "c1")
    assert (
        "tx creator does not have read access permission on privatedata in chaincodeName:gridledger "
        "collectionName: RA1" in str(refused.value)
    )
    assert str(refused.value).startswith("failed to get private record: GET_STATE failed: transaction ID: ")
    assert refused.value.details[0][1] == "RA2MSP"
    # The hash is everyone's to compare, and nothing private reached the block.
    assert records(ledger, RA2).evaluate("get_private_record_hash", "RA1", "c1").decode() == summary["hash"]
    assert b"kwh" not in json.dumps([b.transactions for b in ledger.blocks]).encode()


def test_a_non_member_cannot_write_a_collection(ledger):
    with pytest.raises(EndorseError, match="does not have write access permission"):
        put_private(ledger, RA2, "c1", {"kwh": 1})
    assert ledger.height == 0


def test_a_non_member_peer_has_only_hashes(ledger):
    put_private(ledger, RA1, "c1", {"kwh": 7})
    with pytest.raises(GatewayError, match="private data matching public hash version is not available"):
        records(ledger, RA1).evaluate("get_private_record", "RA1", "c1", endorsing_organizations=["RA2MSP"])


def test_history_is_newest_first_with_the_writing_transactions(ledger):
    contract = records(ledger, RA1)
    contract.submit("put_record", "k", '{"v": 1}')
    contract.submit("put_record", "k", '{"v": 2}')
    contract.submit("delete_record", "k")
    history = json.loads(contract.evaluate("get_history", "k"))
    assert [(h["is_delete"], h["record"]) for h in history] == [(True, None), (False, {"v": 2}), (False, {"v": 1})]
    assert [h["tx_id"] for h in history] == [b.transactions[0]["tx_id"] for b in reversed(ledger.blocks)]


def test_events_from_a_block_and_resumed_after_a_transaction(ledger):
    contract = records(ledger, RA1)
    for n in range(3):
        contract.submit("put_record", f"k{n}", "{}")
    network = EmbeddedGateway(TSO, ledger).get_network("grid")
    with network.get_chaincode_events("gridledger", start_block=0) as events:
        seen = [next(events) for _ in range(3)]
    assert [(e.block_number, e.event_name, json.loads(e.payload)["key"]) for e in seen] == [
        (0, "RecordPut", "k0"),
        (1, "RecordPut", "k1"),
        (2, "RecordPut", "k2"),
    ]
    assert {e.chaincode_name for e in seen} == {"gridledger"}
    checkpoint = seen[1]
    with network.get_chaincode_events(
        "gridledger", start_block=checkpoint.block_number, after_transaction_id=checkpoint.transaction_id
    ) as resumed:
        assert next(resumed).transaction_id == seen[2].transaction_id


def test_events_wait_for_the_next_commit_until_closed(ledger):
    gateway = EmbeddedGateway(TSO, ledger)
    records(ledger, RA1).submit("put_record", "before", "{}")
    events = gateway.get_network("grid").get_chaincode_events("gridledger")
    received = []
    listener = threading.Thread(target=lambda: received.extend(events))
    listener.start()
    records(ledger, RA1).submit("put_record", "after", "{}")
    put_private(ledger, RA1, "c1", {"kwh": 1})
    for _ in range(500):
        if len(received) == 2:
            break
        listener.join(0.01)
    gateway.close()  # ends the stream, and so the listener's loop
    listener.join(5)
    assert not listener.is_alive()
    assert [json.loads(e.payload)["key"] for e in received] == ["after", "c1"]
    assert json.loads(received[1].payload)["collection"] == "RA1"


def test_the_chaincodes_refusal_is_the_error_message(ledger):
    with pytest.raises(EndorseError) as refused:
        records(ledger, RA1).submit("put_record", "", "{}")
    assert str(refused.value) == "failed to put record: key must be 1-64 characters, got ''"
    assert len(refused.value.tx_id) == 64
    assert refused.value.details[0][2] == "chaincode response 500, " + str(refused.value)
    with pytest.raises(GatewayError, match="unknown function 'records:nope'"):
        records(ledger, RA1).evaluate("nope")
    with pytest.raises(EndorseError, match="chaincode other not found"):
        EmbeddedGateway(RA1, ledger).get_network("grid").get_contract("other").submit("x")
    with pytest.raises(GatewayError, match="channel 'elsewhere' not found"):
        EmbeddedGateway(RA1, ledger).get_network("elsewhere").get_contract("gridledger").evaluate("x")
    assert ledger.height == 0


def test_conflicting_transactions_one_commits_the_other_is_an_mvcc_conflict(ledger):
    contract = records(ledger, RA1)
    contract.submit("put_record", "k", '{"v": 0}')
    first = contract.new_proposal("delete_record", "k").endorse()
    second = contract.new_proposal("delete_record", "k").endorse()  # read the same version of k
    assert first.submit().status().successful
    status = second.submit().status()
    assert (status.code, status.block_number) == ("MVCC_READ_CONFLICT", 2)
    with network_events(ledger) as events:
        assert [e.block_number for e in (next(events), next(events))] == [0, 1]  # no event from block 2
    assert ledger.verify_chain() == 3


def network_events(ledger):
    return EmbeddedGateway(TSO, ledger).get_network("grid").get_chaincode_events("gridledger", start_block=0)


def test_submit_raises_commit_error_with_the_validation_code(ledger, monkeypatch):
    contract = records(ledger, RA1)
    contract.submit("put_record", "k", "{}")
    original = ledger.endorse
    interfered = []

    def endorse_then_interfere(*args, **kwargs):
        endorsement = original(*args, **kwargs)
        if not interfered:  # another client changes k between our endorsement and our commit
            interfered.append(True)
            records(ledger, RA2).submit("put_record", "k", '{"changed": true}')
        return endorsement

    monkeypatch.setattr(ledger, "endorse", endorse_then_interfere)
    with pytest.raises(CommitError, match="failed to commit with status MVCC_READ_CONFLICT") as failed:
        contract.submit("delete_record", "k")
    assert failed.value.code == "MVCC_READ_CONFLICT"


def test_hash_chain_verifies_and_notices_forged_state(ledger):
    put_private(ledger, RA1, "c1", {"kwh": 7})
    records(ledger, RA1).submit("put_record", "k", '{"v": 1}')
    blocks = ledger.blocks
    assert blocks[1].previous_hash == blocks[0].hash and ledger.verify_chain() == 2
    ledger.world.apply([Write("", "k", b'{"v": 999}')], Height(1), "forger", None)
    with pytest.raises(LedgerIntegrityError, match="public state differs"):
        ledger.verify_chain()


@pytest.fixture
def persisted(tmp_path):
    path = tmp_path / "ledger.sqlite"
    ledger = EmbeddedLedger(build_chaincode(), COLLECTIONS, path)
    put_private(ledger, RA1, "c1", {"kwh": 7})
    records(ledger, RA1).submit("put_record", "k", '{"v": 1}')
    records(ledger, RA1).submit("put_record", "k", '{"v": 2}')
    ledger.close()
    return path


def test_a_persisted_ledger_reopens_with_its_state_history_and_events(persisted):
    ledger = EmbeddedLedger(build_chaincode(), COLLECTIONS, persisted)
    try:
        assert ledger.verify_chain() == 3
        contract = records(ledger, TSO)
        assert contract.evaluate("get_record", "k") == b'{"v":2}'
        assert contract.evaluate("get_private_record", "RA1", "c1") == b'{"kwh":7}'
        assert len(json.loads(contract.evaluate("get_history", "k"))) == 2
        contract.submit("put_record", "k", '{"v": 3}')
        with network_events(ledger) as events:
            assert [next(events).block_number for _ in range(4)] == [0, 1, 2, 3]
    finally:
        ledger.close()


def tamper(path, statement, *parameters):
    with sqlite3.connect(path) as db:
        db.execute(statement, parameters)


def test_a_rewritten_block_is_refused_on_open(persisted):
    tamper(
        persisted,
        "UPDATE blocks SET transactions = replace(transactions, ?, ?) WHERE number = 2",
        "eyJ2IjoyfQ==",
        "eyJ2Ijo5fQ==",
    )  # base64 of {"v":2} → {"v":9}
    with pytest.raises(LedgerIntegrityError, match="block 2: its contents do not match its hash"):
        EmbeddedLedger(build_chaincode(), COLLECTIONS, persisted)


def test_a_forged_block_with_a_fresh_hash_breaks_the_link_to_the_next(persisted):
    with sqlite3.connect(persisted) as db:
        previous_hash, text = db.execute("SELECT previous_hash, transactions FROM blocks WHERE number = 1").fetchone()
        forged = json.loads(text.replace("eyJ2IjoxfQ==", "eyJ2Ijo5fQ=="))  # {"v":1} → {"v":9}
        db.execute(
            "UPDATE blocks SET transactions = ?, hash = ? WHERE number = 1",
            (json.dumps(forged), block_hash(1, previous_hash, forged)),
        )
    with pytest.raises(LedgerIntegrityError, match="block 2 does not link to block 1"):
        EmbeddedLedger(build_chaincode(), COLLECTIONS, persisted)


def test_a_changed_private_value_no_longer_matches_its_hash(persisted):
    tamper(persisted, "UPDATE private_values SET value = ? WHERE key = 'c1'", b'{"kwh":70}')
    with pytest.raises(LedgerIntegrityError, match="block 0: a private value of collection RA1 does not match"):
        EmbeddedLedger(build_chaincode(), COLLECTIONS, persisted)


def test_tampering_after_opening_is_found_by_verify_chain(persisted):
    ledger = EmbeddedLedger(build_chaincode(), COLLECTIONS, persisted)
    try:
        tamper(persisted, "DELETE FROM blocks WHERE number = 1")
        with pytest.raises(LedgerIntegrityError, match="block 1 is missing"):
            ledger.verify_chain()
    finally:
        ledger.close()


def test_the_embedded_path_needs_no_fabric_protobufs():
    script = """
import sys
sys.modules["fabric_protos"] = None  # as on a machine that could not generate them
from chaincode.server import build_chaincode
from chaincode.shim.testing import make_identity
from gateway.embedded import EmbeddedGateway, EmbeddedLedger
ledger = EmbeddedLedger(build_chaincode(), {"RA1": {"RA1MSP"}})
contract = EmbeddedGateway(make_identity("RA1MSP"), ledger).get_network("grid").get_contract("gridledger", "records")
contract.submit("put_private_record", "RA1", "c1", transient={"record": "{}"})
print(contract.evaluate("get_private_record", "RA1", "c1").decode())
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{}"


def test_a_chaincode_refusal_is_marked_refused(ledger):
    with pytest.raises(EndorseError) as refused:
        records(ledger, RA1).submit("put_record", "", "{}")
    assert refused.value.refused
