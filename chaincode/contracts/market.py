"""The "market" contract: P2P trading in gates whose matching is chosen by optimisation, not mining (B1–B9), with
orders sealed while a gate is open and a seed drawn by the matchers after it closes (issue 13).

    configure(config)            the operator (topology)   gate length, proposal and reveal windows,
                                                           objective                               MarketConfigured
    set_gate_objective(g, obj)   the operator              the objective of a gate still open
    place_orders(sealed)         an RA for its consumers,  sealed orders (commitments) into the gate of the
                                 a meter for its own       transaction's time                      OrdersPlaced
    cancel_order(gate, id)       whoever placed it         while the gate is open
    commit_seed(gate, c)         a matcher                 while the gate is open: SHA-256 of its secret
    reveal_orders(gate, r)       the placer's organisation after the gate's end: each order and its salt
    reveal_seed(gate, secret)    a matcher                 once the orders are revealed: its secret
    close_gate(gate)             any organisation          once the reveals are in or due: the book and
                                                           its seed                                GateClosed
    propose(gate, proposal)      a matcher (topology)      in the proposal window, verified here   ProposalAccepted
    finalise(gate)               any organisation          after the window: the best proposal wins GateFinalised
    get_config, get_gate, list_gates, get_book, list_proposals, get_proposal, get_trades, get_prices
                                 anyone: while a gate is open its book is commitments and counts
    get_positions(participant)   the participant's RA, its AC, the TSO, the participant's own meter

Time is the transaction's timestamp (the client's, identical on every endorser), in Unix milliseconds. Gates
tile time: a configuration segment starting at `since` cuts it into gates of `gate_seconds`; gate ids are the
gate's start in JST, "YYYY-MM-DDTHH:MM:SS". A new configuration starts at the next whole second, so the gate
open then is cut short there (tests run gates of seconds; the default from the topology is 30 minutes).

A gate's life, each phase at most `reveal_seconds` long (unless configured, the proposal window's length):

    open       [start, end)           orders are sealed: only SHA-256({"order", "salt"}) is public, with its id,
                                      time and placer; each matcher commits SHA-256(gate, org, secret)
    revealing  [end, end + R)         placers reveal order and salt; a reveal that does not match its commitment,
                                      or is not the placer's, is refused; what is not revealed by end + R is dropped
    drawing    until end + 2R         once every order is revealed (or end + R passed), matchers reveal secrets
    closing    then                   close_gate: every contribution is in, or end + 2R passed
    proposing, finalised              as before, the proposal window counted from the close

Why it is shaped this way:
- Nobody ranks against a book it has read: while the gate is open, the ledger (state, blocks, events) holds no
  order's participant, side, price or quantity, only commitments. A 16-byte salt makes a commitment impossible
  to open by trying the few prices and lots a market offers.
- Nobody can predict the seed before the gate ends, nor choose it after: seed = SHA-256(gate, the revealed book
  with its salts, every revealed secret in organisation order) (market_seed.gate_seed); each endorsing peer
  checks each reveal against its commitment and recomputes the seed at the close. One honest matcher's secret
  makes it unpredictable until that matcher reveals; the order ids (the placer's ref) and times were fixed at
  commit time, so grinding them before the close is grinding against an unknown seed.
- Secrets are revealed only once the orders are: while a placer still chooses which of its orders to reveal,
  the seed cannot be known, so selective reveals gain nothing.
- The last revealer problem is bounded: a matcher that sees the others' secrets can only reveal its own (the
  seed it cannot change) or withhold it; withholding excludes every order its organisation placed from the
  gate and names it in the gate record (`withheld`). So it chooses between two seeds at most (one bit per
  withholding matcher), and only at the price of its own orders. If no matcher reveals, the seed is the
  revealed book's hash alone (`seed_fallback`).
- The phases hold whatever timestamps clients choose: every reveal writes a marker that commitments and
  cancellations read, and every contribution revealed one that order reveals read. So nothing is committed
  (or withdrawn) against a revealed order, and no order is revealed once a secret is: a backdated transaction
  is refused, and one ordered across the first reveal fails MVCC_READ_CONFLICT.
- Every order is its own key, so concurrent orders never conflict. Each order transaction reads the gate's
  record (absent while open) and the configuration: close_gate and configure write those, so an order
  endorsed before the close but ordered after it fails MVCC_READ_CONFLICT; commit_seed and cancel_order check
  the gate's end, and reveals, the seed and the close read the gate's order and contribution keys, so a
  transaction that would change what they decided fails as a phantom read instead.
- close_gate snapshots the revealed book into one key with its seed, so that each proposal's verification
  reads one key, not 10,000.
- Every proposal is its own key (one per matcher and gate): matchers never conflict with each other; every
  endorsing peer verifies it with solver.verify (exact integers) before accepting it: canonical form (one trade
  per sell/buy pair, sorted), feasibility, prices, fairness, the value and the certificate that proves it
  optimal (maxmin: welfare's, at one price) (an empty proposal only where it provably is). finalise picks the best
  with solver.better: proven optimal first, then the value (maxmin: then the surplus), ties to the outcome that
  favours the orders ranked higher under the gate's seed. That depends only on the book, the seed and what
  each proposal trades, never on its arrival order or on bytes a matcher could vary.
- Positions are kept per participant and gate: a participant's balance is a range read, no hot key.

Units, all integers: prices in sen (0.01 yen) per kWh, quantities in Wh, money in millisen (price x Wh;
100,000 millisen = 1 yen). Orders are revealed in yen/kWh and kWh and are converted exactly (solver.orders).
"""

import json
import re
from datetime import datetime, timedelta
from fractions import Fraction

