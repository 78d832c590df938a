"""The "dr" contract: demand-response commands, declarations, meter readings, aggregates and settlement (A1–A8).

Who may do what is decided by the caller's MSP id and certificate attributes, never by an argument:

    issue_command(command)            TSO                      public   event CommandIssued
    register_consumers()              an RA                    its collection (transient "consumers")
    declare(command_id)               an RA, own consumers     its collection (transient "declaration")
    publish_declaration(id, summary)  that RA                  public   event Declared
    post_readings(command_id)         an RA, or a meter of it  its collection (transient "readings")
                                                                        event ReadingsPosted
    settle(command_id)                TSO                      every RA and AC collection   event Settled
    get_command, list_commands, list_declarations              anyone (public)
    get_declaration, get_readings, list_consumers,
    get_aggregates, get_settlement    what seed figure 7 allows: the TSO everything, an AC its own and its
                                      RAs' figures, an RA its own; anything else is refused

Time: minutes are written "YYYY-MM-DDTHH:MM" in Japan Standard Time (UTC+09:00, the market's clock; a trailing
"+09:00" is accepted, other offsets are refused). A command's `start` and `end` are its first and last minute,
both included: the seed's command "00:00–00:04" is five minutes. Slots are `granularity_minutes` long (1 unless
the TSO says otherwise). Readings are accepted for the window plus the command's `baseline_minutes` before it.

Units, all integers: energy in Wh (a reading is one consumer's Wh in one minute, at most MAX_READING_WH), power
in kW (requested_kw), prices in hundredths of a yen per kWh (price_per_kwh = 2500 is 25.00 yen/kWh) and rewards
in hundredths of a yen, rounded down once per RA: reward = sum(rewarded Wh) * price_per_kwh // 1000.

Performance per slot: baseline − actual consumption = delivered reduction (negative when it consumed more);
shortfall = max(expected − delivered, 0); rewarded = max(delivered, 0). The baseline is either "declared" (the
RA declares each consumer's baseline Wh per slot) or "mean-before" (the mean per minute of the RA's aggregate
over the command's baseline minutes, counting only minutes where every declared consumer has a reading, times
the slot length). A slot where some declared consumer has no reading for some minute delivers nothing.

Where data lives, and why (the Fabric facts this design follows):
- Commands and declaration summaries are public: writing them needs the chaincode's policy (a majority of the
  organisations), which is fine for rare, public facts.
- Everything about consumers lives in the consumer's RA collection ({TSO, its AC, the RA}), passed in transient
  data so that no value reaches the block. A transaction that writes only one RA collection is endorsed by that
  collection's members alone (the client names its own peer), so readings never need a majority.
- A declaration is therefore two transactions: `declare` writes the detail and a canonical summary to the RA
  collection; `publish_declaration` writes that summary publicly, and every endorser, member or not, checks it
  against the private summary's hash (readable by all) — the summary cannot say what the RA did not declare.
- Readings are kept per command, consumer and JST hour: one key holds that hour's minutes (a minute in two
  commands' windows, e.g. a baseline overlapping the previous command, is posted to each). Each key is read,
  checked for duplicates and written once per transaction: a duplicate is refused at endorsement, and two
  concurrent posts touching the same consumer-hour cannot both commit (MVCC_READ_CONFLICT; the loser retries).
  Why an hour and not a minute per key: every ledger call is a round trip between chaincode and peer, and the
  protocol has no batched reads or writes; per-minute keys cost two round trips per reading and cap ingestion
  near 300 readings/s on the benchmark machine, hour keys two per consumer-hour. So batch whole consumer-hours:
  batches that share no consumer-hour never conflict.
- Aggregates are delta keys: each post_readings transaction also writes one key of its own (named by its
  transaction id) holding its per-minute sums. No transaction reads-modifies-writes a shared aggregate key, so
  concurrent batches never conflict; an RA's aggregate is the sum of its delta keys, read with one range scan.
- An AC's figures are computed when read, by summing its RAs' collections on a peer that is a member of all of
  them (the AC's own or the TSO's): an RA's peer cannot read the AC collection, and an AC aggregate key written
  by every batch would be a conflict hot spot. Reads check that the executing peer is a member, for a clear error.
- Performance and rewards are computed when read, like the aggregates. `settle` runs on the TSO's peer (the only
  member of every collection) and writes a settlement record to every RA and AC collection; readings and
  declarations check it, so after settlement nothing the figures depend on can change. (It cannot store the
  figures: Fabric refuses writes from a transaction that ran a range query on private data.)
- Consumers beyond the topology's are registered by their RA in its collection; a consumer id taken by another
  RA is refused by checking the hash of that RA's registry key, never its value.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from chaincode.contracts.records import canonical_json
from chaincode.shim import Contract, ContractError, evaluate, submit
from consortium import topology as topology_file
from consortium.topology import Organisation, Topology
from consortium.units import JST, minute_index, minute_label

_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

MAX_READING_WH = 100_000  # 100 kWh in one minute: a 6 MW site; more is a broken meter
MAX_WINDOW_MINUTES = 1440
MAX_GRANULARITY_MINUTES = 60
DEFAULT_BASELINE_MINUTES = 30
MAX_BASELINE_MINUTES = 240
MAX_REQUESTED_KW = 10_000_000
MAX_PRICE_PER_KWH = 10_000_000  # hundredths of a yen: 100,000 yen/kWh
MAX_BATCH_READINGS = 5000
# A consumer's readings are kept an hour to a key (JST hours: the offset is a whole number of hours).
READING_BLOCK_MINUTES = 60
MAX_DECLARED_CONSUMERS = 10_000
MAX_REGISTERED_PER_CALL = 5000

TRANSIENT_CONSUMERS = "consumers"
TRANSIENT_DECLARATION = "declaration"
TRANSIENT_READINGS = "readings"

BASELINE_METHODS = ("declared", "mean-before")

COMMAND_ISSUED = "CommandIssued"
CONSUMERS_REGISTERED = "ConsumersRegistered"
DECLARED = "Declared"
READINGS_POSTED = "ReadingsPosted"
SETTLED = "Settled"

# Object types of the composite keys (public: command, declared; RA collection: the rest; AC: settlement).
COMMAND = "command"
DECLARED_SUMMARY = "declared"
CONSUMER = "consumer"
DECLARATION = "declaration"
DECLARATION_DETAIL = "declaration-detail"
DECLARATION_SUMMARY = "declaration-summary"
READING = "reading"
READINGS_BATCH = "readings-batch"
SETTLEMENT = "settlement"


def consumer_ra(ctx, topology: Topology, consumer: str) -> str | None:
    """The RA a consumer belongs to (the topology's, or the one whose registry holds its key), or None.
    Only the registry key's hash is read, which every peer holds: any organisation may ask."""
    try:
        return topology.consumer_owner(consumer).name
    except KeyError:
        pass
    key = ctx.stub.create_composite_key(CONSUMER, [consumer])
    for ra in topology.organisations:
        collection = topology.readings_collection_for(ra.name) if ra.role == "ra" else None
        if collection and ctx.stub.get_private_data_hash(collection, key) is not None:
            return ra.name
    return None


@dataclass(frozen=True)
class Command:
    """A stored DR command, with its window as minute indexes (first and last minute included)."""

    record: dict

    @property
    def id(self) -> str:
        return self.record["id"]

    @property
    def first(self) -> int:
        return minute_index(self.record["start"])

    @property
    def last(self) -> int:
        return minute_index(self.record["end"])

    @property
    def granularity(self) -> int:
        return self.record["granularity_minutes"]

    @property
    def slot_count(self) -> int:
        return (self.last - self.first + 1) // self.granularity

    @property
    def earliest_reading(self) -> int:
        return self.first - self.record["baseline_minutes"]

    def window_labels(self) -> list[str]:
        return [minute_label(m) for m in range(self.first, self.last + 1)]


@dataclass(frozen=True)
class Caller:
    org: Organisation
    meter_of: str | None  # the consumer whose smart meter this is, or None for the organisation's users


class DrContract(Contract):
    name = "dr"

    def __init__(self, topology: Topology | None = None):
        super().__init__()
        self.topology = topology or topology_file.load()
        self._by_msp = {org.msp_id: org for org in self.topology.organisations}
        self._members = {
            name: {self.topology.organisation(m).msp_id for m in members}
            for name, members in self.topology.collections().items()
        }

    # Commands (public).

    @submit
    def issue_command(self, ctx, command: dict) -> dict:
        """Issues a DR command: {"id", "start", "end", "requested_kw", "target_acs", "price_per_kwh",
        "granularity_minutes" (1), "baseline_minutes" (30)}. TSO only."""
        action = "issue command"
        caller = self._caller(ctx, action)
        if caller.org.role != "tso":
            raise ContractError(f"failed to {action}: only the TSO issues DR commands, not {caller.org.name}")
        record = self._checked_command(action, command)
        key = ctx.stub.create_composite_key(COMMAND, [record["id"]])
        if ctx.stub.get_state(key) is not None:
            raise ContractError(f"failed to {action}: command {record['id']!r} already exists")
        timestamp = ctx.stub.get_tx_timestamp()
        record["issued_at"] = timestamp.astimezone(JST).isoformat(timespec="seconds") if timestamp else None
        ctx.stub.put_state(key, canonical_json(record))
        ctx.stub.set_event(COMMAND_ISSUED, canonical_json(record))
        return record

    @evaluate
    def get_command(self, ctx, command_id: str) -> dict:
        return self._command(ctx, "get command", command_id).record

    @evaluate
    def list_commands(self, ctx) -> list:
        with ctx.stub.get_state_by_partial_composite_key(COMMAND) as results:
            return [json.loads(kv.value) for kv in results]

    # Consumers.

    @submit
    def register_consumers(self, ctx) -> dict:
        """Registers the consumer ids in transient "consumers" (a JSON list) as the calling RA's."""
        action = "register consumers"
        ra = self._ra_user(ctx, action)
        consumers = self._transient_json(ctx, action, TRANSIENT_CONSUMERS, list)
        if not 1 <= len(consumers) <= MAX_REGISTERED_PER_CALL:
            raise ContractError(
                f"failed to {action}: give 1 to {MAX_REGISTERED_PER_CALL} consumer ids, got {len(consumers)}"
            )
        collection = self._ra_collection(ctx, ra, action)
        for consumer in consumers:
            self._check_identifier(action, "consumer id", consumer)
        if len(set(consumers)) != len(consumers):
            raise ContractError(f"failed to {action}: consumer ids repeat")
        for consumer in consumers:
            owner = self._owner(ctx, consumer)
            if owner is not None:
                taken = "is already" if owner == ra.name else f"belongs to {owner}, not"
                raise ContractError(f"failed to {action}: consumer {consumer} {taken} {ra.name}'s")
        for consumer in consumers:
            ctx.stub.put_private_data(
                collection,
                ctx.stub.create_composite_key(CONSUMER, [consumer]),
                canonical_json({"consumer": consumer, "ra": ra.name}),
            )
        summary = {"ra": ra.name, "registered": len(consumers)}
        ctx.stub.set_event(CONSUMERS_REGISTERED, canonical_json(summary))
        return summary

    @evaluate
    def list_consumers(self, ctx) -> dict:
        """The consumers of every RA the caller may see: {RA: [consumer ids]}."""
        action = "list consumers"
        caller = self._caller(ctx, action, meters=False)
        visible = {}
        for ra in self._visible_ras(caller):
            collection = self._ra_collection(ctx, ra, action)
            with ctx.stub.get_private_data_by_partial_composite_key(collection, CONSUMER) as results:
                registered = [json.loads(kv.value)["consumer"] for kv in results]
            visible[ra.name] = sorted(set(ra.consumers) | set(registered))
        return visible

    # Declarations.

    @submit
    def declare(self, ctx, command_id: str) -> dict:
        """Records the calling RA's declaration for a command, from transient "declaration":
        {"baseline_method": "declared" | "mean-before",
         "consumers": {id: {"expected_wh": [per slot], "baseline_wh": [per slot, "declared" only]}}}.
        Returns the public summary to pass to publish_declaration."""
        action = "declare"
        ra = self._ra_user(ctx, action)
        command = self._command(ctx, action, command_id)
        if ra.parent not in command.record["target_acs"]:
            raise ContractError(
                f"failed to {action}: command {command.id} targets "
                f"{', '.join(command.record['target_acs'])}; {ra.name} answers to {ra.parent}"
            )
        collection = self._ra_collection(ctx, ra, action)
        self._refuse_if_settled(ctx, collection, command, action)
        if self._private_json(ctx, collection, DECLARATION, [command.id]) is not None:
            raise ContractError(f"failed to {action}: {ra.name} has already declared for command {command.id}")
        declaration = self._transient_json(ctx, action, TRANSIENT_DECLARATION, dict)
        header, detail = self._checked_declaration(ctx, action, ra, command, declaration)
        summary = {
            "command": command.id,
            "ra": ra.name,
            "consumers": len(header["consumers"]),
            "expected_wh": sum(header["expected_wh"]),
        }
        ctx.stub.put_private_data(
            collection, ctx.stub.create_composite_key(DECLARATION, [command.id]), canonical_json(header)
        )
        ctx.stub.put_private_data(
            collection, ctx.stub.create_composite_key(DECLARATION_DETAIL, [command.id]), canonical_json(detail)
        )
        ctx.stub.put_private_data(
            collection, ctx.stub.create_composite_key(DECLARATION_SUMMARY, [command.id]), canonical_json(summary)
        )
        return summary

    @submit
    def publish_declaration(self, ctx, command_id: str, summary: dict) -> dict:
        """Writes the summary `declare` returned on the channel, once every endorser has checked it against the
        hash of the RA's private summary."""
        action = "publish declaration"
        ra = self._ra_user(ctx, action)
        command = self._command(ctx, action, command_id)
        if set(summary) != {"command", "ra", "consumers", "expected_wh"}:
            raise ContractError(
                f"failed to {action}: the summary must have exactly command, ra, consumers and "
                f"expected_wh (as declare returned it)"
            )
        if summary["ra"] != ra.name or summary["command"] != command.id:
            raise ContractError(
                f"failed to {action}: {ra.name} may publish only its own summary for command "
                f"{command.id}, not {summary['ra']!r}'s for {summary['command']!r}"
            )
        key = ctx.stub.create_composite_key(DECLARED_SUMMARY, [command.id, ra.name])
        if ctx.stub.get_state(key) is not None:
            raise ContractError(
                f"failed to {action}: {ra.name}'s declaration for command {command.id} is already published"
            )
        value = canonical_json(summary)
        recorded = ctx.stub.get_private_data_hash(
            self.topology.readings_collection_for(ra.name),
            ctx.stub.create_composite_key(DECLARATION_SUMMARY, [command.id]),
        )
        if recorded is None:
            raise ContractError(f"failed to {action}: {ra.name} has not declared for command {command.id}")
        if recorded != hashlib.sha256(value).digest():
            raise ContractError(
                f"failed to {action}: the summary does not match {ra.name}'s declaration for command {command.id}"
            )
        ctx.stub.put_state(key, value)
        ctx.stub.set_event(DECLARED, value)
        return summary

    @evaluate
    def list_declarations(self, ctx, command_id: str) -> list:
        """The published summaries for a command: RA, number of consumers, total expected Wh."""
        command = self._command(ctx, "list declarations", command_id)
        with ctx.stub.get_state_by_partial_composite_key(DECLARED_SUMMARY, [command.id]) as results:
            return [json.loads(kv.value) for kv in results]

    @evaluate
    def get_declaration(self, ctx, command_id: str, ra: str) -> dict:
        """An RA's declaration with its consumers' detail."""
        action = "get declaration"
        caller = self._caller(ctx, action, meters=False)
        org = self._visible_org(caller, ra, action)
        if org.role != "ra":
            raise ContractError(f"failed to {action}: declarations are made by RAs; {ra} is not one")
        command = self._command(ctx, action, command_id)
        collection = self._ra_collection(ctx, org, action)
        header = self._private_json(ctx, collection, DECLARATION, [command.id])
        if header is None:
            raise ContractError(f"failed to {action}: {org.name} has not declared for command {command.id}")
        return {**header, **self._private_json(ctx, collection, DECLARATION_DETAIL, [command.id])}

    # Readings.

    @submit
    def post_readings(self, ctx, command_id: str) -> dict:
        """Records per-minute readings from transient "readings", a JSON list of {"consumer", "minute", "wh"},
        all or none. A meter posts only its own consumer's; an RA any of its declared consumers'."""
        action = "post readings"
        caller = self._caller(ctx, action)
        ra = caller.org
        if ra.role != "ra":
            raise ContractError(
                f"failed to {action}: readings are posted by an RA or its consumers' meters, not by {ra.name}"
            )
        command = self._command(ctx, action, command_id)
        readings = self._transient_json(ctx, action, TRANSIENT_READINGS, list)
        if not 1 <= len(readings) <= MAX_BATCH_READINGS:
            raise ContractError(
                f"failed to {action}: a batch holds 1 to {MAX_BATCH_READINGS} readings, got {len(readings)}"
            )
        collection = self._ra_collection(ctx, ra, action)
        self._refuse_if_settled(ctx, collection, command, action)
        header = self._private_json(ctx, collection, DECLARATION, [command.id])
        if header is None:
            raise ContractError(
                f"failed to {action}: {ra.name} has not declared for command {command.id}; "
                f"readings count only for declared consumers"
            )
        declared = set(header["consumers"])
        checked = []
        seen = set()
        for position, reading in enumerate(readings):
            consumer, minute, wh = self._checked_reading(ctx, action, position, reading, caller, command, declared)
            if (consumer, minute) in seen:
                raise ContractError(
                    f"failed to {action}: duplicate reading in the batch: {consumer} at {minute_label(minute)}"
                )
            seen.add((consumer, minute))
            checked.append((consumer, minute, wh))
        blocks: dict[tuple[str, int], dict[str, int]] = {}
        for consumer, minute, wh in checked:
            blocks.setdefault((consumer, minute - minute % READING_BLOCK_MINUTES), {})[minute_label(minute)] = wh
        stored = {}
        for consumer, block in blocks:
            key = ctx.stub.create_composite_key(READING, [command.id, consumer, minute_label(block)])
            value = ctx.stub.get_private_data(collection, key)
            recorded = json.loads(value)["minutes"] if value else {}
            for label in sorted(blocks[(consumer, block)]):
                if label in recorded:
                    raise ContractError(
                        f"failed to {action}: duplicate reading: {consumer} at {label} is already recorded"
                    )
            stored[key] = {
                "command": command.id,
                "consumer": consumer,
                "hour": minute_label(block),
                "minutes": {**recorded, **blocks[(consumer, block)]},
            }
        for key, block in stored.items():
            ctx.stub.put_private_data(collection, key, canonical_json(block))
        sums: dict[str, list[int]] = {}
        for _, minute, wh in checked:
            total = sums.setdefault(minute_label(minute), [0, 0])
            total[0] += wh
            total[1] += 1
        batch_key = ctx.stub.create_composite_key(READINGS_BATCH, [command.id, ctx.stub.get_tx_id()])
        ctx.stub.put_private_data(collection, batch_key, canonical_json({"minutes": sums}))
        minutes = sorted(sums)
        summary = {
            "command": command.id,
            "ra": ra.name,
            "readings": len(checked),
            "first_minute": minutes[0],
            "last_minute": minutes[-1],
        }
        ctx.stub.set_event(READINGS_POSTED, canonical_json(summary))
        return summary

    @evaluate
    def get_readings(self, ctx, consumer: str, command_id: str) -> dict:
        """One consumer's readings over a command's accepted window (baseline minutes included)."""
        action = "get readings"
        caller = self._caller(ctx, action)
        command = self._command(ctx, action, command_id)
        owner = self._owner(ctx, consumer) if isinstance(consumer, str) and consumer else None
        visible = {ra.name for ra in self._visible_ras(caller)}
        if caller.meter_of is not None:
            visible = {caller.org.name} if caller.meter_of == consumer else set()
        if owner is None or owner not in visible:
            if caller.org.role == "tso":
                raise ContractError(f"failed to {action}: unknown consumer {consumer!r}")
            raise ContractError(f"failed to {action}: consumer {consumer!r} is not one {caller.org.name} may see")
        collection = self._ra_collection(ctx, self.topology.organisation(owner), action)
        with ctx.stub.get_private_data_by_partial_composite_key(collection, READING, [command.id, consumer]) as found:
            minutes = {label: wh for kv in found for label, wh in json.loads(kv.value)["minutes"].items()}
        return {
            "command": command.id,
            "consumer": consumer,
            "ra": owner,
            "readings": [{"minute": label, "wh": minutes[label]} for label in sorted(minutes)],
        }

    # Aggregates and settlement.

    @evaluate
    def get_aggregates(self, ctx, command_id: str, org: str = "") -> dict:
        """Per-minute Wh and reading counts over the command window, per RA and per AC: of `org`, or of every
        organisation the caller may see when `org` is empty."""
        action = "get aggregates"
        caller = self._caller(ctx, action, meters=False)
        command = self._command(ctx, action, command_id)
        orgs = [self._visible_org(caller, org, action)] if org else self._visible_figures(caller)
        ra_sums = {}
        for target in orgs:
            for ra in self._ras_of(target):
                if ra.name not in ra_sums:
                    ra_sums[ra.name] = self._minute_sums(ctx, command, ra, action)
        labels = command.window_labels()
        aggregates = []
        for target in orgs:
            minutes = []
            for label in labels:
                parts = [ra_sums[ra.name].get(label, (0, 0)) for ra in self._ras_of(target)]
                minutes.append({"minute": label, "wh": sum(p[0] for p in parts), "readings": sum(p[1] for p in parts)})
            aggregates.append({"org": target.name, "level": target.role, "parent": target.parent, "minutes": minutes})
        return {"command": command.id, "unit": "Wh", "aggregates": aggregates}

    @submit
    def settle(self, ctx, command_id: str) -> dict:
        """Closes an ended command: a settlement record in every RA and AC collection, after which its readings
        and declarations are refused, so the figures get_settlement computes are final. TSO only, on its peer."""
        action = "settle"
        caller = self._caller(ctx, action)
        if caller.org.role != "tso":
            raise ContractError(f"failed to {action}: only the TSO settles DR commands, not {caller.org.name}")
        command = self._command(ctx, action, command_id)
        timestamp = ctx.stub.get_tx_timestamp()
        if timestamp is not None and timestamp < datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(
            minutes=command.last + 1
        ):
            raise ContractError(
                f"failed to {action}: command {command.id} runs until {command.record['end']} "
                f"(JST); settle it after that"
            )
        # Point reads only: Fabric refuses any write from a transaction that ran a range query on private data.
        declared = []
        for ra in self._ras():
            collection = self._ra_collection(ctx, ra, action)
            self._refuse_if_settled(ctx, collection, command, action)
            if self._private_json(ctx, collection, DECLARATION, [command.id]) is not None:
                declared.append(ra.name)
        record = {
            "command": command.id,
            "declared_ras": declared,
            "settled_at": timestamp.astimezone(JST).isoformat(timespec="seconds") if timestamp else None,
        }
        key = ctx.stub.create_composite_key(SETTLEMENT, [command.id])
        for collection in [self.topology.readings_collection_for(ra.name) for ra in self._ras()] + [
            self.topology.ac_collection_for(ac.name) for ac in self._acs()
        ]:
            ctx.stub.put_private_data(collection, key, canonical_json(record))
        ctx.stub.set_event(SETTLED, canonical_json(record))
        return record

    @evaluate
    def get_settlement(self, ctx, command_id: str) -> dict:
        """Performance and reward per slot of every RA and AC the caller may see (and the total, for the TSO);
        final once the command is settled, the figures so far before."""
        action = "get settlement"
        caller = self._caller(ctx, action, meters=False)
        return self._settlement_view(ctx, caller, self._command(ctx, action, command_id), action)

    # Who is calling and what they may see.

    def _caller(self, ctx, action: str, meters: bool = True) -> Caller:
        identity = ctx.client_identity
        org = self._by_msp.get(identity.msp_id)
        if org is None:
            raise ContractError(f"failed to {action}: {identity.msp_id} is not an organisation of the consortium")
        if identity.get_attribute_value("role") != "meter":
            return Caller(org, None)
        consumer = identity.get_attribute_value("consumer")
        if org.role != "ra" or not consumer:
            raise ContractError(
                f"failed to {action}: a meter certificate must be issued by an RA and name its consumer"
            )
        if not meters:
            raise ContractError(f"failed to {action}: a smart meter may post and read only its own readings")
        return Caller(org, consumer)

    def _ra_user(self, ctx, action: str) -> Organisation:
        caller = self._caller(ctx, action, meters=False)
        if caller.org.role != "ra":
            raise ContractError(f"failed to {action}: only an RA may {action}, not {caller.org.name}")
        return caller.org

    def _acs(self) -> list[Organisation]:
        return [org for org in self.topology.organisations if org.role == "ac"]

    def _ras(self) -> list[Organisation]:
        return [org for org in self.topology.organisations if org.role == "ra"]

    def _ras_of(self, org: Organisation) -> list[Organisation]:
        """The RAs whose figures make up `org`'s: itself for an RA, its RAs for an AC, all for the TSO."""
        if org.role == "ra":
            return [org]
        return [ra for ra in self._ras() if org.role == "tso" or ra.parent == org.name]

    def _visible_figures(self, caller: Caller) -> list[Organisation]:
        """The ACs and RAs whose figures the caller may see, each AC followed by its RAs (seed figure 7)."""
        if caller.org.role == "ra":
            return [caller.org]
        acs = self._acs() if caller.org.role == "tso" else [caller.org]
        return [org for ac in acs for org in (ac, *self._ras_of(ac))]

    def _visible_ras(self, caller: Caller) -> list[Organisation]:
        return [org for org in self._visible_figures(caller) if org.role == "ra"]

    def _visible_org(self, caller: Caller, name: str, action: str) -> Organisation:
        for org in self._visible_figures(caller):
            if org.name == name:
                return org
        if name in self.topology.org_names and self.topology.organisation(name).role == "tso":
            raise ContractError(
                f"failed to {action}: figures are kept per AC and RA; the TSO's are the sum of its ACs'"
            )
        raise ContractError(f"failed to {action}: {caller.org.name} may not see the figures of {name!r}")

    def _ra_collection(self, ctx, ra: Organisation, action: str) -> str:
        """The RA's collection, after checking that this peer holds it (a non-member peer has only hashes)."""
        collection = self.topology.readings_collection_for(ra.name)
        self._require_member_peer(ctx, collection, action)
        return collection

    def _require_member_peer(self, ctx, collection: str, action: str) -> None:
        peer = ctx.stub.get_peer_msp_id()
        if peer not in self._members[collection]:
            raise ContractError(
                f"failed to {action}: this peer ({peer}) is not a member of collection "
                f"{collection}; send the request to your own organisation's peer"
            )

    def _owner(self, ctx, consumer: str) -> str | None:
        return consumer_ra(ctx, self.topology, consumer)

    # Reading and checking inputs.

    def _command(self, ctx, action: str, command_id: str) -> Command:
        self._check_identifier(action, "command id", command_id)
        value = ctx.stub.get_state(ctx.stub.create_composite_key(COMMAND, [command_id]))
        if value is None:
            raise ContractError(f"failed to {action}: no command {command_id!r}")
        return Command(json.loads(value))

    @staticmethod
    def _private_json(ctx, collection: str, object_type: str, attributes: list[str]) -> dict | None:
        value = ctx.stub.get_private_data(collection, ctx.stub.create_composite_key(object_type, attributes))
        return None if value is None else json.loads(value)

    @staticmethod
    def _check_identifier(action: str, what: str, value) -> None:
        if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
            raise ContractError(
                f"failed to {action}: {what} must be 1-64 letters, digits, '_', '.' or '-' "
                f"(starting with a letter or digit), got {value!r}"
            )

    @staticmethod
    def _transient_json(ctx, action: str, name: str, kind: type):
        raw = ctx.stub.get_transient().get(name)
        if raw is None:
            raise ContractError(
                f"failed to {action}: the data must travel in transient data under {name!r}, so "
                f"that it never reaches the block"
            )
        try:
            value = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            shown = raw[:40].decode("utf-8", errors="replace")
            raise ContractError(f"failed to {action}: transient {name!r} is malformed JSON: {shown!r}") from None
        if not isinstance(value, kind):
            expected = "list" if kind is list else "object"
            raise ContractError(
                f"failed to {action}: transient {name!r} must be a JSON {expected}, got {type(value).__name__}"
            )
        return value

    def _checked_command(self, action: str, command: dict) -> dict:
        required = {"id", "start", "end", "requested_kw", "target_acs", "price_per_kwh"}
        optional = {"granularity_minutes": 1, "baseline_minutes": DEFAULT_BASELINE_MINUTES}
        missing = sorted(required - set(command))
        unknown = sorted(set(command) - required - set(optional))
        if missing or unknown:
            raise ContractError(
                f"failed to {action}: "
                + "; ".join(
                    part
                    for part in (
                        missing and f"missing {', '.join(missing)}",
                        unknown and f"unknown field(s) {', '.join(unknown)}",
                    )
                    if part
                )
            )
        record = {**optional, **command}
        self._check_identifier(action, "command id", record["id"])
        try:
            first = minute_index(record["start"])
        except ValueError as error:
            raise ContractError(f"failed to {action}: start {error}") from None
        try:
            last = minute_index(record["end"])
        except ValueError as error:
            raise ContractError(f"failed to {action}: end {error}") from None
        record["start"], record["end"] = minute_label(first), minute_label(last)
        length = last - first + 1
        if not 1 <= length <= MAX_WINDOW_MINUTES:
            raise ContractError(
                f"failed to {action}: the window must be 1 to {MAX_WINDOW_MINUTES} minutes with "
                f"end at or after start, got {record['start']} to {record['end']}"
            )
        _check_integer(action, "granularity_minutes", record["granularity_minutes"], 1, MAX_GRANULARITY_MINUTES)
        if length % record["granularity_minutes"]:
            raise ContractError(
                f"failed to {action}: the window of {length} minutes is not a whole number of "
                f"{record['granularity_minutes']}-minute slots"
            )
        _check_integer(action, "baseline_minutes", record["baseline_minutes"], 1, MAX_BASELINE_MINUTES)
        _check_integer(action, "requested_kw", record["requested_kw"], 1, MAX_REQUESTED_KW)
        _check_integer(action, "price_per_kwh (hundredths of a yen)", record["price_per_kwh"], 0, MAX_PRICE_PER_KWH)
        acs = record["target_acs"]
        known = [ac.name for ac in self._acs()]
        if not isinstance(acs, list) or not acs or any(ac not in known for ac in acs) or len(set(acs)) != len(acs):
            raise ContractError(
                f"failed to {action}: target_acs must list distinct ACs of {', '.join(known)}, got {acs!r}"
            )
        record["target_acs"] = sorted(acs)
        return record

    def _checked_declaration(
        self, ctx, action: str, ra: Organisation, command: Command, declaration: dict
    ) -> tuple[dict, dict]:
        unknown = sorted(set(declaration) - {"baseline_method", "consumers"})
        if unknown:
            raise ContractError(f"failed to {action}: unknown field(s) {', '.join(unknown)} in the declaration")
        method = declaration.get("baseline_method")
        if method not in BASELINE_METHODS:
            raise ContractError(
                f"failed to {action}: baseline_method must be one of {', '.join(BASELINE_METHODS)}, got {method!r}"
            )
        consumers = declaration.get("consumers")
        if not isinstance(consumers, dict) or not 1 <= len(consumers) <= MAX_DECLARED_CONSUMERS:
            raise ContractError(
                f"failed to {action}: consumers must map 1 to {MAX_DECLARED_CONSUMERS} consumer ids "
                f"to their expectations"
            )
        slots = command.slot_count
        slot_bound = MAX_READING_WH * command.granularity
        fields = {"expected_wh", "baseline_wh"} if method == "declared" else {"expected_wh"}
        expected_total, baseline_total = [0] * slots, [0] * slots
        detail = {}
        for consumer in sorted(consumers):
            self._check_identifier(action, "consumer id", consumer)
            owner = self._owner(ctx, consumer)
            if owner != ra.name:
                raise ContractError(
                    f"failed to {action}: consumer {consumer} "
                    f"{'is unknown' if owner is None else f'belongs to {owner}'}; {ra.name} may "
                    f"declare only its own consumers"
                )
            entry = consumers[consumer]
            if not isinstance(entry, dict) or set(entry) != fields:
                raise ContractError(
                    f"failed to {action}: consumer {consumer} needs exactly "
                    f"{' and '.join(sorted(fields))} (one value per slot, baseline method {method})"
                )
            for name in sorted(fields):
                values = entry[name]
                if not isinstance(values, list) or len(values) != slots:
                    raise ContractError(
                        f"failed to {action}: {consumer} {name} must list one value per slot "
                        f"({slots}), got {values!r:.60}"
                    )
                for slot, value in enumerate(values):
                    _check_integer(action, f"{consumer} {name}[{slot}]", value, 0, slot_bound)
                total = expected_total if name == "expected_wh" else baseline_total
                for slot, value in enumerate(values):
                    total[slot] += value
            detail[consumer] = {name: entry[name] for name in sorted(fields)}
        header = {
            "command": command.id,
            "ra": ra.name,
            "baseline_method": method,
            "consumers": sorted(consumers),
            "expected_wh": expected_total,
            "baseline_wh": baseline_total if method == "declared" else None,
        }
        return header, {"detail": detail}

    def _checked_reading(
        self, ctx, action: str, position: int, reading, caller: Caller, command: Command, declared: set[str]
    ) -> tuple[str, int, int]:
        where = f"reading {position}"
        if not isinstance(reading, dict) or set(reading) != {"consumer", "minute", "wh"}:
            raise ContractError(
                f"failed to {action}: {where} must be an object with exactly consumer, minute and "
                f"wh, got {reading!r:.80}"
            )
        consumer = reading["consumer"]
        if not isinstance(consumer, str):
            raise ContractError(f"failed to {action}: {where}: consumer must be a string, got {consumer!r:.40}")
        if caller.meter_of is not None and consumer != caller.meter_of:
            raise ContractError(
                f"failed to {action}: the meter of consumer {caller.meter_of} may post only its own "
                f"readings, not {consumer!r}'s"
            )
        if consumer not in declared:
            owner = self._owner(ctx, consumer) if _IDENTIFIER.fullmatch(consumer) else None
            if owner is None:
                why = "is unknown"
            elif owner != caller.org.name:
                why = f"belongs to {owner}, not {caller.org.name}"
            else:
                why = f"is not declared by {owner} for command {command.id}"
            raise ContractError(f"failed to {action}: {where}: consumer {consumer!r} {why}")
        try:
            minute = minute_index(reading["minute"])
        except ValueError as error:
            raise ContractError(f"failed to {action}: {where}: minute {error}") from None
        if not command.earliest_reading <= minute <= command.last:
            raise ContractError(
                f"failed to {action}: {where}: minute {minute_label(minute)} is outside what command "
                f"{command.id} accepts ({minute_label(command.earliest_reading)} to "
                f"{command.record['end']}, baseline minutes included)"
            )
        wh = reading["wh"]
        _check_integer(action, f"{where}: wh", wh, 0, MAX_READING_WH)
        return consumer, minute, wh

    def _refuse_if_settled(self, ctx, collection: str, command: Command, action: str) -> None:
        if ctx.stub.get_private_data(collection, ctx.stub.create_composite_key(SETTLEMENT, [command.id])):
            raise ContractError(f"failed to {action}: command {command.id} is settled")

    # Figures.

    def _minute_sums(self, ctx, command: Command, ra: Organisation, action: str) -> dict[str, tuple[int, int]]:
        """Minute label → (Wh, readings) of one RA for a command: the sum of its batches' delta keys."""
        collection = self._ra_collection(ctx, ra, action)
        sums: dict[str, list[int]] = {}
        with ctx.stub.get_private_data_by_partial_composite_key(collection, READINGS_BATCH, [command.id]) as batches:
            for kv in batches:
                for label, (wh, count) in json.loads(kv.value)["minutes"].items():
                    total = sums.setdefault(label, [0, 0])
                    total[0] += wh
                    total[1] += count
        return {label: (wh, count) for label, (wh, count) in sums.items()}

    def _ra_figure(self, ctx, command: Command, ra: Organisation, action: str) -> dict:
        """One RA's performance per slot and its reward (see the module's docstring for the rules)."""
        collection = self._ra_collection(ctx, ra, action)
        header = self._private_json(ctx, collection, DECLARATION, [command.id])
        slots = command.slot_count
        g = command.granularity
        if header is None:
            rows = [_slot_row(command, s, 0, 0, 0, True) for s in range(slots)]
            return _figure(ra, command, rows, declared=False, consumers=0, baseline_method=None)
        sums = self._minute_sums(ctx, command, ra, action)
        consumers = len(header["consumers"])

        def complete(minute: int) -> bool:
            return sums.get(minute_label(minute), (0, 0))[1] >= consumers

        if header["baseline_method"] == "declared":
            baseline = header["baseline_wh"]
            baseline_minutes_used = None
        else:
            before = [m for m in range(command.earliest_reading, command.first) if complete(m)]
            mean = sum(sums[minute_label(m)][0] for m in before) * g // len(before) if before else 0
            baseline = [mean] * slots
            baseline_minutes_used = len(before)
        rows = []
        for s in range(slots):
            minutes = range(command.first + s * g, command.first + (s + 1) * g)
            actual = sum(sums.get(minute_label(m), (0, 0))[0] for m in minutes)
            rows.append(
                _slot_row(command, s, baseline[s], actual, header["expected_wh"][s], all(complete(m) for m in minutes))
            )
        figure = _figure(
            ra, command, rows, declared=True, consumers=consumers, baseline_method=header["baseline_method"]
        )
        figure["baseline_minutes_used"] = baseline_minutes_used
        return figure

    def _settlement_view(self, ctx, caller: Caller, command: Command, action: str) -> dict:
        """What the caller may see of a command's performance and reward, and whether it is settled (final)."""
        if caller.org.role == "ra":
            marker_collection = self._ra_collection(ctx, caller.org, action)
            figures = [self._ra_figure(ctx, command, caller.org, action)]
        else:
            acs = self._acs() if caller.org.role == "tso" else [caller.org]
            marker_collection = self.topology.ac_collection_for(acs[0].name)
            self._require_member_peer(ctx, marker_collection, action)
            figures = []
            for ac in acs:
                ras = [self._ra_figure(ctx, command, ra, action) for ra in self._ras_of(ac)]
                figures += [_sum_figures(ac, command, ras), *ras]
        marker = ctx.stub.get_private_data(marker_collection, ctx.stub.create_composite_key(SETTLEMENT, [command.id]))
        view = _settlement(caller, command, figures, settled=marker is not None)
        view["settled_at"] = json.loads(marker)["settled_at"] if marker else None
        return view


def _settlement(caller: Caller, command: Command, figures: list[dict], settled: bool) -> dict:
    view = {
        "command": command.id,
        "settled": settled,
        "price_per_kwh": command.record["price_per_kwh"],
        "units": {"energy": "Wh", "price_per_kwh": "hundredths of a yen per kWh", "reward": "hundredths of a yen"},
        "figures": figures,
    }
    if caller.org.role == "tso":
        view["total"] = _sum_figures(caller.org, command, [f for f in figures if f["level"] == "ac"])
    return view


def _check_integer(action: str, what: str, value, low: int, high: int) -> None:
    # bool is an int to Python, never to a meter.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ContractError(f"failed to {action}: {what} must be an integer from {low} to {high}, got {value!r}")


_SLOT_FIELDS = ("baseline_wh", "actual_wh", "delivered_wh", "expected_wh", "shortfall_wh", "rewarded_wh")


def _slot_row(command: Command, slot: int, baseline: int, actual: int, expected: int, complete: bool) -> dict:
    delivered = baseline - actual if complete else 0
    return {
        "slot": minute_label(command.first + slot * command.granularity),
        "complete": complete,
        "baseline_wh": baseline,
        "actual_wh": actual,
        "delivered_wh": delivered,
        "expected_wh": expected,
        "shortfall_wh": max(expected - delivered, 0),
        "rewarded_wh": max(delivered, 0),
    }


def _figure(org: Organisation, command: Command, rows: list[dict], **extra) -> dict:
    totals = {name: sum(row[name] for row in rows) for name in _SLOT_FIELDS}
    return {
        "org": org.name,
        "level": org.role,
        "parent": org.parent,
        **extra,
        "slots": rows,
        **totals,
        "reward_hundredth_yen": totals["rewarded_wh"] * command.record["price_per_kwh"] // 1000,
    }


def _sum_figures(org: Organisation, command: Command, parts: list[dict]) -> dict:
    """An AC's (or the TSO's) figure: its parts' slots added up; its reward is the sum of theirs, each rounded."""
    rows = []
    for slot in range(command.slot_count):
        row = {
            "slot": minute_label(command.first + slot * command.granularity),
            "complete": all(p["slots"][slot]["complete"] for p in parts if p["declared"]),
        }
        row.update({name: sum(p["slots"][slot][name] for p in parts) for name in _SLOT_FIELDS})
        rows.append(row)
    figure = _figure(org, command, rows, declared=any(p["declared"] for p in parts))
    figure["reward_hundredth_yen"] = sum(p["reward_hundredth_yen"] for p in parts)
    return figure
