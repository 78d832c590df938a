"""Write batches and multi-key reads (Fabric v3.1's WRITE_BATCH_STATE and GET_STATE_MULTIPLE) as the chaincode
server uses them: only when the peer's READY announces them, in chunks of the announced size, the writes sent
before COMPLETED and never for a failed transaction; single calls when READY announces nothing.

The test plays the peer over a real gRPC stream (played_peer); it does not stand in for a Fabric peer.
"""

import grpc
import pytest
from fabric_protos.peer import chaincode_pb2, chaincode_shim_pb2
from played_peer import CHANNEL, PACKAGE_ID, Message, PlayedPeer, completed_response, connected, served

from chaincode.shim import Contract, ContractError, evaluate, submit
from chaincode.shim.handler import announced_features
from chaincode.shim.peer_stub import DEFAULT_BATCH_SIZE, PeerFeatures
from chaincode.shim.response import success
from chaincode.shim.server import ChaincodeServer
from chaincode.shim.testing import make_identity

Record = chaincode_shim_pb2.WriteRecord


class LedgerContract(Contract):
    name = "ledger"

    @submit
    def write(self, ctx) -> str:
        """Five keys written, one of them twice and one deleted afterwards, and a private key purged."""
        for n in range(5):
            ctx.stub.put_state(f"k{n}", f"v{n}")
        ctx.stub.put_state("k0", "again")
        ctx.stub.del_state("k1")
        ctx.stub.put_private_data("RA1", "p", "secret")
        ctx.stub.purge_private_data("RA1", "p")
        return "written"

    @submit
    def write_then_refuse(self, ctx) -> str:
        ctx.stub.put_state("k", "v")
        raise ContractError("failed to write then refuse: refused after writing")

    @evaluate
    def read(self, ctx, keys: list) -> list:
        return [value.decode() if value else None for value in ctx.stub.get_multiple_states(*keys)]

    @evaluate
    def read_private(self, ctx, keys: list) -> list:
        return [value.decode() if value else None for value in ctx.stub.get_multiple_private_data("RA1", *keys)]


def ready(write_batch: int = 0, multiple_keys: int = 0, use: bool = True) -> bytes:
    return chaincode_pb2.ChaincodeAdditionalParams(
        use_write_batch=use and bool(write_batch),
        max_size_write_batch=write_batch,
        use_get_multiple_keys=use and bool(multiple_keys),
        max_size_get_multiple_keys=multiple_keys,
    ).SerializeToString()


@pytest.fixture(scope="module")
def alice():
    return make_identity("RA1MSP", "alice")


@pytest.fixture(scope="module")
def server():
    with served(LedgerContract(), "RA1MSP") as server:
        yield server


@pytest.fixture
def peer(server):
    with connected(server) as played:
        yield played


def written(batch: Message) -> list[tuple[str, str, str, bytes]]:
    assert batch.type == Message.WRITE_BATCH_STATE, Message.Type.Name(batch.type)
    records = chaincode_shim_pb2.WriteBatchState.FromString(batch.payload).rec
    return [(Record.Type.Name(r.type), r.collection, r.key, r.value) for r in records]


def test_writes_go_in_batches_of_the_announced_size_before_completed(peer, alice):
    peer.register(ready(write_batch=2))
    tx_id = peer.transaction(alice, "ledger:write")
    batches = []
    for _ in range(3):  # six keys in batches of two; nothing else comes before the last is answered
        batch = peer.receive()
        assert (batch.txid, batch.channel_id) == (tx_id, CHANNEL)
        batches.append(written(batch))
        peer.answer(batch)
    # Keys in the order first written; a key's last write replaces its earlier ones, as in the peer's write set.
    assert batches == [
        [("PUT_STATE", "", "k0", b"again"), ("DEL_STATE", "", "k1", b"")],
        [("PUT_STATE", "", "k2", b"v2"), ("PUT_STATE", "", "k3", b"v3")],
        [("PUT_STATE", "", "k4", b"v4"), ("PURGE_PRIVATE_DATA", "RA1", "p", b"")],
    ]
    completed = peer.receive()
    assert completed.txid == tx_id
    assert completed_response(completed).payload == b"written"


def test_a_batch_the_peer_refuses_fails_the_transaction_with_the_peers_reason(peer, alice):
    peer.register(ready(write_batch=1000))
    peer.transaction(alice, "ledger:write")
    batch = peer.receive()
    assert len(written(batch)) == 6
    refusal = (
        "WRITE_BATCH_STATE failed: transaction ID: x: tx creator does not have write access permission on "
        "privatedata in chaincodeName:gridledger collectionName: RA1"
    )
    peer.answer(batch, error=refusal)
    response = completed_response(peer.receive())
    assert (response.status, response.message) == (500, f"failed to write: {refusal}")


def test_a_failed_transaction_sends_none_of_its_writes(peer, alice):
    peer.register(ready(write_batch=1000))
    tx_id = peer.transaction(alice, "ledger:write_then_refuse")
    answer = peer.receive()  # the first message after the transaction is its answer: no WRITE_BATCH_STATE
    assert answer.txid == tx_id
    response = completed_response(answer)
    assert (response.status, response.message) == (500, "failed to write then refuse: refused after writing")