from chaincode.contracts import access, common, market_seed
from chaincode.contracts.common import Caller, Refusal, action, canonical_json
from chaincode.shim import Contract, evaluate, submit
from consortium import OBJECTIVES
from consortium import topology as topology_file
from consortium.topology import Organisation, Topology
from consortium.units import EPOCH, JST
from solver.orders import InvalidOrders, Order, order_from_ledger, price_from_yen, quantity_from_kwh
from solver.proposals import InvalidProposal, Proposal, value_in_display_units
from solver.verify import ProposalRejected, VerifiedValue, better, tie_key_of, verify

MAX_ORDERS_PER_CALL = 1000
MAX_GATE_SECONDS = 86_400
MAX_PROPOSAL_SECONDS = 3600
MAX_REVEAL_SECONDS = 3600
MAX_SALT_BYTES = 64
MAX_LIST = 500

MARKET_CONFIGURED = "MarketConfigured"
ORDERS_PLACED = "OrdersPlaced"
GATE_CLOSED = "GateClosed"
PROPOSAL_ACCEPTED = "ProposalAccepted"
GATE_FINALISED = "GateFinalised"

# Object types of the composite keys, all public.
CONFIG = "market-config"
GATE = "gate"  # written when the gate closes; absent while it is open
GATE_OBJECTIVE = "gate-objective"
PENDING = "gate-pending"  # a gate that has orders and is not closed yet (blind writes: never a conflict)
ORDER = "order"  # sealed (a commitment) until its placer reveals it
SEED = "seed-contribution"  # a matcher's commitment, then its secret
REVEALING = "gate-revealing"  # written by every reveal: no commitment or cancellation after the first
DRAWING = "gate-drawing"  # written by every contribution revealed: no order revealed after the first
BOOK = "book"
PROPOSAL = "proposal"
TRADES = "trades"
CLEARING = "clearing"
POSITION = "position"

_REF = re.compile(r"[A-Za-z0-9_@-]{1,64}")


def gate_label(ms: int) -> str:
    """The JST label of a gate start (whole seconds)."""
    return (EPOCH + timedelta(milliseconds=ms)).astimezone(JST).strftime("%Y-%m-%dT%H:%M:%S")


def gate_start(label) -> int:
    """Unix milliseconds of a gate label; ValueError if it is not one."""
    try:
        moment = datetime.strptime(label, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=JST)
    except (TypeError, ValueError):
        raise ValueError(f"gate must be a JST time YYYY-MM-DDTHH:MM:SS, got {label!r}") from None
    return (moment - EPOCH) // timedelta(milliseconds=1)


class Schedule:
    """The market's configuration segments: which gate a moment falls in, and each gate's rules."""

    def __init__(self, segments: list[dict]):
        self.segments = segments  # sorted by since_ms; the first starts at 0

    def segment_at(self, ms: int) -> tuple[dict, int | None]:
        """The segment in force at ms, and the start of the next one (None if it is the last)."""
        index = max(i for i, s in enumerate(self.segments) if s["since_ms"] <= ms)
        following = self.segments[index + 1]["since_ms"] if index + 1 < len(self.segments) else None
        return self.segments[index], following

    def gate_at(self, ms: int) -> dict:
        segment, following = self.segment_at(ms)
        length = segment["gate_seconds"] * 1000
        start = segment["since_ms"] + (ms - segment["since_ms"]) // length * length
        end = start + length if following is None else min(start + length, following)
        reveal_ms = segment["reveal_seconds"] * 1000
        proposal_ms = segment["proposal_seconds"] * 1000
        return {
            "id": gate_label(start),
            "start_ms": start,
            "end_ms": end,
            "reveal_ms": end + reveal_ms,  # orders revealed until then
            "seed_ms": end + 2 * reveal_ms,  # contributions revealed until then
            "proposal_ms": proposal_ms,  # the proposal window's length, counted from the close
            "deadline_ms": end + 2 * reveal_ms + proposal_ms,  # the latest proposal deadline
            "objective": segment["objective"],
        }


