"""The in-memory world and stub behave as a Fabric peer does: committed reads, write sets, key order, composite keys,
history, collection access, MVCC and phantom checks."""

import hashlib

import pytest

from chaincode.shim import Collection, MemoryWorld, StubError
from chaincode.shim.memory import DUPLICATE_TXID, MVCC_READ_CONFLICT, PHANTOM_READ_CONFLICT, VALID
from chaincode.shim.testing import make_identity

TSO, RA1, RA2 = make_identity("TSOMSP", "tso"), make_identity("RA1MSP", "ra1"), make_identity("RA2MSP", "ra2")


@pytest.fixture
def world():
    return MemoryWorld(
        {
            "RA1": {"TSOMSP", "AC1MSP", "RA1MSP"},
            "OPEN": Collection("OPEN", frozenset({"TSOMSP"}), member_only_read=False, member_only_write=False),
        }
    )


def commit(world, writes: dict[str, bytes], identity=TSO, collection=""):
    stub = world.new_stub(["f"], identity=identity)
    for key, value in writes.items():
        if collection:
            stub.put_private_data(collection, key, value)
        else:
            stub.put_state(key, value)  # an empty value deletes
    assert world.commit(stub) == VALID
    return stub.get_tx_id()


def test_reads_see_committed_state_not_the_transactions_own_writes(world):
    stub = world.new_stub(["f"], identity=TSO)
    assert stub.get_state("a") is None
    stub.put_state("a", b"1")
    assert stub.get_state("a") is None  # as GetState on a peer: the write set is not read back
    assert world.commit(stub) == VALID
    assert world.new_stub(["f"], identity=TSO).get_state("a") == b"1"


def test_empty_value_deletes_and_history_is_newest_first(world):
    first = commit(world, {"a": b"1"})
    second = commit(world, {"a": b"2"})
    third = commit(world, {"a": b""})
    assert world.new_stub(["f"], identity=TSO).get_state("a") is None
    with world.new_stub(["f"], identity=TSO).get_history_for_key("a") as history:
        entries = [(m.tx_id, m.value, m.is_delete) for m in history]
    assert entries == [(third, b"", True), (second, b"2", False), (first, b"1", False)]


def test_range_is_in_key_order_excludes_composite_keys_and_end_is_exclusive(world):
    stub = world.new_stub(["f"], identity=TSO)
    composite = stub.create_composite_key("reading", ["C1", "0001"])
    commit(world, {"b": b"2", "a": b"1", "c": b"3", "\u00e9": b"4", composite: b"5"})
    stub = world.new_stub(["f"], identity=TSO)
    with stub.get_state_by_range("", "") as results:
        assert [kv.key for kv in results] == ["a", "b", "c", "\u00e9"]
    with stub.get_state_by_range("b", "c") as results:
        assert [kv.key for kv in results] == ["b"]


def test_composite_keys_split_and_match_partially(world):
    stub = world.new_stub(["f"], identity=TSO)
    keys = [
        stub.create_composite_key("reading", attrs)
        for attrs in (["C1", "0001"], ["C1", "0002"], ["C2", "0001"], ["C10", "0001"])
    ]
    assert keys[0] == "\x00reading\x00C1\x000001\x00"
    commit(world, {key: b"x" for key in keys})
    stub = world.new_stub(["f"], identity=TSO)
    with stub.get_state_by_partial_composite_key("reading", ["C1"]) as results:
        found = [stub.split_composite_key(kv.key) for kv in results]
    assert found == [("reading", ["C1", "0001"]), ("reading", ["C1", "0002"])]  # not C10
    with pytest.raises(StubError, match="U\\+0000"):
        stub.create_composite_key("reading", ["bad\x00part"])
    with pytest.raises(StubError, match="null character"):
        stub.get_state_by_range("\x00x", "")