def test_multi_key_reads_go_in_chunks_of_the_announced_size(peer, alice):
    peer.register(ready(multiple_keys=2))
    peer.transaction(alice, "ledger:read", '["a", "b", "c"]')
    first = peer.receive()
    assert first.type == Message.GET_STATE_MULTIPLE
    request = chaincode_shim_pb2.GetStateMultiple.FromString(first.payload)
    assert (list(request.keys), request.collection) == (["a", "b"], "")
    peer.answer(first, chaincode_shim_pb2.GetStateMultipleResult(values=[b"1", b""]).SerializeToString())
    second = peer.receive()
    assert list(chaincode_shim_pb2.GetStateMultiple.FromString(second.payload).keys) == ["c"]
    peer.answer(second, chaincode_shim_pb2.GetStateMultipleResult(values=[b"3"]).SerializeToString())
    assert completed_response(peer.receive()).payload == b'["1",null,"3"]'  # empty: the key does not exist


def test_private_multi_key_read_names_its_collection(peer, alice):
    peer.register(ready(multiple_keys=1000))
    peer.transaction(alice, "ledger:read_private", '["c1", "c2"]')
    request = peer.receive()
    assert request.type == Message.GET_STATE_MULTIPLE
    asked = chaincode_shim_pb2.GetStateMultiple.FromString(request.payload)
    assert (list(asked.keys), asked.collection) == (["c1", "c2"], "RA1")
    peer.answer(request, chaincode_shim_pb2.GetStateMultipleResult(values=[b"", b"x"]).SerializeToString())
    assert completed_response(peer.receive()).payload == b'[null,"x"]'


def test_an_answer_short_of_values_is_an_error_not_missing_keys(peer, alice):
    """The v3.1.5 peer answers no values at all when its state database fails; that must not read as absent."""
    peer.register(ready(multiple_keys=1000))
    peer.transaction(alice, "ledger:read", '["a", "b"]')
    peer.answer(peer.receive(), chaincode_shim_pb2.GetStateMultipleResult(values=[]).SerializeToString())
    response = completed_response(peer.receive())
    assert response.status == 500
    assert "the peer answered 0 values for 2 keys" in response.message


@pytest.mark.parametrize("payload", [b"", ready(write_batch=1000, multiple_keys=1000, use=False)])
def test_without_the_announcement_every_write_and_read_is_a_call_of_its_own(peer, alice, payload):
    """A peer before v3.1 sends READY empty; a v3.1 peer configured off sends both flags false."""
    peer.register(payload)
    peer.transaction(alice, "ledger:write")
    calls = []
    while (message := peer.receive()).type != Message.COMPLETED:
        calls.append(Message.Type.Name(message.type))
        peer.answer(message)
    assert calls == ["PUT_STATE"] * 6 + ["DEL_STATE", "PUT_STATE", "PURGE_PRIVATE_DATA"]

    peer.transaction(alice, "ledger:read", '["a", "b"]')
    reads = []
    for value in (b"1", b""):
        message = peer.receive()
        assert message.type == Message.GET_STATE
        reads.append(chaincode_shim_pb2.GetState.FromString(message.payload).key)
        peer.answer(message, value)
    assert reads == ["a", "b"]
    assert completed_response(peer.receive()).payload == b'["1",null]'


def test_an_empty_key_list_asks_the_peer_nothing(peer, alice):
    peer.register(ready(multiple_keys=1000))
    peer.transaction(alice, "ledger:read", "[]")
    assert completed_response(peer.receive()).payload == b"[]"


def test_ready_payload_is_read_as_the_go_shim_reads_it():
    assert announced_features(b"") == PeerFeatures()
    assert announced_features(ready(write_batch=1000, multiple_keys=500)) == PeerFeatures(1000, 500)
    assert announced_features(ready(write_batch=7)) == PeerFeatures(7, 0)
    # Turned on without a size: the Go shim's default. Unreadable (not the message it should be): nothing.
    on_without_size = chaincode_pb2.ChaincodeAdditionalParams(use_write_batch=True, use_get_multiple_keys=True)
    assert announced_features(on_without_size.SerializeToString()) == PeerFeatures(
        DEFAULT_BATCH_SIZE, DEFAULT_BATCH_SIZE
    )
    assert announced_features(b"\xff\xff\xff") == PeerFeatures()


class RawChaincode:
    """A chaincode of the stub alone (no Contract router): the server itself must send its writes."""

    def init(self, stub):
        return success()

    def invoke(self, stub):
        stub.put_state("raw", b"1")
        return success(b"done")


def test_the_server_sends_held_writes_of_any_chaincode_and_fails_it_if_the_peer_refuses(alice):
    server = ChaincodeServer(RawChaincode(), PACKAGE_ID, "127.0.0.1:0", peer_msp_id="RA1MSP")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            peer = PlayedPeer(channel)
            peer.register(ready(write_batch=1000))
            peer.transaction(alice, "anything")
            batch = peer.receive()
            assert written(batch) == [("PUT_STATE", "", "raw", b"1")]
            peer.answer(batch)
            assert completed_response(peer.receive()).payload == b"done"

            tx_id = peer.transaction(alice, "anything")
            peer.answer(peer.receive(), error="WRITE_BATCH_STATE failed: no")
            failed = peer.receive()
            assert (failed.type, failed.txid) == (Message.ERROR, tx_id)
            assert b"failed to send the transaction's writes: WRITE_BATCH_STATE failed: no" in failed.payload
            peer.hang_up()
    finally:
        server.stop(0)
