"""The DR client: commands, consumers, declarations (the detail privately, then the public summary), meter
readings, aggregates, the comparison of the ledger's aggregates (BC) with the aggregation system's (AS), settlement.

    dr = DrClient(gateway.get_network("grid"), topology.organisation("RA1"))
    summary, tx_ids = dr.declare("1", declaration)
    comparison = dr.compare("1", aggregation_system)      # anything with aggregates_of(command, orgs)

Times are JST minute labels, energy whole Wh, as on the ledger.
"""

import base64
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from chaincode.contracts.meter_attestation import reading_statement
from clients.contract import ContractClient, eventually
from consortium.units import minute_index
from gateway.errors import CommitError, CommitStatusError, EndorseError, SubmitError

REGISTRATION_CHUNK = 5000  # consumers per register_consumers transaction


@dataclass(frozen=True)
class Reading:
    """One smart-meter reading: the consumer's RA, the consumer, its JST minute, whole Wh."""

    ra: str
    consumer: str
    minute: str
    wh: int

    def as_json(self) -> dict:
        return {"consumer": self.consumer, "minute": self.minute, "wh": self.wh}


class Signing(Protocol):
    """What signs for a meter: a DER ECDSA signature over SHA-256 of the message (gateway.signing.Signer)."""

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True)
class Meter:
    """A consumer's smart meter: its certificate (PEM, issued by the meter operator) and its key's signer."""

    consumer: str
    certificate: bytes
    signer: Signing

    def signature_over(self, command_id: str, readings: Iterable[Reading]) -> dict:
        """The entry of transient "meter_signatures" for this meter's readings of a batch: its certificate and its
        signature over the readings' statement (chaincode.contracts.meter_attestation.reading_statement)."""
        statement = reading_statement(command_id, self.consumer, [(r.minute, r.wh) for r in readings])
        return {
            "certificate": self.certificate.decode(),
            "signature": base64.b64encode(self.signer.sign(statement)).decode(),
        }


class MeterSource(Protocol):
    """Where a relaying RA's client finds each consumer's meter (network.crypto.MeterOperator)."""

    def meter(self, consumer: str) -> Meter: ...


def meter_signatures(command_id: str, readings: list[Reading], meters: MeterSource) -> dict:
    """transient "meter_signatures" for a batch: each consumer's readings signed by its meter."""
    by_consumer: dict[str, list[Reading]] = {}
    for reading in readings:
        by_consumer.setdefault(reading.consumer, []).append(reading)
    return {consumer: meters.meter(consumer).signature_over(command_id, own) for consumer, own in by_consumer.items()}


def slot_count(command: dict) -> int:
    """How many slots a command's window has (its minutes, both ends included, per slot length)."""
    return (minute_index(command["end"]) - minute_index(command["start"]) + 1) // command["granularity_minutes"]


def uniform_declaration(command: dict, consumers: list[str], expected_wh: int, baseline_wh: int | None) -> dict:
    """A declaration of the same reduction every slot for each consumer; with `baseline_wh`, the same declared
    baseline every slot (method "declared"), otherwise the mean of the minutes before the window."""
    slots = slot_count(command)
    entry = {"expected_wh": [expected_wh] * slots}
    if baseline_wh is not None:
        entry["baseline_wh"] = [baseline_wh] * slots
    method = "mean-before" if baseline_wh is None else "declared"
    return {"baseline_method": method, "consumers": {c: entry for c in consumers}}


class AggregateSource(Protocol):
    """What the comparison asks of the aggregation system (sim.aggregation_system.AggregationSystem offers it)."""

    def aggregates_of(self, command_id: str, orgs: list[str]) -> dict[str, dict[str, int]]:
        """{org: {minute: Wh}} for each of `orgs`; minutes without a reading are absent."""
        ...


@dataclass(frozen=True)
class ComparedMinute:
    """One AC's or RA's minute of a command: the ledger's aggregate (BC) beside the aggregation system's (AS)."""

    org: str
    level: str  # ac | ra
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
        """Equal Wh, or no AS figure where the ledger has no reading either."""
        return self.as_wh == self.bc_wh or (self.as_wh is None and self.readings == 0)