def test_key_and_event_rules(world):
    stub = world.new_stub(["f"], identity=TSO)
    with pytest.raises(StubError, match="key must not be an empty string"):
        stub.put_state("", b"x")
    with pytest.raises(StubError, match="event name"):
        stub.set_event("", b"x")
    stub.set_event("First", b"1")
    stub.set_event("Second", "2")
    assert (stub.event.name, stub.event.payload) == ("Second", b"2")  # the last one set wins


def test_multiple_states_and_purge(world):
    commit(world, {"a": b"1", "b": b"2"})
    commit(world, {"c1": b"x"}, identity=RA1, collection="RA1")
    stub = world.new_stub(["f"], identity=RA1)
    assert stub.get_multiple_states("a", "missing", "b") == [b"1", None, b"2"]
    stub.purge_private_data("RA1", "c1")
    assert world.commit(stub) == VALID
    assert world.private_state("RA1") == {}


def test_member_reads_private_data_and_everyone_reads_its_hash(world):
    commit(world, {"c1": b"secret"}, identity=RA1, collection="RA1")
    assert world.new_stub(["f"], identity=TSO).get_private_data("RA1", "c1") == b"secret"
    assert world.new_stub(["f"], identity=RA2).get_private_data_hash("RA1", "c1") == hashlib.sha256(b"secret").digest()


def test_non_member_caller_is_refused_as_the_peer_refuses(world):
    commit(world, {"c1": b"secret"}, identity=RA1, collection="RA1")
    stub = world.new_stub(["f"], identity=RA2)
    with pytest.raises(StubError) as refused:
        stub.get_private_data("RA1", "c1")
    assert str(refused.value) == (
        f"GET_STATE failed: transaction ID: {stub.get_tx_id()}: tx creator does not have "
        f"read access permission on privatedata in chaincodeName:gridledger "
        f"collectionName: RA1"
    )
    with pytest.raises(StubError, match="does not have write access permission"):
        stub.put_private_data("RA1", "c2", b"x")
    with pytest.raises(StubError, match="does not have read access permission"):
        stub.get_private_data_by_range("RA1", "", "")


def test_non_member_peer_holds_only_hashes(world):
    commit(world, {"k": b"v"}, identity=TSO, collection="OPEN")
    # OPEN lets anyone read, but RA1's peer is not a member, so it has no copy of the value.
    stub = world.new_stub(["f"], identity=RA1)
    with pytest.raises(
        StubError,
        match=r"private data matching public hash version is not available. "
        r"Public hash version = \{BlockNum: 0, TxNum: 0\}, Private data version",
    ):
        stub.get_private_data("OPEN", "k")
    assert stub.get_private_data("OPEN", "missing") is None
    assert list(stub.get_private_data_by_range("OPEN", "", "")) == []
    stub.put_private_data("OPEN", "k2", b"w")  # memberOnlyWrite off: a non-member may write
    assert world.commit(stub) == VALID


def test_unknown_collection_is_the_peers_error(world):
    with pytest.raises(
        StubError,
        match=r"collection \[nope\] not defined in the collection config for chaincode "
        r"\[gridledger\]",
    ):
        world.new_stub(["f"], identity=TSO).get_private_data("nope", "k")


def test_private_range_reads_members_values(world):
    commit(world, {"c2": b"2", "c1": b"1"}, identity=RA1, collection="RA1")
    with world.new_stub(["f"], identity=RA1).get_private_data_by_range("RA1", "", "") as results:
        assert [(kv.key, kv.value) for kv in results] == [("c1", b"1"), ("c2", b"2")]


def test_concurrent_writers_of_a_read_key_conflict(world):
    commit(world, {"counter": b"1"})
    first, second = (world.new_stub(["f"], identity=TSO) for _ in range(2))
    for stub in (first, second):
        stub.put_state("counter", str(int(stub.get_state("counter")) + 1))
    assert world.commit(first) == VALID
    assert world.commit(second) == MVCC_READ_CONFLICT
    assert world.new_stub(["f"], identity=TSO).get_state("counter") == b"2"


