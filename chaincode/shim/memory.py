"""An in-memory world state and a stub over it that behave like a Fabric peer, for unit tests and the embedded ledger.

What it keeps as Fabric does: reads see committed state only and record the version they saw; writes collect in
the transaction's write set and an empty value deletes; keys sort in the peer's (LevelDB's) order; composite keys
and range queries follow the shim's rules; each public key keeps its history, newest first; a transaction commits
only if nothing it read (including the keys a range query returned) changed since (MVCC_READ_CONFLICT,
PHANTOM_READ_CONFLICT).

Private data collections: every private value is kept here, and each transaction runs "on" the peer of
`peer_msp_id` (default: the caller's organisation). As on a peer: with memberOnlyRead/memberOnlyWrite the
*caller's* organisation must be a member to read/write; a peer whose organisation is not a member holds only the
hashes, so reading a value that exists fails with the peer's own error, except through get_multiple_private_data,
which on Fabric v3.1 answers None there (and the read then fails validation); private-data hashes are readable by
all.
Errors read as the peer's do ("GET_STATE failed: transaction ID: <id>: <why>").
"""

import bisect
import hashlib
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from chaincode.shim.contract import ChaincodeInterface
from chaincode.shim.errors import StubError
from chaincode.shim.identity import CreatorIdentity, serialized_identity
from chaincode.shim.response import Response
from chaincode.shim.stub import KV, BaseStub, KeyModification, Result, ResultIterator, TransactionContext, as_bytes

VALID = "VALID"
MVCC_READ_CONFLICT = "MVCC_READ_CONFLICT"
PHANTOM_READ_CONFLICT = "PHANTOM_READ_CONFLICT"
DUPLICATE_TXID = "DUPLICATE_TXID"


@dataclass(frozen=True)
class Height:
    """A value's version: the block and position in it of the transaction that wrote it."""

    block: int
    tx: int = 0

    def __str__(self) -> str:
        return f"{{BlockNum: {self.block}, TxNum: {self.tx}}}"


@dataclass(frozen=True)
class Collection:
    """A private data collection's definition: its member MSP ids and access rules. Both rules default to on here;
    in a Fabric collections config they default to off, so that file must say what it means."""

    name: str
    members: frozenset[str]
    member_only_read: bool = True
    member_only_write: bool = True


@dataclass(frozen=True)
class Write:
    """One entry of a write set; `value` None deletes. `collection` is "" for public state."""

    collection: str
    key: str
    value: bytes | None


class InvalidTransaction(Exception):
    """A simulated transaction could not commit; `code` is Fabric's validation code for why."""

    def __init__(self, tx_id: str, code: str):
        super().__init__(f"transaction {tx_id} failed to commit with status {code}")
        self.tx_id = tx_id
        self.code = code


def as_collections(collections: Mapping[str, Iterable[str] | Collection] | None) -> dict[str, Collection]:
    """Accepts {name: Collection} or {name: member MSP ids} (strict access rules)."""
    result = {}
    for name, spec in (collections or {}).items():
        result[name] = spec if isinstance(spec, Collection) else Collection(name, frozenset(spec))
    return result


def new_tx_id(creator: bytes) -> tuple[str, bytes]:
    """A transaction id as a client makes one: hex(SHA-256(nonce ‖ creator)); returns it and the nonce."""
    nonce = os.urandom(24)
    return hashlib.sha256(nonce + creator).hexdigest(), nonce


