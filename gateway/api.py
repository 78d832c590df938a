"""The Gateway interface both backends implement (gateway.client, gateway.embedded) and what they share.

After fabric-gateway's Gateway, Network, Contract, Proposal, Transaction and Commit: a chain of getters
(`gateway.get_network("grid").get_contract("gridledger", "dr")`), then either the simple calls (`evaluate`,
`submit`) or the detailed ones they are built from (`new_proposal` → `evaluate`, or `endorse` → `submit` →
`status`). Written here once: how arguments become bytes, how a contract name qualifies a function, how `submit`
turns a commit status into a result or a CommitError, how an event stream is iterated and closed, and how a
chaincode's refusal is worded between a peer and a client. Nothing here needs Fabric's generated protobufs.
"""

import re
import weakref
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Protocol

from gateway.errors import CommitError

VALID = "VALID"

# How a gateway words a chaincode's own error response in a peer's error detail (fabric internal/pkg/gateway).
CHAINCODE_RESPONSE = re.compile(r"chaincode response (\d+), (.*)", re.DOTALL)


def chaincode_response(status: int, message: str) -> str:
    """A chaincode's refusal as a peer's error detail says it; CHAINCODE_RESPONSE reads it back."""
    return f"chaincode response {status}, {message}"


class Identity(Protocol):
    """Who a gateway acts as: a member of the organisation `msp_id` (each backend asks a little more)."""

    @property
    def msp_id(self) -> str: ...


@dataclass(frozen=True)
class ChaincodeEvent:
    """An event a chaincode set in a committed transaction."""

    block_number: int
    transaction_id: str
    chaincode_name: str
    event_name: str
    payload: bytes


@dataclass(frozen=True)
class CommitStatus:
    """How a transaction committed: `code` is its peer.TxValidationCode name, "VALID" when it took effect."""

    transaction_id: str
    code: str
    block_number: int

    @property
    def successful(self) -> bool:
        return self.code == VALID


def as_bytes(value: str | bytes, what: str) -> bytes:
    """A transaction argument or transient value as sent: str as UTF-8, bytes as they are."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"{what} must be str or bytes (e.g. json.dumps(...)), not {type(value).__name__}")


class Gateway(ABC):
    """A connection to the ledger as one identity. Closing it ends the event streams opened through it.

    A backend names its Network class in `network_type` (and that one its Contract class in `contract_type`).
    """

    network_type: ClassVar[type["Network"]]

    def __init__(self, identity: Identity):
        self.identity = identity
        self._event_streams: weakref.WeakSet[ChaincodeEvents] = weakref.WeakSet()

    def get_network(self, name: str) -> "Network":
        """The channel `name`, e.g. "grid"."""
        return self.network_type(self, name)

    def close(self) -> None:
        """Ends the event streams opened through this gateway."""
        for stream in list(self._event_streams):
            stream.close()

    def __enter__(self) -> "Gateway":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Network(ABC):
    """One channel as seen through a gateway."""

    contract_type: ClassVar[type["Contract"]]

    def __init__(self, gateway: Gateway, name: str):
        self.gateway = gateway
        self.name = name

    def get_contract(self, chaincode_name: str, contract_name: str | None = None) -> "Contract":
        """The chaincode `chaincode_name`, or one named contract inside it (functions called "contract:name")."""
        return self.contract_type(self, chaincode_name, contract_name)

    def get_chaincode_events(
        self, chaincode_name: str, start_block: int | None = None, after_transaction_id: str | None = None
    ) -> "ChaincodeEvents":
        """Events emitted by `chaincode_name`'s valid transactions, in ledger order, until closed.

        Without `start_block` the events of blocks committed from now on; with it, from that block on. To
        resume from a checkpoint (the block_number and transaction_id of the last event processed), pass both:
        events of that block up to and including that transaction are skipped.
        """
        stream = self._open_chaincode_events(chaincode_name, start_block, after_transaction_id)
        self.gateway._event_streams.add(stream)
        return stream

    @abstractmethod
    def _open_chaincode_events(
        self, chaincode_name: str, start_block: int | None, after_transaction_id: str | None
    ) -> "ChaincodeEvents": ...


class Contract(ABC):
    """A chaincode (or one contract in it) on a channel: evaluate queries, submit transactions."""

    def __init__(self, network: Network, chaincode_name: str, contract_name: str | None = None):
        self.network = network
        self.chaincode_name = chaincode_name
        self.contract_name = contract_name

    def new_proposal(
        self,
        name: str,
        *args: str | bytes,
        transient: dict[str, str | bytes] | None = None,
        endorsing_organizations: list[str] | None = None,
    ) -> "Proposal":
        """A proposal to call transaction function `name` with `args`, to evaluate or endorse.

        `transient` data reaches the chaincode but never the ledger (private data goes here).
        `endorsing_organizations` (MSP ids) are the only organisations whose peers run it (by default the Fabric
        gateway's choice; the caller's own organisation on the embedded ledger): with transient data, name the
        members of the collection written so nobody else sees the data; when evaluating, one of them answers.
        """
        function = f"{self.contract_name}:{name}" if self.contract_name else name
        return self._new_proposal(
            [function.encode(), *(as_bytes(arg, f"argument {i}") for i, arg in enumerate(args, 1))],
            {key: as_bytes(value, f"transient {key!r}") for key, value in (transient or {}).items()},
            list(endorsing_organizations or ()),
        )

    @abstractmethod
    def _new_proposal(
        self, args: list[bytes], transient: dict[str, bytes], endorsing_organizations: list[str]
    ) -> "Proposal": ...

    def evaluate(
        self,
        name: str,
        *args: str | bytes,
        transient: dict[str, str | bytes] | None = None,
        endorsing_organizations: list[str] | None = None,
    ) -> bytes:
        """The result of running `name` on one peer, recording nothing: `new_proposal(...).evaluate()`.

        Raises GatewayError, with the chaincode's message when the chaincode refuses.
        """
        return self.new_proposal(
            name, *args, transient=transient, endorsing_organizations=endorsing_organizations
        ).evaluate()

    def submit(
        self,
        name: str,
        *args: str | bytes,
        transient: dict[str, str | bytes] | None = None,
        endorsing_organizations: list[str] | None = None,
    ) -> bytes:
        """Runs `name` as a transaction and returns its result once it has committed.

        That is `new_proposal(...).endorse().submit().committed()`. Raises EndorseError (the chaincode's message
        when it refuses), SubmitError, CommitStatusError, or CommitError when the transaction was ordered but did
        not commit as valid (e.g. MVCC_READ_CONFLICT).
        """
        return (
            self.new_proposal(name, *args, transient=transient, endorsing_organizations=endorsing_organizations)
            .endorse()
            .submit()
            .committed()
        )


class Proposal(ABC):
    """A transaction proposal, not yet sent: evaluate it (a query) or endorse it (a transaction)."""

    def __init__(self, transaction_id: str, endorsing_organizations: list[str]):
        self.transaction_id = transaction_id
        self.endorsing_organizations = endorsing_organizations

    @abstractmethod
    def evaluate(self, timeout: float | None = None) -> bytes:
        """The chaincode's result from one peer; nothing is recorded. Raises GatewayError."""

    @abstractmethod
    def endorse(self, timeout: float | None = None) -> "Transaction":
        """Endorsed by enough peers to satisfy the endorsement policy, ready to submit. Raises EndorseError."""


