"""The embedded ledger: the Fabric Gateway client's interface over the same contracts run in process.

    ledger = EmbeddedLedger(build_chaincode(), collections=topology_collections, path="run/embedded.sqlite")
    gateway = EmbeddedGateway(identity, ledger)        # identity: .msp_id and .credentials (PEM), no signer
    contract = gateway.get_network("grid").get_contract("gridledger", "records")
    contract.submit("put_record", "k1", '{"kwh": 3}')  # as gateway.client: endorse, order, commit

For development and for machines that cannot build Fabric: it needs neither Fabric nor its generated protobufs.
It never stands in for the real network in the demo, the integration tests or the benchmarks.

What it keeps of Fabric: a transaction is simulated by the peer of each endorsing organisation (by default the
caller's own) against committed state, then validated (MVCC and phantom reads, duplicate ids) and committed
atomically or recorded as invalid; collection membership is enforced as a peer enforces it (chaincode.shim.memory);
chaincode events are delivered for valid transactions, from a block or after a transaction. Each transaction is
one block of a hash chain: block hash = SHA-256 of the canonical JSON of (number, previous hash, transactions),
where a transaction records its creator, arguments, public writes, result and event, and private writes only as
SHA-256 of key and value. Private values live beside the chain, checked against those hashes. With `path`, blocks
and private values persist in SQLite and the state is rebuilt by replaying them, after verifying the chain.
"""

import base64
import hashlib
import json
import sqlite3
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping

from chaincode.shim import Collection, MemoryWorld, Response
from chaincode.shim.identity import serialized_identity
from chaincode.shim.memory import DUPLICATE_TXID, VALID, Height, MemoryStub, Write, new_tx_id
from gateway.errors import CommitError, EndorseError, GatewayError
from gateway.results import ChaincodeEvent, CommitStatus, as_bytes

GENESIS_PREVIOUS_HASH = "0" * 64


class LedgerIntegrityError(Exception):
    """The block log, the private values or the state do not match what the hash chain commits to."""


@dataclass(frozen=True)
class Block:
    number: int
    previous_hash: str
    transactions: tuple[dict, ...]  # canonical transaction records, see _transaction_record
    hash: str


@dataclass(frozen=True)
class Endorsement:
    """A simulated transaction: the stub holding its reads and writes, and the response of `peer_msp_id`'s peer
    (the one that refused, if one did)."""

    tx_id: str
    stub: MemoryStub
    response: Response
    peer_msp_id: str


def block_hash(number: int, previous_hash: str, transactions: Iterable[dict]) -> str:
    return hashlib.sha256(
        _canonical({"number": number, "previous_hash": previous_hash, "transactions": list(transactions)})
    ).hexdigest()


