"""The "dr" contract: demand-response commands, declarations, meter readings, aggregates and settlement (A1–A8).

Who may do what is decided by the caller's MSP id and certificate attributes, never by an argument:

    issue_command(command)            TSO                      public   event CommandIssued
    register_consumers()              an RA                    its collection (transient "consumers")
    declare(command_id)               an RA, own consumers     its collection (transient "declaration")
    publish_declaration(id, summary)  that RA                  public   event Declared
    post_readings(command_id)         a meter, or its consumer's its collection (transient "readings",
                                      RA relaying it, signed   and from an RA "meter_signatures")
                                                                        event ReadingsPosted
    settle(command_id)                TSO                      public   event Settled
    get_command, list_commands, list_declarations              anyone (public)
    get_declaration, get_readings, list_consumers,
    get_aggregates, get_settlement    what seed figure 7 allows: the TSO everything, an AC its own and its
                                      RAs' figures, an RA its own; anything else is refused

Time: minutes are written "YYYY-MM-DDTHH:MM" in Japan Standard Time (UTC+09:00, the market's clock; a trailing
"+09:00" is accepted, other offsets are refused). A command's `start` and `end` are its first and last minute,
both included: the seed's command "00:00–00:04" is five minutes. Slots are `granularity_minutes` long (1 unless
the TSO says otherwise). Readings are accepted for the window plus the command's `baseline_minutes` before it.
Each step is held to real time by the transaction's timestamp (chaincode.contracts.dr_time): a command only for a
window ahead, declarations before its `declare_by`, a reading once its minute has ended and before `readings_due`,
settlement from `readings_due` on.

Units, all integers: energy in Wh (a reading is one consumer's Wh in one minute, at most MAX_READING_WH), power
in kW (requested_kw), prices in hundredths of a yen per kWh (price_per_kwh = 2500 is 25.00 yen/kWh) and rewards
in hundredths of a yen. How performance and rewards are computed: chaincode.contracts.settlement; what each input
may hold: chaincode.contracts.dr_inputs.

Where data lives, and why (the Fabric facts this design follows):
- Commands and declaration summaries are public: writing them needs the chaincode's policy (a majority of the
  organisations), which is fine for rare, public facts.
- Everything about consumers lives in the consumer's RA collection ({TSO, its AC, the RA}), passed in transient
  data so that no value reaches the block. A transaction that writes only one RA collection is endorsed by the
  RA's peer and its AC's (or the TSO's), as the collection's policy requires, so readings never need a majority.
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
- Performance and rewards are computed when read, like the aggregates. `settle` writes a public settlement
  record (which RAs declared, read from their declarations' hashes, and when), endorsed by the majority like
  every public write; readings and declarations check it, so after settlement nothing the figures depend on can
  change. (It cannot store the figures: they are private, and Fabric refuses writes from a transaction that ran a
  range query on private data.)
- A reading counts because its meter says so (meter_attestation). Meters belong to the meter operator (the TSO): its
  CA issues their certificates, each naming one consumer. A meter posting under its own identity has signed the
  proposal itself, and Fabric checked its certificate against the operator's MSP. An RA relaying readings sends,
  for each consumer of the batch, the meter's certificate and its signature over that consumer's readings
  (transient "meter_signatures": {consumer: {"certificate": PEM, "signature": base64 DER}}); every endorser
  checks the certificate against the operator's CA and the signature over the readings as sent, so the RA can
  neither make up, alter nor move readings between consumers.
- Consumers beyond the topology's are registered by their RA in its collection; a consumer id taken by another
  RA is refused by checking the hash of that RA's registry key, never its value.
"""

import hashlib
import json
from dataclasses import replace

from chaincode.contracts import access, dr_time, products, settlement
from chaincode.contracts.common import (
    CONSUMER,
    Caller,
    Clock,
    Refusal,
    action,
    announced,
    caller_of,
    canonical_json,
    check_count,
    consumer_ra,
    jst_moment,
)
from chaincode.contracts.dr_inputs import (
    BASELINE_METHODS,
    MAX_READING_WH,
    MAX_REGISTERED_PER_CALL,
    Command,
    Declaration,
    check_batch_size,
    check_identifier,
    checked_consumer_ids,
    checked_readings,
    transient_json,
)
from chaincode.contracts.meter_attestation import (
    MeterAuthority,
    check_meter_signatures,
    meter_authority_of_endorser,
    reading_statement,
)
from chaincode.shim import Contract, evaluate, submit
from consortium import topology as topology_file
from consortium.topology import Organisation, Topology
from consortium.units import minute_label