class MemoryWorld:
    """The committed state of one chaincode namespace on one channel, with its key history."""

    def __init__(
        self,
        collections: Mapping[str, Iterable[str] | Collection] | None = None,
        *,
        chaincode_name: str = "gridledger",
        channel_id: str = "grid",
    ):
        self.collections = as_collections(collections)
        self.chaincode_name = chaincode_name
        self.channel_id = channel_id
        self._public = _Store()
        self._private = {name: _Store() for name in self.collections}
        self._history: dict[str, list[KeyModification]] = {}  # oldest first
        self._tx_ids: set[str] = set()
        self._lock = threading.RLock()
        self.next_block = 0

    # Running transactions.

    def new_stub(
        self,
        args: Iterable[bytes | str],
        *,
        identity: CreatorIdentity,
        transient: Mapping[str, bytes] | None = None,
        tx_id: str | None = None,
        timestamp: datetime | None = None,
        peer_msp_id: str | None = None,
    ) -> "MemoryStub":
        """A stub for one transaction by `identity` (an object with .msp_id and .credentials, the PEM certificate,
        as fabric-gateway's X509Identity), run on the peer of `peer_msp_id` (default: the identity's org)."""
        creator = serialized_identity(identity.msp_id, identity.credentials)
        generated_id, nonce = new_tx_id(creator)
        context = TransactionContext(
            creator=creator,
            transient=dict(transient or {}),
            timestamp=timestamp or datetime.now(UTC),
            binding=hashlib.sha256(nonce + creator + bytes(8)).digest(),
        )
        return MemoryStub(
            self, tx_id or generated_id, [as_bytes(arg) for arg in args], context, peer_msp_id or identity.msp_id
        )

    def evaluate(
        self,
        chaincode: ChaincodeInterface,
        function: str,
        *args: bytes | str,
        identity: CreatorIdentity,
        **stub_options: Any,
    ) -> Response:
        """Runs a transaction and keeps nothing it wrote."""
        return chaincode.invoke(self.new_stub([function, *args], identity=identity, **stub_options))

    def invoke(
        self,
        chaincode: ChaincodeInterface,
        function: str,
        *args: bytes | str,
        identity: CreatorIdentity,
        **stub_options: Any,
    ) -> Response:
        """Runs a transaction and commits it if the chaincode answered OK; raises InvalidTransaction if it cannot."""
        stub = self.new_stub([function, *args], identity=identity, **stub_options)
        response = chaincode.invoke(stub)
        if response.ok:
            code = self.commit(stub)
            if code != VALID:
                raise InvalidTransaction(stub.get_tx_id(), code)
        return response

    def commit(self, stub: "MemoryStub", block: int | None = None) -> str:
        """Validates a simulated transaction against the current state and, if VALID, applies its writes as the
        only transaction of `block` (default: the next block). Returns the validation code."""
        with self._lock:
            code = self.validate(stub)
            if code == VALID:
                self.apply(
                    stub.writes,
                    Height(self.next_block if block is None else block),
                    stub.get_tx_id(),
                    stub.get_tx_timestamp(),
                )
            return code

    def validate(self, stub: "MemoryStub") -> str:
        with self._lock:
            if stub.get_tx_id() in self._tx_ids:
                return DUPLICATE_TXID
            for (collection, key), version in stub.reads.items():
                if self._version(collection, key) != version:
                    return MVCC_READ_CONFLICT
            for query in stub.range_reads:
                now = [
                    (key, version) for key, _, version in self.scan(query.collection, query.start_key, query.end_key)
                ]
                seen = query.results[: query.consumed]
                if now[: len(seen)] != seen or (query.exhausted and len(now) != len(seen)):
                    return PHANTOM_READ_CONFLICT
            return VALID

    def apply(self, writes: Iterable[Write], height: Height, tx_id: str, timestamp: datetime | None) -> None:
        """Applies a valid transaction's writes (also how the embedded ledger replays its block log)."""
        with self._lock:
            for write in writes:
                if write.collection:
                    store = self._private[write.collection]
                else:
                    store = self._public
                    self._history.setdefault(write.key, []).append(
                        KeyModification(tx_id, write.value or b"", timestamp, write.value is None)
                    )
                if write.value is None:
                    store.delete(write.key)
                else:
                    store.put(write.key, write.value, height)
            self._tx_ids.add(tx_id)
            self.next_block = max(self.next_block, height.block + 1)

    # Reading committed state (the stub's primitives use these).

    def collection(self, name: str) -> Collection:
        try:
            return self.collections[name]
        except KeyError:
            raise StubError(
                f"collection [{name}] not defined in the collection config for chaincode [{self.chaincode_name}]"
            ) from None

    def read(self, collection: str, key: str) -> tuple[bytes, Height] | None:
        with self._lock:
            return (self._private[collection] if collection else self._public).get(key)

    def _version(self, collection: str, key: str) -> Height | None:
        entry = self.read(collection, key)
        return entry[1] if entry else None

    def scan(self, collection: str, start_key: str, end_key: str) -> list[tuple[str, bytes, Height]]:
        """(key, value, version) for start_key <= key < end_key in key order; an empty end key is unbounded."""
        with self._lock:
            return (self._private[collection] if collection else self._public).scan(start_key, end_key)

    def history(self, key: str) -> list[KeyModification]:
        with self._lock:
            return list(reversed(self._history.get(key, [])))

    def public_state(self) -> dict[str, bytes]:
        with self._lock:
            return self._public.values()

    def private_state(self, collection: str) -> dict[str, bytes]:
        with self._lock:
            return self._private[collection].values()


class _Store:
    """Key → (value, version), with the keys kept sorted so that range queries cost only what they return.
    Python's string order is code-point order, which is the peer's (LevelDB's) byte order of UTF-8 keys."""

    def __init__(self):
        self._entries: dict[str, tuple[bytes, Height]] = {}
        self._keys: list[str] = []

    def get(self, key: str) -> tuple[bytes, Height] | None:
        return self._entries.get(key)

    def put(self, key: str, value: bytes, version: Height) -> None:
        if key not in self._entries:
            bisect.insort(self._keys, key)
        self._entries[key] = (value, version)

    def delete(self, key: str) -> None:
        if self._entries.pop(key, None) is not None:
            del self._keys[bisect.bisect_left(self._keys, key)]

    def scan(self, start_key: str, end_key: str) -> list[tuple[str, bytes, Height]]:
        first = bisect.bisect_left(self._keys, start_key)
        last = bisect.bisect_left(self._keys, end_key) if end_key else len(self._keys)
        return [(key, *self._entries[key]) for key in self._keys[first:last]]

    def values(self) -> dict[str, bytes]:
        return {key: value for key, (value, _) in self._entries.items()}


