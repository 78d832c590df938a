"""Solve a gate: optimal whole-Wh trades for an objective, in seeded rank order, with an optimality certificate.

`solve(orders, objective, seed)` runs the fast path (solver.fast) or the Pyomo model (models.py, method="model"),
turns the optimum into trades in whole Wh and sen, hands fills to higher-ranked equivalent orders
(fairness.py), and measures the result exactly. Its `proposal()` is what a matching service submits, in the
canonical form verify requires (one trade per pair, sorted by sell id then buy id: every path here builds its
trades from a dict keyed by pair and lists them sorted, and the handover keeps that form). The
orders are given to the solvers sorted by their seeded rank, so wherever a solver picks among equally good
answers by position, the pick is as random as the seed (and the book's listing order does not matter).

volume and welfare: the optimum is already whole (maximum flow; a totally unimodular programme), prices follow
the midpoint rule (proposals.py) and the duals, rounded to whole numbers, are checked exactly before they are
offered as the certificate, so a proposal never carries a certificate its verifier would refuse. verify requires
the certificate: should the duals ever not round to one (a basic optimum of this totally unimodular programme
has whole duals, so it has not happened), the Solution has none and its proposal would be refused.

maxmin: the programme is over continuous kWh and prices. Rounding: each pair's Wh is rounded down, then pairs
get 1 Wh back in order of their largest fractional part while both orders have room; each price is the LP's
payment per kWh rounded to the nearest sen and kept within [ask, bid]. The proposal claims the exact value of
the rounded trades; `bound` keeps the LP optimum (an upper bound) so the rounding loss is visible (a fraction
of a sen per kWh in the benchmarks).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from fractions import Fraction

from consortium import OBJECTIVES
from solver.fairness import hand_over_to_higher_ranks, order_book_seed, rank_key
from solver.fast import max_volume, maxmin_relaxation, welfare_relaxation
from solver.orders import check_unique_ids
from solver.proposals import (
    Certificate,
    Proposal,
    Trade,
    midpoint_price,
    objective_value,
    order_by_id,
    total_surplus,
    traded_volume,
)
from solver.verify import CertificateRejected, check_certificate

METHODS = ("fast", "model")
# An LP dual this close to a whole number is taken as that number (duals of a unimodular basis are whole).
WHOLE_DUAL_TOLERANCE = 1e-6
# An LP flow within this of a whole Wh is that whole Wh (HiGHS's feasibility tolerance is 1e-4 Wh).
ROUNDING_SLACK_WH = 1e-3


@dataclass(frozen=True)
class Solution:
    """A solved gate. value: Wh (volume), millisen (welfare) or sen/kWh as a Fraction (maxmin); surplus in
    millisen and volume in Wh; certificate: proof of optimality (volume, welfare); bound: the LP optimum in
    display units (kWh, yen, yen/kWh); seed: the one used; seconds: wall time of solve()."""

    objective: str
    trades: tuple
    value: int | Fraction
    surplus: int
    volume: int
    certificate: Certificate | None
    bound: float
    seed: bytes
    seconds: float
    method: str

    def proposal(self) -> Proposal:
        return Proposal(self.objective, self.trades, self.value, self.certificate)


def solve(orders, objective: str, seed: bytes | None = None, *, method: str = "fast") -> Solution:
    """Optimal trades of a gate for objective; seed defaults to order_book_seed(orders)."""
    started = time.perf_counter()
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    orders = list(orders)
    check_unique_ids(orders)
    if seed is None:
        seed = order_book_seed(orders)
    # Solvers break ties by position (which LP vertex, which greedy partner); listing the orders by their
    # seeded rank makes every such tie-break as random as the seed, and independent of how the book was listed.
    orders.sort(key=lambda o: rank_key(seed, o.id))
    by_id = order_by_id(orders)

    if method == "model":
        from solver.models import model_relaxation  # Pyomo takes a while to import; only the model needs it

        lp = model_relaxation(orders, objective)
    elif objective == "maxmin":
        lp = maxmin_relaxation(orders)
    elif objective == "volume":
        lp = max_volume(orders)
    else:
        lp = welfare_relaxation(orders)

    certificate = None
    if objective == "maxmin":
        trades = rounded_trades(by_id, lp.flows, lp.payments)
    else:
        if any(abs(wh - round(wh)) > ROUNDING_SLACK_WH for wh in lp.flows.values()):
            raise RuntimeError(f"HiGHS returned a fractional {objective} optimum on a totally unimodular programme")
        trades = [
            Trade(s, b, round(wh), midpoint_price(by_id[s].price, by_id[b].price))
            for (s, b), wh in sorted(lp.flows.items())
            if round(wh) > 0
        ]
    trades = hand_over_to_higher_ranks(orders, trades, seed, objective)
    value = objective_value(objective, orders, trades)
    if objective != "maxmin":
        certificate = whole_certificate(orders, objective, value, lp.sell_duals, lp.buy_duals)
    return Solution(
        objective=objective,
        trades=tuple(trades),
        value=value,
        surplus=total_surplus(by_id, trades),
        volume=traded_volume(trades),
        certificate=certificate,
        bound=lp.bound,
        seed=seed,
        seconds=time.perf_counter() - started,
        method=method,
    )


def whole_certificate(orders, objective, value, sell_duals, buy_duals) -> Certificate | None:
    """The LP duals as whole numbers, if they prove value optimal exactly; None otherwise."""
    rounded = {}
    for duals in (sell_duals, buy_duals):
        for order_id, dual in duals.items():
            whole = round(dual)
            if abs(dual - whole) > WHOLE_DUAL_TOLERANCE:
                return None
            rounded[order_id] = max(whole, 0)
    certificate = Certificate(
        sell_duals={o.id: rounded.get(o.id, 0) for o in orders if o.is_sell},
        buy_duals={o.id: rounded.get(o.id, 0) for o in orders if not o.is_sell},
    )
    try:
        check_certificate(orders, objective, value, certificate)
    except CertificateRejected:
        return None
    return certificate


def rounded_trades(by_id, flows, payments) -> list[Trade]:
    """Whole-Wh, whole-sen trades from maxmin's continuous optimum (module docstring)."""
    room = {order_id: order.quantity for order_id, order in by_id.items()}
    whole = {}
    for pair, wh in sorted(flows.items()):
        amount = min(math.floor(wh + ROUNDING_SLACK_WH), room[pair[0]], room[pair[1]])
        whole[pair] = amount
        room[pair[0]] -= amount
        room[pair[1]] -= amount
    by_fraction = sorted(flows, key=lambda pair: (-(flows[pair] - whole[pair]), pair))
    for pair in by_fraction:
        if flows[pair] - whole[pair] > ROUNDING_SLACK_WH and room[pair[0]] and room[pair[1]]:
            whole[pair] += 1
            room[pair[0]] -= 1
            room[pair[1]] -= 1
    trades = []
    for (s, b), amount in sorted(whole.items()):
        if amount > 0:
            ask, bid = by_id[s].price, by_id[b].price
            price = min(max(round(payments[s, b] / flows[s, b]), ask), bid)
            trades.append(Trade(s, b, amount, price))
    return trades
