"""The "units" contract: DR settlement by Japan's rules, per 30-minute unit (コマ), for commands that name a product
(chaincode.contracts.products); 30-minute meter history and 基準値計画 forecasts, the data those rules need.

    post_history()                  an RA relaying its meters'      its collection (transient "history", and
                                    signed values, or a meter       from an RA "meter_signatures")
                                                                    event HistoryPosted
    submit_forecast(command_id)     an RA, before the gate closure  its collection (transient "forecast")
    get_history(consumer, from, to)  the TSO, the consumer's AC and RA, its meter
    get_unit_settlement(command_id)  figures as get_settlement shows them: the TSO all, an AC its own and its RAs'
                                     (and their consumers'), an RA its own and its consumers' (the sen once
                                     its share is delivered)
    record_statement(command_id, ac) the AC or the TSO, once the     the AC's collection (endorsed by the AC's
                                     command is settled, once        peer and the TSO's; transient "salt");
                                                                     event StatementRecorded
    get_statement(command_id, ac)    the AC and the TSO
    deliver_share(command_id, ra)    the RA's AC or the TSO, once     the RA's collection (transient "share")
                                     the AC's statement is recorded  event ShareDelivered

History: one private key per consumer and JST day in the RA's collection, the 48 30-minute Wh values Japan's smart
meters record (00:00–00:30 first). It is the meter's word, as readings are: an RA relays it with each consumer's
meter signature over exactly those values (meter_attestation.history_statement), checked against the meter
operator's CA by every endorser; a meter may post its own. A day is accepted once it has ended in JST, by the
transaction's (bounded) time, once: a recorded day is never overwritten. Each transaction reads its keys in one
batched call and writes them in the shim's write batches.

Forecast (事前予測型 baselines): an RA's 基準値計画 for a command, Wh per consumer per unit, one key per command and RA,
written once and only up to the product's gate closure before the first unit (balancing.locked_forecast): it cannot
move once the window is near, and settlement reads it as written.

Settlement (get_unit_settlement), evaluated on a member peer of every collection it reads (the TSO's, the AC's own;
an RA's own for an RA), from the dr contract's keys (its key-name constants) and the keys above, by pure functions.
An RA sees its own and its consumers' energy figures per unit, and the sen only once its share is delivered (see
Statement): its share of its AC's payment depends on the other RAs' data, which Fabric lets neither its peer nor
its identity read (its AC and the TSO see every RA's and consumer's sen).
- Units: the 30-minute units the window overlaps (settlement_units.window_units; a unit the window covers in part
  is assessed over its minutes in the window with its baseline pro-rated: our rule, so that a test window need not
  wait for a unit boundary).
- Baseline per consumer, by the product: kWh-type DR from history (baselines.baseline: High 4 of 5 on weekdays,
  High 2 of 3 on weekends and holidays, ERAB guideline 第2章; DR days are the days of other commands the consumer was
  declared for; Japanese holidays from the `holidays` package; the same-day adjustment from the event day's
  per-minute readings before the window, so the command's baseline_minutes must cover the adjustment window);
  a baseline needs every one of the 30 days of history before the event (posted before the command was settled),
  so that an RA cannot lift it by leaving a low day out; a window crossing midnight JST cannot use the day
  before's slots after midnight (the event day's history is not used), so that day is no candidate;
  直前計測型 the mean of the product's measure_minutes before the window (balancing.measured_baseline); 事前予測型 the
  RA's locked 基準値計画. A consumer whose baseline cannot be set (too little history, readings missing before the
  window, no plan) delivers nothing: withholding data never pays.
- Contracted, per consumer: what its RA declared it would deliver in the unit (settlement_units
  .contracted_from_slots), for every product: the ERAB guideline leaves the promised kWh to the contract, and a
  balancing product's contracted ΔkW is the AC's (the market member's), assessed on the AC's aggregate; each
  consumer's shortfall against its declaration is what its share of the AC's penalty is weighed by. Computable
  from the RA's own collection, so an RA's view shows it.
- Money: kWh-type reward on rewarded Wh at the command's price and the shortfall charge (settlement_units
  .kwh_payable); a balancing product's ΔkW payment, Assessment I and II and their penalties (settlement_units
  .delta_kw_payable, EPRX 取引ガイド §2-9 to §2-11). The TSO pays each AC; each AC's reward and penalty are split to
  its RAs and each RA's to its consumers in whole sen that add up exactly (settlement_units.settle).
The answer is final once the dr contract's settle has closed the command (after which its readings and
declarations cannot change); history for days before the event is already fixed, a forecast was locked earlier.

Statement (record_statement): the figures are computed on read, on each organisation's own peer, so the TSO's and an
AC's agree only because both run the same functions on the same data. What the TSO pays is a record both endorsed:
the AC's statement, written in the AC's collection, whose policy AND('ACn.peer', 'TSO.peer') needs both peers to
have computed the same bytes (a peer running other code gives other bytes, and the gateway refuses the transaction;
one peer's endorsement alone is invalidated by every peer). It holds the AC's figure (units, assessments, reward,
penalty, amount), its RAs' figures, and the SHA-256 of its consumers' figures in canonical JSON, so that any later
reading can be checked against it (get_unit_settlement says whether it still matches). An RA's peer cannot read the
AC's collection; its share is recorded there apart, salted, and deliver_share brings it to the RA's collection: its
own peer checks it against that key's hash, which every peer holds, and it then splits it to its consumers as the
AC's and the TSO's views do. The salt comes from the recording client (transient "salt"): the hashes are public, and
a few unsalted figures could be guessed from them.
"""

import hashlib
import json
import re
from datetime import date, datetime, timedelta
from fractions import Fraction
from math import ceil

