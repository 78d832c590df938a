"""The stub of a transaction the peer sent: every ledger call is a ChaincodeMessage the peer answers.

A Fabric v3.1 peer announces in READY that it takes a transaction's writes in batches (WRITE_BATCH_STATE) and
reads of many keys in one call (GET_STATE_MULTIPLE), each with a largest size. Where it does, the stub holds every
write back until the transaction has run and sends them in as few batches as that size allows, the last write of a
key replacing earlier ones as in the peer's write set; and a multi-key read costs one round trip per that many
keys. Where it does not (an older peer, or one configured off), each write and each read is a call of its own.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC

from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.peer import chaincode_pb2, chaincode_shim_pb2
from google.protobuf.message import Message

from chaincode.shim.errors import StubError
from chaincode.shim.stub import KV, BaseStub, KeyModification, Result, ResultIterator, TransactionContext

ShimMessage = chaincode_shim_pb2.ChaincodeMessage
WriteRecord = chaincode_shim_pb2.WriteRecord


@dataclass(frozen=True)
class PeerFeatures:
    """What the peer's READY announced (ChaincodeAdditionalParams): the most writes it takes in one
    WRITE_BATCH_STATE and the most keys in one GET_STATE_MULTIPLE; 0 where it does not take them at all."""

    write_batch_size: int = 0
    multiple_keys_size: int = 0


# What the Go shim assumes when a peer turns a feature on without a size.
DEFAULT_BATCH_SIZE = 100


class ChaincodeStub(BaseStub):
    """A transaction's stub on a peer. `call` is the stream handler's `call(channel_id, tx_id, message_type,
    payload) -> bytes`, which raises StubError with the peer's text when the peer answers ERROR."""

    def __init__(
        self,
        call: Callable[[str, str, int, Message], bytes],
        channel_id: str,
        tx_id: str,
        chaincode_input: chaincode_pb2.ChaincodeInput,
        context: TransactionContext,
        peer_msp_id: str | None,
        features: PeerFeatures = PeerFeatures(),
    ):
        super().__init__(channel_id, tx_id, list(chaincode_input.args), context, peer_msp_id)
        self._call = call
        self._features = features
        # (collection, key) → its last write, in the order keys were first written (when the peer takes batches).
        self._held: dict[tuple[str, str], chaincode_shim_pb2.WriteRecord] = {}

    def _request(self, message_type: int, payload: Message) -> bytes:
        return self._call(self._channel_id, self._tx_id, message_type, payload)

    def _get_state(self, collection: str, key: str) -> bytes | None:
        value = self._request(ShimMessage.GET_STATE, chaincode_shim_pb2.GetState(key=key, collection=collection))
        return value or None  # the peer sends an empty payload for a missing key

    def _get_private_data_hash(self, collection: str, key: str) -> bytes | None:
        value = self._request(
            ShimMessage.GET_PRIVATE_DATA_HASH, chaincode_shim_pb2.GetState(key=key, collection=collection)
        )
        return value or None

    def _get_multiple(self, collection: str, state_keys: list[str]) -> list[bytes | None]:
        size = self._features.multiple_keys_size
        if not size:
            return super()._get_multiple(collection, state_keys)
        values: list[bytes | None] = []
        for first in range(0, len(state_keys), size):
            chunk = state_keys[first : first + size]
            answer = chaincode_shim_pb2.GetStateMultipleResult.FromString(
                self._request(
                    ShimMessage.GET_STATE_MULTIPLE,
                    chaincode_shim_pb2.GetStateMultiple(keys=chunk, collection=collection),
                )
            )
            if len(answer.values) != len(chunk):  # the peer answers no values at all when its database fails
                raise StubError(
                    f"GET_STATE_MULTIPLE failed: transaction ID: {self._tx_id}: "
                    f"the peer answered {len(answer.values)} values for {len(chunk)} keys"
                )
            values.extend(value or None for value in answer.values)  # empty: a missing key
        return values

    def _put_state(self, collection: str, key: str, value: bytes) -> None:
        if self._features.write_batch_size:
            self._hold(WriteRecord(type=WriteRecord.PUT_STATE, key=key, value=value, collection=collection))
            return
        self._request(ShimMessage.PUT_STATE, chaincode_shim_pb2.PutState(key=key, value=value, collection=collection))

    def _del_state(self, collection: str, key: str) -> None:
        if self._features.write_batch_size:
            self._hold(WriteRecord(type=WriteRecord.DEL_STATE, key=key, collection=collection))
            return
        self._request(ShimMessage.DEL_STATE, chaincode_shim_pb2.DelState(key=key, collection=collection))

    def _purge_private_data(self, collection: str, key: str) -> None:
        if self._features.write_batch_size:
            self._hold(WriteRecord(type=WriteRecord.PURGE_PRIVATE_DATA, key=key, collection=collection))
            return
        self._request(ShimMessage.PURGE_PRIVATE_DATA, chaincode_shim_pb2.DelState(key=key, collection=collection))

    def _hold(self, record: chaincode_shim_pb2.WriteRecord) -> None:
        self._held[(record.collection, record.key)] = record

    def flush_writes(self) -> None:
        """Sends the held writes in WRITE_BATCH_STATE messages of at most the peer's batch size; the peer checks
        each (access to a collection, Init's ban on private data) and answers ERROR for the first it refuses."""
        if not self._held:
            return
        records, self._held = list(self._held.values()), {}
        size = self._features.write_batch_size
        for first in range(0, len(records), size):
            self._request(
                ShimMessage.WRITE_BATCH_STATE, chaincode_shim_pb2.WriteBatchState(rec=records[first : first + size])
            )

    def discard_writes(self) -> None:
        self._held = {}

    def _range(self, collection: str, start_key: str, end_key: str) -> ResultIterator[KV]:
        request = chaincode_shim_pb2.GetStateByRange(startKey=start_key, endKey=end_key, collection=collection)
        first_page = self._query(ShimMessage.GET_STATE_BY_RANGE, request)
        return PeerQueryIterator(self._query, first_page, _kv_from_bytes)

    def _history(self, key: str) -> ResultIterator[KeyModification]:
        first_page = self._query(ShimMessage.GET_HISTORY_FOR_KEY, chaincode_shim_pb2.GetHistoryForKey(key=key))
        return PeerQueryIterator(self._query, first_page, _modification_from_bytes)

    def _query(self, message_type: int, payload: Message) -> chaincode_shim_pb2.QueryResponse:
        return chaincode_shim_pb2.QueryResponse.FromString(self._request(message_type, payload))