class MarketContract(Contract):
    name = "market"

    def __init__(self, topology: Topology | None = None):
        super().__init__()
        self.topology = topology or topology_file.load()
        if self.topology.market is None:
            raise ValueError("topology.yaml has no market section")
        self.rules = self.topology.market

    # Configuration.

    @submit
    @action("configure the market")
    def configure(self, ctx, config: dict) -> dict:
        """Sets {"gate_seconds", "proposal_seconds", "reveal_seconds", "objective"} from the next whole second on;
        reveal_seconds, when not given, becomes proposal_seconds. Operator only."""
        org = self._organisation(ctx)
        if org.name != self.rules.operator:
            raise Refusal(f"only the market operator {self.rules.operator} may, not {org.name}")
        unknown = sorted(set(config) - {"gate_seconds", "proposal_seconds", "reveal_seconds", "objective"})
        if unknown:
            raise Refusal(f"unknown fields {', '.join(unknown)}")
        current = self._schedule(ctx).segment_at(self._now(ctx))[0]
        segment = {name: config.get(name, current[name]) for name in ("gate_seconds", "proposal_seconds", "objective")}
        _check_integer("gate_seconds", segment["gate_seconds"], 1, MAX_GATE_SECONDS)
        _check_integer("proposal_seconds", segment["proposal_seconds"], 1, MAX_PROPOSAL_SECONDS)
        segment["reveal_seconds"] = config.get("reveal_seconds", segment["proposal_seconds"])
        _check_integer("reveal_seconds", segment["reveal_seconds"], 1, MAX_REVEAL_SECONDS)
        _check_objective(segment["objective"])
        since = -(-self._now(ctx) // 1000) * 1000
        stored = self._stored_segments(ctx)
        stored = [s for s in stored if s["since_ms"] < since]  # a second configure in one second replaces
        segment.update(since_ms=since, since=gate_label(since), by=org.name)
        stored.append(segment)
        ctx.stub.put_state(ctx.stub.create_composite_key(CONFIG, []), canonical_json(stored))
        return common.announced(ctx, MARKET_CONFIGURED, segment)

    @evaluate
    def get_config(self, ctx) -> dict:
        """The configuration in force now, and the gate open now."""
        now = self._now(ctx)
        schedule = self._schedule(ctx)
        segment = dict(schedule.segment_at(now)[0])
        segment["since"] = gate_label(segment["since_ms"])
        segment["operator"] = self.rules.operator
        segment["matchers"] = list(self.rules.matchers)
        current = schedule.gate_at(now)
        segment["current_gate"] = current["id"]
        segment["current_gate_end_ms"] = current["end_ms"]
        return segment

    @submit
    @action("set the gate's objective")
    def set_gate_objective(self, ctx, gate: str, objective: str) -> dict:
        """Sets the objective of a gate that has not ended yet. Operator only."""
        org = self._organisation(ctx)
        if org.name != self.rules.operator:
            raise Refusal(f"only the market operator {self.rules.operator} may, not {org.name}")
        _check_objective(objective)
        window = self._gate_window(ctx, gate)
        if self._now(ctx) >= window["end_ms"]:
            raise Refusal(f"gate {gate} has already ended")
        ctx.stub.put_state(
            ctx.stub.create_composite_key(GATE_OBJECTIVE, [gate]),
            canonical_json({"gate": gate, "objective": objective, "by": org.name}),
        )
        return {"gate": gate, "objective": objective}

    # Orders.

    @submit
    @action("place orders")
    def place_orders(self, ctx, orders: list) -> dict:
        """Places sealed orders [{"commitment": market_seed.order_commitment(order, salt), "ref" (optional)}] into
        the gate open at the transaction's time; the orders themselves are revealed after the gate's end
        (reveal_orders). An RA places orders for its own consumers; a meter for its own consumer. With a "ref",
        the order's id is the placer's and the ref, so a client that is unsure whether its batch committed can
        send it again: a second copy is refused as "already placed". Ids and times are fixed here, before anyone
        can know the gate's seed."""
        caller = self._trader(ctx)
        org, consumer = caller.org, caller.meter_of
        common.check_count("orders", orders, MAX_ORDERS_PER_CALL)
        now = self._now(ctx)
        gate = self._schedule(ctx).gate_at(now)
        if ctx.stub.get_state(ctx.stub.create_composite_key(GATE, [gate["id"]])) is not None:
            raise Refusal(f"gate {gate['id']} has closed; submit again for the next gate")
        self._check_sealing(ctx, gate["id"])
        records = []
        referenced: dict[str, str] = {}  # order id → its ref, for the orders placed with one
        tx_id = ctx.stub.get_tx_id()
        for position, item in enumerate(orders):
            commitment, ref = _sealed_order(position, item)
            if ref is None:
                order_id = f"{tx_id[:16]}-{position}"
            else:
                order_id = ".".join([org.name] + ([consumer] if consumer else []) + [ref])
                if order_id in referenced:
                    raise Refusal(f"order {ref!r} is already placed in gate {gate['id']}")
                referenced[order_id] = ref
            record = {"id": order_id, "gate": gate["id"], "time_ms": now, "placed_by": org.name}
            if consumer is not None:
                record["placed_by_meter"] = consumer
            record["commitment"] = commitment
            records.append(record)
        placed = ctx.stub.get_multiple_states(  # one call for every ref, not one per order
            *(ctx.stub.create_composite_key(ORDER, [gate["id"], order_id]) for order_id in referenced)
        )
        for ref, value in zip(referenced.values(), placed, strict=True):
            if value is not None:
                raise Refusal(f"order {ref!r} is already placed in gate {gate['id']}")
        for record in records:
            ctx.stub.put_state(ctx.stub.create_composite_key(ORDER, [gate["id"], record["id"]]), canonical_json(record))
        ctx.stub.put_state(ctx.stub.create_composite_key(PENDING, [gate["id"]]), gate["id"])
        ctx.stub.set_event(
            ORDERS_PLACED, canonical_json({"gate": gate["id"], "count": len(records), "placed_by": org.name})
        )
        return {"gate": gate["id"], "orders": records}

    @submit
    @action("cancel the order")
    def cancel_order(self, ctx, gate: str, order_id: str) -> dict:
        """Withdraws an order of a gate that is still open; only whoever placed it may."""
        caller = self._trader(ctx)
        window = self._gate_window(ctx, gate)
        if self._now(ctx) >= window["end_ms"] or self._closed(ctx, gate) is not None:
            raise Refusal(f"gate {gate} has ended; its orders are final")
        self._check_sealing(ctx, gate)
        key = ctx.stub.create_composite_key(ORDER, [gate, str(order_id)])
        value = ctx.stub.get_state(key)
        if value is None or not _placed_by(json.loads(value), caller):
            raise Refusal(f"no order {order_id!r} of yours in gate {gate}")
        ctx.stub.del_state(key)
        return {"gate": gate, "cancelled": order_id}

    # Sealing: the seed's contributions, the reveals.

    @submit
    @action("commit to a seed contribution")
    def commit_seed(self, ctx, gate: str, commitment: str) -> dict:
        """A matcher's commitment to its share of a gate's seed, market_seed.seed_commitment(gate, org, secret),
        while the gate is open; once per matcher and gate."""
        org = self._matcher(ctx)
        window = self._gate_window(ctx, gate)
        if self._now(ctx) >= window["end_ms"] or self._closed(ctx, gate) is not None:
            raise Refusal(f"gate {gate} has ended; contributions are committed while it is open")
        self._check_sealing(ctx, gate)
        if not market_seed.is_digest(commitment):
            raise Refusal(f"commitment must be a SHA-256 hex digest (64 of 0-9a-f), got {str(commitment)[:80]!r}")
        key = ctx.stub.create_composite_key(SEED, [gate, org.name])
        if ctx.stub.get_state(key) is not None:
            raise Refusal(f"{org.name} has already committed to a contribution for gate {gate}")
        record = {"gate": gate, "org": org.name, "commitment": commitment, "committed_ms": self._now(ctx)}
        ctx.stub.put_state(key, canonical_json(record))
        return record

    @submit
    @action("reveal orders")
    def reveal_orders(self, ctx, gate: str, reveals: list) -> dict:
        """Reveals sealed orders [{"id", "order": {"participant", "side", "price", "quantity"}, "salt"}] of an
        ended gate until its reveal deadline, by any user of the placer's organisation (a meter: its own). Each
        must match its commitment and be a valid order of the placer's; otherwise the whole batch is refused."""
        caller = self._trader(ctx)
        window = self._gate_window(ctx, gate)
        now = self._now(ctx)
        if now < window["end_ms"]:
            raise Refusal(f"gate {gate} is open until {_moment(window['end_ms'])}; its orders stay sealed until then")
        if self._closed(ctx, gate) is not None or now >= window["reveal_ms"]:
            raise Refusal(
                f"gate {gate} took reveals until {_moment(window['reveal_ms'])}; unrevealed orders are dropped"
            )
        if ctx.stub.get_state(ctx.stub.create_composite_key(DRAWING, [gate])) is not None:
            raise Refusal(f"gate {gate}'s seed contributions are being revealed; unrevealed orders are dropped")
        common.check_count("reveals", reveals, MAX_ORDERS_PER_CALL)
        owners: dict = {}
        revealed: dict = {}
        for position, item in enumerate(reveals):
            record = self._revealed_order(ctx, gate, position, item, caller, owners)
            if record["id"] in revealed:
                raise Refusal(f"order {record['id']!r} is revealed twice in this batch")
            record["revealed_ms"] = now
            revealed[record["id"]] = record
        for order_id, record in revealed.items():
            ctx.stub.put_state(ctx.stub.create_composite_key(ORDER, [gate, order_id]), canonical_json(record))
        ctx.stub.put_state(ctx.stub.create_composite_key(REVEALING, [gate]), gate)
        return {"gate": gate, "revealed": sorted(revealed)}

    @submit
    @action("reveal the seed contribution")
    def reveal_seed(self, ctx, gate: str, secret: str) -> dict:
        """A matcher reveals the secret it committed to, once the gate's orders are all revealed or due, until the
        seed deadline; every endorsing peer checks it against the commitment."""
        org = self._matcher(ctx)
        window = self._gate_window(ctx, gate)
        now = self._now(ctx)
        key = ctx.stub.create_composite_key(SEED, [gate, org.name])
        value = ctx.stub.get_state(key)
        if value is None:
            raise Refusal(f"{org.name} has not committed to a contribution for gate {gate}")
        record = json.loads(value)
        if "secret" in record:
            raise Refusal(f"{org.name} has already revealed its contribution for gate {gate}")
        if now < window["end_ms"]:
            raise Refusal(f"gate {gate} is open until {_moment(window['end_ms'])}")
        if self._closed(ctx, gate) is not None or now >= window["seed_ms"]:
            raise Refusal(f"gate {gate} took contributions until {_moment(window['seed_ms'])}")
        if not self._orders_done(ctx, gate, window, now):
            raise Refusal(
                f"gate {gate}'s orders are revealed until {_moment(window['reveal_ms'])}; contributions come after"
            )
        problem = market_seed.hex_problem("secret", secret, market_seed.SECRET_BYTES, market_seed.SECRET_BYTES)
        if problem:
            raise Refusal(problem)
        if market_seed.seed_commitment(gate, org.name, secret) != record["commitment"]:
            raise Refusal(f"the secret does not match {org.name}'s commitment for gate {gate}")
        record.update(secret=secret, revealed_ms=now)
        ctx.stub.put_state(key, canonical_json(record))
        ctx.stub.put_state(ctx.stub.create_composite_key(REVEALING, [gate]), gate)
        ctx.stub.put_state(ctx.stub.create_composite_key(DRAWING, [gate]), gate)
        return {"gate": gate, "org": org.name, "revealed": True}

    # Closing, proposing, finalising.

    @submit
    @action("close the gate")
    def close_gate(self, ctx, gate: str) -> dict:
        """Closes an ended gate once its reveals are in or due: snapshots the revealed book (dropping unrevealed
        orders, and every order of a matcher that withheld its contribution) and fixes the seed from the revealed
        contributions. A gate with no orders is final at once."""
        org = self._organisation(ctx)
        window = self._gate_window(ctx, gate)
        now = self._now(ctx)
        if now < window["end_ms"]:
            raise Refusal(f"gate {gate} is open until {_moment(window['end_ms'])}")
        if self._closed(ctx, gate) is not None:
            raise Refusal(f"gate {gate} is already closed")
        state = self._reveal_state(ctx, gate, window, now)
        if state["status"] != "closing":
            due = window["reveal_ms"] if state["status"] == "revealing" else window["seed_ms"]
            raise Refusal(f"gate {gate} is {state['status']} until {_moment(due)} or until every reveal is in")
        withheld = sorted(c["org"] for c in state["contributions"] if "secret" not in c)
        revealed = [o for o in state["orders"] if "participant" in o]
        book = [o for o in revealed if o["placed_by"] not in withheld]
        reveals = [(c["org"], c["secret"]) for c in state["contributions"] if "secret" in c]
        seed = market_seed.gate_seed(gate, market_seed.book_digest(book), reveals)
        # A gate closed late (no service was running) still gets its whole proposal window.
        record = self._gate_record(ctx, gate, window, now + window["proposal_ms"], "proposing" if book else "finalised")
        record.update(
            orders=len(book),
            sealed=len(state["orders"]),
            dropped=len(state["orders"]) - len(revealed),
            withheld=withheld,
            excluded=len(revealed) - len(book),
            contributions=[
                {"org": c["org"], "commitment": c["commitment"], "secret": c["secret"]}
                for c in state["contributions"]
                if "secret" in c
            ],
            seed=seed.hex(),
            seed_fallback=not reveals,
            closed_by=org.name,
        )
        ctx.stub.put_state(ctx.stub.create_composite_key(BOOK, [gate]), canonical_json(book))
        for marker in (PENDING, REVEALING, DRAWING):
            ctx.stub.del_state(ctx.stub.create_composite_key(marker, [gate]))
        ctx.stub.put_state(ctx.stub.create_composite_key(GATE, [gate]), canonical_json(record))
        return common.announced(ctx, GATE_CLOSED, record)

    @submit
    @action("propose a matching")
    def propose(self, ctx, gate: str, proposal: dict) -> dict:
        """Proposes a matching for a closed gate (Proposal.to_json() form); accepted only once verified here
        (solver.verify: canonical trades and, where the book allows one, the certificate of optimality; maxmin's
        is welfare's at one price)."""
        org = self._organisation(ctx)
        if org.name not in self.rules.matchers:
            raise Refusal(f"only the matchers ({', '.join(self.rules.matchers)}) propose, not {org.name}")
        record = self._proposing(ctx, gate)
        now = self._now(ctx)
        if not record["end_ms"] <= now < record["deadline_ms"]:
            raise Refusal(f"gate {gate} takes proposals until {record['proposal_deadline']}")
        key = ctx.stub.create_composite_key(PROPOSAL, [gate, org.name])
        if ctx.stub.get_state(key) is not None:
            raise Refusal(f"{org.name} has already proposed for gate {gate}")
        try:
            candidate = Proposal.from_json(proposal)
            verified = verify(self._book(ctx, gate), bytes.fromhex(record["seed"]), record["objective"], candidate)
        except (InvalidProposal, ProposalRejected) as error:
            raise Refusal(str(error)) from None
        summary = _summary(gate, org.name, verified, len(candidate.trades))
        ctx.stub.put_state(key, canonical_json({**summary, "proposal": candidate.to_json()}))
        return common.announced(ctx, PROPOSAL_ACCEPTED, summary)

    @submit
    @action("finalise the gate")
    def finalise(self, ctx, gate: str) -> dict:
        """After the window, records the best proposal's trades, the positions and the clearing prices (B4, B8).

        The best is solver.better's over the proposals in key order; its tie-break reads the book and the seed,
        so the winner is the same whatever order the proposals arrived in."""
        self._organisation(ctx)
        record = self._proposing(ctx, gate)
        if self._now(ctx) < record["deadline_ms"]:
            raise Refusal(f"gate {gate} takes proposals until {record['proposal_deadline']}")
        with ctx.stub.get_state_by_partial_composite_key(PROPOSAL, [gate]) as results:
            proposals = [json.loads(kv.value) for kv in results]
        record["status"] = "finalised"
        record["proposals"] = len(proposals)
        if proposals:
            book = self._book_records(ctx, gate)
            orders = {o["id"]: order_from_ledger(o) for o in book}
            seed = bytes.fromhex(record["seed"])
            best, best_verified = proposals[0], _verified(proposals[0], orders, seed)
            for stored in proposals[1:]:
                verified = _verified(stored, orders, seed)
                if better(record["objective"], best_verified, verified) is verified:
                    best, best_verified = stored, verified
            winner = {k: v for k, v in best.items() if k != "proposal"}
            record["winner"] = winner
            by_id = {o["id"]: o for o in book}
            trades = [_trade_record(t, by_id) for t in best["proposal"]["trades"]]
            record["clearing"] = _clearing(gate, record, trades)
            ctx.stub.put_state(
                ctx.stub.create_composite_key(TRADES, [gate]),
                canonical_json({"gate": gate, "winner": winner, "trades": trades}),
            )
            if record["clearing"] is not None:
                ctx.stub.put_state(ctx.stub.create_composite_key(CLEARING, [gate]), canonical_json(record["clearing"]))
            for participant, position in _positions(gate, trades).items():
                ctx.stub.put_state(
                    ctx.stub.create_composite_key(POSITION, [participant, gate]), canonical_json(position)
                )
        ctx.stub.put_state(ctx.stub.create_composite_key(GATE, [gate]), canonical_json(record))
        return common.announced(ctx, GATE_FINALISED, record)

    # Reading.

    @evaluate
    @action("get the gate")
    def get_gate(self, ctx, gate: str) -> dict:
        window = self._gate_window(ctx, gate)
        closed = self._closed(ctx, gate)
        if closed is not None:
            return closed
        return self._open_record(ctx, gate, window)[0]

    @evaluate
    @action("list gates")
    def list_gates(self, ctx, limit: int = 20) -> list:
        """The gate open now, the gates that ended but are not closed yet, then closed gates, newest first."""
        _check_integer("limit", limit, 1, MAX_LIST)
        now = self._now(ctx)
        schedule = self._schedule(ctx)
        with ctx.stub.get_state_by_partial_composite_key(GATE) as results:
            closed = [json.loads(kv.value) for kv in results]
        closed_ids = {g["id"] for g in closed}
        current = schedule.gate_at(now)
        pending = {current["id"]: current}
        if current["start_ms"] > 0:
            previous = schedule.gate_at(current["start_ms"] - 1)
            pending[previous["id"]] = previous
        with ctx.stub.get_state_by_partial_composite_key(PENDING) as results:
            for kv in results:
                gate = schedule.gate_at(gate_start(kv.value.decode()))
                pending[gate["id"]] = gate
        gates = [self._open_record(ctx, g["id"], g)[0] for g in pending.values() if g["id"] not in closed_ids]
        gates.sort(key=lambda g: g["start_ms"], reverse=True)
        closed.sort(key=lambda g: g["start_ms"], reverse=True)
        return (gates + closed)[:limit]

    @evaluate
    @action("get the book")
    def get_book(self, ctx, gate: str) -> dict:
        """A gate's orders: the closed book; before the close, the sealed orders (id, time, placer and commitment
        only) and those revealed since the gate's end."""
        window = self._gate_window(ctx, gate)
        closed = self._closed(ctx, gate)
        if closed is not None:
            return {"gate": closed, "orders": self._book_records(ctx, gate)}
        record, state = self._open_record(ctx, gate, window)
        return {"gate": record, "orders": state["orders"]}

    @evaluate
    @action("list proposals")
    def list_proposals(self, ctx, gate: str) -> list:
        self._gate_window(ctx, gate)
        with ctx.stub.get_state_by_partial_composite_key(PROPOSAL, [gate]) as results:
            return [{k: v for k, v in json.loads(kv.value).items() if k != "proposal"} for kv in results]

    @evaluate
    @action("get the proposal")
    def get_proposal(self, ctx, gate: str, org: str) -> dict:
        self._gate_window(ctx, gate)
        value = ctx.stub.get_state(ctx.stub.create_composite_key(PROPOSAL, [gate, org]))
        if value is None:
            raise Refusal(f"{org!r} has not proposed for gate {gate}")
        return json.loads(value)

    @evaluate
    @action("get the trades")
    def get_trades(self, ctx, gate: str) -> dict:
        self._gate_window(ctx, gate)
        closed = self._closed(ctx, gate)
        if closed is None or closed["status"] != "finalised":
            raise Refusal(f"gate {gate} is not finalised yet")
        value = ctx.stub.get_state(ctx.stub.create_composite_key(TRADES, [gate]))
        if value is None:
            return {"gate": gate, "winner": None, "trades": []}
        return json.loads(value)

    @evaluate
    @action("get prices")
    def get_prices(self, ctx, limit: int = 48) -> list:
        """The clearing prices of the last `limit` gates that traded, oldest first (B8)."""
        _check_integer("limit", limit, 1, MAX_LIST)
        with ctx.stub.get_state_by_partial_composite_key(CLEARING) as results:
            prices = [json.loads(kv.value) for kv in results]
        prices.sort(key=lambda p: p["start_ms"])
        return prices[-limit:]

    @evaluate
    @action("get positions")
    def get_positions(self, ctx, participant: str) -> dict:
        """A participant's bought and sold Wh and money per gate, and the totals. Visible to its RA, that RA's
        AC, the TSO, and its own meter."""
        caller = self._trader(ctx, organisations=True)
        owner = common.consumer_ra(ctx, self.topology, participant) if isinstance(participant, str) else None
        if caller.meter_of is not None:
            allowed = owner is not None and caller.meter_of == participant
        else:
            allowed = owner in {ra.name for ra in access.visible_ras(self.topology, caller.org)}
        if not allowed:
            raise Refusal(f"{caller.org.name} may not see the positions of {participant!r}")
        with ctx.stub.get_state_by_partial_composite_key(POSITION, [participant]) as results:
            gates = sorted((json.loads(kv.value) for kv in results), key=lambda p: p["gate"])
        totals = {
            name: sum(g[name] for g in gates) for name in ("bought_wh", "sold_wh", "paid_millisen", "received_millisen")
        }
        totals["net_millisen"] = totals["received_millisen"] - totals["paid_millisen"]
        return {"participant": participant, "ra": owner, "gates": gates, "totals": totals}

    # Helpers: who is calling, time, gates.

    def _check_sealing(self, ctx, gate: str) -> None:
        """Refuses a commitment or cancellation once a reveal of the gate has committed, whatever the timestamp:
        nothing is committed against what has been revealed. (Reading the marker also invalidates one endorsed
        before the first reveal and ordered after it.)"""
        if ctx.stub.get_state(ctx.stub.create_composite_key(REVEALING, [gate])) is not None:
            raise Refusal(f"gate {gate} has ended and its reveals have begun; submit again for the next gate")

    def _matcher(self, ctx) -> Organisation:
        org = self._organisation(ctx)
        if org.name not in self.rules.matchers:
            raise Refusal(f"only the matchers ({', '.join(self.rules.matchers)}) contribute to seeds, not {org.name}")
        return org

    def _organisation(self, ctx) -> Organisation:
        """The caller's organisation; meters only place and cancel orders."""
        caller = self._trader(ctx, organisations=True)
        if caller.meter_of is not None:
            raise Refusal("a meter may only place orders and read its own positions")
        return caller.org

    def _trader(self, ctx, organisations: bool = False) -> Caller:
        """The caller: a meter's certificate, or else an RA user, unless `organisations` allows any member."""
        caller = common.caller_of(ctx, self.topology)
        if caller.meter_of is None and not organisations and caller.org.role != "ra":
            raise Refusal(f"orders are placed by an RA for its consumers, not by {caller.org.name}")
        return caller

    @staticmethod
    def _now(ctx) -> int:
        timestamp = ctx.stub.get_tx_timestamp()
        if timestamp is None:
            # Not the transaction's own refusal: any transaction may need the time.
            raise common.failure("read the transaction's time", "the proposal carries no timestamp")
        return (timestamp - EPOCH) // timedelta(milliseconds=1)

    def _stored_segments(self, ctx) -> list:
        value = ctx.stub.get_state(ctx.stub.create_composite_key(CONFIG, []))
        return [] if value is None else json.loads(value)

    def _schedule(self, ctx) -> Schedule:
        default = {
            "since_ms": 0,
            "gate_seconds": self.rules.gate_seconds,
            "proposal_seconds": self.rules.proposal_seconds,
            "reveal_seconds": self.rules.proposal_seconds,
            "objective": self.rules.objective,
            "by": None,
        }
        return Schedule([default, *self._stored_segments(ctx)])

    def _gate_window(self, ctx, gate) -> dict:
        """The gate's start, end and proposal deadline, after checking that `gate` names a gate."""
        try:
            start = gate_start(gate)
        except ValueError as error:
            raise Refusal(str(error)) from None
        window = self._schedule(ctx).gate_at(start) if start >= 0 else None
        if window is None or window["id"] != gate:
            if window is None:
                raise Refusal("no gate starts before 1970")
            raise Refusal(f"no gate starts at {gate}; the gate of that time is {window['id']}")
        return window

    def _closed(self, ctx, gate: str) -> dict | None:
        value = ctx.stub.get_state(ctx.stub.create_composite_key(GATE, [gate]))
        return None if value is None else json.loads(value)

    def _proposing(self, ctx, gate: str) -> dict:
        self._gate_window(ctx, gate)
        record = self._closed(ctx, gate)
        if record is None:
            raise Refusal(f"gate {gate} is not closed yet")
        if record["status"] != "proposing":
            raise Refusal(f"gate {gate} is already finalised")
        return record

    def _objective(self, ctx, gate: str, window: dict) -> str:
        value = ctx.stub.get_state(ctx.stub.create_composite_key(GATE_OBJECTIVE, [gate]))
        return window["objective"] if value is None else json.loads(value)["objective"]

    def _gate_record(self, ctx, gate: str, window: dict, deadline_ms: int, status: str) -> dict:
        return {
            "id": gate,
            "start": _moment(window["start_ms"]),
            "end": _moment(window["end_ms"]),
            "proposal_deadline": _moment(deadline_ms),
            "start_ms": window["start_ms"],
            "end_ms": window["end_ms"],
            "deadline_ms": deadline_ms,
            "objective": self._objective(ctx, gate, window),
            "status": status,
            "seed": None,
            "winner": None,
            "clearing": None,
        }

    def _sealed_orders(self, ctx, gate: str) -> list[dict]:
        with ctx.stub.get_state_by_partial_composite_key(ORDER, [gate]) as results:
            return sorted((json.loads(kv.value) for kv in results), key=lambda o: o["id"])

    def _orders_done(self, ctx, gate: str, window: dict, now: int) -> bool:
        """Whether the gate's orders are all revealed or due (reading only the orders, so that matchers revealing
        their contributions at once do not conflict)."""
        return now >= window["reveal_ms"] or all("participant" in o for o in self._sealed_orders(ctx, gate))

    def _reveal_state(self, ctx, gate: str, window: dict, now: int) -> dict:
        """A gate not closed yet: its orders (sealed or revealed) and contributions, and its phase (the status)."""
        orders = self._sealed_orders(ctx, gate)
        with ctx.stub.get_state_by_partial_composite_key(SEED, [gate]) as results:
            contributions = sorted((json.loads(kv.value) for kv in results), key=lambda c: c["org"])
        orders_done = now >= window["reveal_ms"] or all("participant" in o for o in orders)
        contributions_done = now >= window["seed_ms"] or all("secret" in c for c in contributions)
        if now < window["end_ms"]:
            status = "open"
        elif orders and not orders_done:
            status = "revealing"
        elif orders and not contributions_done:
            status = "drawing"
        else:
            status = "closing"
        return {"orders": orders, "contributions": contributions, "orders_done": orders_done, "status": status}

    def _open_record(self, ctx, gate: str, window: dict) -> tuple[dict, dict]:
        """The record of a gate not closed yet, with its counts and reveal deadlines; and its _reveal_state."""
        state = self._reveal_state(ctx, gate, window, self._now(ctx))
        record = self._gate_record(ctx, gate, window, window["deadline_ms"], state["status"])
        record.update(
            orders=len(state["orders"]),
            revealed=sum(1 for o in state["orders"] if "participant" in o),
            contributions=len(state["contributions"]),
            contributions_revealed=sum(1 for c in state["contributions"] if "secret" in c),
            reveal_deadline=_moment(window["reveal_ms"]),
            seed_deadline=_moment(window["seed_ms"]),
            reveal_ms=window["reveal_ms"],
            seed_ms=window["seed_ms"],
        )
        return record, state

    def _book_records(self, ctx, gate: str) -> list:
        value = ctx.stub.get_state(ctx.stub.create_composite_key(BOOK, [gate]))
        return [] if value is None else json.loads(value)

    def _book(self, ctx, gate: str) -> list[Order]:
        return [order_from_ledger(o) for o in self._book_records(ctx, gate)]

    def _revealed_order(self, ctx, gate: str, position: int, item, caller: Caller, owners: dict) -> dict:
        """One reveal of a batch checked against its sealed record: the record as the book will keep it."""
        label = f"reveal {position}"
        if not isinstance(item, dict) or set(item) != {"id", "order", "salt"}:
            raise Refusal(f'{label} must be an object with exactly "id", "order" and "salt", got {str(item)[:80]!r}')
        value = ctx.stub.get_state(ctx.stub.create_composite_key(ORDER, [gate, str(item["id"])]))
        record = None if value is None else json.loads(value)
        if record is None or not _placed_by(record, caller):
            raise Refusal(f"{label}: no sealed order {str(item['id'])[:80]!r} of yours in gate {gate}")
        if "participant" in record:
            raise Refusal(f"{label}: order {record['id']!r} is already revealed")
        problem = market_seed.hex_problem("salt", item["salt"], market_seed.SALT_BYTES, MAX_SALT_BYTES)
        if problem:
            raise Refusal(f"{label}: {problem}")
        if market_seed.order_commitment(item["order"], item["salt"]) != record["commitment"]:
            raise Refusal(f"{label}: order {record['id']!r} does not match its commitment")
        fields = order_fields(f"order {record['id']}", item["order"])
        participant = fields["participant"]
        if record.get("placed_by_meter") not in (None, participant):
            raise Refusal(f"{label}: this meter trades only for {record['placed_by_meter']}, not {participant}")
        if participant not in owners:
            owners[participant] = common.consumer_ra(ctx, self.topology, participant)
        if owners[participant] != record["placed_by"]:
            raise Refusal(f"{label}: {participant} is not a consumer of {record['placed_by']}")
        return {**record, **fields, "salt": item["salt"]}


def order_fields(label: str, item) -> dict:
    """A revealed order's fields as the ledger keeps them (sen/kWh, Wh), or a Refusal saying what is wrong; the
    market client checks an order with it before sealing it."""
    if not isinstance(item, dict):
        raise Refusal(f"{label} must be an object, got {item!r}")
    unknown = sorted(set(item) - {"participant", "side", "price", "quantity"})
    missing = sorted({"participant", "side", "price", "quantity"} - set(item))
    if unknown or missing:
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unknown fields {', '.join(unknown)}"] if unknown else []
        )
        raise Refusal(f"{label}: {'; '.join(problems)}")
    participant = item["participant"]
    if not isinstance(participant, str) or not participant:
        raise Refusal(f"{label}: participant must be a consumer id, got {participant!r}")
    if item["side"] not in ("buy", "sell"):
        raise Refusal(f'{label}: side must be "buy" or "sell", got {item["side"]!r}')
    try:
        price = price_from_yen(item["price"], label)
        quantity = quantity_from_kwh(item["quantity"], label)
    except InvalidOrders as error:
        raise Refusal(str(error)) from None
    return {"participant": participant, "side": item["side"], "price_sen_per_kwh": price, "quantity_wh": quantity}