def test_private_reads_are_version_checked_too(world):
    commit(world, {"c1": b"1"}, identity=RA1, collection="RA1")
    reader = world.new_stub(["f"], identity=RA1)
    reader.get_private_data_hash("RA1", "c1")
    reader.put_state("derived", b"x")
    commit(world, {"c1": b"2"}, identity=RA1, collection="RA1")
    assert world.commit(reader) == MVCC_READ_CONFLICT


def test_a_key_appearing_in_a_read_range_is_a_phantom(world):
    commit(world, {"a": b"1", "c": b"3"})
    scanner = world.new_stub(["f"], identity=TSO)
    with scanner.get_state_by_range("a", "z") as results:
        total = sum(int(kv.value) for kv in results)
    scanner.put_state("total", str(total))
    commit(world, {"b": b"2"})
    assert world.commit(scanner) == PHANTOM_READ_CONFLICT


def test_a_transaction_id_commits_once(world):
    stub = world.new_stub(["f"], identity=TSO, tx_id="t-1")
    stub.put_state("a", b"1")
    assert world.commit(stub) == VALID
    again = world.new_stub(["f"], identity=TSO, tx_id="t-1")
    assert world.commit(again) == DUPLICATE_TXID


def test_transaction_context_comes_from_the_caller(world):
    stub = world.new_stub(["records:put", "k"], identity=RA1, transient={"record": b"{}"})
    assert stub.get_function_and_parameters() == ("records:put", ["k"])
    assert stub.get_client_identity().msp_id == "RA1MSP"
    assert stub.get_transient() == {"record": b"{}"}
    assert stub.get_peer_msp_id() == "RA1MSP"
    assert stub.get_tx_timestamp().tzinfo is not None
    assert len(stub.get_tx_id()) == 64


def test_multi_key_reads_answer_in_key_order_and_are_version_checked(world):
    commit(world, {"a": b"1", "c": b"3"})
    reader = world.new_stub(["f"], identity=TSO)
    assert reader.get_multiple_states("c", "missing", "a") == [b"3", None, b"1"]
    assert reader.get_multiple_states() == []
    reader.put_state("sum", b"4")
    commit(world, {"missing": b"now"})  # a key read as missing appears
    assert world.commit(reader) == MVCC_READ_CONFLICT


def test_multi_key_reads_keep_the_key_rules(world):
    with pytest.raises(StubError, match="key must not be an empty string"):
        world.new_stub(["f"], identity=TSO).get_multiple_states("a", "")
    with pytest.raises(StubError, match="collection must not be an empty string"):
        world.new_stub(["f"], identity=TSO).get_multiple_private_data("", "a")


def test_private_multi_key_reads_check_access_as_the_peer_does(world):
    commit(world, {"c1": b"1"}, identity=RA1, collection="RA1")
    assert world.new_stub(["f"], identity=TSO).get_multiple_private_data("RA1", "c1", "c2") == [b"1", None]
    stub = world.new_stub(["f"], identity=RA2)
    with pytest.raises(StubError) as refused:
        stub.get_multiple_private_data("RA1", "c1")
    assert str(refused.value) == (
        f"GET_STATE_MULTIPLE failed: transaction ID: {stub.get_tx_id()}: tx creator does not have "
        f"read access permission on privatedata in chaincodeName:gridledger collectionName: RA1"
    )


def test_private_multi_key_read_on_a_peer_without_the_value_answers_none_and_fails_validation(world):
    """Fabric v3.1's GET_STATE_MULTIPLE does not compare with the hash as GET_STATE does: where the peer lacks
    the value it reads as missing, and the read of a key that does exist makes the transaction invalid."""
    commit(world, {"k": b"v"}, identity=TSO, collection="OPEN")
    stub = world.new_stub(["f"], identity=RA1)  # RA1's peer is not a member of OPEN
    assert stub.get_multiple_private_data("OPEN", "k") == [None]
    stub.put_state("derived", b"x")
    assert world.commit(stub) == MVCC_READ_CONFLICT
