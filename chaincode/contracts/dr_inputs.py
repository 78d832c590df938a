"""The dr contract's inputs as typed values, decoded and checked field by field: commands, declarations, meter
readings, consumer ids, and the transient data that carries the private ones.

A check raises a Refusal that names the field and what is wrong with it ("C1 expected_wh[4] must be an integer
from 0 to 100000, got -1"); the transaction puts "failed to <action>: " in front. Checks run in a fixed order, so
an input with several faults always gets the same message. Whose a consumer is depends on the ledger: checks that
need it take an `owner_of(consumer)` function.
"""

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from chaincode.contracts.common import Refusal
from chaincode.contracts.dr_time import check_minute_ended
from chaincode.contracts.products import checked_product
from consortium.topology import MAX_DR_READINGS_DUE_MINUTES
from consortium.units import minute_index, minute_label

MAX_READING_WH = 100_000  # 100 kWh in one minute: a 6 MW site; more is a broken meter
MAX_WINDOW_MINUTES = 1440
MAX_GRANULARITY_MINUTES = 60
DEFAULT_BASELINE_MINUTES = 30
MAX_BASELINE_MINUTES = 240
MAX_REQUESTED_KW = 10_000_000
MAX_PRICE_PER_KWH = 10_000_000  # hundredths of a yen: 100,000 yen/kWh
MAX_BATCH_READINGS = 5000
MAX_DECLARED_CONSUMERS = 10_000
MAX_REGISTERED_PER_CALL = 5000

BASELINE_METHODS = ("declared", "mean-before")

_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_COMMAND_FIELDS = {"id", "start", "end", "requested_kw", "target_acs", "price_per_kwh"}
# A command without a product (chaincode.contracts.products) settles by chaincode.contracts.settlement.
_COMMAND_DEFAULTS: dict = {"granularity_minutes": 1, "baseline_minutes": DEFAULT_BASELINE_MINUTES, "product": None}
_COMMAND_DEADLINES = {"declare_by", "readings_due"}  # default: the window's start; its end + the topology's due

OwnerOf = Callable[[str], str | None]


def check_identifier(what: str, value) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise Refusal(
            f"{what} must be 1-64 letters, digits, '_', '.' or '-' (starting with a letter or digit), got {value!r}"
        )
    return value


def check_integer(what: str, value, low: int, high: int) -> int:
    # bool is an int to Python, never to a meter.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Refusal(f"{what} must be an integer from {low} to {high}, got {value!r}")
    return value


def checked_minute(what: str, text) -> int:
    try:
        return minute_index(text)
    except ValueError as error:
        raise Refusal(f"{what} {error}") from None


def transient_json(ctx, name: str, kind: type):
    """The JSON value (a list or an object) in transient data under `name`."""
    raw = ctx.stub.get_transient().get(name)
    if raw is None:
        raise Refusal(f"the data must travel in transient data under {name!r}, so that it never reaches the block")
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        shown = raw[:40].decode("utf-8", errors="replace")
        raise Refusal(f"transient {name!r} is malformed JSON: {shown!r}") from None
    if not isinstance(value, kind):
        expected = "list" if kind is list else "object"
        raise Refusal(f"transient {name!r} must be a JSON {expected}, got {type(value).__name__}")
    return value


def checked_consumer_ids(items: list) -> list[str]:
    """Consumer ids to register: each a valid identifier, none twice."""
    for consumer in items:
        check_identifier("consumer id", consumer)
    if len(set(items)) != len(items):
        raise Refusal("consumer ids repeat")
    return items