def _sealed_order(position: int, item) -> tuple[str, str | None]:
    """A sealed order of a batch: its commitment and its ref (or None)."""
    label = f"order {position}"
    if not isinstance(item, dict):
        raise Refusal(f"{label} must be an object, got {str(item)[:80]!r}")
    unknown = sorted(set(item) - {"commitment", "ref"})
    if unknown:
        hint = "; orders are sealed: send their commitments" if set(unknown) & {"participant", "price"} else ""
        raise Refusal(f"{label}: unknown fields {', '.join(unknown)}{hint}")
    if not market_seed.is_digest(item.get("commitment")):
        raise Refusal(
            f"{label}: commitment must be a SHA-256 hex digest (64 of 0-9a-f), got {item.get('commitment')!r}"
        )
    ref = item.get("ref")
    if ref is not None and (not isinstance(ref, str) or not _REF.fullmatch(ref)):
        raise Refusal(f"{label}: ref must be 1-64 letters, digits, '_', '-' or '@', got {ref!r}")
    return item["commitment"], ref


def _placed_by(record: dict, caller: Caller) -> bool:
    """Whether the caller may act on the order: a user of its placer's organisation, or the meter that placed it."""
    if record["placed_by"] != caller.org.name:
        return False
    return caller.meter_of is None or record.get("placed_by_meter") == caller.meter_of


