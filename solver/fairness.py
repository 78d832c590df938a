"""Seeded fairness among equivalent orders (B7): the gate's seed, each order's rank, and the canonical handover.

Equivalent orders have the same side, price, quantity and time; only who placed them differs. Their rank is
SHA-256(seed || order id as UTF-8): smaller digest, higher rank. Every peer recomputes it from the gate's seed,
and over seeds the ranks are a uniformly random permutation, so no participant is favoured.

The rule a matching must obey ("rank order"): a lower-ranked order may hold a fill while a higher-ranked
equivalent order is not completely filled only if that fill could not be handed over, that is

its counter-order belongs to the higher-ranked order's participant (the trade would become a self-trade).

A handover never changes the value: equivalent orders have the same price, so the trade keeps its quantity and
its price (the pair's midpoint for volume and welfare, the gate's uniform price for maxmin), and every order's
margin stays what it was. `hand_over_to_higher_ranks` applies handovers until none is possible;
verify.check_rank_order checks the rule in O(orders + trades).
"""

from __future__ import annotations

import hashlib
import json

from solver.proposals import Trade


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
    first: dict = {}
    classes: dict = {}
    # Order.equivalence_key(), inlined, and a list only on a second member: this runs over every order of every
    # gate verified, and most orders have no equivalent.
    for o in orders:
        key = (o.side, o.price, o.quantity, o.time)
        earlier = first.setdefault(key, o)
        if earlier is not o:
            classes.setdefault(key, [earlier]).append(o)
    shared = sorted(classes.items())
    return [sorted(members, key=lambda o: (rank_key(seed, o.id), o.id)) for _, members in shared]


class _Book:
    """Trades keyed by (sell id, buy id), one per pair (canonical form), with per-order indexes, for moving fills
    between orders. lots[pair] = [Wh, price]. A handover keeps the price (module docstring), so a lot it lands
    on already has that price."""

    def __init__(self, orders, trades):
        self.by_id = {o.id: o for o in orders}
        self.lots: dict = {}
        self.lots_of: dict = {}
        self.fill: dict = {}
        for t in trades:
            self._add((t.sell, t.buy), t.quantity, t.price)

    def _add(self, pair, quantity, price) -> None:
        held = self.lots.setdefault(pair, [0, price])
        held[0] += quantity
        for order_id in pair:
            self.lots_of.setdefault(order_id, set()).add(pair)
            self.fill[order_id] = self.fill.get(order_id, 0) + quantity

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

    def hand_over(self, pair, higher, quantity) -> None:
        """Give `quantity` of pair's trade to its order's equivalent `higher`: same counter-order and price."""
        sell, buy = pair
        price = self.lots[pair][1]
        self._remove(pair, quantity)
        self._add((higher.id, buy) if higher.is_sell else (sell, higher.id), quantity, price)

    def result(self) -> list[Trade]:
        return [Trade(s, b, q, p) for (s, b), (q, p) in sorted(self.lots.items())]


def hand_over_to_higher_ranks(orders, trades, seed: bytes) -> list[Trade]:
    """Move fills from lower- to higher-ranked equivalent orders wherever the rule allows, until none can move;
    trades come and go in canonical form.

    Each move raises one class's fills in rank order lexicographically and leaves the other classes' fills alone,
    so the loop ends; value, volume and surplus never change. The result is in canonical form: one trade per
    pair, sorted by (sell id, buy id).
    """
    classes = equivalence_classes(orders, seed)
    in_a_class = {o.id for members in classes for o in members}
    # Only trades of orders in a class can move; the others are left as they are.
    movable = [t for t in trades if t.sell in in_a_class or t.buy in in_a_class]
    if not movable:
        return list(trades)
    fixed = [t for t in trades if not (t.sell in in_a_class or t.buy in in_a_class)]
    book = _Book(orders, movable)
    moved = True
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
                        book.hand_over(pair, higher, min(need, book.lots[pair][0]))
                        moved = True
    return sorted(fixed + book.result(), key=lambda t: (t.sell, t.buy))