@dataclass(frozen=True)
class Command:
    """A DR command. Its window runs from minute `first` to minute `last`, both included (minute indexes, see
    consortium.units), in slots of `granularity` minutes; readings count from `baseline_minutes` before it.
    Declarations are due before minute `declare_by` begins (at the latest the window's start), readings before
    minute `readings_due` begins (after the window's end); settlement comes after that (chaincode.contracts
    .dr_time holds the transactions to these moments)."""

    id: str
    first: int
    last: int
    requested_kw: int
    target_acs: tuple[str, ...]
    price_per_kwh: int  # hundredths of a yen per kWh
    granularity: int
    baseline_minutes: int
    declare_by: int
    readings_due: int
    issued_at: str | None = None
    product: dict | None = None  # chaincode.contracts.products.checked_product

    @classmethod
    def checked(cls, fields: dict, known_acs: Sequence[str], readings_due_minutes: int) -> "Command":
        """A command as the TSO issues it: {"id", "start", "end", "requested_kw", "target_acs", "price_per_kwh",
        "granularity_minutes" (1), "baseline_minutes" (30), "declare_by" (start), "readings_due" (the window's
        end + `readings_due_minutes`, the topology's default)}, the last two JST minutes. Readings are due at least
        a minute after the window's end, so that its last minute's reading can be posted."""
        missing = sorted(_COMMAND_FIELDS - set(fields))
        unknown = sorted(set(fields) - _COMMAND_FIELDS - set(_COMMAND_DEFAULTS) - _COMMAND_DEADLINES)
        if missing or unknown:
            raise Refusal(
                "; ".join(
                    part
                    for part in (
                        missing and f"missing {', '.join(missing)}",
                        unknown and f"unknown field(s) {', '.join(unknown)}",
                    )
                    if part
                )
            )
        record = {**_COMMAND_DEFAULTS, **fields}
        check_identifier("command id", record["id"])
        first = checked_minute("start", record["start"])
        last = checked_minute("end", record["end"])
        length = last - first + 1
        if not 1 <= length <= MAX_WINDOW_MINUTES:
            raise Refusal(
                f"the window must be 1 to {MAX_WINDOW_MINUTES} minutes with end at or after start, got "
                f"{minute_label(first)} to {minute_label(last)}"
            )
        granularity = check_integer("granularity_minutes", record["granularity_minutes"], 1, MAX_GRANULARITY_MINUTES)
        if length % granularity:
            raise Refusal(f"the window of {length} minutes is not a whole number of {granularity}-minute slots")
        baseline_minutes = check_integer("baseline_minutes", record["baseline_minutes"], 1, MAX_BASELINE_MINUTES)
        requested_kw = check_integer("requested_kw", record["requested_kw"], 1, MAX_REQUESTED_KW)
        price = check_integer("price_per_kwh (hundredths of a yen)", record["price_per_kwh"], 0, MAX_PRICE_PER_KWH)
        acs = record["target_acs"]
        if not isinstance(acs, list) or not acs or any(ac not in known_acs for ac in acs) or len(set(acs)) != len(acs):
            raise Refusal(f"target_acs must list distinct ACs of {', '.join(known_acs)}, got {acs!r}")
        declare_by = checked_minute("declare_by", record["declare_by"]) if "declare_by" in record else first
        if declare_by > first:
            raise Refusal(
                f"declare_by must be at or before the window's start {minute_label(first)}, got {minute_label(declare_by)}"
            )
        after = last + 1  # the window's end
        due = checked_minute("readings_due", record["readings_due"]) if "readings_due" in record else None
        readings_due = after + readings_due_minutes if due is None else due
        if not after < readings_due <= after + MAX_DR_READINGS_DUE_MINUTES:
            raise Refusal(
                f"readings_due must be from a minute after the window's end {minute_label(after)} to "
                f"{MAX_DR_READINGS_DUE_MINUTES // 1440} days after it, got {minute_label(readings_due)}"
            )
        plain = cls(
            record["id"],
            first,
            last,
            requested_kw,
            tuple(sorted(acs)),
            price,
            granularity,
            baseline_minutes,
            declare_by,
            readings_due,
        )
        return replace(plain, product=checked_product(record["product"], acs))

    @classmethod
    def from_record(cls, record: dict) -> "Command":
        """A command as record() stored it."""
        return cls(
            record["id"],
            minute_index(record["start"]),
            minute_index(record["end"]),
            record["requested_kw"],
            tuple(record["target_acs"]),
            record["price_per_kwh"],
            record["granularity_minutes"],
            record["baseline_minutes"],
            minute_index(record["declare_by"]),
            minute_index(record["readings_due"]),
            record.get("issued_at"),
            product=record.get("product"),
        )

    def record(self) -> dict:
        """The command as the ledger keeps it and clients read it."""
        return {
            "id": self.id,
            "start": self.start,
            "end": self.end,
            "requested_kw": self.requested_kw,
            "target_acs": list(self.target_acs),
            "price_per_kwh": self.price_per_kwh,
            "granularity_minutes": self.granularity,
            "baseline_minutes": self.baseline_minutes,
            "declare_by": minute_label(self.declare_by),
            "readings_due": minute_label(self.readings_due),
            "issued_at": self.issued_at,
            **({"product": self.product} if self.product is not None else {}),
        }

    @property
    def start(self) -> str:
        return minute_label(self.first)

    @property
    def end(self) -> str:
        return minute_label(self.last)

    @property
    def slot_count(self) -> int:
        return (self.last - self.first + 1) // self.granularity

    @property
    def earliest_reading(self) -> int:
        return self.first - self.baseline_minutes

    def slot_minutes(self, slot: int) -> range:
        return range(self.first + slot * self.granularity, self.first + (slot + 1) * self.granularity)

    def slot_label(self, slot: int) -> str:
        return minute_label(self.first + slot * self.granularity)

    def window_labels(self) -> list[str]:
        return [minute_label(m) for m in range(self.first, self.last + 1)]


