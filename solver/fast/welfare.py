"""Welfare's fast path: column generation over pairs with HiGHS; its capacity duals are the certificate.

Why it reaches models.py's optimum without building all O(n^2) pairs: an optimum uses about n pairs (one per
basic variable), not n^2. The programme starts with the pairs of the merit-order crossing (cheapest asks against
dearest bids); after each solve it adds, for every buy and every sell, the compatible pair with the largest
reduced cost (bid - ask) - u[s] - v[b] (u, v the capacity duals), until no pair anywhere has a positive one.
That search takes O(n) per round, not O(n^2) (columns.best_partners). When no pair prices out, (u, v) is
feasible for the dual of the full programme and equal in value to the restricted optimum, so by LP duality the
restricted optimum is the full one. The programme is a bipartite transportation problem (totally unimodular):
the simplex optimum is whole Wh with whole duals, the certificate verify.py checks with the same sweep.
"""

from __future__ import annotations

from collections.abc import Sequence

import highspy
import numpy as np

from consortium.units import SEN_PER_YEN, WH_PER_KWH
from solver.fast.columns import ENTERING_TOLERANCE, INF, Pair, best_partners, new_highs, run_to_optimum
from solver.orders import Order
from solver.relaxation import LpSolution

# A Wh amount this close to a whole number is that number (HiGHS's feasibility tolerance is 1e-7 kWh = 1e-4 Wh).
WHOLE_WH_TOLERANCE = 1e-3


def welfare_relaxation(orders: Sequence[Order]) -> LpSolution:
    """Welfare by column generation over pairs (module docstring)."""
    sells = [o for o in orders if o.is_sell]
    buys = [o for o in orders if not o.is_sell]
    ask = [s.price / SEN_PER_YEN for s in sells]
    bid = [b.price / SEN_PER_YEN for b in buys]
    highs = _pair_lp(sells, buys)
    columns: list[Pair] = []
    known: set[Pair] = set()

    def add(pairs: list[Pair]) -> int:
        fresh = sorted(set(pairs) - known)
        if fresh:
            known.update(fresh)
            columns.extend(fresh)
            _add_pair_columns(highs, fresh, [bid[j] - ask[i] for i, j in fresh], len(sells))
        return len(fresh)

    by_ask = sorted(range(len(sells)), key=lambda i: sells[i].price)
    by_bid = sorted(range(len(buys)), key=lambda j: buys[j].price)
    entering = merit_order_pairs(sells, buys)
    duals = np.zeros(len(sells) + len(buys))
    while True:
        # reduced cost of (s, b): (bid[b] - v[b]) - (ask[s] + u[s]), a buy part minus a sell part
        key_sell = [u + a for u, a in zip(duals[: len(sells)], ask, strict=True)]
        key_buy = [b - v for b, v in zip(bid, duals[len(sells) :], strict=True)]
        pairs = best_partners(sells, buys, key_sell, key_buy, by_ask, by_bid)
        entering += [(i, j) for i, j in pairs if key_buy[j] - key_sell[i] > ENTERING_TOLERANCE]
        if not add(entering):
            break
        run_to_optimum(highs, "the welfare programme")
        duals = np.asarray(highs.getSolution().row_dual)
        entering = []

    if not columns:
        return LpSolution(flows={}, bound=0.0, surplus=0.0)
    value = np.asarray(highs.getSolution().col_value) * WH_PER_KWH
    flows = {
        (sells[i].id, buys[j].id): wh for (i, j), wh in zip(columns, value, strict=True) if wh > WHOLE_WH_TOLERANCE
    }
    return LpSolution(
        flows=flows,
        bound=highs.getInfo().objective_function_value,
        surplus=highs.getInfo().objective_function_value,
        # duals are yen per kWh; the certificate is in sen per kWh (millisen per Wh)
        sell_duals={s.id: duals[r] * SEN_PER_YEN for r, s in enumerate(sells)},
        buy_duals={b.id: duals[len(sells) + r] * SEN_PER_YEN for r, b in enumerate(buys)},
    )


def merit_order_pairs(sells: Sequence[Order], buys: Sequence[Order]) -> list[Pair]:
    """(sell index, buy index) of the classic supply/demand crossing: cheapest asks against dearest bids.

    Only a starting set of columns; optimality comes from pricing, not from this."""
    ascending = sorted(range(len(sells)), key=lambda i: sells[i].price)
    descending = sorted(range(len(buys)), key=lambda j: -buys[j].price)
    pairs = []
    i = j = 0
    left_s = sells[ascending[0]].quantity if sells else 0
    left_b = buys[descending[0]].quantity if buys else 0
    while i < len(ascending) and j < len(descending):
        s, b = sells[ascending[i]], buys[descending[j]]
        if s.price > b.price:
            break
        if s.participant != b.participant:
            pairs.append((ascending[i], descending[j]))
        step = min(left_s, left_b)
        left_s -= step
        left_b -= step
        if left_s == 0:
            i += 1
            left_s = sells[ascending[i]].quantity if i < len(ascending) else 0
        if left_b == 0:
            j += 1
            left_b = buys[descending[j]].quantity if j < len(descending) else 0
    return pairs


def _pair_lp(sells: Sequence[Order], buys: Sequence[Order]) -> highspy.Highs:
    """A maximising programme with the capacity rows of models.py (sells, then buys, kWh) and no columns yet."""
    highs = new_highs()
    highs.changeObjectiveSense(highspy.ObjSense.kMaximize)
    capacities = np.array([o.quantity / WH_PER_KWH for o in [*sells, *buys]])
    empty = np.array([], dtype=np.int32)
    highs.addRows(
        len(capacities),
        np.full(len(capacities), -INF),
        capacities,
        0,
        np.zeros(len(capacities), dtype=np.int32),
        empty,
        np.array([], dtype=np.float64),
    )
    return highs


def _add_pair_columns(highs: highspy.Highs, pairs: list[Pair], costs: list[float], n_sells: int) -> None:
    """Columns x[s, b]: +1 in row s, +1 in row n_sells + b."""
    count = len(pairs)
    s_idx = np.array([p[0] for p in pairs], dtype=np.int32)
    b_idx = np.array([p[1] for p in pairs], dtype=np.int32) + n_sells
    index = np.stack([s_idx, b_idx], axis=1).ravel()
    highs.addCols(
        count,
        np.asarray(costs, dtype=np.float64),
        np.zeros(count),
        np.full(count, INF),
        len(index),
        np.arange(0, len(index), 2, dtype=np.int32),
        index,
        np.ones(len(index)),
    )