class EmbeddedLedger:
    """One channel with one chaincode, run in process.

    `chaincode`: a chaincode.shim.Chaincode (e.g. chaincode.server.build_chaincode()); `collections`: {name:
    member MSP ids} or {name: chaincode.shim.Collection}; `path`: an SQLite file to keep the ledger in.
    """

    def __init__(
        self,
        chaincode,
        collections: Mapping[str, Iterable[str] | Collection] | None = None,
        path: str | Path | None = None,
        *,
        chaincode_name: str = "gridledger",
        channel: str = "grid",
    ):
        self.chaincode = chaincode
        self.chaincode_name = chaincode_name
        self.channel = channel
        self._collections = collections
        self.world = MemoryWorld(collections, chaincode_name=chaincode_name, channel_id=channel)
        self._blocks: list[Block] = []
        self._private_values: dict[int, list[Write]] = {}  # block number → its private writes, values in clear
        self._statuses: dict[str, CommitStatus] = {}
        self._lock = threading.RLock()
        self._new_block = threading.Condition(self._lock)
        self.closed = False
        self._db = None
        if path is not None:
            self._db = sqlite3.connect(str(path), check_same_thread=False)
            try:
                self._db.executescript(_SCHEMA)
                self._load()
            except Exception:
                self._db.close()
                raise

    @property
    def height(self) -> int:
        """How many blocks the chain has; the next block's number."""
        return len(self._blocks)

    @property
    def blocks(self) -> tuple[Block, ...]:
        with self._lock:
            return tuple(self._blocks)

    def commit_status(self, tx_id: str) -> CommitStatus | None:
        return self._statuses.get(tx_id)

    # Endorse, order, commit.

    def endorse(
        self,
        identity,
        args: list[bytes],
        transient: Mapping[str, bytes],
        peer_msp_ids: list[str],
        tx_id: str,
        timestamp: datetime,
    ) -> Endorsement:
        """Simulates the transaction on the peer of each organisation in `peer_msp_ids`. Returns the first refusal,
        or the endorsement when every peer agreed; raises EndorseError when their results differ."""
        endorsements = []
        for peer_msp_id in peer_msp_ids:
            stub = self.world.new_stub(
                args, identity=identity, transient=transient, tx_id=tx_id, timestamp=timestamp, peer_msp_id=peer_msp_id
            )
            endorsement = Endorsement(tx_id, stub, self.chaincode.invoke(stub), peer_msp_id)
            if not endorsement.response.ok:
                return endorsement
            endorsements.append(endorsement)
        first = endorsements[0]
        for other in endorsements[1:]:
            if (other.response.payload, other.stub.writes, other.stub.event) != (
                first.response.payload,
                first.stub.writes,
                first.stub.event,
            ):
                raise EndorseError(
                    f"ProposalResponsePayloads do not match: the peers of {first.peer_msp_id} and "
                    f"{other.peer_msp_id} computed different results",
                    tx_id,
                )
        return first

    def order(self, endorsement: Endorsement) -> CommitStatus:
        """Validates and commits the transaction as the next block (recorded even when invalid, as Fabric does)."""
        with self._lock:
            if self.closed:
                raise GatewayError("the embedded ledger is closed")
            stub = endorsement.stub
            code = DUPLICATE_TXID if stub.get_tx_id() in self._statuses else self.world.validate(stub)
            number = len(self._blocks)
            previous_hash = self._blocks[-1].hash if self._blocks else GENESIS_PREVIOUS_HASH
            transactions = (_transaction_record(stub, endorsement.response.payload, code, self.chaincode_name),)
            block = Block(number, previous_hash, transactions, block_hash(number, previous_hash, transactions))
            private = [w for w in stub.writes if w.collection] if code == VALID else []
            if self._db is not None:
                self._store(block, private)
            if code == VALID:
                self.world.apply(stub.writes, Height(number), stub.get_tx_id(), stub.get_tx_timestamp())
            self._append(block, private)
            self._new_block.notify_all()
            return self._statuses[stub.get_tx_id()]

    def _append(self, block: Block, private: list[Write]) -> None:
        self._blocks.append(block)
        self._private_values[block.number] = private
        for record in block.transactions:
            self._statuses.setdefault(
                record["tx_id"], CommitStatus(record["tx_id"], record["validation_code"], block.number)
            )

    # Events.

    def chaincode_events(
        self, chaincode_name: str, start_block: int | None, after_transaction_id: str | None
    ) -> "ChaincodeEvents":
        """As the Fabric gateway: a known `after_transaction_id` starts the stream at that transaction's block,
        skipping it and what precedes it there; otherwise at `start_block`, or at the next block committed."""
        with self._lock:
            located = self._statuses.get(after_transaction_id) if after_transaction_id else None
            if located is not None:
                return ChaincodeEvents(self, chaincode_name, located.block_number, after_transaction_id)
            return ChaincodeEvents(
                self, chaincode_name, len(self._blocks) if start_block is None else start_block, None
            )

    def wait_for_block(self, number: int, stream: "ChaincodeEvents") -> Block | None:
        """Block `number` once it exists; None when the stream or the ledger closes first."""
        with self._new_block:
            while number >= len(self._blocks) and not (stream.closed or self.closed):
                self._new_block.wait()
            return self._blocks[number] if number < len(self._blocks) else None

    def wake_streams(self) -> None:
        with self._new_block:
            self._new_block.notify_all()

    # Integrity.

    def verify_chain(self) -> int:
        """Checks that every block links to the one before and hashes to what it says, that every private value
        matches the hashes its block recorded, and that the state is what replaying the chain gives. Reads the
        SQLite file when there is one. Returns the number of blocks checked; raises LedgerIntegrityError."""
        with self._lock:
            blocks, private_values = (
                self._read_log() if self._db is not None else (list(self._blocks), dict(self._private_values))
            )
            replayed = self._replay(blocks, private_values)
            if replayed.public_state() != self.world.public_state():
                raise LedgerIntegrityError("the public state differs from what the block log replays to")
            for name in self.world.collections:
                if replayed.private_state(name) != self.world.private_state(name):
                    raise LedgerIntegrityError(f"collection {name} differs from what the block log replays to")
            return len(blocks)

    def _replay(self, blocks: list[Block], private_values: dict[int, list[Write]]) -> MemoryWorld:
        world = MemoryWorld(self._collections, chaincode_name=self.chaincode_name, channel_id=self.channel)
        previous = GENESIS_PREVIOUS_HASH
        for expected_number, block in enumerate(blocks):
            if block.number != expected_number:
                raise LedgerIntegrityError(f"block {expected_number} is missing (found block {block.number})")
            if block.previous_hash != previous:
                raise LedgerIntegrityError(f"block {block.number} does not link to block {block.number - 1}")
            if block_hash(block.number, block.previous_hash, block.transactions) != block.hash:
                raise LedgerIntegrityError(f"block {block.number}: its contents do not match its hash")
            previous = block.hash
            for record in block.transactions:
                if record["validation_code"] == VALID:
                    writes = _replay_writes(block.number, record, private_values.get(block.number, []))
                    world.apply(
                        writes, Height(block.number), record["tx_id"], datetime.fromisoformat(record["timestamp"])
                    )
        return world

    # Persistence.

    def _store(self, block: Block, private: list[Write]) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO blocks (number, previous_hash, hash, transactions) VALUES (?, ?, ?, ?)",
                (block.number, block.previous_hash, block.hash, _canonical(list(block.transactions)).decode()),
            )
            self._db.executemany(
                "INSERT INTO private_values (block, collection, key, value) VALUES (?, ?, ?, ?)",
                [(block.number, w.collection, w.key, w.value) for w in private],
            )

    def _read_log(self) -> tuple[list[Block], dict[int, list[Write]]]:
        blocks = [
            Block(number, previous_hash, tuple(json.loads(transactions)), hash_)
            for number, previous_hash, hash_, transactions in self._db.execute(
                "SELECT number, previous_hash, hash, transactions FROM blocks ORDER BY number"
            )
        ]
        private_values: dict[int, list[Write]] = {}
        for number, collection, key, value in self._db.execute(
            "SELECT block, collection, key, value FROM private_values ORDER BY block, collection, key"
        ):
            private_values.setdefault(number, []).append(Write(collection, key, value))
        return blocks, private_values

    def _load(self) -> None:
        blocks, private_values = self._read_log()
        self.world = self._replay(blocks, private_values)
        for block in blocks:
            self._append(block, private_values.get(block.number, []))

    def close(self) -> None:
        """Ends every event stream and closes the SQLite file."""
        with self._lock:
            self.closed = True
            self._new_block.notify_all()
            if self._db is not None:
                self._db.close()
                self._db = None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    number INTEGER PRIMARY KEY, previous_hash TEXT NOT NULL, hash TEXT NOT NULL, transactions TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS private_values (
    block INTEGER NOT NULL, collection TEXT NOT NULL, key TEXT NOT NULL, value BLOB,
    PRIMARY KEY (block, collection, key));
