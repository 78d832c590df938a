"""Merit-order clearing: volume's, welfare's and maxmin's optimum in O(n log n), with its certificate, for books
where no self-trade constraint can bind.

A self-trade constraint (B6: no participant trades with itself) can bind only if some participant has a sell
whose ask is at most one of its own bids (orders.own_orders_cross). Otherwise every compatible pair (ask <= bid)
is of two participants, the programme of models.py is the textbook one without B6, and

- welfare: cheapest asks against dearest bids while ask < bid (merit order) is optimal. Every fill lies on the
  right side of a clearing price p (sells with ask < p and buys with bid > p full, with ask > p or bid < p empty);
  u[s] = max(p - ask, 0), v[b] = max(bid - p, 0) is then a dual solution worth exactly the surplus: the
  certificate. Stopping at the first pair without a positive gain also gives the smallest welfare-optimal volume,
  which maxmin needs (maxmin.py).
- volume: buys by ascending bid each take the cheapest sells left that they meet. The sells a buy can meet are a
  prefix of the asks in ascending order, and a later (higher) bid meets every sell an earlier one meets, so
  nothing a later buy could use is wasted: maximum. Certificate: a threshold cut, u[s] = 1 for ask <= theta and
  v[b] = 1 for bid > theta; every compatible pair is covered, and with the best theta its size is the volume
  (max-flow min-cut on this threshold graph). The functions return None rather than an uncertified answer.

Within a price the orders keep the order they are given in; solve() gives them by seeded rank, so among orders of
the same price the higher-ranked is filled first, which is what the fairness rule asks (fairness.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from solver.orders import Order
from solver.proposals import Certificate

Fills = dict[tuple[str, str], int]  # (sell id, buy id) -> Wh


@dataclass(frozen=True)
class Clearing:
    """A certified optimum: Wh per (sell id, buy id) and the certificate's duals (volume: 0/1; welfare: sen/kWh)."""

    fills: Fills
    certificate: Certificate


def _sides(orders: Sequence[Order]) -> tuple[list[Order], list[Order]]:
    return [o for o in orders if o.is_sell], [o for o in orders if not o.is_sell]


def merit_order(orders: Sequence[Order]) -> Clearing | None:
    """Welfare's optimum by merit order, at the smallest optimal volume, with the clearing-price certificate."""
    sells, buys = _sides(orders)
    sells.sort(key=lambda o: o.price)
    buys.sort(key=lambda o: -o.price)
    fills: Fills = {}
    filled: dict[str, int] = {}
    i = j = 0
    left_s = sells[0].quantity if sells else 0
    left_b = buys[0].quantity if buys else 0
    while i < len(sells) and j < len(buys) and sells[i].price < buys[j].price:
        s, b = sells[i], buys[j]
        wh = min(left_s, left_b)
        fills[s.id, b.id] = wh
        filled[s.id] = filled.get(s.id, 0) + wh
        filled[b.id] = filled.get(b.id, 0) + wh
        left_s -= wh
        left_b -= wh
        if not left_s:
            i += 1
            left_s = sells[i].quantity if i < len(sells) else 0
        if not left_b:
            j += 1
            left_b = buys[j].quantity if j < len(buys) else 0
    price = _clearing_price(sells, buys, filled)
    if price is None:
        return None
    return Clearing(
        fills,
        Certificate(
            sell_duals={s.id: price - s.price for s in sells if s.price < price},
            buy_duals={b.id: b.price - price for b in buys if b.price > price},
        ),
    )


def _clearing_price(sells, buys, filled) -> int | None:
    """A whole-sen p with every fill on its side of p (module docstring), or None if there is none."""
    low, high = 0, 10**12
    for s in sells:  # plain comparisons, not max()/min(): this runs over every order of the gate
        wh = filled.get(s.id, 0)
        if wh and s.price > low:
            low = s.price
        if wh < s.quantity and s.price < high:
            high = s.price
    for b in buys:
        wh = filled.get(b.id, 0)
        if wh and b.price < high:
            high = b.price
        if wh < b.quantity and b.price > low:
            low = b.price
    return low if low <= high else None


def greedy_volume(orders: Sequence[Order]) -> Clearing | None:
    """Volume's optimum: buys by ascending bid take the cheapest sells they meet; the threshold cut certifies it."""
    sells, buys = _sides(orders)
    sells.sort(key=lambda o: o.price)
    buys.sort(key=lambda o: o.price)
    fills: Fills = {}
    volume = 0
    i = 0
    left_s = sells[0].quantity if sells else 0
    for b in buys:
        left_b = b.quantity
        while left_b and i < len(sells) and sells[i].price <= b.price:
            wh = min(left_s, left_b)
            fills[sells[i].id, b.id] = wh
            volume += wh
            left_s -= wh
            left_b -= wh
            if not left_s:
                i += 1
                left_s = sells[i].quantity if i < len(sells) else 0
    theta = _best_threshold(sells, buys)
    certificate = Certificate(
        sell_duals={s.id: 1 for s in sells if s.price <= theta},
        buy_duals={b.id: 1 for b in buys if b.price > theta},
    )
    cut = sum(s.quantity for s in sells if s.price <= theta) + sum(b.quantity for b in buys if b.price > theta)
    return Clearing(fills, certificate) if cut == volume else None


def _best_threshold(sells: list[Order], buys: list[Order]) -> int:
    """theta minimising (Wh of sells with ask <= theta) + (Wh of buys with bid > theta), for sells and buys
    sorted by price. The sum only changes at a price, so trying -1 and every price finds the minimum."""
    prices = sorted({-1, *(o.price for o in sells), *(o.price for o in buys)})
    sell_wh = buy_wh = 0
    total_buy = sum(b.quantity for b in buys)
    i = j = 0
    best_theta, best = -1, None
    for theta in prices:
        while i < len(sells) and sells[i].price <= theta:
            sell_wh += sells[i].quantity
            i += 1
        while j < len(buys) and buys[j].price <= theta:
            buy_wh += buys[j].quantity
            j += 1
        cut = sell_wh + total_buy - buy_wh
        if best is None or cut < best:
            best_theta, best = theta, cut
    return best_theta
