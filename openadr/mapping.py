"""How ledger facts and OpenADR 2.0b messages map onto each other: which RAs a VTN serves, which RA a VEN's
certificate belongs to, a DR command as an OpenADR event, an opt-in against the RA's declaration, and a VEN's
telemetry values as the RA's own per-minute figures. Pure functions: no ledger, no network.
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from openleadr import objects

from chaincode.contracts.dr_inputs import MAX_READING_WH
from clients.dr import Reading, slot_count
from consortium.topology import Organisation, Topology
from consortium.units import EPOCH, JST, minute_index

EVENT_PREFIX = "dr-"  # an OpenADR event id is the command's id behind this prefix
MARKET_CONTEXT = "http://grid.local/gridledger/dr"
SIGNAL_NAME = "SIMPLE"  # OpenADR's SIMPLE signal: every 2.0b VEN must understand it
SIGNAL_TYPE = "level"
SHED_LEVEL = 1  # SIMPLE level 1, "moderate": reduce load as declared
ENERGY_UNIT = "Wh"
# OpenADR's SI scale prefixes for an energy value; "none" is a plain Wh.
SCALES = {"none": 1, "k": 1000, "M": 1_000_000}


class RegistrationRefused(Exception):
    """A VEN may not register with this VTN; the message says why."""


def served_ras(topology: Topology, org: str) -> list[Organisation]:
    """The RAs whose VENs `org`'s VTN commands: every RA for the TSO, its own RAs for an AC (the topology's parent
    link); an RA commands nobody."""
    commander = topology.organisation(org)
    ras = [o for o in topology.organisations if o.role == "ra"]
    if commander.role == "tso":
        return ras
    if commander.role == "ac":
        return [ra for ra in ras if ra.parent == commander.name]
    raise ValueError(f"{org} is an RA: only the TSO and the ACs command VENs")


def ra_of_certificate(certificate: x509.Certificate, issuers: dict[str, x509.Name]) -> str | None:
    """The RA whose CA issued `certificate`, given each served RA's CA subject (`issuers`: RA → subject). TLS has
    already checked the signature against those CAs; the issuer's name says which of them signed."""
    for ra, subject in issuers.items():
        if certificate.issuer == subject:
            return ra
    return None


def registered_ra(ven_name: str, certificate_ra: str | None, served: list[str]) -> str:
    """The RA a VEN registers for: the one whose CA issued its certificate, which must also be the RA it names
    itself (`ven_name`), and one this VTN serves. Anything else is refused: a VEN cannot speak for another RA."""
    if certificate_ra is None:
        raise RegistrationRefused("the VEN's certificate was not issued by any served RA's CA")
    if certificate_ra not in served:
        raise RegistrationRefused(f"this VTN does not command {certificate_ra}")
    if ven_name != certificate_ra:
        raise RegistrationRefused(f"a VEN with {certificate_ra}'s certificate cannot register as {ven_name!r}")
    return certificate_ra


def event_id_of(command_id: str) -> str:
    return f"{EVENT_PREFIX}{command_id}"


def command_of_event(event_id: str) -> str | None:
    """The command id an event id names, or None for an event this VTN did not make."""
    return event_id[len(EVENT_PREFIX) :] if event_id.startswith(EVENT_PREFIX) else None


def moment_of(minute: str) -> datetime:
    """The UTC instant a JST minute label starts."""
    return EPOCH + timedelta(minutes=minute_index(minute))


def minute_of(moment: datetime) -> str:
    """The JST minute label of an instant (a naive one is taken as UTC, as OpenADR's wire format is)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(JST).strftime("%Y-%m-%dT%H:%M")


def targets(command: dict, ra: Organisation) -> bool:
    """Whether `command` asks `ra` to respond: it targets the RA's AC."""
    return ra.parent in command["target_acs"]