from chaincode.contracts import access, balancing, baselines, products, settlement_units
from chaincode.contracts.common import (
    Clock,
    Refusal,
    action,
    announced,
    caller_of,
    canonical_json,
    consumer_ra,
    jst_moment,
)
from chaincode.contracts.dr import (
    COMMAND,
    DECLARATION,
    DECLARATION_DETAIL,
    READING,
    READING_BLOCK_MINUTES,
    SETTLEMENT,
    TRANSIENT_METER_SIGNATURES,
    MeterDataContract,
)
from chaincode.contracts.dr_inputs import MAX_READING_WH, Command, check_identifier, transient_json
from chaincode.contracts.meter_attestation import (
    MeterAuthority,
    check_meter_signatures,
    history_statement,
    meter_authority_of_endorser,
)
from chaincode.shim import evaluate, submit
from consortium.topology import Organisation, Topology
from consortium.units import EPOCH, minute_index, minute_label

HISTORY = "history"  # RA collection: [consumer, day]
FORECAST = "forecast"  # RA collection: [command, ra]
TRANSIENT_HISTORY = "history"
TRANSIENT_FORECAST = "forecast"
STATEMENT = "statement"  # AC collection: [command]
STATEMENT_SHARE = "statement-share"  # AC collection: [command, ra]
SHARE = "share"  # RA collection: [command]
TRANSIENT_SALT = "salt"
TRANSIENT_SHARE = "share"
_SALT = re.compile(r"[0-9a-f]{32}")
STATEMENT_FIGURES = ("product", "settled_at", "ac_figure", "ras", "consumers", "consumers_digest")
HISTORY_POSTED = "HistoryPosted"
STATEMENT_RECORDED = "StatementRecorded"
SHARE_DELIVERED = "ShareDelivered"
FORECAST_SUBMITTED = "ForecastSubmitted"

MONEY_UNSEEN = (
    "an RA's share of its AC's payment depends on its AC's aggregate, which its peer cannot read (it holds only "
    "its own collection): its sen show once its AC or the TSO has delivered its share of the AC's recorded statement"
)
SLOTS_PER_DAY = 48
MAX_SLOT_WH = MAX_READING_WH * settlement_units.UNIT_MINUTES
MAX_HISTORY_PER_CALL = 5000  # consumer-days: 5 weeks of 140 consumers
MAX_HISTORY_SPAN_DAYS = 62
HISTORY_CHUNK_CONSUMERS = 500  # consumers whose history is held at once while their baselines are set
LOOKBACK_DAYS = max(baselines.WEEKDAY_RULE.lookback_days, baselines.HOLIDAY_RULE.lookback_days)
_DAY = re.compile(r"2[0-9]{3}-[0-9]{2}-[0-9]{2}")


def checked_day(what: str, text) -> date:
    if not isinstance(text, str) or not _DAY.fullmatch(text):
        raise Refusal(f"{what} must be a JST day YYYY-MM-DD, got {text!r:.40}")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Refusal(f"{what} is not a real day: {text!r}") from None


