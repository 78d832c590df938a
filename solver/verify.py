"""The deterministic verifier chaincode runs on a proposal, and the rule that picks the best of several.

`verify(orders, seed, objective, proposal)` uses integers (and Fractions for maxmin ratios) only, no clock,
no randomness and no solver, so every endorsing peer reaches the same verdict. It checks

1. canonical form: one trade per (sell, buy) pair, in ascending (sell id, buy id) order (proposals.py), so a
   matcher cannot split or reorder trades to vary a proposal's bytes;
2. feasibility: known order ids, the sell is a sell and the buy a buy, different participants, positive whole
   Wh, and no order filled beyond its quantity;
3. prices: whole sen within [ask, bid] (B6); for volume and welfare exactly the midpoint rule, for maxmin one
   price for every trade (maxmin.py);
4. the claimed value, recomputed exactly;
5. fairness: rank order among equivalent orders under the gate's seed (fairness.py, B7);
6. optimality: volume and welfare proposals must carry the LP-dual certificate, and it must prove the value
   optimal. Maxmin proposals carry welfare's certificate for their fills, required wherever no self-trade
   constraint can bind (orders.own_orders_cross); with it and the uniform price at the midpoint of the marginal
   ask and bid they are proven optimal (maxmin.maxmin_optimal). Where B6 can bind a maxmin proposal may come
   without it (the empty one too) and is verified but not proven optimal.

So every accepted volume or welfare proposal, the empty one included, is proven optimal. verify returns the
VerifiedValue or raises ProposalRejected with the reason. Everything is O(n log n) in the orders and linear in
the trades. `better` picks between verified proposals by a rule no proposer can steer (its docstring).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import NoReturn

from consortium import OBJECTIVES
from solver.fairness import equivalence_classes, rank_key
from solver.maxmin import maxmin_optimal
from solver.orders import LowestOfOthers, check_unique_ids, own_orders_cross
from solver.proposals import midpoint_price, worst_margin


class ProposalRejected(ValueError):
    """A proposal that must not be endorsed; the message says what is wrong with it."""


class CertificateRejected(ProposalRejected):
    """A certificate that does not prove the proposal optimal."""


@dataclass(frozen=True)
class VerifiedValue:
    """What verify established: the exact value, the totals, whether it is proven optimal, the outcome digest,
    and the outcome's fairness key for ties (computed only when better() needs it; see fairness_key).

    value: Wh (volume), millisen (welfare) or sen per kWh as a Fraction (maxmin); surplus in millisen; volume Wh.
    """

    objective: str
    value: int | Fraction
    surplus: int
    volume: int
    optimal: bool
    digest: str
    tie_key: Callable[[], tuple] = field(default=tuple, compare=False, repr=False)


def verify(orders, seed: bytes, objective: str, proposal) -> VerifiedValue:
    """The proposal's exact value for the gate (orders, seed, objective), or ProposalRejected saying why not."""
    if objective not in OBJECTIVES:
        raise ProposalRejected(f"the gate's objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if proposal.objective != objective:
        raise ProposalRejected(f"the proposal is for {proposal.objective!r} but the gate's objective is {objective!r}")
    by_id = {o.id: o for o in orders}
    if len(by_id) != len(orders):
        check_unique_ids(orders)
    trades = list(proposal.trades)
    midpoint = objective != "maxmin"
    fills: defaultdict = defaultdict(int)
    surplus = volume = 0
    previous_sell = previous_buy = None
    # One check for the common case (this loop runs over every trade of every proposal endorsed); _refuse_trade
    # says what is wrong when it fails.
    for number, trade in enumerate(trades):
        sell_id, buy_id, quantity, price = trade.sell, trade.buy, trade.quantity, trade.price
        sell, buy = by_id.get(sell_id), by_id.get(buy_id)
        if not (
            sell is not None
            and buy is not None
            and sell.side == "sell"
            and buy.side == "buy"
            and sell.participant != buy.participant
            and type(quantity) is int
            and quantity > 0
            and type(price) is int
            and sell.price <= price <= buy.price
            and (not midpoint or price == midpoint_price(sell.price, buy.price))
        ):
            _refuse_trade(number, trade, by_id, objective)
        if previous_sell is not None and (
            sell_id < previous_sell or (sell_id == previous_sell and buy_id <= previous_buy)
        ):
            _refuse_non_canonical(number, (sell_id, buy_id), trades)
        previous_sell, previous_buy = sell_id, buy_id
        fills[sell_id] += quantity
        fills[buy_id] += quantity
        surplus += (buy.price - sell.price) * quantity
        volume += quantity
    for order_id, filled in fills.items():
        if filled > by_id[order_id].quantity:
            offered = by_id[order_id].quantity
            raise ProposalRejected(f"order {order_id} is filled {filled} Wh but offers only {offered} Wh")

    if objective == "maxmin":
        _check_uniform_price(trades)
        value: int | Fraction = worst_margin(by_id, trades)
    else:
        value = volume if objective == "volume" else surplus
    claimed = proposal.value
    if isinstance(claimed, bool) or not isinstance(claimed, (int, Fraction)) or claimed != value:
        shown = claimed if isinstance(claimed, (int, Fraction)) else repr(claimed)
        raise ProposalRejected(f"the proposal claims {objective} {shown} but its trades give {value}")

    check_rank_order(orders, seed, by_id, fills, trades)
    optimal = check_optimality(orders, by_id, objective, value, surplus, trades, proposal.certificate)
    return VerifiedValue(
        objective,
        value,
        surplus,
        volume,
        optimal,
        proposal.digest(canonical=True),  # checked above: one trade per pair, sorted
        tie_key_of(by_id, seed, proposal.trades),
    )


def _refuse_non_canonical(number, pair, trades) -> None:
    for earlier, trade in enumerate(trades[:number]):
        if (trade.sell, trade.buy) == pair:
            raise ProposalRejected(
                f"trade {number} repeats the pair ({pair[0]}, {pair[1]}) of trade {earlier}: one trade per pair"
            )
    raise ProposalRejected(
        f"trade {number} ({pair[0]} -> {pair[1]}) is out of order: trades are listed by sell id, then buy id"
    )


def _check_uniform_price(trades) -> None:
    for number, trade in enumerate(trades):
        if trade.price != trades[0].price:
            raise ProposalRejected(
                f"trade {number} ({trade.sell} -> {trade.buy}) is at {trade.price} sen/kWh but trade 0 at "
                f"{trades[0].price}: maxmin trades everything at one price"
            )


def check_optimality(orders, by_id, objective, value, surplus, trades, certificate) -> bool:
    """Whether the proposal is proven optimal; refuses one that must be and is not (module docstring, step 6)."""
    if objective == "maxmin":
        b6_can_bind = own_orders_cross(orders)
        if certificate is None:
            if b6_can_bind:
                return False  # the welfare optimum may need two prices: nothing to prove (maxmin.py)
            if not trades:
                raise ProposalRejected(
                    "an empty maxmin proposal must carry a certificate proving that nothing can trade at a profit"
                )
            raise ProposalRejected(
                "a maxmin proposal must carry the welfare certificate that proves its fills efficient"
            )
        check_certificate(orders, "welfare", surplus, certificate, by_id)
        return maxmin_optimal(by_id, trades, b6_can_bind)
    if certificate is None:
        if not trades:
            raise ProposalRejected(
                f"an empty {objective} proposal must carry a certificate proving that nothing can trade"
            )
        raise ProposalRejected(f"a {objective} proposal must carry the LP-dual certificate that proves it optimal")
    check_certificate(orders, objective, value, certificate, by_id)
    return True


def _refuse_trade(number, trade, by_id, objective) -> NoReturn:
    """Says what is wrong with a trade that verify's one-line check refused."""
    sell, buy = by_id.get(trade.sell), by_id.get(trade.buy)
    quantity, price = trade.quantity, trade.price
    label = f"trade {number} ({trade.sell} -> {trade.buy})"
    if sell is None or buy is None:
        unknown = trade.sell if sell is None else trade.buy
        raise ProposalRejected(f"{label}: order {unknown} is not in the gate's book")
    if not sell.is_sell:
        raise ProposalRejected(f"{label}: order {sell.id} is a buy order, not a sell")
    if buy.is_sell:
        raise ProposalRejected(f"{label}: order {buy.id} is a sell order, not a buy")
    if sell.participant == buy.participant:
        raise ProposalRejected(f"{label}: both orders belong to {sell.participant}, who cannot trade with itself")
    if not _whole(quantity) or quantity <= 0:
        raise ProposalRejected(f"{label}: quantity must be a positive whole number of Wh, got {quantity!r}")
    if not _whole(price) or not sell.price <= price <= buy.price:
        raise ProposalRejected(
            f"{label}: price must be whole sen/kWh between the ask {sell.price} and the bid {buy.price}, got {price!r}"
        )
    raise ProposalRejected(
        f"{label}: {objective} trades at the midpoint {midpoint_price(sell.price, buy.price)} sen/kWh, got {price}"
    )


def _whole(number) -> bool:
    return isinstance(number, int) and not isinstance(number, bool)


def check_rank_order(orders, seed, by_id, fills, trades) -> None:
    """Fairness (fairness.py): no fill of an order could be handed to a higher-ranked, unfilled equivalent one.

    One pass per class from the highest rank down, remembering the participants of the orders seen so far
    that still have room; a trade of a lower order could be handed over if one of those participants is not the
    counter-order's.
    """
    classes = equivalence_classes(orders, seed)
    in_a_class = {o.id for members in classes for o in members}
    lots_of: dict = {}
    for trade in trades if in_a_class else ():
        for order_id in (trade.sell, trade.buy):
            if order_id in in_a_class:
                lots_of.setdefault(order_id, []).append(trade)
    for members in classes:
        open_by_participant: dict = {}
        for lower in members:
            for trade in lots_of.get(lower.id, ()):
                counter = by_id[trade.buy if lower.is_sell else trade.sell]
                # at most two keys are looked at: one of them is not the counter-order's
                taker = next((p for p in open_by_participant if p != counter.participant), None)
                if taker is not None:
                    higher = open_by_participant[taker]
                    raise ProposalRejected(
                        f"order {lower.id} trades {trade.quantity} Wh with order {counter.id}, but the equivalent "
                        f"order {higher.id} ranks higher under the gate's seed and is not completely filled (fairness)"
                    )
            if fills.get(lower.id, 0) < lower.quantity:
                open_by_participant.setdefault(lower.participant, lower)


def check_certificate(orders, objective, value, certificate, by_id=None) -> None:
    """LP duality, exactly: duals u (sells), v (buys) >= 0, whole, with u[s] + v[b] >= gain(s, b) for every pair
    (s, b) of different participants with ask <= bid (gain 1 Wh per Wh for volume, bid - ask for welfare) and
    sum qty u + sum qty v == value. Any matching's value is at most that sum, so value is the optimum.
    O(n log n): per buy only the smallest u (volume) or u + ask (welfare) of another participant's sells matters.
    """
    if by_id is None:
        by_id = {o.id: o for o in orders}
    u = _duals(certificate.sell_duals, by_id, "sell")
    v = _duals(certificate.buy_duals, by_id, "buy")
    bound = sum(by_id[i].quantity * dual for i, dual in u.items()) + sum(
        by_id[i].quantity * dual for i, dual in v.items()
    )
    if bound != value:
        raise CertificateRejected(f"the certificate bounds {objective} at {bound} but the proposal's value is {value}")

    best = LowestOfOthers()
    buys = []
    if objective == "welfare":
        # u[s] + v[b] >= bid - ask  <=>  u[s] + ask[s] >= bid[b] - v[b]; trivially true where ask > bid.
        for o in orders:
            if o.side == "sell":
                best.add(u.get(o.id, 0) + o.price, o, o.participant)
            else:
                buys.append(o)
        for b in buys:
            s = best.lowest_not_of(b.participant)
            if s is not None and u.get(s.id, 0) + s.price < b.price - v.get(b.id, 0):
                _refuse(s, b, u, v, b.price - s.price)
        return
    # Whole duals: a pair is uncovered only if both are 0, so only the cheapest ask of the sells with dual 0 (of
    # another participant) matters to a buy with dual 0.
    for o in orders:
        if o.side == "sell":
            if o.id not in u:
                best.add(o.price, o, o.participant)
        elif o.id not in v:
            buys.append(o)
    for b in buys:
        s = best.lowest_not_of(b.participant)
        if s is not None and s.price <= b.price:
            _refuse(s, b, u, v, 1)


def _duals(given, by_id, side) -> dict:
    """The certificate's non-zero duals by order id, checked: ids of the gate's orders of that side, whole, >= 0."""
    duals = {}
    for order_id, dual in given.items():
        order = by_id.get(order_id)
        if order is None or order.side != side:
            raise CertificateRejected(f"the certificate names {order_id!r}, which is not a {side} order of the gate")
        if not _whole(dual) or dual < 0:
            raise CertificateRejected(f"the certificate's dual for order {order_id} must be a whole number >= 0")
        if dual:
            duals[order_id] = dual
    return duals


def _refuse(s, b, u, v, gain):
    raise CertificateRejected(
        f"the certificate does not cover sell {s.id} and buy {b.id}: {u.get(s.id, 0)} + {v.get(b.id, 0)} < {gain}"
    )


def better(objective: str, a: VerifiedValue, b: VerifiedValue) -> VerifiedValue:
    """The better of two verified proposals for the gate, the same whatever order they come in:

    1. the proven optimal one (a proposal that is not provably optimal never wins over one that is);
    2. the higher value; for maxmin then the higher surplus;
    3. on a tie, the outcome that favours the orders ranked higher under the gate's seed (fairness_key): the
       one that fills the highest-ranked order on which the two differ more, and if they fill every order
       alike, the one that pairs higher-ranked orders with more Wh (then nearer the midpoint price).

    The tie-break reads only the book, the seed and what the proposal trades. Proposals are canonical, so a
    matcher cannot change it by splitting or reordering trades, by another certificate or by any other bytes
    it controls; only a different outcome compares differently, and which outcome wins is the seed's choice.
    Identical outcomes keep `a` (the contract passes the proposals in key order, i.e. by matcher name): their
    trades are the same, so nothing depends on it. Proposals of another objective cannot compete at all.
    """
    for candidate in (a, b):
        if candidate.objective != objective:
            raise ValueError(f"a {candidate.objective} proposal cannot compete in a {objective} gate")

    def rank(candidate):
        measure = (candidate.value, candidate.surplus) if objective == "maxmin" else (candidate.value,)
        return (candidate.optimal, *measure)

    if rank(a) != rank(b):
        return a if rank(a) > rank(b) else b
    return a if a.tie_key() <= b.tie_key() else b


# Sorts after every (rank key, ...) entry: a key list that runs out loses to one that goes on (fills more).
_END = (b"\xff" * 33,)


def fairness_key(by_id: dict, seed: bytes, trades) -> tuple:
    """The tie-break key of an outcome under the gate's seed; smaller is preferred (better(), step 3).

    Every order's rank is SHA-256(seed || id) (fairness.rank_key; smaller digest, higher rank). First part: the
    filled orders as (rank, -Wh filled), highest rank first, so that comparing two keys finds the highest-ranked
    order the outcomes fill differently and prefers the one that fills it more. Second part: the trades as
    (sell's rank, buy's rank, -Wh, distance from the midpoint price, price) in that order. Both parts end in a
    sentinel that sorts after any rank, so an outcome that fills one more order is preferred, not the shorter
    list. O(t log t) for t trades; only computed on a tie.
    """
    rank: dict = {}

    def rank_of(order_id):
        if order_id not in rank:
            rank[order_id] = rank_key(seed, order_id)
        return rank[order_id]

    fills: dict = {}
    lots = []
    for t in trades:
        fills[t.sell] = fills.get(t.sell, 0) + t.quantity
        fills[t.buy] = fills.get(t.buy, 0) + t.quantity
        distance = abs(2 * t.price - by_id[t.sell].price - by_id[t.buy].price)
        lots.append((rank_of(t.sell), rank_of(t.buy), -t.quantity, distance, t.price))
    filled = sorted((rank_of(order_id), -wh) for order_id, wh in fills.items())
    return (*filled, _END, *sorted(lots), _END)


def tie_key_of(by_id: dict, seed: bytes, trades) -> Callable[[], tuple]:
    """fairness_key(by_id, seed, trades), computed once and only if asked for (VerifiedValue.tie_key)."""
    cache: list = []

    def key() -> tuple:
        if not cache:
            cache.append(fairness_key(by_id, seed, trades))
        return cache[0]

    return key