"""


def _canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _sha256(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def _transaction_record(stub: MemoryStub, result: bytes, code: str, chaincode_name: str) -> dict:
    """What a block says of a transaction: everything public, private writes only as hashes."""
    writes = sorted(stub.writes, key=lambda w: (w.collection, w.key))
    identity = stub.get_client_identity()
    return {
        "tx_id": stub.get_tx_id(),
        "timestamp": stub.get_tx_timestamp().isoformat(),
        "creator": {"msp_id": identity.msp_id, "id": identity.id, "certificate_sha256": _sha256(stub.get_creator())},
        "chaincode": chaincode_name,
        "args": [_b64(arg) for arg in stub.get_args()],
        "writes": [{"key": w.key, "value": _b64(w.value)} for w in writes if not w.collection],
        "private_writes": [
            {"collection": w.collection, "key_hash": _sha256(w.key.encode()), "value_hash": _sha256(w.value)}
            for w in writes
            if w.collection
        ],
        "event": {"name": stub.event.name, "payload": _b64(stub.event.payload)} if stub.event else None,
        "result": _b64(result),
        "validation_code": code,
    }


def _replay_writes(number: int, record: dict, private_values: list[Write]) -> list[Write]:
    writes = [
        Write("", w["key"], None if w["value"] is None else base64.b64decode(w["value"])) for w in record["writes"]
    ]
    values = {(w.collection, _sha256(w.key.encode())): w for w in private_values}
    for hashed in record["private_writes"]:
        write = values.get((hashed["collection"], hashed["key_hash"]))
        if write is None or _sha256(write.value) != hashed["value_hash"]:
            raise LedgerIntegrityError(
                f"block {number}: a private value of collection {hashed['collection']} "
                f"does not match the hash the block recorded"
            )
        writes.append(write)
    return writes


class EmbeddedGateway:
    """A connection to the embedded ledger as one identity (.msp_id, .credentials); shaped as gateway.client's
    Gateway. Closing it ends the event streams opened through it."""

    def __init__(self, identity, ledger: EmbeddedLedger):
        if not (getattr(identity, "msp_id", None) and getattr(identity, "credentials", None)):
            raise TypeError(f"an identity with msp_id and credentials (a PEM certificate), not {identity!r}")
        self.identity = identity
        self.ledger = ledger
        self.event_streams: list[ChaincodeEvents] = []  # closed with the gateway

    def get_network(self, name: str) -> "Network":
        return Network(self, name)

    def close(self) -> None:
        for stream in self.event_streams:
            stream.close()
        self.event_streams.clear()

    def __enter__(self) -> "EmbeddedGateway":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class Network:
    def __init__(self, gateway: EmbeddedGateway, name: str):
        self.gateway = gateway
        self.name = name

    def get_contract(self, chaincode_name: str, contract_name: str | None = None) -> "Contract":
        return Contract(self, chaincode_name, contract_name)

    def get_chaincode_events(
        self, chaincode_name: str, start_block: int | None = None, after_transaction_id: str | None = None
    ) -> "ChaincodeEvents":
        """Events of `chaincode_name`'s valid transactions, in ledger order, until closed: from the next block
        committed, or from `start_block`; with `after_transaction_id` (a checkpoint), from that transaction's
        block, skipping it and the transactions before it in that block."""
        ledger = self.gateway.ledger
        if self.name != ledger.channel:
            raise GatewayError(_unknown_channel(self.name, ledger))
        stream = ledger.chaincode_events(chaincode_name, start_block, after_transaction_id)
        self.gateway.event_streams.append(stream)
        return stream


class Contract:
    """A chaincode (or one contract in it) on the embedded ledger, shaped as gateway.client's Contract."""

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
        """`endorsing_organizations` (MSP ids): whose peers run the transaction (default: the caller's org)."""
        function = f"{self.contract_name}:{name}" if self.contract_name else name
        arguments = [function.encode()] + [as_bytes(arg, f"argument {i}") for i, arg in enumerate(args, 1)]
        transient = {key: as_bytes(value, f"transient {key!r}") for key, value in (transient or {}).items()}
        return Proposal(self, arguments, transient, list(endorsing_organizations or ()))

    def evaluate(
        self,
        name: str,
        *args: str | bytes,
        transient: dict[str, str | bytes] | None = None,
        endorsing_organizations: list[str] | None = None,
    ) -> bytes:
        """The result of running `name`, recording nothing: `new_proposal(...).evaluate()`. Raises GatewayError
        with the chaincode's message when it refuses."""
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
        """Runs `name` as a transaction and returns its result once committed: `new_proposal(...).endorse()
        .submit()` then the commit status. Raises EndorseError (the chaincode's message when it refuses) or
        CommitError (e.g. MVCC_READ_CONFLICT)."""
        submitted = (
            self.new_proposal(name, *args, transient=transient, endorsing_organizations=endorsing_organizations)
            .endorse()
            .submit()
        )
        status = submitted.status()
        if not status.successful:
            raise CommitError(status.transaction_id, status.code)
        return submitted.result


