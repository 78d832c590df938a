"""Stand-in for the existing (off-chain) aggregation system: receives the same meter data as the ledger, keeps
its own "AS readings" and "AS aggregates" per RA and AC, command and minute in an SQLite file of its own, and can
be told to get numbers wrong, so that the TSO's comparison has something to catch.

    system = AggregationSystem("run/aggregation-system.sqlite", topology)
    system.receive("1", readings)                    # sim.meters.Reading: ra, consumer, minute, wh
    system.aggregates("1", "AC1")                    # {"2021-01-14T00:00": 4000, ...} Wh per minute
    system.aggregates_of("1", ["AC1", "RA1"])        # {"AC1": {...}, "RA1": {...}}: what the comparison asks
    AggregationSystem(path, read_only=True)          # how the web reads it: it never writes the AS's data
    system.inject_discrepancy("1", "C1", "2021-01-14T00:02", 250)

With `discrepancy_rate`, each reading received is recorded wrong (1 to 50 Wh too high) with that probability,
drawn from `seed`. Readings are whole Wh, as on the ledger, and belong to a command; a reading received twice for
the same command is kept once.
"""

import random
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from consortium.topology import Topology

_SCHEMA = """
CREATE TABLE IF NOT EXISTS as_readings (
    command TEXT NOT NULL, ra TEXT NOT NULL, consumer TEXT NOT NULL, minute TEXT NOT NULL, wh INTEGER NOT NULL,
    PRIMARY KEY (command, consumer, minute));
CREATE TABLE IF NOT EXISTS as_aggregates (
    command TEXT NOT NULL, org TEXT NOT NULL, minute TEXT NOT NULL, wh INTEGER NOT NULL, readings INTEGER NOT NULL,
    PRIMARY KEY (command, org, minute));
"""


class AggregationSystem:
    def __init__(
        self,
        path: str | Path,
        topology: Topology | None = None,
        discrepancy_rate: float = 0.0,
        seed: int = 0,
        read_only: bool = False,
    ):
        """`topology` (whose AC each RA belongs to) is needed to receive readings, not to read a store that
        `read_only` opens as it is."""
        if not 0.0 <= discrepancy_rate <= 1.0:
            raise ValueError(f"discrepancy_rate must be between 0 and 1, got {discrepancy_rate}")
        self.topology = topology
        self.discrepancy_rate = discrepancy_rate
        self._draw = random.Random(seed)
        if read_only:
            self._db = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, check_same_thread=False)
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False)
            self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def receive(self, command_id: str, readings: Iterable) -> int:
        """Records readings (anything with ra, consumer, minute, wh) and adds them to the RA's and its AC's
        aggregates; returns how many were new."""
        added = 0
        with self._lock, self._db:
            for reading in readings:
                wh = reading.wh
                if self.discrepancy_rate and self._draw.random() < self.discrepancy_rate:
                    wh += self._draw.randint(1, 50)
                inserted = self._db.execute(
                    "INSERT OR IGNORE INTO as_readings (command, ra, consumer, minute, wh) VALUES (?, ?, ?, ?, ?)",
                    (command_id, reading.ra, reading.consumer, reading.minute, wh),
                ).rowcount
                if inserted:
                    self._add(command_id, reading.ra, reading.minute, wh, 1)
                    added += 1
        return added

    def inject_discrepancy(self, command_id: str, consumer: str, minute: str, delta_wh: int) -> None:
        """Makes the AS's reading of `consumer` at `minute` (and so its aggregates) off by `delta_wh`."""
        with self._lock, self._db:
            row = self._db.execute(
                "SELECT ra FROM as_readings WHERE command = ? AND consumer = ? AND minute = ?",
                (command_id, consumer, minute),
            ).fetchone()
            if row is None:
                raise KeyError(
                    f"the aggregation system has no reading of {consumer} at {minute} for command {command_id}"
                )
            self._db.execute(
                "UPDATE as_readings SET wh = wh + ? WHERE command = ? AND consumer = ? AND minute = ?",
                (delta_wh, command_id, consumer, minute),
            )
            self._add(command_id, row[0], minute, delta_wh, 0)

    def aggregates(self, command_id: str, org: str) -> dict[str, int]:
        """The AS aggregate of an RA or AC for a command: minute → Wh (minutes it has no reading for are absent)."""
        return self.aggregates_of(command_id, [org])[org]

    def aggregates_of(self, command_id: str, orgs: list[str]) -> dict[str, dict[str, int]]:
        """The AS aggregates of several RAs and ACs for a command, in one query: {org: {minute: Wh}}."""
        figures: dict[str, dict[str, int]] = {org: {} for org in orgs}
        if not orgs:
            return figures
        marks = ",".join("?" * len(orgs))
        try:
            rows = self._db.execute(
                f"SELECT org, minute, wh FROM as_aggregates WHERE command = ? AND org IN ({marks}) ORDER BY minute",
                (command_id, *orgs),
            ).fetchall()
        except sqlite3.OperationalError:  # a store opened read-only before anything created its tables
            return figures
        for org, minute, wh in rows:
            figures[org][minute] = wh
        return figures

    def readings(self, command_id: str, consumer: str) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT minute, wh FROM as_readings WHERE command = ? AND consumer = ? ORDER BY minute",
            (command_id, consumer),
        )
        return dict(rows.fetchall())

    def close(self) -> None:
        self._db.close()

    def _add(self, command_id: str, ra: str, minute: str, wh: int, count: int) -> None:
        for org in (ra, self.topology.organisation(ra).parent):
            self._db.execute(
                "INSERT INTO as_aggregates (command, org, minute, wh, readings) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (command, org, minute) DO UPDATE SET wh = wh + excluded.wh, "
                "readings = readings + excluded.readings",
                (command_id, org, minute, wh, count),
            )