@dataclass(frozen=True)
class Comparison:
    command: str
    rows: list[ComparedMinute]

    @property
    def mismatches(self) -> int:
        return sum(not row.match for row in self.rows)

    def as_json(self) -> dict:
        rows = [
            {
                "org": r.org,
                "level": r.level,
                "command": r.command,
                "minute": r.minute,
                "bc_wh": r.bc_wh,
                "as_wh": r.as_wh,
                "match": r.match,
            }
            for r in self.rows
        ]
        return {"command": self.command, "unit": "Wh", "rows": rows, "mismatches": self.mismatches}


def comparison_of(bc: dict, system: AggregateSource | None) -> Comparison:
    """One row per org and minute the ledger returned (`bc`: the dr contract's get_aggregates result). The AS is
    asked only for those organisations, so the comparison never shows more than the ledger lets the caller see;
    without an AS (None) every AS figure is missing."""
    orgs = [aggregate["org"] for aggregate in bc["aggregates"]]
    theirs = system.aggregates_of(bc["command"], orgs) if system is not None else {}
    rows = [
        ComparedMinute(
            aggregate["org"],
            aggregate["level"],
            bc["command"],
            minute["minute"],
            minute["wh"],
            theirs.get(aggregate["org"], {}).get(minute["minute"]),
            minute["readings"],
        )
        for aggregate in bc["aggregates"]
        for minute in aggregate["minutes"]
    ]
    return Comparison(bc["command"], rows)


def submit_retried(
    client: ContractClient,
    name: str,
    *args: str,
    transient: dict,
    attempts: int,
    already_recorded: Callable[[EndorseError], dict],
    resume: bool = False,
) -> dict:
    """One private transaction of a batch the contract keys (readings, history), tried again up to `attempts` times
    when it lost an MVCC race (it changed nothing) or its fate is unknown (the orderer or the commit status did not
    answer). A refusal as "already recorded" after such an attempt, or with `resume`, may be the batch's own first
    attempt: already_recorded(refusal) returns the summary when the ledger holds exactly the batch, else raises."""
    for attempt in range(1, attempts + 1):
        try:
            return client.submit(name, *args, transient=transient, private=True)
        except CommitError as error:
            if error.code != "MVCC_READ_CONFLICT" or attempt == attempts:
                raise
        except (SubmitError, CommitStatusError):
            if attempt == attempts:
                raise
            resume = True  # it may have committed unseen: a refusal as "already recorded" may be our own
        except EndorseError as error:
            if "already recorded" not in str(error) or not resume:
                raise
            return already_recorded(error)
    raise AssertionError("attempts must be at least 1")