class Proposal:
    """A transaction proposal: evaluate it (a query) or endorse it (a transaction)."""

    def __init__(
        self, contract: Contract, args: list[bytes], transient: dict[str, bytes], endorsing_organizations: list[str]
    ):
        self.contract = contract
        self.args = args
        self.transient = transient
        self.endorsing_organizations = endorsing_organizations
        identity = contract.network.gateway.identity
        self.transaction_id, _ = new_tx_id(serialized_identity(identity.msp_id, identity.credentials))
        self.timestamp = datetime.now(timezone.utc)

    def evaluate(self, timeout: float | None = None) -> bytes:
        """The chaincode's result from one peer (of the first endorsing organisation, else the caller's); nothing
        is recorded. Raises GatewayError. (`timeout` is the client's; in process nothing waits.)"""
        problem = self._problem()
        if problem:
            raise GatewayError(problem)
        endorsement = self._ledger.endorse(
            self._identity, self.args, self.transient, self._peers[:1], self.transaction_id, self.timestamp
        )
        if not endorsement.response.ok:
            raise GatewayError(endorsement.response.message, _details(endorsement), refused=True)
        return endorsement.response.payload

    def endorse(self, timeout: float | None = None) -> "Transaction":
        """Simulated by the peer of each endorsing organisation, ready to submit. Raises EndorseError."""
        problem = self._problem()
        if problem:
            raise EndorseError(problem, self.transaction_id)
        endorsement = self._ledger.endorse(
            self._identity, self.args, self.transient, self._peers, self.transaction_id, self.timestamp
        )
        if not endorsement.response.ok:
            raise EndorseError(endorsement.response.message, self.transaction_id, _details(endorsement), refused=True)
        return Transaction(self._ledger, endorsement)

    @property
    def _ledger(self) -> EmbeddedLedger:
        return self.contract.network.gateway.ledger

    @property
    def _identity(self):
        return self.contract.network.gateway.identity

    @property
    def _peers(self) -> list[str]:
        return self.endorsing_organizations or [self._identity.msp_id]

    def _problem(self) -> str | None:
        """Why no peer would run this proposal: an unknown channel or chaincode (as the gateway words them)."""
        channel, chaincode = self.contract.network.name, self.contract.chaincode_name
        if channel != self._ledger.channel:
            return _unknown_channel(channel, self._ledger)
        if chaincode != self._ledger.chaincode_name:
            return (
                f"make sure the chaincode {chaincode} has been successfully defined on channel {channel} and "
                f"try again: chaincode {chaincode} not found"
            )
        return None