def _moment(ms: int) -> str:
    return common.jst_moment(EPOCH + timedelta(milliseconds=ms))


def _check_integer(what: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Refusal(f"{what} must be a whole number from {low} to {high}, got {value!r}")


def _check_objective(objective) -> None:
    if objective not in OBJECTIVES:
        raise Refusal(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")


def _summary(gate: str, org: str, verified: VerifiedValue, trades: int) -> dict:
    return {
        "gate": gate,
        "org": org,
        "objective": verified.objective,
        "value": str(verified.value),
        "value_display": float(value_in_display_units(verified.objective, verified.value)),
        "surplus_millisen": verified.surplus,
        "volume_wh": verified.volume,
        "optimal": verified.optimal,
        "digest": verified.digest,
        "trades": trades,
    }


def _verified(stored: dict, orders: dict, seed: bytes) -> VerifiedValue:
    """What verify established when the proposal was endorsed, from its stored summary and trades."""
    objective = stored["objective"]
    value = Fraction(stored["value"]) if objective == "maxmin" else int(stored["value"])
    trades = Proposal.from_json(stored["proposal"]).trades
    return VerifiedValue(
        objective,
        value,
        stored["surplus_millisen"],
        stored["volume_wh"],
        stored["optimal"],
        stored["digest"],
        tie_key_of(orders, seed, trades),
    )


def _trade_record(trade: dict, by_id: dict) -> dict:
    return {
        "sell": trade["sell"],
        "buy": trade["buy"],
        "seller": by_id[trade["sell"]]["participant"],
        "buyer": by_id[trade["buy"]]["participant"],
        "quantity_wh": trade["quantity_wh"],
        "price_sen_per_kwh": trade["price_sen_per_kwh"],
    }


def _clearing(gate: str, record: dict, trades: list) -> dict | None:
    """The gate's clearing prices for the next round: volume-weighted mean (to the sen, halves to even), range."""
    if not trades:
        return None
    volume = sum(t["quantity_wh"] for t in trades)
    money = sum(t["quantity_wh"] * t["price_sen_per_kwh"] for t in trades)
    prices = [t["price_sen_per_kwh"] for t in trades]
    return {
        "gate": gate,
        "start": record["start"],
        "start_ms": record["start_ms"],
        "objective": record["objective"],
        "volume_wh": volume,
        "average_price_sen_per_kwh": round(Fraction(money, volume)),
        "low_sen_per_kwh": min(prices),
        "high_sen_per_kwh": max(prices),
        "trades": len(trades),
    }


def _positions(gate: str, trades: list) -> dict:
    positions: dict = {}

    def position(participant):
        return positions.setdefault(
            participant,
            {
                "gate": gate,
                "participant": participant,
                "bought_wh": 0,
                "sold_wh": 0,
                "paid_millisen": 0,
                "received_millisen": 0,
                "trades": 0,
            },
        )

    for t in trades:
        money = t["quantity_wh"] * t["price_sen_per_kwh"]
        seller, buyer = position(t["seller"]), position(t["buyer"])
        seller["sold_wh"] += t["quantity_wh"]
        seller["received_millisen"] += money
        buyer["bought_wh"] += t["quantity_wh"]
        buyer["paid_millisen"] += money
        seller["trades"] += 1
        buyer["trades"] += 1
    return positions
