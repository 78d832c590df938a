"""The TSO's comparison of results (seed figure 6): the ledger's aggregates (BC) beside the aggregation system's
own (AS), per AC and RA, command, date and minute, with mismatches flagged, filtered, as rows, CSV and a chart.

BC figures come from the ledger as the signed-in account; AS figures are read from the AS simulator's store only
for the organisations the ledger returned, so the comparison never shows more than the ledger lets that account
see. The match rule is `gridledger dr compare`'s: equal Wh, or no AS figure where the ledger has no reading.
"""

import csv
import io
import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path


@dataclass(frozen=True)
class Row:
    org: str
    level: str
    command: str
    minute: str  # JST "YYYY-MM-DDTHH:MM"
    bc_wh: int
    as_wh: int | None
    readings: int

    @property
    def date(self) -> str:
        return self.minute[:10]

    @property
    def time(self) -> str:
        return self.minute[11:]

    @property
    def match(self) -> bool:
        return self.as_wh == self.bc_wh or (self.as_wh is None and self.readings == 0)


@dataclass(frozen=True)
class OrgSummary:
    org: str
    level: str
    minutes: int
    bc_wh: int
    as_wh: int
    mismatches: int


def kwh(wh: int | None) -> str:
    """Wh as kWh with three decimals ("4.000"); "–" for no figure."""
    return "–" if wh is None else f"{Decimal(wh) / 1000:,.3f}"


def as_aggregates(path: Path | None, command_id: str, orgs: list[str]) -> dict[str, dict[str, int]] | None:
    """The AS aggregates of `orgs` for a command: {org: {minute: Wh}}; None when the AS has no store. Opened
    read-only: the web never writes the aggregation system's data."""
    if path is None or not Path(path).exists():
        return None
    figures: dict[str, dict[str, int]] = {org: {} for org in orgs}
    if not orgs:
        return figures
    connection = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    try:
        marks = ",".join("?" * len(orgs))
        for org, minute, wh in connection.execute(
            f"SELECT org, minute, wh FROM as_aggregates WHERE command = ? AND org IN ({marks})", (command_id, *orgs)
        ):
            figures[org][minute] = wh
    except sqlite3.OperationalError:  # the store exists but has no tables yet
        return figures
    finally:
        connection.close()
    return figures


def rows_of(bc: dict, as_figures: dict[str, dict[str, int]] | None) -> list[Row]:
    """One row per org and minute the ledger returned (`bc` is the dr contract's get_aggregates result)."""
    rows = []
    for aggregate in bc["aggregates"]:
        theirs = (as_figures or {}).get(aggregate["org"], {})
        for minute in aggregate["minutes"]:
            rows.append(
                Row(
                    aggregate["org"],
                    aggregate["level"],
                    bc["command"],
                    minute["minute"],
                    minute["wh"],
                    theirs.get(minute["minute"]),
                    minute["readings"],
                )
            )
    return rows


def summaries(rows: list[Row]) -> list[OrgSummary]:
    by_org: dict[str, list[Row]] = {}
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


def filtered(rows: list[Row], org: str = "", date: str = "", mismatches_only: bool = False) -> list[Row]:
    return [
        r
        for r in rows
        if (not org or r.org == org) and (not date or r.date == date) and (not mismatches_only or not r.match)
    ]


CSV_HEADER = ("org", "level", "command", "date", "minute", "bc_kwh", "as_kwh", "readings", "match")


def to_csv(rows: list[Row]) -> str:
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
                f"{Decimal(r.bc_wh) / 1000:.3f}",
                "" if r.as_wh is None else f"{Decimal(r.as_wh) / 1000:.3f}",
                r.readings,
                "yes" if r.match else "MISMATCH",
            )
        )
    return out.getvalue()


def to_json(rows: list[Row]) -> list[dict]:
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
