"""The stub a transaction uses to reach the ledger: fabric-chaincode-go's ChaincodeStubInterface in snake_case.

`BaseStub` holds everything both stubs share (argument access, key rules, composite keys, private-data argument
checks, events); `chaincode.shim.peer_stub.ChaincodeStub` sends each ledger call to the peer over the chaincode
stream, and `chaincode.shim.memory.MemoryStub` answers them from an in-memory world. This module and the ones the
in-memory path uses need no Fabric protobufs (the embedded ledger runs where they cannot be generated).

As on Fabric, reads see the committed state only: a value written earlier in the same transaction is not read back.
So a stub may hold a transaction's writes back and send them together before the transaction completes
(`flush_writes`) without a contract seeing any difference; and it may read many keys in one call
(`get_multiple_states`; see `get_multiple_private_data` for how Fabric's differs from single private reads).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Generic, TypeVar

from chaincode.shim import keys
from chaincode.shim.errors import StubError
from chaincode.shim.identity import ClientIdentity

if TYPE_CHECKING:  # only on a peer, where the protobufs exist
    from fabric_protos.peer.proposal_pb2 import SignedProposal

Result = TypeVar("Result")


@dataclass(frozen=True)
class TransactionContext:
    """What a transaction knows about itself beyond its arguments (from the SignedProposal, on a peer)."""

    creator: bytes = b""  # serialized msp.SerializedIdentity of the submitter
    transient: dict[str, bytes] = field(default_factory=dict)
    timestamp: datetime | None = None  # the client's ChannelHeader timestamp, the same on every endorser
    binding: bytes = b""  # SHA-256(nonce ‖ creator ‖ epoch), ties the proposal to its creator
    signed_proposal: "SignedProposal | None" = None  # the proposal itself, on a peer


@dataclass(frozen=True)
class KV:
    """One result of a range query."""

    key: str
    value: bytes


@dataclass(frozen=True)
class KeyModification:
    """One entry of a key's history: the transaction that wrote it, what it wrote, and when it was proposed."""

    tx_id: str
    value: bytes
    timestamp: datetime | None
    is_delete: bool


@dataclass(frozen=True)
class ChaincodeEvent:
    name: str
    payload: bytes


class ResultIterator(Generic[Result]):
    """Iterates query results; close it (or use `with`) when stopping early, as Fabric asks."""

    def __iter__(self) -> "ResultIterator[Result]":
        return self

    def __next__(self) -> Result:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "ResultIterator[Result]":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def as_bytes(value: bytes | str) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise StubError(f"value must be bytes or str, got {type(value).__name__}")


