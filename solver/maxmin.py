"""Maxmin: its definition, the uniform price that solves it, and the exact check verify runs.

Definition. A gate has sells s (ask a_s), buys b (bid b_b), quantities q_o in Wh; a matching x_sb >= 0 (Wh) over
compatible pairs (a_s <= b_b, different participants, B6) within the quantities; its surplus W(x) = sum (b_b - a_s)
x_sb and W* = max_x W(x). A maxmin outcome is a matching x and one price p (whole sen per kWh) such that

    (1)  W(x) = W*                                  the fills are efficient (welfare-optimal)
    (2)  a_s <= p <= b_b for every traded pair       every trade at the same, uniform price
    maximising  t(x, p) = min over traded orders o of m_o,   m_s = p - a_s,  m_b = b_b - p   (sen per kWh)

t is the margin per kWh of the worst-off traded order: "raise the worst-off participant", each participant as well
off as its least profitable traded kWh. It is the proposal's value; the empty matching has t = 0.

Solution where no self-trade constraint can bind (orders.own_orders_cross is false; every one-order-per-prosumer
book): x is the merit order up to its last kWh of positive gain (clearing.merit_order), A the highest traded ask,
B the lowest traded bid (A < B), p = midpoint_price(A, B) (halves to the even sen), t = min(p - A, B - p).

Why that is the optimum. Without B6 binding, every efficient x trades the cheapest supply against the dearest
demand up to a volume Q in [Q_lo, Q_hi]. Beyond Q_lo the gain per kWh is 0, so a matching with Q > Q_lo trades an
ask at least as high as one of its bids and t = 0. At Q = Q_lo the price levels of the marginal kWh, A and B, are
the same whichever of several equal-priced orders is filled, and t(p) = min(p - A, B - p) is largest at the
midpoint. So the optimum is unique up to rationing among equal prices, which the seeded rank decides.

Exact and cheap to verify (maxmin_optimal): the welfare certificate (clearing.py) proves (1); then A < B and
p = midpoint_price(A, B) prove the rest. O(n) on top of the checks every proposal gets; solving is a sort.

Quantity cannot be gamed. Raise q_o of one order o to q' > q_o:
    (a) if o was not completely filled, nothing changes: the merit order stops at the same kWh, o is at or past the
        margin, every order ahead of it is filled as before and o takes what it took (rank among equal prices is
        the seed's, not the quantity's);
    (b) if o was filled, the extra demand (supply) can only push the margin outward: A and B rise (fall) weakly,
        so p moves against o and its margin per kWh does not rise.
So nobody earns more per kWh by inflating; it can only get more kWh at a price no better, which it must then take
(for a buyer worth nothing beyond its need, for a seller bought in at least at the price it sold at).
Normalising profit per kWh offered broke (b): the programme lowered an inflating buyer's price to keep its profit
per kWh offered level with the others'. One price also gives identical orders identical prices.

Where B6 can bind the solver falls back (matching.py) to a welfare optimum that one price clears; such a proposal
is verified but not proven optimal (verify.py).
"""

from __future__ import annotations

from solver.proposals import midpoint_price


def marginal_prices(by_id: dict, pairs) -> tuple[int, int] | None:
    """(highest traded ask, lowest traded bid) over the (sell id, buy id) pairs; None without pairs."""
    if not pairs:
        return None
    return max(by_id[s].price for s, _ in pairs), min(by_id[b].price for _, b in pairs)


def uniform_price(by_id: dict, pairs) -> int | None:
    """The maxmin price for traded pairs: the midpoint of the marginal ask and bid; None if there is no single
    price every pair can trade at (an ask above a bid) or there are no pairs."""
    prices = marginal_prices(by_id, pairs)
    if prices is None or prices[0] > prices[1]:
        return None
    return midpoint_price(*prices)


def maxmin_optimal(by_id: dict, trades, b6_can_bind: bool) -> bool:
    """Whether welfare-optimal trades (the caller has checked the certificate) at one price are the maxmin optimum
    (module docstring): B6 cannot bind, the marginal ask is below the marginal bid, the price is their midpoint."""
    prices = marginal_prices(by_id, [(t.sell, t.buy) for t in trades])
    if prices is None:
        return True  # the certificate proves that no trade has a positive surplus: t = 0 is all there is
    if b6_can_bind:
        return False
    ask, bid = prices
    return ask < bid and all(t.price == midpoint_price(ask, bid) for t in trades)
