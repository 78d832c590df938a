"""The VTN's own records, in an SQLite file beside its certificates: the VENs registered (each bound to one RA
and one certificate fingerprint) and every VEN's answer to every event with what the ledger said of it. Nothing
here is a ledger fact: the ledger's declarations and readings are read from the ledger each time."""

import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vens (
    ven_id TEXT PRIMARY KEY, ra TEXT NOT NULL, ven_name TEXT NOT NULL, fingerprint TEXT NOT NULL UNIQUE,
    registration_id TEXT NOT NULL, registered_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS opts (
    command TEXT NOT NULL, ven_id TEXT NOT NULL, ra TEXT NOT NULL, opt_type TEXT NOT NULL, status TEXT NOT NULL,
    at TEXT NOT NULL, PRIMARY KEY (command, ven_id));
CREATE TABLE IF NOT EXISTS telemetry (
    command TEXT NOT NULL, ra TEXT NOT NULL, consumer TEXT NOT NULL, minute TEXT NOT NULL, wh INTEGER NOT NULL,
    ven_id TEXT NOT NULL, PRIMARY KEY (command, consumer, minute));
"""


class VtnStore:
    def __init__(self, path: str | Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def register(self, ra: str, ven_name: str, fingerprint: str) -> tuple[str, str]:
        """(ven_id, registration_id) of the VEN with this certificate: the same again for a VEN registering anew
        with the same certificate, a new pair otherwise."""
        with self._lock, self._db:
            row = self._db.execute(
                "SELECT ven_id, registration_id, ra FROM vens WHERE fingerprint = ?", (fingerprint,)
            ).fetchone()
            if row is not None and row[2] == ra:
                return row[0], row[1]
            ven_id = f"{ra.lower()}-ven-{uuid.uuid4().hex[:12]}"
            registration_id = uuid.uuid4().hex
            self._db.execute(
                "INSERT INTO vens VALUES (?, ?, ?, ?, ?, ?)",
                (ven_id, ra, ven_name, fingerprint, registration_id, _now()),
            )
            return ven_id, registration_id

    def ven(self, ven_id: str) -> dict | None:
        row = self._db.execute(
            "SELECT ven_id, ra, ven_name, fingerprint, registration_id FROM vens WHERE ven_id = ?", (ven_id,)
        ).fetchone()
        if row is None:
            return None
        return dict(zip(("ven_id", "ra", "ven_name", "fingerprint", "registration_id"), row, strict=True))

    def vens(self) -> list[dict]:
        ids = [row[0] for row in self._db.execute("SELECT ven_id FROM vens ORDER BY registered_at")]
        return [v for v in (self.ven(i) for i in ids) if v is not None]

    def cancel(self, ven_id: str) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM vens WHERE ven_id = ?", (ven_id,))

    def record_opt(self, command: str, ven_id: str, ra: str, opt_type: str, status: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO opts VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (command, ven_id) DO UPDATE SET "
                "opt_type = excluded.opt_type, status = excluded.status, at = excluded.at",
                (command, ven_id, ra, opt_type, status, _now()),
            )

    def opts(self, command: str | None = None) -> list[dict]:
        rows = self._db.execute(
            "SELECT command, ven_id, ra, opt_type, status FROM opts WHERE ? IS NULL OR command = ? ORDER BY at",
            (command, command),
        )
        keys = ("command", "ven_id", "ra", "opt_type", "status")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def record_telemetry(self, command: str, ven_id: str, readings) -> int:
        """Keeps what a VEN reported (the first value of each consumer-minute); returns how many were new."""
        with self._lock, self._db:
            return sum(
                self._db.execute(
                    "INSERT OR IGNORE INTO telemetry VALUES (?, ?, ?, ?, ?, ?)",
                    (command, r.ra, r.consumer, r.minute, r.wh, ven_id),
                ).rowcount
                for r in readings
            )

    def close(self) -> None:
        self._db.close()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
