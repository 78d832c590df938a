"""What a peer's state database holds, read from its files on disk: every key of the channel (public state, private
values, private-data hashes) with its value and version, and the savepoint (the last block applied).

Read with network/fabric-build/tamper (Go, on the peer's own LevelDB library, built once into the cache). LevelDB
lets one process open a database: a stopped peer's is read in place; a running peer's from a snapshot taken
beside it (its immutable tables hard-linked, its manifest and journal copied), which LevelDB opens as it would
after a crash: whole write batches only, and Fabric writes each block's updates and the savepoint in one batch,
so the snapshot is the state after one block. A snapshot that caught a compaction half way is taken again.

Reading the files, not asking the chaincode, is what checks the stored state: the chaincode sees only the keys of
its own namespace it asks for, and no private-data hashes by range.
"""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from network import fabric

TOOL_INPUTS = (fabric.FABRIC_BUILD / "tamper" / "main.go", fabric.FABRIC_BUILD / "go.sum")
LOCKED = 3  # the tool's exit status when the database is open in a running peer
SNAPSHOT_ATTEMPTS = 5


class StateUnreadable(RuntimeError):
    """The peer's state database could not be read (no tool, no Go, no database, a snapshot that never held)."""


@dataclass(frozen=True)
class StateEntry:
    namespace: str  # gridledger, gridledger$$pRA1 (private values), gridledger$$hRA1 (their hashes), _lifecycle…
    key: bytes  # as stored: a private-data hash's key is the SHA-256 of the key
    value: bytes
    block: int  # the version: the block and transaction that wrote it
    tx: int
    metadata: bytes = b""


@dataclass(frozen=True)
class PeerState:
    savepoint: int | None  # the last block applied; None for a database that never applied one
    entries: tuple[StateEntry, ...]


def state_dir(run_root: Path, peer_name: str) -> Path:
    return run_root / "data" / peer_name / "ledgersData" / "stateLeveldb"


def state_tool() -> Path:
    """network/fabric-build/tamper, built once into the cache (keyed by its inputs) with the pinned module graph."""
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in TOOL_INPUTS)).hexdigest()[:12]
    binary = fabric.cache_root() / "tools" / f"tamper-{digest}"
    if binary.exists():
        return binary
    if shutil.which("go") is None:
        raise StateUnreadable(
            "reading a peer's state database needs the tamper tool, built with Go: `go` is not on PATH"
        )
    binary.parent.mkdir(parents=True, exist_ok=True)
    built = subprocess.run(
        ["go", "build", "-trimpath", "-o", str(binary), "./tamper"],
        cwd=fabric.FABRIC_BUILD,
        env=dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=readonly"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if built.returncode != 0:
        raise StateUnreadable(f"could not build the state reader: {built.stderr.strip()[-500:]}")
    return binary


def read_state(database: Path, channel: str, tool: Path | None = None) -> PeerState:
    """Every key of `channel` in the state database at `database`, stopped or running."""
    tool = tool or state_tool()
    if not (database / "CURRENT").exists():
        raise StateUnreadable(f"no state database in {database}")
    dumped = _dump(tool, database, channel)
    if dumped.returncode != LOCKED:
        return _parsed(dumped, database)
    failures = []
    for _ in range(SNAPSHOT_ATTEMPTS):
        with tempfile.TemporaryDirectory(prefix=".audit-snapshot-", dir=database.parent) as snapshot:
            try:
                _snapshot(database, Path(snapshot))
            except FileNotFoundError as error:  # a compaction removed a file between listing and linking it
                failures.append(str(error))
                continue
            dumped = _dump(tool, Path(snapshot), channel)
            if dumped.returncode == 0:
                return _parsed(dumped, database)
            failures.append(dumped.stderr.strip())
    raise StateUnreadable(f"no consistent snapshot of {database} in {SNAPSHOT_ATTEMPTS} tries: {failures[-1]}")


def _dump(tool: Path, database: Path, channel: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(tool), "-db", str(database), "-channel", channel, "-dump"], capture_output=True, timeout=600
    )


def _snapshot(database: Path, into: Path) -> None:
    """LevelDB's files as of now: the manifest and CURRENT first (they name the tables), then the tables
    (never rewritten: a hard link keeps one alive if a compaction removes it), then the journal."""
    names = sorted(os.listdir(database), key=lambda name: (not name.startswith(("CURRENT", "MANIFEST")), name))
    for name in names:
        if name in ("LOCK", "LOG", "LOG.old"):
            continue
        source = database / name
        if name.endswith((".ldb", ".sst")):
            try:
                os.link(source, into / name)
                continue
            except OSError as error:
                if isinstance(error, FileNotFoundError):
                    raise
        shutil.copyfile(source, into / name)


def _parsed(dumped: subprocess.CompletedProcess, database: Path) -> PeerState:
    if dumped.returncode != 0:
        raise StateUnreadable(f"could not read {database}: {dumped.stderr.decode(errors='replace').strip()}")
    lines = dumped.stdout.splitlines()
    head = json.loads(lines[0])["savepoint"]
    entries = []
    for line in lines[1:]:
        row = json.loads(line)
        entries.append(
            StateEntry(
                row["ns"],
                base64.b64decode(row["key"]),
                base64.b64decode(row["value"] or ""),
                row["block"],
                row["tx"],
                base64.b64decode(row.get("metadata") or ""),
            )
        )
    return PeerState(None if head is None else head["block"], tuple(entries))
