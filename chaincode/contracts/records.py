"""The "records" contract: generic JSON records, public or private, for integration tests and the benchmark.

Public records live under their key in the channel's state; private ones in a named collection, their value sent
in transient data under "record" so that it never reaches the block. Every write emits an event whose payload
says what changed without revealing private values ("RecordPut": {"key", "collection", "hash"}).

Stored values are canonical JSON (sorted keys, no spaces), so a client can recompute a private record's hash.
"""

import hashlib
import json

from chaincode.contracts.common import Clock, Refusal, action, canonical_json
from chaincode.shim import Contract, evaluate, submit
from consortium import topology as topology_file
from consortium.topology import Topology

MAX_KEY_CHARS = 64
MAX_RECORD_BYTES = 64 * 1024
TRANSIENT_RECORD = "record"
RECORD_PUT = "RecordPut"
RECORD_DELETED = "RecordDeleted"


class RecordsContract(Contract):
    name = "records"

    def __init__(self, topology: Topology | None = None):
        super().__init__()
        self.topology = topology or topology_file.load()  # for the bound on transaction time (common.action)
        self.clock: Clock | None = None

    @submit
    @action("put record")
    def put_record(self, ctx, key: str, record: str) -> dict:
        """Stores a public JSON object under key; returns {"key", "hash"}."""
        _check_key(key)
        value = _record_bytes("record", record)
        ctx.stub.put_state(key, value)
        return _announce(ctx, RECORD_PUT, key, "", value)

    @evaluate
    @action("get record")
    def get_record(self, ctx, key: str) -> bytes:
        _check_key(key)
        return _found(ctx.stub.get_state(key), key)

    @submit
    @action("delete record")
    def delete_record(self, ctx, key: str) -> dict:
        _check_key(key)
        _found(ctx.stub.get_state(key), key)
        ctx.stub.del_state(key)
        return _announce(ctx, RECORD_DELETED, key, "", None)

    @evaluate
    def get_records_by_range(self, ctx, start_key: str = "", end_key: str = "") -> list:
        """Public records with start_key <= key < end_key, in key order (empty bounds are open)."""
        with ctx.stub.get_state_by_range(start_key, end_key) as results:
            return [{"key": kv.key, "record": json.loads(kv.value)} for kv in results]

    @evaluate
    @action("get history")
    def get_history(self, ctx, key: str) -> list:
        """Every committed write of a public record, newest first."""
        _check_key(key)
        with ctx.stub.get_history_for_key(key) as modifications:
            return [
                {
                    "tx_id": m.tx_id,
                    "timestamp": m.timestamp.isoformat() if m.timestamp else None,
                    "is_delete": m.is_delete,
                    "record": None if m.is_delete else json.loads(m.value),
                }
                for m in modifications
            ]

    @submit
    @action("put private record")
    def put_private_record(self, ctx, collection: str, key: str) -> dict:
        """Stores the JSON object in transient "record" under key in the collection; returns {"key", "hash"}."""
        _check_private_key(collection, key)
        transient = ctx.stub.get_transient()
        if TRANSIENT_RECORD not in transient:
            raise Refusal(f"the record must travel in transient data under {TRANSIENT_RECORD!r}")
        try:
            text = transient[TRANSIENT_RECORD].decode("utf-8")
        except UnicodeDecodeError:
            raise Refusal("transient 'record' is not UTF-8 text") from None
        value = _record_bytes("transient 'record'", text)
        ctx.stub.put_private_data(collection, key, value)
        return _announce(ctx, RECORD_PUT, key, collection, value)

    @evaluate
    @action("get private record")
    def get_private_record(self, ctx, collection: str, key: str) -> bytes:
        _check_private_key(collection, key)
        return _found(ctx.stub.get_private_data(collection, key), key, collection)

    @evaluate
    @action("get private record hash")
    def get_private_record_hash(self, ctx, collection: str, key: str) -> str:
        """Hex SHA-256 of a private record; any organisation may ask, member of the collection or not."""
        _check_private_key(collection, key)
        return _found(ctx.stub.get_private_data_hash(collection, key), key, collection).hex()


def _check_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_CHARS:
        raise Refusal(f"key must be 1-{MAX_KEY_CHARS} characters, got {key!r}")
    if not key.isprintable():
        raise Refusal(f"key must be printable characters, got {key!r}")


def _check_private_key(collection: str, key: str) -> None:
    _check_key(key)
    if not collection:
        raise Refusal("collection must be named")


def _found(value: bytes | None, key: str, collection: str = "") -> bytes:
    """The value read, or the refusal that there is none."""
    if value is None:
        raise Refusal(f"no record with key {key!r}" + (f" in {collection}" if collection else ""))
    return value


def _record_bytes(what: str, text: str) -> bytes:
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise Refusal(f"{what} must be a JSON object, got malformed JSON {shown!r}") from None
    if not isinstance(record, dict):
        raise Refusal(f"{what} must be a JSON object, got {type(record).__name__}")
    value = canonical_json(record)
    if len(value) > MAX_RECORD_BYTES:
        raise Refusal(f"{what} must be at most {MAX_RECORD_BYTES} bytes of JSON, got {len(value)}")
    return value


def _announce(ctx, event_name: str, key: str, collection: str, value: bytes | None) -> dict:
    """Emits the write's event and returns the same summary: never the private value, only its hash."""
    summary = {
        "key": key,
        "collection": collection or None,
        "hash": hashlib.sha256(value).hexdigest() if value is not None else None,
    }
    ctx.stub.set_event(event_name, canonical_json(summary))
    return summary