class Endorsed:
    """A transaction whose result the endorsing peers agreed on: what Transaction and SubmittedTransaction share."""

    def __init__(self, transaction_id: str, result: bytes):
        self.transaction_id = transaction_id
        self.result = result


class Transaction(Endorsed, ABC):
    """An endorsed transaction: its result is known, it is not yet ordered."""

    @abstractmethod
    def submit(self, timeout: float | None = None) -> "SubmittedTransaction":
        """Hands the transaction to the ordering service. Raises SubmitError."""


class SubmittedTransaction(Endorsed, ABC):
    """A transaction the ordering service accepted; `status()` waits for it to commit."""

    @abstractmethod
    def status(self, timeout: float | None = None) -> CommitStatus:
        """Blocks until the gateway's peer has committed the transaction. Raises CommitStatusError."""

    def committed(self, timeout: float | None = None) -> bytes:
        """The result once the transaction has committed as valid: `status()`, then CommitError (naming the
        validation code) if it did not."""
        status = self.status(timeout)
        if not status.successful:
            raise CommitError(status.transaction_id, status.code)
        return self.result


class ChaincodeEvents(ABC):
    """An open stream of chaincode events: iterate it (it waits for new ones); close it, or use `with`, to stop."""

    def __init__(self) -> None:
        self._pending: deque[ChaincodeEvent] = deque()
        self.closed = False

    def __iter__(self) -> "ChaincodeEvents":
        return self

    def __next__(self) -> ChaincodeEvent:
        while not self._pending:
            if self.closed:
                raise StopIteration
            received = self._receive()
            if received is None or self.closed:
                raise StopIteration
            self._pending.extend(received)
        return self._pending.popleft()

    def close(self) -> None:
        """Stops the stream; events already received but not yet taken are dropped."""
        self.closed = True
        self._pending.clear()
        self._stop()

    def __enter__(self) -> "ChaincodeEvents":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @abstractmethod
    def _receive(self) -> Iterable[ChaincodeEvent] | None:
        """The next batch of events (a block's, possibly none), waiting for it; None when the stream has ended."""

    @abstractmethod
    def _stop(self) -> None:
        """Ends the wait of a `_receive` in progress."""
