"""The TSO's comparison of results (seed figure 6) as the web shows it: the rows of clients.dr's comparison (the
ledger's aggregates, BC, beside the aggregation system's, AS) per AC and RA, command, date and minute, summarised,
filtered, as CSV and JSON; and the aggregation system's store, opened for reading only.

BC figures come from the ledger as the signed-in account, and the AS is asked only for the organisations the ledger
returned, so the comparison never shows more than the ledger lets that account see.
"""

import csv
import io
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from clients.dr import ComparedMinute
from consortium.units import kwh
from sim.aggregation_system import AggregationSystem


@contextmanager
def aggregation_system(path: Path | None):
    """The AS store at `path` opened read-only (the web never writes the AS's data), closed afterwards; None
    when there is no store."""
    if path is None or not Path(path).exists():
        yield None
        return
    system = AggregationSystem(path, read_only=True)
    try:
        yield system
    finally:
        system.close()


@dataclass(frozen=True)
class OrgSummary:
    org: str
    level: str
    minutes: int
    bc_wh: int
    as_wh: int
    mismatches: int


def summaries(rows: list[ComparedMinute]) -> list[OrgSummary]:
    by_org: dict[str, list[ComparedMinute]] = {}
    for row in rows:
        by_org.setdefault(row.org, []).append(row)
    return [
        OrgSummary(
            org,
            part[0].level,
            len(part),
            sum(r.bc_wh for r in part),
            sum(r.as_wh or 0 for r in part),
            sum(not r.match for r in part),
        )
        for org, part in by_org.items()
    ]


def filtered(
    rows: list[ComparedMinute], org: str = "", date: str = "", mismatches_only: bool = False
) -> list[ComparedMinute]:
    return [
        r
        for r in rows
        if (not org or r.org == org) and (not date or r.date == date) and (not mismatches_only or not r.match)
    ]


CSV_HEADER = ("org", "level", "command", "date", "minute", "bc_kwh", "as_kwh", "readings", "match")


def to_csv(rows: list[ComparedMinute]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for r in rows:
        writer.writerow(
            (
                r.org,
                r.level,
                r.command,
                r.date,
                r.time,
                kwh(r.bc_wh),
                kwh(r.as_wh, none=""),
                r.readings,
                "yes" if r.match else "MISMATCH",
            )
        )
    return out.getvalue()


def to_json(rows: list[ComparedMinute]) -> list[dict]:
    return [
        {
            "org": r.org,
            "level": r.level,
            "command": r.command,
            "date": r.date,
            "minute": r.time,
            "bc_wh": r.bc_wh,
            "as_wh": r.as_wh,
            "readings": r.readings,
            "match": r.match,
        }
        for r in rows
    ]