class BaseStub:
    """The stub API over the ledger primitives a concrete stub supplies (`_get_state`, `_get_private_data_hash`,
    `_put_state`, `_del_state`, `_purge_private_data`, `_range`, `_history`, and optionally `_get_multiple` and
    `flush_writes`); `collection` is "" for public state."""

    def __init__(
        self, channel_id: str, tx_id: str, args: list[bytes], context: TransactionContext, peer_msp_id: str | None
    ):
        self._channel_id = channel_id
        self._tx_id = tx_id
        self._args = list(args)
        self._context = context
        self._peer_msp_id = peer_msp_id
        self.event: ChaincodeEvent | None = None

    # The transaction and its caller.

    def get_tx_id(self) -> str:
        return self._tx_id

    def get_channel_id(self) -> str:
        return self._channel_id

    def get_args(self) -> list[bytes]:
        return list(self._args)

    def get_string_args(self) -> list[str]:
        return [arg.decode("utf-8", errors="replace") for arg in self._args]

    def get_function_and_parameters(self) -> tuple[str, list[str]]:
        args = self.get_string_args()
        return (args[0], args[1:]) if args else ("", [])

    def get_creator(self) -> bytes:
        """The submitter as serialized msp.SerializedIdentity bytes."""
        return self._context.creator

    def get_client_identity(self) -> ClientIdentity:
        return ClientIdentity.from_creator(self._context.creator)

    def get_transient(self) -> dict[str, bytes]:
        return dict(self._context.transient)

    def get_tx_timestamp(self) -> datetime | None:
        """The client's proposal timestamp (UTC): the same on every endorser, so safe to store."""
        return self._context.timestamp

    def get_binding(self) -> bytes:
        return self._context.binding

    def get_signed_proposal(self) -> "SignedProposal | None":
        return self._context.signed_proposal

    def get_peer_msp_id(self) -> str:
        """The MSP id of the peer executing this transaction (Go's shim.GetMSPID, from CORE_PEER_LOCALMSPID)."""
        if not self._peer_msp_id:
            raise StubError(
                "the peer's MSP id is not known: start the chaincode server with --peer-msp-id or CORE_PEER_LOCALMSPID"
            )
        return self._peer_msp_id

    # Public state.

    def get_state(self, key: str) -> bytes | None:
        """The committed value, or None when the key does not exist."""
        keys.check_key(key)
        return self._get_state("", key)

    def get_multiple_states(self, *state_keys: str) -> list[bytes | None]:
        """The committed values of `state_keys` in their order, None where a key does not exist."""
        for key in state_keys:
            keys.check_key(key)
        return self._get_multiple("", list(state_keys)) if state_keys else []

    def put_state(self, key: str, value: bytes | str) -> None:
        """Adds the write to the transaction; an empty value deletes the key, as on Fabric."""
        keys.check_key(key)
        self._put_state("", key, as_bytes(value))

    def del_state(self, key: str) -> None:
        keys.check_key(key)
        self._del_state("", key)

    def get_state_by_range(self, start_key: str, end_key: str) -> ResultIterator[KV]:
        """KVs with start_key <= key < end_key in key order; empty bounds are open. Composite keys are excluded."""
        start_key, end_key = keys.simple_key_range(start_key, end_key)
        return self._range("", start_key, end_key)

    def get_state_by_partial_composite_key(
        self, object_type: str, attributes: Iterable[str] = ()
    ) -> ResultIterator[KV]:
        start_key, end_key = keys.partial_composite_key_range(object_type, tuple(attributes))
        return self._range("", start_key, end_key)

    def get_history_for_key(self, key: str) -> ResultIterator[KeyModification]:
        """KeyModifications of a public key, newest first."""
        keys.check_key(key)
        return self._history(key)

    # Composite keys.

    @staticmethod
    def create_composite_key(object_type: str, attributes: Iterable[str] = ()) -> str:
        return keys.create_composite_key(object_type, tuple(attributes))

    @staticmethod
    def split_composite_key(composite_key: str) -> tuple[str, list[str]]:
        return keys.split_composite_key(composite_key)

    # Private data.

    def get_private_data(self, collection: str, key: str) -> bytes | None:
        _check_collection(collection)
        keys.check_key(key)
        return self._get_state(collection, key)

    def get_multiple_private_data(self, collection: str, *private_keys: str) -> list[bytes | None]:
        """The committed private values of `private_keys` in their order, None where a key does not exist.

        Unlike get_private_data, on Fabric v3.1 a peer that holds the key's hash but not its value (a peer of
        another organisation, or one still waiting for the value) answers None for it rather than failing; the
        transaction then records a read of a missing key and fails validation (MVCC_READ_CONFLICT)."""
        _check_collection(collection)
        for key in private_keys:
            keys.check_key(key)
        return self._get_multiple(collection, list(private_keys)) if private_keys else []

    def get_private_data_hash(self, collection: str, key: str) -> bytes | None:
        """SHA-256 of the committed private value; readable on every peer, member of the collection or not."""
        _check_collection(collection)
        keys.check_key(key)
        return self._get_private_data_hash(collection, key)

    def put_private_data(self, collection: str, key: str, value: bytes | str) -> None:
        _check_collection(collection)
        keys.check_key(key)
        self._put_state(collection, key, as_bytes(value))

    def del_private_data(self, collection: str, key: str) -> None:
        _check_collection(collection)
        keys.check_key(key)
        self._del_state(collection, key)

    def purge_private_data(self, collection: str, key: str) -> None:
        _check_collection(collection)
        keys.check_key(key)
        self._purge_private_data(collection, key)

    def get_private_data_by_range(self, collection: str, start_key: str, end_key: str) -> ResultIterator[KV]:
        _check_collection(collection)
        start_key, end_key = keys.simple_key_range(start_key, end_key)
        return self._range(collection, start_key, end_key)

    def get_private_data_by_partial_composite_key(
        self, collection: str, object_type: str, attributes: Iterable[str] = ()
    ) -> ResultIterator[KV]:
        _check_collection(collection)
        start_key, end_key = keys.partial_composite_key_range(object_type, tuple(attributes))
        return self._range(collection, start_key, end_key)

    # Events.

    def set_event(self, name: str, payload: bytes | str = b"") -> None:
        """The transaction's chaincode event; the last one set is the one emitted."""
        if not name:
            raise StubError("event name can not be empty string")
        self.event = ChaincodeEvent(name, as_bytes(payload))

    # Writes held back.

    def flush_writes(self) -> None:
        """Sends the writes this stub holds back to the ledger; nothing to do for a stub that holds none. The
        shim calls it once the transaction has succeeded, before answering the peer."""

    def discard_writes(self) -> None:
        """Forgets the writes held back: the transaction failed, and the peer keeps nothing of a failed one."""

    # The primitives.

    def _get_state(self, collection: str, key: str) -> bytes | None:
        raise NotImplementedError

    def _get_multiple(self, collection: str, state_keys: list[str]) -> list[bytes | None]:
        """One read per key, unless the stub can ask for many at once."""
        return [self._get_state(collection, key) for key in state_keys]

    def _get_private_data_hash(self, collection: str, key: str) -> bytes | None:
        raise NotImplementedError

    def _put_state(self, collection: str, key: str, value: bytes) -> None:
        raise NotImplementedError

    def _del_state(self, collection: str, key: str) -> None:
        raise NotImplementedError

    def _purge_private_data(self, collection: str, key: str) -> None:
        raise NotImplementedError

    def _range(self, collection: str, start_key: str, end_key: str) -> ResultIterator[KV]:
        raise NotImplementedError

    def _history(self, key: str) -> ResultIterator[KeyModification]:
        raise NotImplementedError


def _check_collection(collection: str) -> None:
    if not collection:
        raise StubError("collection must not be an empty string")