def event_of_command(command: dict, ven_id: str) -> objects.Event:
    """The OpenADR event for a DR command, addressed to one VEN: one SIMPLE level-1 interval per slot of its
    window, response required (the VEN opts in or out). The requested kW and the reward travel in the event's
    comment: OpenADR has no signal for a reward per kWh delivered."""
    slots = slot_count(command)
    minutes = command["granularity_minutes"]
    start = moment_of(command["start"])
    intervals = [
        objects.Interval(
            dtstart=start + timedelta(minutes=minutes * n),
            duration=timedelta(minutes=minutes),
            signal_payload=SHED_LEVEL,
        )
        for n in range(slots)
    ]
    return objects.Event(
        event_descriptor=objects.EventDescriptor(
            event_id=event_id_of(command["id"]),
            modification_number=0,
            market_context=MARKET_CONTEXT,
            event_status="far",
            vtn_comment=(
                f"gridledger DR command {command['id']}: {command['requested_kw']} kW from "
                f"{', '.join(command['target_acs'])}, {command['price_per_kwh']} hundredths of a yen per kWh"
            ),
        ),
        event_signals=[
            objects.EventSignal(intervals=intervals, signal_name=SIGNAL_NAME, signal_type=SIGNAL_TYPE, signal_id="shed")
        ],
        targets=[objects.Target(ven_id=ven_id)],
        active_period=objects.ActivePeriod(dtstart=start, duration=timedelta(minutes=minutes * slots)),
        response_required="always",
    )


def opt_status(opt_type: str, declared: bool) -> str:
    """What a VEN's answer to an event means on the ledger, where only the RA's own signed declaration counts:
    an opt-in is "confirmed" once the RA has declared (settlement follows the declaration), else it "awaits the
    declaration"; an opt-out beside a declaration is a "conflict" (the declaration still binds the RA)."""
    if opt_type == "optIn":
        return "confirmed" if declared else "awaiting declaration"
    if opt_type == "optOut":
        return "conflict: opted out but declared" if declared else "opted out"
    raise ValueError(f"an opt type is optIn or optOut, got {opt_type!r}")


@dataclass(frozen=True)
class TelemetryRefusal:
    """One reported value that does not become a figure, and why."""

    moment: object
    value: object
    reason: str


def readings_of_report(
    ra: str, consumer: str, values: list[tuple], scale: str = "none"
) -> tuple[list[Reading], list[TelemetryRefusal]]:
    """A VEN's telemetry for one resource (a consumer), (dtstart, energy) pairs, as the RA's figures: whole Wh per
    JST minute. A value must be finite, non-negative, at most MAX_READING_WH after its scale and whole Wh; a minute
    reported twice keeps its first value. What does not fit is returned as refusals, never rounded in."""
    multiplier = SCALES.get(scale)
    readings: dict[str, Reading] = {}
    refused = []
    for moment, value in values:
        reason = _value_problem(value, multiplier, scale)
        if reason is None and not isinstance(moment, datetime):
            reason = f"its time must be a datetime, got {moment!r}"
        if reason is not None:
            refused.append(TelemetryRefusal(moment, value, reason))
            continue
        minute = minute_of(moment)
        wh = int(value * multiplier)
        if minute in readings:
            if readings[minute].wh != wh:
                refused.append(TelemetryRefusal(moment, value, f"minute {minute} was already reported"))
            continue
        readings[minute] = Reading(ra, consumer, minute, wh)
    return sorted(readings.values(), key=lambda r: r.minute), refused


def _value_problem(value, multiplier: int | None, scale: str) -> str | None:
    if multiplier is None:
        return f"scale {scale!r} is not one of {', '.join(SCALES)}"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return f"the value must be a finite number, got {value!r}"
    wh = value * multiplier
    if wh != int(wh):
        return f"the value must be whole Wh, got {wh}"
    if not 0 <= wh <= MAX_READING_WH:
        return f"a minute's energy must be between 0 and {MAX_READING_WH} Wh, got {wh:g}"
    return None


def commands_covering(commands: list[dict], ra: Organisation, minute: str) -> list[str]:
    """The ids of the commands targeting `ra` whose accepted minutes (the baseline minutes before the window, then
    the window) include `minute`: a figure belongs to each of them, as a reading does on the ledger."""
    at = minute_index(minute)
    return [
        command["id"]
        for command in commands
        if targets(command, ra)
        and minute_index(command["start"]) - command["baseline_minutes"] <= at <= minute_index(command["end"])
    ]


def active(command: dict, now: datetime) -> bool:
    """Whether a command's window has not ended at `now`: a VEN is sent only events it can still answer."""
    return minute_of(now) <= command["end"]