# The web's declaration form checks the same bounds; it reads them here.
__all__ = ["BASELINE_METHODS", "MAX_READING_WH", "DrContract", "MeterDataContract"]

# A consumer's readings are kept an hour to a key (JST hours: the offset is a whole number of hours).
READING_BLOCK_MINUTES = 60

TRANSIENT_CONSUMERS = "consumers"
TRANSIENT_DECLARATION = "declaration"
TRANSIENT_READINGS = "readings"
TRANSIENT_METER_SIGNATURES = "meter_signatures"

COMMAND_ISSUED = "CommandIssued"
CONSUMERS_REGISTERED = "ConsumersRegistered"
DECLARED = "Declared"
READINGS_POSTED = "ReadingsPosted"
SETTLED = "Settled"

# Object types of the composite keys (public: command, declared, settlement; RA collection: the rest, CONSUMER
# included).
COMMAND = "command"
DECLARED_SUMMARY = "declared"
DECLARATION = "declaration"
DECLARATION_DETAIL = "declaration-detail"
DECLARATION_SUMMARY = "declaration-summary"
READING = "reading"
READINGS_BATCH = "readings-batch"
SETTLEMENT = "settlement"


class MeterDataContract(Contract):
    """Base of the contracts that keep meter data in the RAs' collections (dr, and chaincode.contracts.dr_units):
    the topology, the endorser's clock and meter operator's CA, and which peers hold which collection."""

    # What a refusal on a peer outside the collection tells the caller to do instead.
    member_peer_hint = "send the request to your own organisation's peer"

    def __init__(
        self,
        topology: Topology | None = None,
        meter_authority: MeterAuthority | None = None,
        clock: Clock | None = None,
    ):
        """`meter_authority`: the meter operator's CA (default: from the channel configuration of the run
        directory this chaincode server serves); `clock`: the endorser's clock (default: see common.action)."""
        super().__init__()
        self.topology = topology or topology_file.load()
        self.clock = clock
        self.meter_authority = meter_authority
        self._members = {
            name: {self.topology.organisation(m).msp_id for m in members}
            for name, members in self.topology.collections().items()
        }

    def _ra_collection(self, ctx, ra: Organisation) -> str:
        """The RA's collection, after checking that this peer holds it (a non-member peer has only hashes)."""
        collection = self.topology.readings_collection_for(ra.name)
        self._require_member_peer(ctx, collection)
        return collection

    def _require_member_peer(self, ctx, collection: str) -> None:
        peer = ctx.stub.get_peer_msp_id()
        if peer not in self._members[collection]:
            raise Refusal(f"this peer ({peer}) is not a member of collection {collection}; {self.member_peer_hint}")