class DrClient(ContractClient):
    """The dr contract as one organisation (or one smart meter) uses it. `meters`: where an RA's client finds the
    meters whose signatures its relayed readings carry (None: it sends none, as a meter posting its own)."""

    contract_name = "dr"
    meters: MeterSource | None = None

    def issue(self, command: dict) -> dict:
        """Issues a DR command (the TSO) for a window still ahead; returns the command as recorded, its declare_by
        and readings_due included (the ledger's defaults where `command` gives none)."""
        return self.submit("issue_command", json.dumps(command))

    def commands(self) -> list[dict]:
        return self.evaluate("list_commands")

    def command(self, command_id: str) -> dict:
        return self.evaluate("get_command", command_id)

    def wait_for_command(self, command_id: str, seconds: float = 30.0) -> dict:
        """The command once the caller's own peer has it (the issuer's peer commits it first)."""
        return eventually(
            lambda: self.command(command_id), f"command {command_id} reaching {self.org.name}'s peer", seconds
        )

    def register_consumers(self, consumers: list[str]) -> None:
        """Registers those of `consumers` the caller (an RA) does not have yet, e.g. simulated ones."""
        known = set(self.evaluate("list_consumers").get(self.org.name, []))
        new = [c for c in consumers if c not in known]
        for start in range(0, len(new), REGISTRATION_CHUNK):
            chunk = new[start : start + REGISTRATION_CHUNK]
            self.submit("register_consumers", transient={"consumers": json.dumps(chunk)}, private=True)

    def declare(self, command_id: str, declaration: dict, seconds: float = 20.0) -> tuple[dict, list[str]]:
        """An RA's declaration: the detail privately, then its summary on the channel (see the dr contract).
        Returns (the published summary, [declare tx id, publish tx id]).

        The publication's endorsers (a majority of the peers) each check the private summary's hash, so each must
        have committed the declaration first: a peer a moment behind says "has not declared", and the publication
        is tried again, for a bounded time."""
        summary, declare_tx = self.transact(
            "declare", command_id, transient={"declaration": json.dumps(declaration)}, private=True
        )
        deadline = time.monotonic() + seconds
        while True:
            try:
                published, publish_tx = self.transact("publish_declaration", command_id, json.dumps(summary))
                return published, [declare_tx, publish_tx]
            except EndorseError as error:
                if "has not declared" not in str(error) or time.monotonic() > deadline:
                    raise
            time.sleep(0.3)

    def post_readings(self, command_id: str, readings: list[Reading], attempts: int = 3, resume: bool = False) -> dict:
        """One post_readings transaction, the readings signed by their meters when the client has `meters` (an RA
        relaying them); the readings travel in transient data to members of the RA's collection
        only: the poster's own peer and its AC's (or the TSO's), both of which must endorse it (the collection's
        policy), so no other organisation ever receives them and the RA's peer cannot record them alone. A
        transaction that lost an MVCC race (another one wrote the same consumer-hour first) changed nothing and is
        tried again, up to `attempts` times; so is one whose fate is unknown (the orderer or the commit status did
        not answer).

        Posting is idempotent, so a simulator killed and started again resumes without losing or double-posting:
        the contract keys a reading by (command, consumer, minute) and refuses one it already holds. When a batch
        is refused as "already recorded" after an attempt whose fate is unknown, or with `resume` (a simulator run
        again over the same readings), its readings are read back from the poster's own peer; if the ledger holds
        exactly them the batch counts as posted, with "already_recorded": true. Otherwise the refusal stands: a
        person posting a reading twice is told so, and a recorded minute is never overwritten."""
        transient = {"readings": json.dumps([r.as_json() for r in readings], separators=(",", ":"))}
        if self.meters is not None:
            transient["meter_signatures"] = json.dumps(meter_signatures(command_id, readings, self.meters))
        return submit_retried(
            self,
            "post_readings",
            command_id,
            transient=transient,
            attempts=attempts,
            already_recorded=lambda refusal: self._already_recorded(command_id, readings, refusal),
            resume=resume,
        )

    def readings(self, consumer: str, command_id: str) -> dict:
        return self.evaluate("get_readings", consumer, command_id)

    def aggregates(self, command_id: str, org: str = "") -> dict:
        """BC aggregates per AC and RA (or of `org` only) and minute, of those the caller may see."""
        return self.evaluate("get_aggregates", command_id, org)

    def compare(self, command_id: str, system: AggregateSource | None) -> Comparison:
        """The caller's BC aggregates of a command beside the aggregation system's."""
        return comparison_of(self.aggregates(command_id), system)

    def settle(self, command_id: str) -> dict:
        """Settles a command once its readings are due (the TSO): performance per slot and reward per RA and AC,
        frozen. Its record is public, so the chaincode's majority endorses it."""
        return self.submit("settle", command_id)

    def settlement(self, command_id: str) -> dict:
        return self.evaluate("get_settlement", command_id)

    def _already_recorded(self, command_id: str, readings: list[Reading], refusal: Exception) -> dict:
        """The summary of a batch the ledger already holds exactly, read back consumer by consumer; else the
        refusal."""
        recorded: dict[tuple[str, str], int] = {}
        for consumer in sorted({r.consumer for r in readings}):
            shown = self.readings(consumer, command_id)
            recorded.update({(consumer, r["minute"]): r["wh"] for r in shown["readings"]})
        if any(recorded.get((r.consumer, r.minute)) != r.wh for r in readings):
            raise refusal
        minutes = sorted(r.minute for r in readings)
        return {
            "command": command_id,
            "ra": readings[0].ra,
            "readings": len(readings),
            "first_minute": minutes[0],
            "last_minute": minutes[-1],
            "already_recorded": True,
        }
