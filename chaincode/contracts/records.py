"""The "records" contract: generic JSON records, public or private, for integration tests and the benchmark.

Public records live under their key in the channel's state; private ones in a named collection, their value sent
in transient data under "record" so that it never reaches the block. Every write emits an event whose payload
says what changed without revealing private values ("RecordPut": {"key", "collection", "hash"}).

Stored values are canonical JSON (sorted keys, no spaces), so a client can recompute a private record's hash.
"""

import hashlib
import json

from chaincode.shim import Contract, ContractError, evaluate, submit

MAX_KEY_CHARS = 64
MAX_RECORD_BYTES = 64 * 1024
TRANSIENT_RECORD = "record"
RECORD_PUT = "RecordPut"
RECORD_DELETED = "RecordDeleted"


def canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class RecordsContract(Contract):
    name = "records"

    @submit
    def put_record(self, ctx, key: str, record: str) -> dict:
        """Stores a public JSON object under key; returns {"key", "hash"}."""
        _check_key("put record", key)
        value = _record_bytes("put record", "record", record)
        ctx.stub.put_state(key, value)
        return _announce(ctx, RECORD_PUT, key, "", value)

    @evaluate
    def get_record(self, ctx, key: str) -> bytes:
        _check_key("get record", key)
        value = ctx.stub.get_state(key)
        if value is None:
            raise ContractError(f"failed to get record: no record with key {key!r}")
        return value

    @submit
    def delete_record(self, ctx, key: str) -> dict:
        _check_key("delete record", key)
        if ctx.stub.get_state(key) is None:
            raise ContractError(f"failed to delete record: no record with key {key!r}")
        ctx.stub.del_state(key)
        return _announce(ctx, RECORD_DELETED, key, "", None)

    @evaluate
    def get_records_by_range(self, ctx, start_key: str = "", end_key: str = "") -> list:
        """Public records with start_key <= key < end_key, in key order (empty bounds are open)."""
        with ctx.stub.get_state_by_range(start_key, end_key) as results:
            return [{"key": kv.key, "record": json.loads(kv.value)} for kv in results]

    @evaluate
    def get_history(self, ctx, key: str) -> list:
        """Every committed write of a public record, newest first."""
        _check_key("get history", key)
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
    def put_private_record(self, ctx, collection: str, key: str) -> dict:
        """Stores the JSON object in transient "record" under key in the collection; returns {"key", "hash"}."""
        _check_key("put private record", key)
        _check_collection("put private record", collection)
        transient = ctx.stub.get_transient()
        if TRANSIENT_RECORD not in transient:
            raise ContractError(
                f"failed to put private record: the record must travel in transient data under {TRANSIENT_RECORD!r}"
            )
        raw = transient[TRANSIENT_RECORD]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ContractError("failed to put private record: transient 'record' is not UTF-8 text") from None
        value = _record_bytes("put private record", "transient 'record'", text)
        ctx.stub.put_private_data(collection, key, value)
        return _announce(ctx, RECORD_PUT, key, collection, value)

    @evaluate
    def get_private_record(self, ctx, collection: str, key: str) -> bytes:
        _check_key("get private record", key)
        _check_collection("get private record", collection)
        value = ctx.stub.get_private_data(collection, key)
        if value is None:
            raise ContractError(f"failed to get private record: no record with key {key!r} in {collection}")
        return value

    @evaluate
    def get_private_record_hash(self, ctx, collection: str, key: str) -> str:
        """Hex SHA-256 of a private record; any organisation may ask, member of the collection or not."""
        _check_key("get private record hash", key)
        _check_collection("get private record hash", collection)
        digest = ctx.stub.get_private_data_hash(collection, key)
        if digest is None:
            raise ContractError(f"failed to get private record hash: no record with key {key!r} in {collection}")
        return digest.hex()


def _check_key(action: str, key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_CHARS:
        raise ContractError(f"failed to {action}: key must be 1-{MAX_KEY_CHARS} characters, got {key!r}")
    if not key.isprintable():
        raise ContractError(f"failed to {action}: key must be printable characters, got {key!r}")


def _check_collection(action: str, collection: str) -> None:
    if not collection:
        raise ContractError(f"failed to {action}: collection must be named")


def _record_bytes(action: str, what: str, text: str) -> bytes:
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise ContractError(f"failed to {action}: {what} must be a JSON object, got malformed JSON {shown!r}") from None
    if not isinstance(record, dict):
        raise ContractError(f"failed to {action}: {what} must be a JSON object, got {type(record).__name__}")
    value = canonical_json(record)
    if len(value) > MAX_RECORD_BYTES:
        raise ContractError(
            f"failed to {action}: {what} must be at most {MAX_RECORD_BYTES} bytes of JSON, got {len(value)}"
        )
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