def checked_slot_values(what: str, values, count: int) -> list[int]:
    if not isinstance(values, list) or len(values) != count:
        raise Refusal(f"{what} must list {count} whole Wh values, got {values!r:.60}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SLOT_WH:
            raise Refusal(f"{what} values must be integers from 0 to {MAX_SLOT_WH} Wh, got {value!r}")
    return values


class UnitsContract(MeterDataContract):
    name = "units"
    member_peer_hint = (
        "send the request to a peer that holds it (an RA's own for its history, its AC's or the TSO's for settlement)"
    )

    def __init__(
        self,
        topology: Topology | None = None,
        meter_authority: MeterAuthority | None = None,
        clock: Clock | None = None,
    ):
        """As the dr contract's: `meter_authority` the meter operator's CA (default: from the channel's genesis
        block), `clock` the endorser's (default: see common.action)."""
        super().__init__(topology, meter_authority, clock)
        self._calendars: dict[tuple[int, ...], object] = {}
        self._tso = next(org.name for org in self.topology.organisations if org.role == "tso")

    # History.

    @submit
    @action("post history")
    def post_history(self, ctx) -> dict:
        """Records 30-minute history from transient "history", a JSON list of {"consumer", "day", "wh": [48 Wh]},
        all or none: days that have ended (JST), not recorded yet, of the calling RA's own consumers (a meter: its
        own), each consumer's days signed by its meter when an RA relays them."""
        caller = caller_of(ctx, self.topology)
        ra = caller.org
        if ra.role != "ra":
            raise Refusal(f"history is posted by an RA or its consumers' meters, not by {ra.name}")
        items = transient_json(ctx, TRANSIENT_HISTORY, list)
        if not 1 <= len(items) <= MAX_HISTORY_PER_CALL:
            raise Refusal(f"a batch holds 1 to {MAX_HISTORY_PER_CALL} consumer-days, got {len(items)}")
        collection = self._ra_collection(ctx, ra)
        timestamp = ctx.stub.get_tx_timestamp()
        if timestamp is None:
            raise Refusal("the proposal carries no timestamp, so no day can be known to have ended")
        now = (timestamp - EPOCH) // timedelta(minutes=1)
        owners: dict[str, str | None] = {}
        days: dict[tuple[str, str], list[int]] = {}
        for position, item in enumerate(items):
            where = f"history {position}"
            if not isinstance(item, dict) or set(item) != {"consumer", "day", "wh"}:
                raise Refusal(f"{where} must be an object with exactly consumer, day and wh, got {item!r:.80}")
            consumer = check_identifier(f"{where}: consumer", item["consumer"])
            if caller.meter_of is not None and consumer != caller.meter_of:
                raise Refusal(f"the meter of consumer {caller.meter_of} may post only its own history")
            if consumer not in owners:
                owners[consumer] = consumer_ra(ctx, self.topology, consumer)
            if owners[consumer] != ra.name:
                whose = "is unknown" if owners[consumer] is None else f"belongs to {owners[consumer]}"
                raise Refusal(f"{where}: consumer {consumer} {whose}; {ra.name} posts only its own consumers'")
            day = checked_day(f"{where}: day", item["day"])
            label = day.isoformat()
            if baselines.day_start(day + timedelta(days=1)) > now:
                raise Refusal(
                    f"{where}: the day {label} has not ended (JST) at the transaction's time "
                    f"{jst_moment(timestamp)}; a day's history is accepted once it has ended"
                )
            values = checked_slot_values(f"{where}: wh", item["wh"], SLOTS_PER_DAY)
            if (consumer, label) in days:
                raise Refusal(f"duplicate history in the batch: {consumer} on {label}")
            days[(consumer, label)] = values
        if caller.meter_of is None:
            self._check_meter_signatures(ctx, days)
        keys = {pair: ctx.stub.create_composite_key(HISTORY, list(pair)) for pair in days}
        recorded = ctx.stub.get_multiple_private_data(collection, *keys.values())  # one call, not one per day
        for (consumer, label), value in zip(keys, recorded, strict=True):
            if value is not None:
                raise Refusal(f"duplicate history: {consumer} on {label} is already recorded")
        for (consumer, label), key in keys.items():
            record = {
                "consumer": consumer,
                "day": label,
                "wh": days[(consumer, label)],
                "posted_at": jst_moment(timestamp),
            }
            ctx.stub.put_private_data(collection, key, canonical_json(record))
        labels = sorted(label for _, label in days)
        summary = {
            "ra": ra.name,
            "consumers": len({consumer for consumer, _ in days}),
            "days": len(days),
            "first_day": labels[0],
            "last_day": labels[-1],
        }
        return announced(ctx, HISTORY_POSTED, summary)

    @evaluate
    @action("get history")
    def get_history(self, ctx, consumer: str, first_day: str, last_day: str) -> dict:
        """One consumer's 30-minute history from `first_day` to `last_day` (JST days, both included, at most
        MAX_HISTORY_SPAN_DAYS): the days recorded, each with its 48 Wh values."""
        caller = caller_of(ctx, self.topology)
        owner = consumer_ra(ctx, self.topology, consumer) if isinstance(consumer, str) and consumer else None
        visible = {ra.name for ra in access.visible_ras(self.topology, caller.org)}
        if caller.meter_of is not None:
            visible = {caller.org.name} if caller.meter_of == consumer else set()
        if owner is None or owner not in visible:
            if caller.org.role == "tso" and caller.meter_of is None:
                raise Refusal(f"unknown consumer {consumer!r}")
            raise Refusal(f"consumer {consumer!r} is not one {caller.org.name} may see")
        first, last = checked_day("first day", first_day), checked_day("last day", last_day)
        span = (last - first).days + 1
        if not 1 <= span <= MAX_HISTORY_SPAN_DAYS:
            raise Refusal(f"ask for 1 to {MAX_HISTORY_SPAN_DAYS} days, last day not before the first")
        collection = self._ra_collection(ctx, self.topology.organisation(owner))
        labels = [(first + timedelta(days=n)).isoformat() for n in range(span)]
        keys = [ctx.stub.create_composite_key(HISTORY, [consumer, label]) for label in labels]
        values = ctx.stub.get_multiple_private_data(collection, *keys)
        found = [json.loads(v) for v in values if v is not None]
        return {"consumer": consumer, "ra": owner, "days": [{"day": d["day"], "wh": d["wh"]} for d in found]}

    # Forecasts (事前予測型).

    @submit
    @action("submit forecast")
    def submit_forecast(self, ctx, command_id: str) -> dict:
        """The calling RA's 基準値計画 for a command whose product has a forecast baseline, from transient
        "forecast": {consumer: [Wh per 30-minute unit the window overlaps]}; once, and by the gate closure."""
        caller = caller_of(ctx, self.topology)
        ra = caller.org
        if ra.role != "ra" or caller.meter_of is not None:
            raise Refusal(f"a 基準値計画 is the RA's to submit, not {caller.meter_of or ra.name}'s")
        command, product = self._command(ctx, command_id)
        if product.baseline != "forecast":
            raise Refusal(f"command {command.id}'s product ({product.name}) has a {product.baseline} baseline")
        if ra.parent not in command.target_acs:
            raise Refusal(f"command {command.id} does not target {ra.parent}, {ra.name}'s AC")
        plan = transient_json(ctx, TRANSIENT_FORECAST, dict)
        units = settlement_units.window_units(command.first, command.last)
        if not 1 <= len(plan) <= 10_000:
            raise Refusal("a 基準値計画 gives 1 to 10000 consumers' Wh per unit")
        timestamp = ctx.stub.get_tx_timestamp()
        if timestamp is None:
            raise Refusal("the proposal carries no timestamp, so the gate closure cannot be checked")
        submitted = ceil((timestamp - EPOCH) / timedelta(minutes=1))
        checked = {}
        for consumer in sorted(plan):
            check_identifier("consumer id", consumer)
            owner = consumer_ra(ctx, self.topology, consumer)
            if owner != ra.name:
                raise Refusal(f"consumer {consumer} is not {ra.name}'s")
            values = checked_slot_values(f"the plan of {consumer}", plan[consumer], len(units))
            balancing.locked_forecast(values, units[0][0], submitted, product.gate_closure_minutes)
            checked[consumer] = values
        collection = self._ra_collection(ctx, ra)
        key = ctx.stub.create_composite_key(FORECAST, [command.id, ra.name])
        if ctx.stub.get_private_data(collection, key) is not None:
            raise Refusal(f"{ra.name}'s 基準値計画 for command {command.id} is already submitted and locked")
        record = {
            "command": command.id,
            "ra": ra.name,
            "submitted_at": jst_moment(timestamp),
            "units": [minute_label(start) for start, _ in units],
            "consumers": checked,
        }
        ctx.stub.put_private_data(collection, key, canonical_json(record))
        summary = {"command": command.id, "ra": ra.name, "consumers": len(checked), "units": len(units)}
        return announced(ctx, FORECAST_SUBMITTED, summary)

    # Settlement.

    @evaluate
    @action("get unit settlement")
    def get_unit_settlement(self, ctx, command_id: str) -> dict:
        """Per 30-minute unit, for every consumer, RA and AC the caller may see (and the TSO's total, for the TSO):
        baseline, actual, delivered, contracted, shortfall and rewarded Wh, the assessments and the money in sen;
        each consumer's baseline and how it was set; for the TSO and an AC, each AC's recorded statement, if any,
        and whether these figures still match it. Final once the dr contract has settled the command."""
        caller = caller_of(ctx, self.topology)
        if caller.meter_of is not None:
            raise Refusal("a smart meter may read only its own history")
        command, product = self._command(ctx, command_id)
        result = self._settlement(ctx, caller.org, command, product)
        if caller.org.role != "ra":
            for figure in result["acs"]:
                figure["statement"] = self._statement_status(ctx, command, figure["org"], result)
        return result

    @submit
    @action("record statement")
    def record_statement(self, ctx, command_id: str, ac: str) -> dict:
        """Records AC `ac`'s settlement statement of a settled command in the AC's collection: what the TSO pays
        it per unit and in all, each of its RAs' shares, and a digest of every consumer's figures. The AC or the
        TSO records it, once; the collection's policy, AND(ACn, TSO), has payee and payer each recompute it on
        their own peer, so neither can record it alone or differently. What the chaincode answers (and its event)
        holds no money: a transaction's response is in the block, which every member receives."""
        org, command, product, collection, recorded = self._statement_of(ctx, command_id, ac, "recorded by")
        key = ctx.stub.create_composite_key(STATEMENT, [command.id])
        if recorded is not None:
            at = json.loads(recorded)["recorded_at"]
            raise Refusal(f"{ac}'s statement of command {command.id} is already recorded (at {at}); it never changes")
        marker = ctx.stub.get_state(ctx.stub.create_composite_key(SETTLEMENT, [command.id]))
        if marker is None:
            raise Refusal(f"command {command.id} is not settled yet: a statement records its final figures")
        result = self._settlement(ctx, self.topology.organisation(ac), command, product)
        if not result["acs"]:
            raise Refusal(f"none of {ac}'s RAs declared for command {command.id}: there is nothing to state")
        salt = ctx.stub.get_transient().get(TRANSIENT_SALT, b"").decode("utf-8", errors="replace")
        if not _SALT.fullmatch(salt):
            raise Refusal(
                f"a statement needs a random salt, 32 lowercase hex digits, in transient {TRANSIENT_SALT!r}: the "
                "hashes every peer holds must not let anyone guess its figures"
            )
        timestamp = ctx.stub.get_tx_timestamp()
        if timestamp is None:
            raise Refusal("the proposal carries no timestamp, so the statement's time cannot be known")
        statement = {
            "command": command.id,
            "ac": ac,
            "recorded_at": jst_moment(timestamp),
            "recorded_by": org.name,
            "salt": salt,
            **_statement_figures(result, ac),
        }
        ctx.stub.put_private_data(collection, key, canonical_json(statement))
        for figure in statement["ras"]:
            share_key = ctx.stub.create_composite_key(STATEMENT_SHARE, [command.id, figure["org"]])
            ctx.stub.put_private_data(collection, share_key, canonical_json(_share(statement, figure)))
        summary = {"command": command.id, "ac": ac, "recorded_by": org.name, "recorded_at": statement["recorded_at"]}
        return announced(ctx, STATEMENT_RECORDED, summary)

    @evaluate
    @action("get statement")
    def get_statement(self, ctx, command_id: str, ac: str) -> dict:
        """AC `ac`'s recorded statement of a command (see record_statement): to that AC and the TSO."""
        _, command, _, collection, recorded = self._statement_of(ctx, command_id, ac, "seen by")
        if recorded is None:
            raise Refusal(f"{ac}'s statement of command {command.id} is not recorded yet")
        statement = json.loads(recorded)
        keys = [ctx.stub.create_composite_key(STATEMENT_SHARE, [command.id, f["org"]]) for f in statement["ras"]]
        shares = [json.loads(value) for value in ctx.stub.get_multiple_private_data(collection, *keys)]
        return {**statement, "shares": {share["ra"]: share for share in shares}}

    @submit
    @action("deliver share")
    def deliver_share(self, ctx, command_id: str, ra: str) -> dict:
        """Gives RA `ra` its share of its AC's recorded statement, in the RA's own collection, so that its figures
        show its sen. The share travels in transient "share" as get_statement shows it; every endorser, the RA's own
        peer included (which cannot read the AC's collection), checks it against the hash of the recorded share,
        which every peer holds: the RA's share is what its AC and the TSO endorsed, and nobody sees another RA's.
        The RA's AC or the TSO delivers it, once; the RA collection's policy has the RA's peer endorse it."""
        caller = caller_of(ctx, self.topology)
        org = caller.org
        owner = next((o for o in access.ras(self.topology) if o.name == ra), None)
        if owner is None:
            raise Refusal(f"there is no RA {ra!r}")
        if caller.meter_of is not None or not (org.role == "tso" or org.name == owner.parent):
            raise Refusal(f"{ra}'s share is delivered by its AC or the TSO, not by {caller.meter_of or org.name}")
        command, _ = self._command(ctx, command_id)
        collection = self._ra_collection(ctx, owner)
        key = ctx.stub.create_composite_key(SHARE, [command.id])
        if ctx.stub.get_private_data(collection, key) is not None:
            raise Refusal(f"{ra}'s share of command {command.id} is already delivered; it never changes")
        ac_collection = self.topology.ac_collection_for(str(owner.parent))
        share_key = ctx.stub.create_composite_key(STATEMENT_SHARE, [command.id, ra])
        recorded = ctx.stub.get_private_data_hash(ac_collection, share_key)
        if recorded is None:
            raise Refusal(f"{owner.parent}'s statement of command {command.id} records no share of {ra}")
        share = transient_json(ctx, TRANSIENT_SHARE, dict)
        if hashlib.sha256(canonical_json(share)).digest() != recorded:
            raise Refusal(f"the share sent is not the one {owner.parent}'s statement records for {ra}")
        timestamp = ctx.stub.get_tx_timestamp()
        if timestamp is None:
            raise Refusal("the proposal carries no timestamp, so the delivery's time cannot be known")
        delivered = {**share, "delivered_at": jst_moment(timestamp), "delivered_by": org.name}
        ctx.stub.put_private_data(collection, key, canonical_json(delivered))
        summary = {"command": command.id, "ra": ra, "delivered_by": org.name, "delivered_at": delivered["delivered_at"]}
        return announced(ctx, SHARE_DELIVERED, summary)

    def _statement_of(self, ctx, command_id: str, ac: str, done: str):
        """For record_statement and get_statement, once the caller is AC `ac` or the TSO and the command targets
        `ac`: (the caller's organisation, the command, its product, the AC's collection, the recorded statement or
        None), read on a member peer of that collection."""
        caller = caller_of(ctx, self.topology)
        org = caller.org
        if caller.meter_of is not None or org.role not in ("ac", "tso") or (org.role == "ac" and org.name != ac):
            raise Refusal(f"an AC's statement is {done} that AC or the TSO, not by {caller.meter_of or org.name}")
        command, product = self._command(ctx, command_id)
        if ac not in command.target_acs:
            raise Refusal(f"command {command.id} does not target {ac!r}")
        collection = self.topology.ac_collection_for(ac)
        self._require_member_peer(ctx, collection)
        recorded = ctx.stub.get_private_data(collection, ctx.stub.create_composite_key(STATEMENT, [command.id]))
        return org, command, product, collection, recorded

    def _statement_status(self, ctx, command: Command, ac: str, result: dict) -> dict | None:
        """Whether `ac`'s statement is recorded and, if so, when, by whom, and whether `result` still says the same."""
        collection = self.topology.ac_collection_for(ac)
        recorded = ctx.stub.get_private_data(collection, ctx.stub.create_composite_key(STATEMENT, [command.id]))
        if recorded is None:
            return None
        statement = json.loads(recorded)
        recorded_figures = {name: statement[name] for name in STATEMENT_FIGURES}
        share_key = ctx.stub.create_composite_key(SHARE, [command.id])
        delivered = [
            f["org"]
            for f in statement["ras"]
            if ctx.stub.get_private_data(self.topology.readings_collection_for(f["org"]), share_key) is not None
        ]
        return {
            "recorded_at": statement["recorded_at"],
            "recorded_by": statement["recorded_by"],
            "matches": canonical_json(_statement_figures(result, ac)) == canonical_json(recorded_figures),
            "shares_delivered": delivered,
        }

    def _settlement(self, ctx, org: Organisation, command: Command, product: products.Product) -> dict:
        """The figures of get_unit_settlement as organisation `org` may see them."""
        targeted = [ac for ac in access.acs(self.topology) if ac.name in command.target_acs]
        if org.role == "tso":
            acs = targeted
        else:
            ac_name = org.name if org.role == "ac" else org.parent
            acs = [ac for ac in targeted if ac.name == ac_name]
        # An RA's peer holds only its own collection (and Fabric lets an RA read no other): its figures without
        # the money, which depends on its AC's aggregate.
        ras = [org] if org.role == "ra" else [ra for ac in acs for ra in access.ras_of(self.topology, ac)]
        for ra in ras:
            self._require_member_peer(ctx, self.topology.readings_collection_for(ra.name))
        units = settlement_units.window_units(command.first, command.last)
        declarations = {ra.name: self._declaration(ctx, command, ra) for ra in ras}
        declared = {name: detail for name, detail in declarations.items() if detail is not None}
        consumers = {c: ra for ra, detail in declared.items() for c in sorted(detail)}
        readings = self._readings(ctx, command, consumers)
        marker = ctx.stub.get_state(ctx.stub.create_composite_key(SETTLEMENT, [command.id]))
        settled_at = json.loads(marker)["settled_at"] if marker else None
        basis = self._baselines(ctx, command, product, units, consumers, readings, settled_at)
        contracted = self._contracted(command, units, declared)
        rows: dict[str, list[dict]] = {}
        for consumer in consumers:
            baseline = basis[consumer]
            rows[consumer] = []
            for (start, minutes), baseline_wh in zip(units, baseline["units_wh"], strict=True):
                own = readings[consumer]
                complete = baseline["ok"] and all(m in own for m in minutes)
                actual = sum(own.get(m, 0) for m in minutes)
                rows[consumer].append(
                    settlement_units.unit_row(start, baseline_wh, actual, contracted[consumer][start], complete)
                )
        ra_of = dict(consumers)
        ac_of = {ra.name: ra.parent for ra in ras if ra.parent is not None}
        if org.role == "ra":
            payable = settlement_units.kwh_payable(0)
        else:
            payable = self._payable(command, product, units, acs, basis, readings, ra_of, ac_of)
        figures = settlement_units.settle(rows, ra_of, ac_of, payable, tso=self._tso)
        share = None
        if org.role == "ra":
            share = self._delivered_share(ctx, command, org, figures)
        for consumer, figure in figures["consumers"].items():
            figure["baseline"] = {k: v for k, v in basis[consumer].items() if k not in ("units_wh", "per_minute")}
        return {
            "command": command.id,
            "product": product.record(),
            "price_per_kwh": command.price_per_kwh,
            "unit_minutes": settlement_units.UNIT_MINUTES,
            "units": [{"unit": minute_label(start), "minutes": len(minutes)} for start, minutes in units],
            "settled": marker is not None,
            "settled_at": settled_at,
            "money": MONEY_UNSEEN if org.role == "ra" and share is None else "sen",
            **({"share": share} if org.role == "ra" else {}),
            **self._visible(org, figures, acs),
        }

    def _delivered_share(self, ctx, command: Command, ra: Organisation, figures: dict) -> dict | None:
        """An RA's view of the money: the share its AC delivered (deliver_share), split to its consumers as the AC's
        and the TSO's views split it; without one, no sen (MONEY_UNSEEN). Returns when and by whom it came."""
        value = ctx.stub.get_private_data(
            self.topology.readings_collection_for(ra.name), ctx.stub.create_composite_key(SHARE, [command.id])
        )
        share = json.loads(value) if value is not None else None
        own = figures["ras"].get(ra.name)
        if share is None or own is None:
            for figure in (*figures["ras"].values(), *figures["consumers"].values()):
                figure.update(reward_sen=None, penalty_sen=None, amount_sen=None)
            return None
        own.update(reward_sen=share["reward_sen"], penalty_sen=share["penalty_sen"])
        consumers = [f for f in figures["consumers"].values() if f["parent"] == ra.name]
        settlement_units.split(own, consumers)
        for figure in (own, *consumers):
            figure["amount_sen"] = figure["reward_sen"] - figure["penalty_sen"]
        return {"ac": share["ac"], "delivered_at": share["delivered_at"], "delivered_by": share["delivered_by"]}

    # The figures a caller may see.

    def _visible(self, org: Organisation, figures: dict, acs: list[Organisation]) -> dict:
        if org.role == "tso":
            shown_acs = [figures["acs"][ac.name] for ac in acs if ac.name in figures["acs"]]
            shown_ras = list(figures["ras"].values())
        elif org.role == "ac":
            shown_acs = [figures["acs"][org.name]] if org.name in figures["acs"] else []
            shown_ras = [f for f in figures["ras"].values() if f["parent"] == org.name]
        else:
            shown_acs = []
            shown_ras = [figures["ras"][org.name]] if org.name in figures["ras"] else []
        ra_names = {f["org"] for f in shown_ras}
        return {
            "tso": figures["tso"] if org.role == "tso" else None,
            "acs": shown_acs,
            "ras": shown_ras,
            "consumers": [f for f in figures["consumers"].values() if f["parent"] in ra_names],
        }

    # Reading the ledger.

    def _command(self, ctx, command_id: str) -> tuple[Command, products.Product]:
        check_identifier("command id", command_id)
        value = ctx.stub.get_state(ctx.stub.create_composite_key(COMMAND, [command_id]))
        if value is None:
            raise Refusal(f"no command {command_id!r}")
        command = Command.from_record(json.loads(value))
        if command.product is None:
            raise Refusal(
                f"command {command.id} names no product: it settles as before (the dr contract's get_settlement)"
            )
        return command, products.resolved(command.product, self.topology.settlement)

    def _declaration(self, ctx, command: Command, ra: Organisation) -> dict[str, list[int]] | None:
        """{consumer: expected Wh per slot} of the RA's declaration, or None when it did not declare."""
        collection = self.topology.readings_collection_for(ra.name)
        header_key = ctx.stub.create_composite_key(DECLARATION, [command.id])
        detail_key = ctx.stub.create_composite_key(DECLARATION_DETAIL, [command.id])
        header, detail = ctx.stub.get_multiple_private_data(collection, header_key, detail_key)
        if header is None or detail is None:
            return None
        entries = json.loads(detail)["detail"]
        return {consumer: entries[consumer]["expected_wh"] for consumer in json.loads(header)["consumers"]}

    def _readings(self, ctx, command: Command, consumers: dict[str, str]) -> dict[str, dict[int, int]]:
        """Each consumer's per-minute Wh of the command (its baseline minutes and window), by minute index."""
        first_hour = command.earliest_reading - command.earliest_reading % READING_BLOCK_MINUTES
        hours = [minute_label(h) for h in range(first_hour, command.last + 1, READING_BLOCK_MINUTES)]
        found: dict[str, dict[int, int]] = {consumer: {} for consumer in consumers}
        for ra, own in _grouped(consumers).items():
            keys = [ctx.stub.create_composite_key(READING, [command.id, c, hour]) for c in own for hour in hours]
            collection = self.topology.readings_collection_for(ra)
            for value in ctx.stub.get_multiple_private_data(collection, *keys):
                if value is not None:
                    block = json.loads(value)
                    found[block["consumer"]].update({minute_index(m): wh for m, wh in block["minutes"].items()})
        return found

    def _history(
        self, ctx, consumers: dict[str, str], event_day: date, settled_at: str | None
    ) -> tuple[dict[str, dict[int, int]], dict[str, int]]:
        """Each consumer's 30-minute history over the lookback before `event_day` (slot's first minute → Wh), and
        how many of those days it lacks. Days posted after the command was settled do not count: the figures stay
        as they were when the TSO closed it."""
        days = [event_day - timedelta(days=back) for back in range(LOOKBACK_DAYS, 0, -1)]
        history: dict[str, dict[int, int]] = {consumer: {} for consumer in consumers}
        missing = dict.fromkeys(consumers, len(days))
        for ra, own in _grouped(consumers).items():
            keys = [ctx.stub.create_composite_key(HISTORY, [c, d.isoformat()]) for c in own for d in days]
            collection = self.topology.readings_collection_for(ra)
            for value in ctx.stub.get_multiple_private_data(collection, *keys):
                if value is None:
                    continue
                day = json.loads(value)
                if settled_at is not None and _moment(day["posted_at"]) > _moment(settled_at):
                    continue
                missing[day["consumer"]] -= 1
                start = baselines.day_start(date.fromisoformat(day["day"]))
                slots = history[day["consumer"]]
                for index, wh in enumerate(day["wh"]):
                    slots[start + index * settlement_units.UNIT_MINUTES] = wh
        return history, missing

    def _dr_days(self, ctx, command: Command, consumers: dict[str, str], event_day: date) -> dict[str, set[date]]:
        """The days (JST) of the other commands each consumer was declared for, within the lookback: not
        candidates for its baseline (「DRの発動日を除いた」, ERAB guideline 第2章)."""
        earliest = event_day - timedelta(days=LOOKBACK_DAYS)
        others = []
        with ctx.stub.get_state_by_partial_composite_key(COMMAND) as results:
            for kv in results:
                other = Command.from_record(json.loads(kv.value))
                days = {baselines.jst_date(other.first), baselines.jst_date(other.last)}
                if other.id != command.id and any(earliest <= d < event_day for d in days):
                    others.append((other, days))
        dr_days: dict[str, set[date]] = {consumer: set() for consumer in consumers}
        if not others:
            return dr_days
        for ra, own in _grouped(consumers).items():
            keys = [ctx.stub.create_composite_key(DECLARATION, [other.id]) for other, _ in others]
            collection = self.topology.readings_collection_for(ra)
            values = ctx.stub.get_multiple_private_data(collection, *keys)
            for (_, days), value in zip(others, values, strict=True):
                if value is not None:
                    for consumer in set(json.loads(value)["consumers"]) & set(own):
                        dr_days[consumer] |= days
        return dr_days

    def _forecasts(self, ctx, command: Command, consumers: dict[str, str]) -> dict[str, list[int]]:
        plans: dict[str, list[int]] = {}
        for ra in sorted(set(consumers.values())):
            key = ctx.stub.create_composite_key(FORECAST, [command.id, ra])
            value = ctx.stub.get_private_data(self.topology.readings_collection_for(ra), key)
            if value is not None:
                plans |= {c: wh for c, wh in json.loads(value)["consumers"].items() if consumers.get(c) == ra}
        return plans

    # Baselines and contracted Wh.

    def _calendar(self, event_day: date):
        years = (event_day.year - 1, event_day.year)
        if years not in self._calendars:  # building it takes a second; it is a pure function of the years
            self._calendars[years] = baselines.japanese_holidays(years)
        return self._calendars[years]

    def _baselines(
        self,
        ctx,
        command: Command,
        product: products.Product,
        units: list[tuple[int, range]],
        consumers: dict[str, str],
        readings: dict[str, dict[int, int]],
        settled_at: str | None,
    ) -> dict[str, dict]:
        """Per consumer: "ok", the baseline Wh of each unit (pro-rated to its minutes in the window), the per-minute
        baseline (balancing products, for Assessment II) and how it was set, or why it could not be."""
        result: dict[str, dict] = {}
        if product.baseline == "history":
            event_day = baselines.jst_date(units[0][0])
            dr_days = self._dr_days(ctx, command, consumers, event_day)
            calendar = self._calendar(event_day)
            end = units[-1][0] + settlement_units.UNIT_MINUTES
            names = sorted(consumers)
            for start in range(0, len(names), HISTORY_CHUNK_CONSUMERS):
                # A chunk's history at a time: 1,440 values a consumer, dropped once its baselines are set.
                chunk = {c: consumers[c] for c in names[start : start + HISTORY_CHUNK_CONSUMERS]}
                history, missing = self._history(ctx, chunk, event_day, settled_at)
                for consumer in chunk:
                    result[consumer] = self._kwh_baseline(
                        command,
                        product,
                        units,
                        (event_day, end, calendar),
                        history[consumer],
                        missing[consumer],
                        readings[consumer],
                        dr_days[consumer],
                    )
        elif product.baseline == "measured":
            for consumer in consumers:
                try:
                    per_minute = balancing.measured_baseline(readings[consumer], command.first, product.measure_minutes)
                except Refusal as why:
                    result[consumer] = _no_baseline(units, str(why))
                    continue
                result[consumer] = {
                    "ok": True,
                    "method": "measured",
                    "wh_per_minute": per_minute,
                    "units_wh": [per_minute * len(minutes) for _, minutes in units],
                    "per_minute": {m: Fraction(per_minute) for _, minutes in units for m in minutes},
                }
        else:
            plans = self._forecasts(ctx, command, consumers)
            for consumer in consumers:
                if consumer not in plans:
                    result[consumer] = _no_baseline(units, "no 基準値計画 was submitted before the gate closure")
                    continue
                plan = plans[consumer]
                result[consumer] = {
                    "ok": True,
                    "method": "forecast",
                    "plan_wh": plan,
                    "units_wh": [
                        settlement_units.pro_rated(wh, len(minutes))
                        for wh, (_, minutes) in zip(plan, units, strict=True)
                    ],
                    "per_minute": {
                        m: Fraction(wh, settlement_units.UNIT_MINUTES)
                        for wh, (_, minutes) in zip(plan, units, strict=True)
                        for m in minutes
                    },
                }
        return result

    def _kwh_baseline(
        self,
        command: Command,
        product: products.Product,
        units: list[tuple[int, range]],
        event: tuple,
        history: dict[int, int],
        missing: int,
        readings: dict[int, int],
        dr_days: set[date],
    ) -> dict:
        """One consumer's kWh-type baseline (see _baselines); `event` is (its day, the window's end, the holidays)."""
        event_day, end, calendar = event
        if missing:
            # Every day counts: an RA leaving out a low day would lift its baseline (the rule goes past excluded
            # days, not past missing ones).
            why = (
                f"the history lacks {missing} of the {LOOKBACK_DAYS} days before {event_day.isoformat()}; a "
                f"baseline needs them all, so that no day can be left out"
            )
            return _no_baseline(units, why)
        slots = dict(history)
        slots.update(_event_day_slots(readings, command.earliest_reading, units[0][0]))
        try:
            found = baselines.baseline(slots, units[0][0], end, dr_days, calendar, product.same_day)
        except Refusal as why:
            return _no_baseline(units, str(why))
        return {
            "ok": True,
            "method": found.rule,
            "day_type": found.day_type,
            "candidate_days": [d.isoformat() for d in found.candidate_days],
            "low_days": [d.isoformat() for d in found.low_days],
            "selected_days": [d.isoformat() for d in found.selected_days],
            "unadjusted_wh": list(found.unadjusted_wh),
            "adjustment_wh": list(found.adjustment_wh),
            "capped": list(found.capped),
            "units_wh": [
                settlement_units.pro_rated(wh, len(minutes))
                for wh, (_, minutes) in zip(found.slots_wh, units, strict=True)
            ],
        }

    def _contracted(
        self, command: Command, units: list[tuple[int, range]], declared: dict[str, dict[str, list[int]]]
    ) -> dict[str, dict[int, int]]:
        """Per consumer and unit, the Wh its RA declared it would deliver there (see the module's docstring)."""
        return {
            consumer: {
                start: settlement_units.contracted_from_slots(expected, command.first, command.granularity, minutes)
                for start, minutes in units
            }
            for detail in declared.values()
            for consumer, expected in detail.items()
        }

    def _payable(
        self,
        command: Command,
        product: products.Product,
        units: list[tuple[int, range]],
        acs: list[Organisation],
        basis: dict[str, dict],
        readings: dict[str, dict[int, int]],
        ra_of: dict[str, str],
        ac_of: dict[str, str],
    ) -> settlement_units.Payable:
        if not product.balancing:
            return settlement_units.kwh_payable(command.price_per_kwh, product.penalty_sen_per_kwh)
        minutes_of = {}
        for ac in acs:
            baseline: dict[int, Fraction] = {}
            actual: dict[int, Fraction] = {}
            for consumer, ra in ra_of.items():
                if ac_of[ra] != ac.name or not basis[consumer]["ok"]:
                    continue
                own = readings[consumer]
                for minute, wh in basis[consumer]["per_minute"].items():
                    baseline[minute] = baseline.get(minute, Fraction(0)) + wh
                    actual[minute] = actual.get(minute, Fraction(0)) + own.get(minute, wh)
            minutes_of[ac.name] = settlement_units.AcMinutes(baseline, actual)
        instructed_at = command.first
        if command.issued_at is not None:
            issued = minute_index(command.issued_at[:16])
            instructed_at = min(issued + (command.issued_at[17:19] != "00"), command.first)
        return settlement_units.delta_kw_payable(
            balancing.product(product.name),
            product.contracted_w,
            product.price_sen_per_kw,
            product.rules,
            units,
            minutes_of,
            instructed_at,
        )

    # The meters.

    def _check_meter_signatures(self, ctx, days: dict[tuple[str, str], list[int]]) -> None:
        """Refuses the batch unless each consumer's days carry its own meter's signature over exactly them."""
        signed = TRANSIENT_METER_SIGNATURES in ctx.stub.get_transient()
        signatures = transient_json(ctx, TRANSIENT_METER_SIGNATURES, dict) if signed else {}
        by_consumer: dict[str, list[tuple[str, list[int]]]] = {}
        for (consumer, day), values in days.items():
            by_consumer.setdefault(consumer, []).append((day, values))
        statements = {consumer: history_statement(consumer, rows) for consumer, rows in by_consumer.items()}
        at = ctx.stub.get_tx_timestamp()
        check_meter_signatures(signatures, statements, "history", lambda: meter_authority_of_endorser(self), at)


def _statement_figures(view: dict, ac: str) -> dict:
    """What AC `ac`'s statement records of a settlement view that shows it (STATEMENT_FIGURES): the AC's figure,
    its RAs' and a digest of their consumers' (every unit row and baseline), which a member can recompute."""
    (figure,) = [{k: v for k, v in f.items() if k != "statement"} for f in view["acs"] if f["org"] == ac]
    ras = [f for f in view["ras"] if f["parent"] == ac]
    names = {f["org"] for f in ras}
    consumers = sorted((f for f in view["consumers"] if f["parent"] in names), key=lambda f: f["org"])
    return {
        "product": view["product"]["name"],
        "settled_at": view["settled_at"],
        "ac_figure": figure,
        "ras": ras,
        "consumers": len(consumers),
        "consumers_digest": hashlib.sha256(canonical_json(consumers)).hexdigest(),
    }


def _share(statement: dict, figure: dict) -> dict:
    """One RA's share of an AC's statement, as the AC's collection records it apart (so that its hash proves it to
    that RA alone), salted with a value derived from the statement's salt: a share's few figures must not be
    guessable from its hash, and the RA cannot derive another's salt from its own."""
    salt = hashlib.sha256(f"{statement['salt']}:{figure['org']}".encode()).hexdigest()[:32]
    return {
        "command": statement["command"],
        "ac": statement["ac"],
        "ra": figure["org"],
        "reward_sen": figure["reward_sen"],
        "penalty_sen": figure["penalty_sen"],
        "amount_sen": figure["amount_sen"],
        "recorded_at": statement["recorded_at"],
        "salt": salt,
    }


def _grouped(consumers: dict[str, str]) -> dict[str, list[str]]:
    """Consumers per RA, each RA's in sorted order."""
    grouped: dict[str, list[str]] = {}
    for consumer in sorted(consumers):
        grouped.setdefault(consumers[consumer], []).append(consumer)
    return grouped


def _event_day_slots(readings: dict[int, int], earliest: int, first_unit: int) -> dict[int, int]:
    """The event day's 30-minute values before the first unit, from its per-minute readings: each slot whose 30
    minutes all have a reading (the same-day adjustment reads them; a missing minute leaves its slot out)."""
    slots = {}
    start = earliest + (-earliest) % settlement_units.UNIT_MINUTES
    for slot in range(start, first_unit, settlement_units.UNIT_MINUTES):
        minutes = range(slot, slot + settlement_units.UNIT_MINUTES)
        if all(m in readings for m in minutes):
            slots[slot] = sum(readings[m] for m in minutes)
    return slots


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _no_baseline(units: list[tuple[int, range]], why: str) -> dict:
    return {"ok": False, "error": why, "units_wh": [0] * len(units), "per_minute": {}}
