"""The continuous double auction (ザラ場), the baseline the optimised matching must beat (B9).

Orders arrive in time order (ties by id). An arriving order trades with the best resting counter-orders (the
cheapest ask for a buy, the highest bid for a sell; earlier first at equal price) while they are compatible,
at the resting order's price; what is left rests. A resting order of the arriving order's own participant is
passed over, not matched, and keeps its place. No optimisation and no seed: first come, first matched.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from solver.orders import Order
from solver.proposals import Trade


def continuous_double_auction(orders: Iterable[Order]) -> list[Trade]:
    # per side, a heap of (price key, time, id, remaining Wh, order)
    resting: dict[str, list[tuple[int, int, str, int, Order]]] = {"sell": [], "buy": []}
    trades: dict[tuple[str, str], Trade] = {}
    for order in sorted(orders, key=lambda o: (o.time, o.id)):
        book = resting["buy" if order.is_sell else "sell"]
        remaining = order.quantity
        passed_over = []
        while remaining and book:
            entry = book[0]
            counter = entry[4]
            fits = counter.price >= order.price if order.is_sell else counter.price <= order.price
            if not fits:
                break
            heapq.heappop(book)
            if counter.participant == order.participant:
                passed_over.append(entry)
                continue
            quantity = min(remaining, entry[3])
            pair = (order.id, counter.id) if order.is_sell else (counter.id, order.id)
            trades[pair] = Trade(pair[0], pair[1], quantity, counter.price)
            remaining -= quantity
            if quantity < entry[3]:
                heapq.heappush(book, (entry[0], entry[1], entry[2], entry[3] - quantity, counter))
        for entry in passed_over:
            heapq.heappush(book, entry)
        if remaining:
            key = -order.price if not order.is_sell else order.price
            heapq.heappush(resting[order.side], (key, order.time, order.id, remaining, order))
    return [trades[pair] for pair in sorted(trades)]