@dataclass
class RangeRead:
    """A range query as the transaction saw it, re-checked at commit for phantoms."""

    collection: str
    start_key: str
    end_key: str
    results: list[tuple[str, Height]]
    consumed: int = 0
    exhausted: bool = False


class MemoryStub(BaseStub):
    """A transaction's stub over a MemoryWorld: records its reads and range reads and collects its writes."""

    def __init__(
        self, world: MemoryWorld, tx_id: str, args: list[bytes], context: TransactionContext, peer_msp_id: str
    ):
        super().__init__(world.channel_id, tx_id, args, context, peer_msp_id)
        self.world = world
        self.reads: dict[tuple[str, str], Height | None] = {}
        self.range_reads: list[RangeRead] = []
        self._writes: dict[tuple[str, str], bytes | None] = {}

    @property
    def writes(self) -> list[Write]:
        return [Write(collection, key, value) for (collection, key), value in self._writes.items()]

    @cached_property
    def creator_msp_id(self) -> str:
        return self.get_client_identity().msp_id

    def _get_state(self, collection: str, key: str) -> bytes | None:
        if collection:
            self._check_access("GET_STATE", collection, write=False)
        entry = self.world.read(collection, key)
        if collection and entry and self._peer_msp_id not in self.world.collections[collection].members:
            # A non-member peer holds the hash committed at this version but not the value.
            raise self._peer_error(
                "GET_STATE",
                f"private data matching public hash version is not available. "
                f"Public hash version = {entry[1]}, Private data version = <nil>",
            )
        self.reads[(collection, key)] = entry[1] if entry else None
        return entry[0] if entry else None

    def _get_multiple(self, collection: str, state_keys: list[str]) -> list[bytes | None]:
        """As a v3.1 peer answers GET_STATE_MULTIPLE: the access check once, then each key's committed value, where
        a peer outside the collection finds none (it does not compare with the hash as a single read does)."""
        if collection:
            self._check_access("GET_STATE_MULTIPLE", collection, write=False)
        values: list[bytes | None] = []
        for key in state_keys:
            entry = self.world.read(collection, key)
            if collection and self._peer_msp_id not in self.world.collections[collection].members:
                entry = None
            self.reads[(collection, key)] = entry[1] if entry else None
            values.append(entry[0] if entry else None)
        return values

    def _get_private_data_hash(self, collection: str, key: str) -> bytes | None:
        self._known_collection("GET_PRIVATE_DATA_HASH", collection)
        entry = self.world.read(collection, key)
        self.reads[(collection, key)] = entry[1] if entry else None
        return hashlib.sha256(entry[0]).digest() if entry else None

    def _put_state(self, collection: str, key: str, value: bytes) -> None:
        if collection:
            self._check_access("PUT_STATE", collection, write=True)
        self._writes[(collection, key)] = value or None  # an empty value is a delete, as in Fabric's write set

    def _del_state(self, collection: str, key: str) -> None:
        if collection:
            self._check_access("DEL_STATE", collection, write=True)
        self._writes[(collection, key)] = None

    def _purge_private_data(self, collection: str, key: str) -> None:
        self._check_access("PURGE_PRIVATE_DATA", collection, write=True)
        self._writes[(collection, key)] = None

    def _range(self, collection: str, start_key: str, end_key: str) -> ResultIterator[KV]:
        if collection:
            self._check_access("GET_STATE_BY_RANGE", collection, write=False)
            if self._peer_msp_id not in self.world.collections[collection].members:
                return _MemoryIterator([], None)  # a non-member peer has no private values to scan
        scanned = self.world.scan(collection, start_key, end_key)
        read = RangeRead(collection, start_key, end_key, [(key, version) for key, _, version in scanned])
        self.range_reads.append(read)
        return _MemoryIterator([KV(key, value) for key, value, _ in scanned], read)

    def _history(self, key: str) -> ResultIterator[KeyModification]:
        return _MemoryIterator(self.world.history(key), None)

    def _known_collection(self, operation: str, collection: str) -> None:
        try:
            self.world.collection(collection)
        except StubError as error:
            raise self._peer_error(operation, str(error)) from None

    def _check_access(self, operation: str, collection: str, write: bool) -> None:
        self._known_collection(operation, collection)
        definition = self.world.collections[collection]
        restricted = definition.member_only_write if write else definition.member_only_read
        if restricted and self.creator_msp_id not in definition.members:
            access = "write" if write else "read"
            raise self._peer_error(
                operation,
                f"tx creator does not have {access} access permission on "
                f"privatedata in chaincodeName:{self.world.chaincode_name} "
                f"collectionName: {collection}",
            )

    def _peer_error(self, operation: str, why: str) -> StubError:
        return StubError(f"{operation} failed: transaction ID: {self._tx_id}: {why}")


class _MemoryIterator(ResultIterator[Result]):
    def __init__(self, results: list[Result], read: RangeRead | None):
        self._results = results
        self._read = read
        self._position = 0

    def __next__(self) -> Result:
        if self._position >= len(self._results):
            if self._read:
                self._read.exhausted = True
            raise StopIteration
        result = self._results[self._position]
        self._position += 1
        if self._read:
            self._read.consumed = self._position
        return result
