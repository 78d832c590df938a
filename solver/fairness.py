"""Seeded fairness among equivalent orders (B7): the gate's seed, each order's rank, and the canonical handover.

Equivalent orders have the same side, price, quantity and time; only who placed them differs. Their rank is
SHA-256(seed || order id as UTF-8): smaller digest, higher rank. Every peer recomputes it from the gate's seed,
and over seeds the ranks are a uniformly random permutation, so no participant is favoured.

The rule a matching must obey ("rank order"): a lower-ranked order may hold a fill while a higher-ranked
equivalent order is not completely filled only if that fill could not be handed over, that is

- its counter-order belongs to the higher-ranked order's participant (the trade would become a self-trade), or
- for maxmin, handing over even 1 Wh would lower the maxmin value (the lower-ranked order's participant is
  at the worst-off level, so the objective itself tells the two orders apart).

For volume and welfare a handover never changes the value: equivalent orders have the same price, so the trade
keeps its quantity and midpoint price. `hand_over_to_higher_ranks` applies handovers until none is possible;
verify.check_rank_order checks the rule in
O(orders + trades).
"""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction

from solver.proposals import Trade, eligible_offers, participant_profits, worst_profit_per_kwh


class InvalidSeed(ValueError):
    """A seed that is not hexadecimal."""


def seed_from_hex(text: str) -> bytes:
    """The gate's seed from its hex form (as carried on the ledger and by the CLI's --seed)."""
    try:
        seed = bytes.fromhex(text)
    except (ValueError, TypeError):
        raise InvalidSeed(f"seed must be hexadecimal (pairs of 0-9a-f), got {text!r}") from None
    if not seed:
        raise InvalidSeed("seed must not be empty")
    return seed


def order_book_seed(orders) -> bytes:
    """A seed every peer can recompute from the closed book: SHA-256 of its orders, sorted by id, as JSON."""
    canonical = sorted([o.id, o.participant, o.side, o.price, o.quantity, o.time] for o in orders)
    return hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode()).digest()


def rank_key(seed: bytes, order_id: str) -> bytes:
    return hashlib.sha256(seed + order_id.encode()).digest()


def equivalence_classes(orders, seed: bytes) -> list[list]:
    """Classes of two or more equivalent orders, each from highest to lowest rank, in a deterministic order."""
    classes: dict = {}
    for order in orders:
        classes.setdefault(order.equivalence_key(), []).append(order)
    shared = sorted((key, members) for key, members in classes.items() if len(members) > 1)
    return [sorted(members, key=lambda o: (rank_key(seed, o.id), o.id)) for _, members in shared]


class _Book:
    """Trades keyed by (sell id, buy id), one per pair (canonical form), with per-order indexes, for moving fills
    between orders. lots[pair] = [Wh, price].

    For volume and welfare a pair's price is its midpoint, so a handover that lands on a pair already trading
    keeps its price. Maxmin prices pairs freely: there the two lots merge at their Wh-weighted mean price, to
    the whole sen (halves to even), which stays within [ask, bid] because both prices are.
    """

    def __init__(self, orders, trades):
        self.by_id = {o.id: o for o in orders}
        self.lots: dict = {}
        self.lots_of: dict = {}
        self.fill: dict = {}
        for t in trades:
            self._add((t.sell, t.buy), t.quantity, t.price)

    def _add(self, pair, quantity, price) -> bool:
        """Adds quantity at price to pair; True if that re-priced a trade the pair already had."""
        repriced = False
        if pair in self.lots:
            held, held_price = self.lots[pair]
            if held_price != price:
                price = round(Fraction(held * held_price + quantity * price, held + quantity))
                repriced = True
            self.lots[pair] = [held + quantity, price]
        else:
            self.lots[pair] = [quantity, price]
        for order_id in pair:
            self.lots_of.setdefault(order_id, set()).add(pair)
            self.fill[order_id] = self.fill.get(order_id, 0) + quantity
        return repriced

    def _remove(self, pair, quantity):
        self.lots[pair][0] -= quantity
        if self.lots[pair][0] == 0:
            del self.lots[pair]
            for order_id in pair:
                self.lots_of[order_id].discard(pair)
        for order_id in pair:
            self.fill[order_id] -= quantity

    def counter_of(self, pair, order):
        return self.by_id[pair[1] if order.is_sell else pair[0]]

    def hand_over(self, pair, lower, higher, quantity) -> bool:
        """Give `quantity` of pair's trade from order `lower` to its equivalent `higher`, same counter-order and
        price; True if it merged into a trade of `higher` at another price (maxmin), which re-prices that trade."""
        sell, buy = pair
        price = self.lots[pair][1]
        self._remove(pair, quantity)
        return self._add((higher.id, buy) if higher.is_sell else (sell, higher.id), quantity, price)

    def result(self) -> list[Trade]:
        return [Trade(s, b, q, p) for (s, b), (q, p) in sorted(self.lots.items())]


def hand_over_to_higher_ranks(orders, trades, seed: bytes, objective: str) -> list[Trade]:
    """Move fills from lower- to higher-ranked equivalent orders wherever the rule allows, until none can move.

    Each move raises one class's fills in rank order lexicographically and leaves the other classes' fills alone,
    so the loop ends. Volume and surplus never change; for maxmin every move is checked not to lower the value
    of the lower-ranked order's participant below the worst-off, and a merge that re-prices a trade (_Book) is
    measured afresh. The result is in canonical form: one trade per pair, sorted by (sell id, buy id).
    """
    classes = equivalence_classes(orders, seed)
    book = _Book(orders, trades)
    maxmin = objective == "maxmin"
    offered = eligible_offers(orders) if maxmin else {}
    profits = participant_profits(book.by_id, trades) if maxmin else {}
    worst = worst_profit_per_kwh(offered, profits) if maxmin else None
    moved = bool(classes and book.lots)
    while moved:
        moved = False
        for members in classes:
            for position, higher in enumerate(members):
                for lower in reversed(members[position + 1 :]):
                    for pair in sorted(book.lots_of.get(lower.id, ())):
                        need = higher.quantity - book.fill.get(higher.id, 0)
                        if need == 0:
                            break
                        if book.counter_of(pair, lower).participant == higher.participant:
                            continue
                        quantity = min(need, book.lots[pair][0])
                        margin = margin_of(lower, book.lots[pair][1])
                        if maxmin and margin and lower.participant != higher.participant:
                            quantity = min(quantity, _harmless_quantity(lower, margin, offered, profits, worst))
                        if quantity <= 0:
                            continue
                        if maxmin:
                            profits[lower.participant] -= margin * quantity
                            profits[higher.participant] = profits.get(higher.participant, 0) + margin * quantity
                        if book.hand_over(pair, lower, higher, quantity):
                            profits = participant_profits(book.by_id, book.result())
                        if maxmin:
                            worst = worst_profit_per_kwh(offered, profits)
                        moved = True
    return book.result()


def margin_of(order, price: int) -> int:
    """The order's profit per Wh trading at price (millisen per Wh): price - ask for a sell, bid - price for a buy."""
    return price - order.price if order.is_sell else order.price - price


def _harmless_quantity(lower, margin: int, offered: dict, profits: dict, worst) -> int:
    """Wh that lower's participant can give up without falling below the worst-off participant's profit per kWh.

    Only lower's participant loses profit in a handover, so the maxmin value falls only if it falls below the
    current worst; the higher-ranked order's participant gains.
    """
    slack = profits.get(lower.participant, 0) - worst * offered[lower.participant]
    return int(slack // margin) if slack > 0 else 0