@dataclass(frozen=True)
class Declaration:
    """An RA's declaration for a command: how its baseline is taken, and per consumer the Wh it expects to save
    in each slot (and, for the "declared" method, its baseline Wh in each slot)."""

    command: str
    ra: str
    baseline_method: str
    consumers: dict[str, dict[str, list[int]]]  # consumer → {"expected_wh": [per slot], "baseline_wh": [...]}
    slots: int

    @classmethod
    def checked(cls, fields: dict, command: Command, ra: str, owner_of: OwnerOf) -> "Declaration":
        """{"baseline_method": "declared" | "mean-before", "consumers": {id: {"expected_wh": [per slot],
        "baseline_wh": [per slot, "declared" only]}}}, of `ra`'s own consumers only."""
        unknown = sorted(set(fields) - {"baseline_method", "consumers"})
        if unknown:
            raise Refusal(f"unknown field(s) {', '.join(unknown)} in the declaration")
        method = fields.get("baseline_method")
        if method not in BASELINE_METHODS:
            raise Refusal(f"baseline_method must be one of {', '.join(BASELINE_METHODS)}, got {method!r}")
        if command.product is not None and method == "declared":
            # The product's rule sets the baseline from the meters' history: an RA stating its own would set its reward.
            raise Refusal(f"command {command.id} names its product: the ledger sets the baseline, declare none")
        consumers = fields.get("consumers")
        if not isinstance(consumers, dict) or not 1 <= len(consumers) <= MAX_DECLARED_CONSUMERS:
            raise Refusal(f"consumers must map 1 to {MAX_DECLARED_CONSUMERS} consumer ids to their expectations")
        slots = command.slot_count
        slot_bound = MAX_READING_WH * command.granularity
        names = sorted({"expected_wh", "baseline_wh"} if method == "declared" else {"expected_wh"})
        checked = {}
        for consumer in sorted(consumers):
            check_identifier("consumer id", consumer)
            owner = owner_of(consumer)
            if owner != ra:
                whose = "is unknown" if owner is None else f"belongs to {owner}"
                raise Refusal(f"consumer {consumer} {whose}; {ra} may declare only its own consumers")
            entry = consumers[consumer]
            if not isinstance(entry, dict) or set(entry) != set(names):
                raise Refusal(
                    f"consumer {consumer} needs exactly {' and '.join(names)} "
                    f"(one value per slot, baseline method {method})"
                )
            for name in names:
                values = entry[name]
                if not isinstance(values, list) or len(values) != slots:
                    raise Refusal(f"{consumer} {name} must list one value per slot ({slots}), got {values!r:.60}")
                for slot, value in enumerate(values):
                    check_integer(f"{consumer} {name}[{slot}]", value, 0, slot_bound)
            checked[consumer] = {name: entry[name] for name in names}
        return cls(command.id, ra, method, checked, slots)

    def total(self, name: str) -> list[int]:
        """The consumers' `name` ("expected_wh" or "baseline_wh") added up per slot."""
        return [sum(entry[name][slot] for entry in self.consumers.values()) for slot in range(self.slots)]

    def header(self) -> dict:
        """What settlement reads: the method, the consumers, the totals per slot."""
        return {
            "command": self.command,
            "ra": self.ra,
            "baseline_method": self.baseline_method,
            "consumers": sorted(self.consumers),
            "expected_wh": self.total("expected_wh"),
            "baseline_wh": self.total("baseline_wh") if self.baseline_method == "declared" else None,
        }

    def detail(self) -> dict:
        return {"detail": self.consumers}

    def summary(self) -> dict:
        """The public summary: how many consumers, how many Wh in all; never who."""
        return {
            "command": self.command,
            "ra": self.ra,
            "consumers": len(self.consumers),
            "expected_wh": sum(self.total("expected_wh")),
        }


