"""The embedded ledger's engine: one channel's world state, blocks and hash chain, in process and optionally in SQLite.

gateway.embedded puts the Gateway interface on it; this module endorses, orders and commits, keeps the chain and
verifies it. It needs neither Fabric nor its generated protobufs.

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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaincode.shim import Collection, MemoryWorld, Response
from chaincode.shim.contract import ChaincodeInterface
from chaincode.shim.identity import CreatorIdentity
from chaincode.shim.memory import DUPLICATE_TXID, VALID, Height, MemoryStub, Write
from gateway.api import CommitStatus
from gateway.errors import EndorseError, GatewayError

GENESIS_PREVIOUS_HASH = "0" * 64

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


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
    timestamp: datetime  # the client's, as the proposal carries it
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
    member MSP ids} or {name: chaincode.shim.Collection}; `path`: an SQLite file to keep the ledger in; `clock`:
    the time its clients stamp their proposals with (default: the system clock). A test that replays fixed dates
    sets `clock` (or the attribute) to the moment of each step, and gives the contracts the same callable as their
    endorser's clock.
    """

    def __init__(
        self,
        chaincode: ChaincodeInterface,
        collections: Mapping[str, Iterable[str] | Collection] | None = None,
        path: str | Path | None = None,
        *,
        chaincode_name: str = "gridledger",
        channel: str = "grid",
        clock: Clock = system_clock,
    ):
        self.chaincode = chaincode
        self.clock = clock
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
        self._db: sqlite3.Connection | None = None
        if path is not None:
            db = sqlite3.connect(str(path), check_same_thread=False)
            try:
                db.executescript(_SCHEMA)
                self._load(db)
            except Exception:
                db.close()
                raise
            self._db = db

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
        identity: CreatorIdentity,
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
            endorsement = Endorsement(tx_id, timestamp, stub, self.chaincode.invoke(stub), peer_msp_id)
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
            transactions = (_transaction_record(endorsement, code, self.chaincode_name),)
            block = Block(number, previous_hash, transactions, block_hash(number, previous_hash, transactions))
            private = [w for w in stub.writes if w.collection] if code == VALID else []
            if self._db is not None:
                _store(self._db, block, private)
            if code == VALID:
                self.world.apply(stub.writes, Height(number), stub.get_tx_id(), endorsement.timestamp)
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

    def event_start(self, start_block: int | None, after_transaction_id: str | None) -> tuple[int, str | None]:
        """Where an event stream starts, as the Fabric gateway has it: a known `after_transaction_id` at that
        transaction's block, skipping it and what precedes it there (returned second); otherwise at
        `start_block`, or at the next block committed."""
        with self._lock:
            located = self._statuses.get(after_transaction_id) if after_transaction_id else None
            if located is not None:
                return located.block_number, after_transaction_id
            return (len(self._blocks) if start_block is None else start_block), None

    def wait_for_block(self, number: int, stopped: Callable[[], bool]) -> Block | None:
        """Block `number` once it exists; None when `stopped()` or the ledger closes first."""
        with self._new_block:
            while number >= len(self._blocks) and not (stopped() or self.closed):
                self._new_block.wait()
            return self._blocks[number] if number < len(self._blocks) else None

    def wake_waiters(self) -> None:
        """Has every wait_for_block look again at whether it is stopped."""
        with self._new_block:
            self._new_block.notify_all()

    # Integrity.

    def verify_chain(self) -> int:
        """Checks that every block links to the one before and hashes to what it says, that every private value
        matches the hashes its block recorded, and that the state is what replaying the chain gives. Reads the
        SQLite file when there is one. Returns the number of blocks checked; raises LedgerIntegrityError."""
        with self._lock:
            blocks, private_values = (
                _read_log(self._db) if self._db is not None else (list(self._blocks), dict(self._private_values))
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

    def _load(self, db: sqlite3.Connection) -> None:
        blocks, private_values = _read_log(db)
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


def _store(db: sqlite3.Connection, block: Block, private: list[Write]) -> None:
    with db:
        db.execute(
            "INSERT INTO blocks (number, previous_hash, hash, transactions) VALUES (?, ?, ?, ?)",
            (block.number, block.previous_hash, block.hash, _canonical(list(block.transactions)).decode()),
        )
        db.executemany(
            "INSERT INTO private_values (block, collection, key, value) VALUES (?, ?, ?, ?)",
            [(block.number, w.collection, w.key, w.value) for w in private],
        )


def _read_log(db: sqlite3.Connection) -> tuple[list[Block], dict[int, list[Write]]]:
    blocks = [
        Block(number, previous_hash, tuple(json.loads(transactions)), hash_)
        for number, previous_hash, hash_, transactions in db.execute(
            "SELECT number, previous_hash, hash, transactions FROM blocks ORDER BY number"
        )
    ]
    private_values: dict[int, list[Write]] = {}
    for number, collection, key, value in db.execute(
        "SELECT block, collection, key, value FROM private_values ORDER BY block, collection, key"
    ):
        private_values.setdefault(number, []).append(Write(collection, key, value))
    return blocks, private_values


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _sha256(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def _transaction_record(endorsement: Endorsement, code: str, chaincode_name: str) -> dict:
    """What a block says of a transaction: everything public, private writes only as hashes."""
    stub = endorsement.stub
    writes = sorted(stub.writes, key=lambda w: (w.collection, w.key))
    identity = stub.get_client_identity()
    return {
        "tx_id": stub.get_tx_id(),
        "timestamp": endorsement.timestamp.isoformat(),
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
        "result": _b64(endorsement.response.payload),
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