class Transaction:
    """An endorsed transaction: its result is known, it is not yet ordered."""

    def __init__(self, ledger: EmbeddedLedger, endorsement: Endorsement):
        self._ledger = ledger
        self._endorsement = endorsement
        self.transaction_id = endorsement.tx_id
        self.result = endorsement.response.payload

    def submit(self, timeout: float | None = None) -> "SubmittedTransaction":
        """Orders and commits the transaction (in process, at once)."""
        self._ledger.order(self._endorsement)
        return SubmittedTransaction(self._ledger, self.transaction_id, self.result)


class SubmittedTransaction:
    def __init__(self, ledger: EmbeddedLedger, transaction_id: str, result: bytes):
        self._ledger = ledger
        self.transaction_id = transaction_id
        self.result = result

    def status(self, timeout: float | None = None) -> CommitStatus:
        return self._ledger.commit_status(self.transaction_id)


class ChaincodeEvents:
    """An open stream of chaincode events: iterate it (it waits for new blocks); close it, or use `with`, to stop."""

    def __init__(self, ledger: EmbeddedLedger, chaincode_name: str, start_block: int, skip_through: str | None):
        self._ledger = ledger
        self._chaincode_name = chaincode_name
        self._next_block = start_block
        self._skip_through = skip_through
        self._pending: deque[ChaincodeEvent] = deque()
        self.closed = False

    def __iter__(self) -> "ChaincodeEvents":
        return self

    def __next__(self) -> ChaincodeEvent:
        while not self._pending:
            block = self._ledger.wait_for_block(self._next_block, self)
            if block is None or self.closed:
                raise StopIteration
            self._next_block += 1
            for record in block.transactions:
                if self._skip_through:
                    if record["tx_id"] == self._skip_through:
                        self._skip_through = None
                    continue
                event = record["event"]
                if event and record["validation_code"] == VALID and record["chaincode"] == self._chaincode_name:
                    self._pending.append(
                        ChaincodeEvent(
                            block.number,
                            record["tx_id"],
                            record["chaincode"],
                            event["name"],
                            base64.b64decode(event["payload"]),
                        )
                    )
        return self._pending.popleft()

    def close(self) -> None:
        self.closed = True
        self._pending.clear()
        self._ledger.wake_streams()

    def __enter__(self) -> "ChaincodeEvents":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _details(endorsement: Endorsement) -> tuple[tuple[str, str, str], ...]:
    """What gateway.client reports per peer: (address, msp_id, "chaincode response <status>, <message>")."""
    response = endorsement.response
    return (
        (
            f"embedded:{endorsement.peer_msp_id}",
            endorsement.peer_msp_id,
            f"chaincode response {response.status}, {response.message}",
        ),
    )


def _unknown_channel(name: str, ledger: EmbeddedLedger) -> str:
    return f"channel '{name}' not found (the embedded ledger serves '{ledger.channel}')"