@dataclass(frozen=True)
class Reading:
    """One consumer's Wh in one minute (a minute index)."""

    consumer: str
    minute: int
    wh: int


def check_batch_size(items: list) -> None:
    if not 1 <= len(items) <= MAX_BATCH_READINGS:
        raise Refusal(f"a batch holds 1 to {MAX_BATCH_READINGS} readings, got {len(items)}")


def checked_readings(
    items: list, command: Command, ra: str, meter_of: str | None, declared: set[str], owner_of: OwnerOf, at: datetime
) -> list[Reading]:
    """A batch of {"consumer", "minute", "wh"}, posted by `ra` (by the meter of consumer `meter_of`, if set) at
    `at`, of consumers declared for the command, in the minutes it accepts and that have ended, none twice."""
    checked = []
    seen = set()
    for position, item in enumerate(items):
        reading = _checked_reading(f"reading {position}", item, command, ra, meter_of, declared, owner_of, at)
        if (reading.consumer, reading.minute) in seen:
            raise Refusal(f"duplicate reading in the batch: {reading.consumer} at {minute_label(reading.minute)}")
        seen.add((reading.consumer, reading.minute))
        checked.append(reading)
    return checked


def _checked_reading(
    where: str, item, command: Command, ra: str, meter_of: str | None, declared: set[str], owner_of: OwnerOf, at
) -> Reading:
    if not isinstance(item, dict) or set(item) != {"consumer", "minute", "wh"}:
        raise Refusal(f"{where} must be an object with exactly consumer, minute and wh, got {item!r:.80}")
    consumer = item["consumer"]
    if not isinstance(consumer, str):
        raise Refusal(f"{where}: consumer must be a string, got {consumer!r:.40}")
    if meter_of is not None and consumer != meter_of:
        raise Refusal(f"the meter of consumer {meter_of} may post only its own readings, not {consumer!r}'s")
    if consumer not in declared:
        owner = owner_of(consumer) if _IDENTIFIER.fullmatch(consumer) else None
        if owner is None:
            why = "is unknown"
        elif owner != ra:
            why = f"belongs to {owner}, not {ra}"
        else:
            why = f"is not declared by {owner} for command {command.id}"
        raise Refusal(f"{where}: consumer {consumer!r} {why}")
    minute = checked_minute(f"{where}: minute", item["minute"])
    check_minute_ended(where, minute, at)
    if not command.earliest_reading <= minute <= command.last:
        raise Refusal(
            f"{where}: minute {minute_label(minute)} is outside what command {command.id} accepts "
            f"({minute_label(command.earliest_reading)} to {command.end}, baseline minutes included)"
        )
    wh = check_integer(f"{where}: wh", item["wh"], 0, MAX_READING_WH)
    return Reading(consumer, minute, wh)