class PeerQueryIterator(ResultIterator[Result]):
    """Walks a query the peer answers page by page: QUERY_STATE_NEXT while `has_more`, QUERY_STATE_CLOSE when
    closed early (the peer drops an exhausted query by itself)."""

    def __init__(
        self,
        query: Callable[[int, Message], chaincode_shim_pb2.QueryResponse],
        first_page: chaincode_shim_pb2.QueryResponse,
        decode: Callable[[bytes], Result],
    ):
        self._query = query
        self._page = first_page
        self._position = 0
        self._decode = decode
        self._closed = False

    def __next__(self) -> Result:
        if self._closed:
            raise StopIteration
        while self._position >= len(self._page.results):
            if not self._page.has_more:
                self._closed = True
                raise StopIteration
            self._page = self._query(ShimMessage.QUERY_STATE_NEXT, chaincode_shim_pb2.QueryStateNext(id=self._page.id))
            self._position = 0
        result = self._page.results[self._position]
        self._position += 1
        return self._decode(result.resultBytes)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._page.has_more:
                self._query(ShimMessage.QUERY_STATE_CLOSE, chaincode_shim_pb2.QueryStateClose(id=self._page.id))


def _kv_from_bytes(data: bytes) -> KV:
    kv = kv_query_result_pb2.KV.FromString(data)
    return KV(kv.key, kv.value)


def _modification_from_bytes(data: bytes) -> KeyModification:
    modification = kv_query_result_pb2.KeyModification.FromString(data)
    timestamp = modification.timestamp.ToDatetime(tzinfo=UTC) if modification.HasField("timestamp") else None
    return KeyModification(modification.tx_id, modification.value, timestamp, modification.is_delete)