class DrContract(MeterDataContract):
    name = "dr"

    # Commands (public).

    @submit
    @action("issue command")
    def issue_command(self, ctx, command: dict) -> dict:
        """Issues a DR command for a window still ahead: {"id", "start", "end", "requested_kw", "target_acs",
        "price_per_kwh", "granularity_minutes" (1), "baseline_minutes" (30), "declare_by" (start), "readings_due"
        (end + the topology's dr.readings_due_minutes)}. TSO only."""
        caller = self._caller(ctx)
        if caller.org.role != "tso":
            raise Refusal(f"only the TSO issues DR commands, not {caller.org.name}")
        checked = Command.checked(
            command, [ac.name for ac in access.acs(self.topology)], self.topology.dr_readings_due_minutes
        )
        at = dr_time.transaction_time(ctx)
        dr_time.check_issuable(checked, at)
        key = ctx.stub.create_composite_key(COMMAND, [checked.id])
        if ctx.stub.get_state(key) is not None:
            raise Refusal(f"command {checked.id!r} already exists")
        # The topology's settlement defaults are written into the product, so no later topology moves its rules.
        product = products.frozen(checked.product, self.topology.settlement) if checked.product else None
        record = replace(checked, issued_at=jst_moment(at), product=product).record()
        ctx.stub.put_state(key, canonical_json(record))
        return announced(ctx, COMMAND_ISSUED, record)

    @evaluate
    @action("get command")
    def get_command(self, ctx, command_id: str) -> dict:
        return self._command(ctx, command_id).record()

    @evaluate
    def list_commands(self, ctx) -> list:
        with ctx.stub.get_state_by_partial_composite_key(COMMAND) as results:
            return [json.loads(kv.value) for kv in results]

    # Consumers.

    @submit
    @action("register consumers")
    def register_consumers(self, ctx) -> dict:
        """Registers the consumer ids in transient "consumers" (a JSON list) as the calling RA's."""
        ra = self._ra_user(ctx, "register consumers")
        consumers = transient_json(ctx, TRANSIENT_CONSUMERS, list)
        check_count("consumer ids", consumers, MAX_REGISTERED_PER_CALL)
        collection = self._ra_collection(ctx, ra)
        for consumer in checked_consumer_ids(consumers):
            owner = self._owner(ctx, consumer)
            if owner is not None:
                taken = "is already" if owner == ra.name else f"belongs to {owner}, not"
                raise Refusal(f"consumer {consumer} {taken} {ra.name}'s")
        for consumer in consumers:
            ctx.stub.put_private_data(
                collection,
                ctx.stub.create_composite_key(CONSUMER, [consumer]),
                canonical_json({"consumer": consumer, "ra": ra.name}),
            )
        summary = {"ra": ra.name, "registered": len(consumers)}
        return announced(ctx, CONSUMERS_REGISTERED, summary)

    @evaluate
    @action("list consumers")
    def list_consumers(self, ctx) -> dict:
        """The consumers of every RA the caller may see: {RA: [consumer ids]}."""
        caller = self._caller(ctx, meters=False)
        visible = {}
        for ra in access.visible_ras(self.topology, caller.org):
            collection = self._ra_collection(ctx, ra)
            with ctx.stub.get_private_data_by_partial_composite_key(collection, CONSUMER) as results:
                registered = [json.loads(kv.value)["consumer"] for kv in results]
            visible[ra.name] = sorted(set(ra.consumers) | set(registered))
        return visible

    # Declarations.

    @submit
    @action("declare")
    def declare(self, ctx, command_id: str) -> dict:
        """Records the calling RA's declaration for a command, from transient "declaration" (see
        dr_inputs.Declaration), before the command's declare_by. Returns the public summary to pass to
        publish_declaration."""
        ra = self._ra_user(ctx, "declare")
        command = self._command(ctx, command_id)
        if ra.parent not in command.target_acs:
            raise Refusal(
                f"command {command.id} targets {', '.join(command.target_acs)}; {ra.name} answers to {ra.parent}"
            )
        collection = self._ra_collection(ctx, ra)
        self._refuse_if_settled(ctx, command)
        dr_time.check_declarable(command, dr_time.transaction_time(ctx))
        if self._private_json(ctx, collection, DECLARATION, [command.id]) is not None:
            raise Refusal(f"{ra.name} has already declared for command {command.id}")
        fields = transient_json(ctx, TRANSIENT_DECLARATION, dict)
        declaration = Declaration.checked(fields, command, ra.name, lambda consumer: self._owner(ctx, consumer))
        summary = declaration.summary()
        for object_type, value in (
            (DECLARATION, declaration.header()),
            (DECLARATION_DETAIL, declaration.detail()),
            (DECLARATION_SUMMARY, summary),
        ):
            ctx.stub.put_private_data(
                collection, ctx.stub.create_composite_key(object_type, [command.id]), canonical_json(value)
            )
        return summary

    @submit
    @action("publish declaration")
    def publish_declaration(self, ctx, command_id: str, summary: dict) -> dict:
        """Writes the summary `declare` returned on the channel, once every endorser has checked it against the
        hash of the RA's private summary; at any time before settlement (what it says was recorded in time)."""
        ra = self._ra_user(ctx, "publish declaration")
        command = self._command(ctx, command_id)
        self._refuse_if_settled(ctx, command)
        if set(summary) != {"command", "ra", "consumers", "expected_wh"}:
            raise Refusal(
                "the summary must have exactly command, ra, consumers and expected_wh (as declare returned it)"
            )
        if summary["ra"] != ra.name or summary["command"] != command.id:
            raise Refusal(
                f"{ra.name} may publish only its own summary for command {command.id}, "
                f"not {summary['ra']!r}'s for {summary['command']!r}"
            )
        key = ctx.stub.create_composite_key(DECLARED_SUMMARY, [command.id, ra.name])
        if ctx.stub.get_state(key) is not None:
            raise Refusal(f"{ra.name}'s declaration for command {command.id} is already published")
        value = canonical_json(summary)
        recorded = ctx.stub.get_private_data_hash(
            self.topology.readings_collection_for(ra.name),
            ctx.stub.create_composite_key(DECLARATION_SUMMARY, [command.id]),
        )
        if recorded is None:
            raise Refusal(f"{ra.name} has not declared for command {command.id}")
        if recorded != hashlib.sha256(value).digest():
            raise Refusal(f"the summary does not match {ra.name}'s declaration for command {command.id}")
        ctx.stub.put_state(key, value)
        ctx.stub.set_event(DECLARED, value)
        return summary

    @evaluate
    @action("list declarations")
    def list_declarations(self, ctx, command_id: str) -> list:
        """The published summaries for a command: RA, number of consumers, total expected Wh."""
        command = self._command(ctx, command_id)
        with ctx.stub.get_state_by_partial_composite_key(DECLARED_SUMMARY, [command.id]) as results:
            return [json.loads(kv.value) for kv in results]

    @evaluate
    @action("get declaration")
    def get_declaration(self, ctx, command_id: str, ra: str) -> dict:
        """An RA's declaration with its consumers' detail."""
        caller = self._caller(ctx, meters=False)
        org = self._visible_org(caller, ra)
        if org.role != "ra":
            raise Refusal(f"declarations are made by RAs; {ra} is not one")
        command = self._command(ctx, command_id)
        collection = self._ra_collection(ctx, org)
        header = self._private_json(ctx, collection, DECLARATION, [command.id])
        if header is None:
            raise Refusal(f"{org.name} has not declared for command {command.id}")
        return {**header, **self._private_json(ctx, collection, DECLARATION_DETAIL, [command.id])}

    # Readings.

    @submit
    @action("post readings")
    def post_readings(self, ctx, command_id: str) -> dict:
        """Records per-minute readings from transient "readings", a JSON list of {"consumer", "minute", "wh"},
        all or none, each for a minute that has ended, before the command's readings_due. A meter posts only its own
        consumer's; an RA any of its declared consumers', each consumer's signed by its meter (transient
        "meter_signatures", see the module's docstring)."""
        caller = self._caller(ctx)
        ra = caller.org
        if ra.role != "ra":
            raise Refusal(f"readings are posted by an RA or its consumers' meters, not by {ra.name}")
        command = self._command(ctx, command_id)
        items = transient_json(ctx, TRANSIENT_READINGS, list)
        check_batch_size(items)
        collection = self._ra_collection(ctx, ra)
        self._refuse_if_settled(ctx, command)
        at = dr_time.transaction_time(ctx)
        dr_time.check_readings_open(command, at)
        header = self._private_json(ctx, collection, DECLARATION, [command.id])
        if header is None:
            raise Refusal(
                f"{ra.name} has not declared for command {command.id}; readings count only for declared consumers"
            )
        readings = checked_readings(
            items, command, ra.name, caller.meter_of, set(header["consumers"]), lambda c: self._owner(ctx, c), at
        )
        if caller.meter_of is None:
            self._check_meter_signatures(ctx, command, readings)
        blocks: dict[tuple[str, int], dict[str, int]] = {}
        for reading in readings:
            block = reading.minute - reading.minute % READING_BLOCK_MINUTES
            blocks.setdefault((reading.consumer, block), {})[minute_label(reading.minute)] = reading.wh
        stored = {}
        block_keys = {
            (consumer, block): ctx.stub.create_composite_key(READING, [command.id, consumer, minute_label(block)])
            for consumer, block in blocks
        }
        values = ctx.stub.get_multiple_private_data(collection, *block_keys.values())  # one call, not one per block
        for ((consumer, block), key), value in zip(block_keys.items(), values, strict=True):
            recorded = json.loads(value)["minutes"] if value else {}
            for label in sorted(blocks[(consumer, block)]):
                if label in recorded:
                    raise Refusal(f"duplicate reading: {consumer} at {label} is already recorded")
            stored[key] = {
                "command": command.id,
                "consumer": consumer,
                "hour": minute_label(block),
                "minutes": {**recorded, **blocks[(consumer, block)]},
            }
        for key, block in stored.items():
            ctx.stub.put_private_data(collection, key, canonical_json(block))
        sums = settlement.batch_sums(readings)
        batch_key = ctx.stub.create_composite_key(READINGS_BATCH, [command.id, ctx.stub.get_tx_id()])
        ctx.stub.put_private_data(collection, batch_key, canonical_json({"minutes": sums}))
        minutes = sorted(sums)
        summary = {
            "command": command.id,
            "ra": ra.name,
            "readings": len(readings),
            "first_minute": minutes[0],
            "last_minute": minutes[-1],
        }
        return announced(ctx, READINGS_POSTED, summary)

    @evaluate
    @action("get readings")
    def get_readings(self, ctx, consumer: str, command_id: str) -> dict:
        """One consumer's readings over a command's accepted window (baseline minutes included)."""
        caller = self._caller(ctx)
        command = self._command(ctx, command_id)
        owner = self._owner(ctx, consumer) if isinstance(consumer, str) and consumer else None
        visible = {ra.name for ra in access.visible_ras(self.topology, caller.org)}
        if caller.meter_of is not None:
            visible = {caller.org.name} if caller.meter_of == consumer else set()
        if owner is None or owner not in visible:
            if caller.org.role == "tso":
                raise Refusal(f"unknown consumer {consumer!r}")
            raise Refusal(f"consumer {consumer!r} is not one {caller.org.name} may see")
        collection = self._ra_collection(ctx, self.topology.organisation(owner))
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
    @action("get aggregates")
    def get_aggregates(self, ctx, command_id: str, org: str = "") -> dict:
        """Per-minute Wh and reading counts over the command window, per RA and per AC: of `org`, or of every
        organisation the caller may see when `org` is empty."""
        caller = self._caller(ctx, meters=False)
        command = self._command(ctx, command_id)
        orgs = [self._visible_org(caller, org)] if org else access.visible_figures(self.topology, caller.org)
        ra_sums = {}
        for target in orgs:
            for ra in access.ras_of(self.topology, target):
                if ra.name not in ra_sums:
                    ra_sums[ra.name] = self._minute_sums(ctx, command, ra)
        labels = command.window_labels()
        aggregates = [
            settlement.aggregate(target, labels, [ra_sums[ra.name] for ra in access.ras_of(self.topology, target)])
            for target in orgs
        ]
        return {"command": command.id, "unit": "Wh", "aggregates": aggregates}

    @submit
    @action("settle")
    def settle(self, ctx, command_id: str) -> dict:
        """Closes a command once its readings are due (readings_due): a public settlement record, after which its readings and declarations are
        refused, so the figures get_settlement computes are final. TSO only. The record holds nothing private
        (which RAs declared is public through their published summaries; here it is read from the hashes of
        their private declarations, which every peer holds), so any peer can endorse it and the chaincode's
        majority policy applies: the TSO cannot settle alone."""
        caller = self._caller(ctx)
        if caller.org.role != "tso":
            raise Refusal(f"only the TSO settles DR commands, not {caller.org.name}")
        command = self._command(ctx, command_id)
        at = dr_time.transaction_time(ctx)
        dr_time.check_settleable(command, at)
        self._refuse_if_settled(ctx, command)
        declaration = ctx.stub.create_composite_key(DECLARATION, [command.id])
        declared = [
            ra.name
            for ra in access.ras(self.topology)
            if ctx.stub.get_private_data_hash(self.topology.readings_collection_for(ra.name), declaration)
        ]
        record = {
            "command": command.id,
            "declared_ras": declared,
            "settled_at": jst_moment(at),
        }
        ctx.stub.put_state(self._settlement_key(ctx, command), canonical_json(record))
        return announced(ctx, SETTLED, record)

    @evaluate
    @action("get settlement")
    def get_settlement(self, ctx, command_id: str) -> dict:
        """Performance and reward per slot of every RA and AC the caller may see (and the total, for the TSO);
        final once the command is settled, the figures so far before."""
        caller = self._caller(ctx, meters=False)
        command = self._command(ctx, command_id)
        if caller.org.role == "ra":
            figures = [self._ra_figure(ctx, command, caller.org)]
        else:
            acs = access.acs(self.topology) if caller.org.role == "tso" else [caller.org]
            self._require_member_peer(ctx, self.topology.ac_collection_for(acs[0].name))
            figures = []
            for ac in acs:
                ras = [self._ra_figure(ctx, command, ra) for ra in access.ras_of(self.topology, ac)]
                figures += [settlement.sum_figures(ac, command, ras), *ras]
        marker = ctx.stub.get_state(self._settlement_key(ctx, command))
        view = settlement.settlement_view(caller.org, command, figures, settled=marker is not None)
        view["settled_at"] = json.loads(marker)["settled_at"] if marker else None
        return view

    # Who is calling and what this peer holds.

    def _caller(self, ctx, meters: bool = True) -> Caller:
        caller = caller_of(ctx, self.topology)
        if caller.meter_of is not None and not meters:
            raise Refusal("a smart meter may post and read only its own readings")
        return caller

    def _ra_user(self, ctx, what: str) -> Organisation:
        """The calling RA; `what` it is about to do is refused to anyone else."""
        caller = self._caller(ctx, meters=False)
        if caller.org.role != "ra":
            raise Refusal(f"only an RA may {what}, not {caller.org.name}")
        return caller.org

    def _visible_org(self, caller: Caller, name: str) -> Organisation:
        for org in access.visible_figures(self.topology, caller.org):
            if org.name == name:
                return org
        if name in self.topology.org_names and self.topology.organisation(name).role == "tso":
            raise Refusal("figures are kept per AC and RA; the TSO's are the sum of its ACs'")
        raise Refusal(f"{caller.org.name} may not see the figures of {name!r}")

    def _owner(self, ctx, consumer: str) -> str | None:
        return consumer_ra(ctx, self.topology, consumer)

    # Meter signatures.

    def _check_meter_signatures(self, ctx, command: Command, readings: list) -> None:
        """Refuses the batch unless each consumer's readings carry its own meter's signature over exactly them."""
        signed = TRANSIENT_METER_SIGNATURES in ctx.stub.get_transient()
        signatures = transient_json(ctx, TRANSIENT_METER_SIGNATURES, dict) if signed else {}
        by_consumer: dict[str, list[tuple[str, int]]] = {}
        labels: dict[int, str] = {}  # a batch spans few minutes, and formatting one is half the cost of a check
        for reading in readings:
            label = labels.get(reading.minute) or labels.setdefault(reading.minute, minute_label(reading.minute))
            by_consumer.setdefault(reading.consumer, []).append((label, reading.wh))
        statements = {consumer: reading_statement(command.id, consumer, rows) for consumer, rows in by_consumer.items()}
        at = ctx.stub.get_tx_timestamp()
        check_meter_signatures(signatures, statements, "readings", lambda: meter_authority_of_endorser(self), at)

    # Reading the ledger.

    def _command(self, ctx, command_id: str) -> Command:
        check_identifier("command id", command_id)
        value = ctx.stub.get_state(ctx.stub.create_composite_key(COMMAND, [command_id]))
        if value is None:
            raise Refusal(f"no command {command_id!r}")
        return Command.from_record(json.loads(value))

    @staticmethod
    def _private_json(ctx, collection: str, object_type: str, attributes: list[str]) -> dict | None:
        value = ctx.stub.get_private_data(collection, ctx.stub.create_composite_key(object_type, attributes))
        return None if value is None else json.loads(value)

    @staticmethod
    def _settlement_key(ctx, command: Command) -> str:
        return ctx.stub.create_composite_key(SETTLEMENT, [command.id])

    def _refuse_if_settled(self, ctx, command: Command) -> None:
        if ctx.stub.get_state(self._settlement_key(ctx, command)):
            raise Refusal(f"command {command.id} is settled")

    def _minute_sums(self, ctx, command: Command, ra: Organisation) -> settlement.MinuteSums:
        """One RA's per-minute sums for a command: its batches' delta keys added up."""
        collection = self._ra_collection(ctx, ra)
        with ctx.stub.get_private_data_by_partial_composite_key(collection, READINGS_BATCH, [command.id]) as batches:
            return settlement.added_sums(json.loads(kv.value)["minutes"] for kv in batches)

    def _ra_figure(self, ctx, command: Command, ra: Organisation) -> dict:
        collection = self._ra_collection(ctx, ra)
        header = self._private_json(ctx, collection, DECLARATION, [command.id])
        sums = {} if header is None else self._minute_sums(ctx, command, ra)
        return settlement.ra_figure(command, ra, header, sums)
