"""Solve a gate: optimal whole-Wh trades for an objective, in seeded rank order, with an optimality certificate.

`solve(orders, objective, seed)` clears the book by merit order where no self-trade constraint can bind
(clearing.py: O(n log n), the usual P2P book with one order per prosumer), else runs the fast path (solver.fast)
or, with method="model", the Pyomo model (models.py); it turns the optimum into trades in whole Wh and sen, hands
fills to higher-ranked equivalent orders (fairness.py), and measures the result exactly. Its `proposal()` is what
a matching service submits, in the canonical form verify requires (one trade per pair, sorted by sell id then buy
id: every path here builds its trades from a dict keyed by pair and lists them sorted, and the handover keeps that
form). The orders are given to the solvers sorted by their seeded rank, so wherever a solver picks among equally
good answers by position, the pick is as random as the seed (and the book's listing order does not matter).

volume and welfare: the optimum is already whole (maximum flow; a totally unimodular programme), prices follow
the midpoint rule (proposals.py). Merit-order clearing gives its certificate exactly; the LP paths' duals,
rounded to whole numbers, are checked exactly before they are offered as the certificate, so a proposal never
carries a certificate its verifier would refuse (a basic optimum of this totally unimodular programme has whole
duals; should they ever not round to one, the Solution has none and its proposal would be refused).

maxmin (maxmin.py): welfare's fills at one price, the midpoint of the marginal ask and bid, with welfare's
certificate. Where B6 can bind, the better (worst margin, then surplus) of HiGHS's welfare optimum, if one price
clears it, and the welfare optimum among the orders that meet the unconstrained merit order's price, which that
price clears; verified, not proven optimal, and so without a certificate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction

from consortium import OBJECTIVES
from consortium.units import MILLISEN_PER_YEN, SEN_PER_YEN, WH_PER_KWH
from solver.clearing import greedy_volume, merit_order
from solver.fairness import hand_over_to_higher_ranks, order_book_seed, rank_key
from solver.fast import max_volume, welfare_relaxation
from solver.maxmin import marginal_prices, uniform_price
from solver.orders import check_unique_ids, own_orders_cross
from solver.proposals import (
    Certificate,
    Proposal,
    Trade,
    midpoint_price,
    order_by_id,
    total_surplus,
    traded_volume,
    worst_margin,
)
from solver.relaxation import LpSolution
from solver.verify import CertificateRejected, check_certificate

METHODS = ("fast", "model")
# An LP dual this close to a whole number is taken as that number (duals of a unimodular basis are whole).
WHOLE_DUAL_TOLERANCE = 1e-6
# An LP flow within this of a whole Wh is that whole Wh (HiGHS's feasibility tolerance is 1e-4 Wh).
ROUNDING_SLACK_WH = 1e-3


@dataclass(frozen=True)
class Solution:
    """A solved gate. value: Wh (volume), millisen (welfare) or sen/kWh as a Fraction (maxmin); surplus in
    millisen and volume in Wh; certificate: proof of optimality (maxmin: welfare's, for its fills); bound: the
    value in display units (kWh, yen, yen/kWh); seed: the one used; seconds: wall time of solve()."""

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

    b6_can_bind = own_orders_cross(orders)
    if objective == "maxmin":
        fills, certificate, cleared = _maxmin_fills(orders, by_id, method, b6_can_bind)
        price = uniform_price(by_id, list(fills))
        trades = [Trade(s, b, wh, price) for (s, b), wh in sorted(fills.items())]  # type: ignore[arg-type]
    else:
        fills, certificate, cleared = _efficient_fills(orders, objective, method, b6_can_bind)
        trades = [
            Trade(s, b, wh, midpoint_price(by_id[s].price, by_id[b].price)) for (s, b), wh in sorted(fills.items())
        ]
    if not cleared:
        # Merit-order clearing fills equal prices in the order given, by rank: nothing to hand over there.
        trades = hand_over_to_higher_ranks(orders, trades, seed)
    surplus, volume = total_surplus(by_id, trades), traded_volume(trades)
    value: int | Fraction = volume if objective == "volume" else surplus
    if objective == "maxmin":
        value = worst_margin(by_id, trades)
    per_display_unit = {"volume": WH_PER_KWH, "welfare": MILLISEN_PER_YEN, "maxmin": SEN_PER_YEN}[objective]
    return Solution(
        objective=objective,
        trades=tuple(trades),
        value=value,
        surplus=surplus,
        volume=volume,
        certificate=certificate,
        bound=float(value) / per_display_unit,
        seed=seed,
        seconds=time.perf_counter() - started,
        method=method,
    )


def _efficient_fills(orders, objective, method, b6_can_bind) -> tuple[dict, Certificate | None, bool]:
    """Volume's or welfare's optimum as Wh per (sell id, buy id), its certificate, and whether by merit order."""
    if method == "fast" and not b6_can_bind:
        clearing = greedy_volume(orders) if objective == "volume" else merit_order(orders)
        if clearing is not None:
            return clearing.fills, clearing.certificate, True
    lp = _relaxation(orders, objective, method)
    fills = _whole_flows(lp, objective)
    by_id = order_by_id(orders)
    value = sum(fills.values()) if objective == "volume" else _surplus(by_id, fills)
    return fills, whole_certificate(orders, objective, value, lp.sell_duals, lp.buy_duals), False


def _maxmin_fills(orders, by_id, method, b6_can_bind) -> tuple[dict, Certificate | None, bool]:
    """Welfare-optimal fills one price clears, welfare's certificate where it holds (module docstring), and
    whether by merit order."""
    if method == "fast" and not b6_can_bind:
        clearing = merit_order(orders)
        if clearing is not None:
            return clearing.fills, clearing.certificate, True
    lp = _relaxation(orders, "welfare", method)
    fills = _positive_gain(by_id, _whole_flows(lp, "welfare"))
    if not b6_can_bind or not fills:  # the model's fills on a book where B6 cannot bind, or nothing to trade
        return fills, whole_certificate(orders, "welfare", _surplus(by_id, fills), lp.sell_duals, lp.buy_duals), False
    # Where B6 binds, welfare's optimum may need two prices, or pin the worst margin at 0; the orders that meet
    # the unconstrained merit order's price can all trade at that price. Not proven optimal: no certificate
    # (verify accepts that where B6 can bind), so nothing claims a proof it does not have.
    candidates = [fills] if uniform_price(by_id, list(fills)) is not None else []
    unconstrained = merit_order(orders)  # ignores B6: only its price is used
    price = uniform_price(by_id, list(unconstrained.fills)) if unconstrained else None
    if price is not None:
        meeting = [o for o in orders if (o.price <= price if o.is_sell else o.price >= price)]
        candidates.append(_positive_gain(by_id, _whole_flows(_relaxation(meeting, "welfare", method), "welfare")))

    def measure(candidate):
        prices = marginal_prices(by_id, list(candidate))
        return (0 if prices is None else (prices[1] - prices[0]) // 2, _surplus(by_id, candidate))

    return max(candidates, key=measure, default={}), None, False


def _relaxation(orders, objective, method) -> LpSolution:
    if method == "model":
        from solver.models import model_relaxation  # Pyomo takes a while to import; only the model needs it

        return model_relaxation(orders, objective)
    return max_volume(orders) if objective == "volume" else welfare_relaxation(orders)


def _whole_flows(lp: LpSolution, objective: str) -> dict:
    if any(abs(wh - round(wh)) > ROUNDING_SLACK_WH for wh in lp.flows.values()):
        raise RuntimeError(f"HiGHS returned a fractional {objective} optimum on a totally unimodular programme")
    return {pair: round(wh) for pair, wh in lp.flows.items() if round(wh) > 0}


def _positive_gain(by_id, fills) -> dict:
    """Fills without their zero-surplus pairs: the same surplus, and an ask equal to a bid would pin maxmin at 0."""
    return {(s, b): wh for (s, b), wh in fills.items() if by_id[s].price < by_id[b].price}


def _surplus(by_id, fills) -> int:
    return sum((by_id[b].price - by_id[s].price) * wh for (s, b), wh in fills.items())


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
