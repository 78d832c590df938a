"""What welfare's column generation needs: HiGHS set up for basic solutions, and the O(n) sweep that finds every
order's best partner, its pricing step."""

from __future__ import annotations

from collections.abc import Sequence

import highspy

from solver.orders import LowestOfOthers, Order
from solver.relaxation import native_stdout_silenced

INF = highspy.kHighsInf
# Reduced cost above which a pair still improves a programme (HiGHS's dual feasibility tolerance is 1e-7).
ENTERING_TOLERANCE = 1e-6

Pair = tuple[int, int]  # (sell index, buy index)


def new_highs() -> highspy.Highs:
    with native_stdout_silenced():
        highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("solver", "simplex")  # a basic solution: whole flows and duals (welfare.py)
    return highs


def run_to_optimum(highs: highspy.Highs, what: str) -> None:
    highs.run()
    status = highs.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"HiGHS did not find an optimum for {what}: {highs.modelStatusToString(status)}")


def best_partners(
    sells: Sequence[Order],
    buys: Sequence[Order],
    key_sell: Sequence[float],
    key_buy: Sequence[float],
    by_ask: Sequence[int],
    by_bid: Sequence[int],
) -> list[Pair]:
    """For each buy in by_bid the compatible sell with the smallest key_sell, then for each sell in by_ask the
    compatible buy with the largest key_buy (compatible: ask <= bid, another participant). by_ask and by_bid list
    the orders to consider by ascending price; two sweeps, O(n).

    Sweeping buys by bid while sells join by ask, the sells a buy may trade with are exactly those joined so
    far; among them the smallest key, or the second smallest where the smallest is the buy's own participant's
    (LowestOfOthers), is its best partner. The sweep for sells runs the other way round.
    """
    pairs = []
    lowest = LowestOfOthers()
    i = 0
    for j in by_bid:
        while i < len(by_ask) and sells[by_ask[i]].price <= buys[j].price:
            lowest.add(key_sell[by_ask[i]], by_ask[i], sells[by_ask[i]].participant)
            i += 1
        found = lowest.lowest_not_of(buys[j].participant)
        if found is not None:
            pairs.append((found, j))
    highest = LowestOfOthers()
    j = len(by_bid) - 1
    for i in reversed(by_ask):
        while j >= 0 and buys[by_bid[j]].price >= sells[i].price:
            highest.add(-key_buy[by_bid[j]], by_bid[j], buys[by_bid[j]].participant)
            j -= 1
        found = highest.lowest_not_of(sells[i].participant)
        if found is not None:
            pairs.append((i, found))
    return pairs
