"""Proposals (a gate's trades, the value they claim, an optimality certificate) and their exact measures.

Canonical form: one trade per (sell, buy) pair, the trades in ascending (sell id, buy id) order (ids compared as
strings, by Unicode code point). verify.py refuses anything else, so every outcome has exactly one spelling and
no proposer can vary a proposal's bytes without changing what it trades.

Units: Trade.quantity in Wh, Trade.price in sen (0.01 yen) per kWh, money (surplus, profit) in millisen
(price x quantity; 100000 millisen = 1 yen). The three objective values:

- volume:  total traded Wh (int);
- welfare: total surplus, sum over trades of (bid - ask) x quantity, millisen (int);
- maxmin:  the smallest margin any traded order earns per kWh, sen per kWh (fractions.Fraction, whole in practice):
           min over the trades (s, b, price) of (price - ask[s]) and (bid[b] - price); 0 with no trades.
           maxmin.py defines the maxmin outcome (welfare-optimal fills, one uniform price) and why quantity
           cannot game it.

Trade price for volume and welfare: the midpoint of ask and bid, (ask + bid) / 2 in sen per kWh, rounded to a
whole sen with halves going to the even sen (banker's rounding), so that neither buyers nor sellers gain the
half-sen systematically. Maxmin trades everything at one price (maxmin.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from fractions import Fraction

from consortium import OBJECTIVES
from consortium.units import MILLISEN_PER_YEN, SEN_PER_YEN, WH_PER_KWH
from solver.orders import Order


class InvalidProposal(ValueError):
    """A proposal whose JSON form cannot be read."""


@dataclass(frozen=True, slots=True)
class Trade:
    sell: str
    buy: str
    quantity: int
    price: int


@dataclass(frozen=True)
class Certificate:
    """LP dual values proving a volume or welfare proposal optimal (checked by verify.check_certificate).

    sell_duals[order id], buy_duals[order id]: whole numbers >= 0, what one more Wh of that order would be worth
    (volume: Wh per Wh; welfare: millisen per Wh = sen per kWh); missing ids count as 0. They prove optimality
    if sell_dual + buy_dual >= the gain of 1 Wh traded for every compatible pair, and sum(quantity x dual)
    equals the proposal's value: by LP duality no matching can do better.
    """

    sell_duals: dict = field(default_factory=dict)
    buy_duals: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Proposal:
    """A gate's matching as a matcher proposes it: trades in canonical form (module docstring), the value they
    claim, and for volume and welfare the certificate that proves the value optimal (verify.py requires it)."""

    objective: str
    trades: tuple
    value: int | Fraction
    certificate: Certificate | None = None

    def digest(self, canonical: bool = False) -> str:
        """SHA-256 of the outcome (objective and trades, sorted): names the outcome; not a tie-break (verify.better).
        canonical: the caller has checked that the trades are in canonical order, which is the sorted order (one
        trade per pair), so the sort can be skipped; the digest is the same."""
        rows = [[t.sell, t.buy, t.quantity, t.price] for t in self.trades]
        outcome = {"objective": self.objective, "trades": rows if canonical else sorted(rows)}
        return hashlib.sha256(json.dumps(outcome, separators=(",", ":")).encode()).hexdigest()

    def to_json(self) -> dict:
        """Integers only (maxmin value as "numerator/denominator"), so it travels through chaincode exactly."""
        data: dict[str, object] = {
            "objective": self.objective,
            "value": str(self.value),
            "trades": [
                {"sell": t.sell, "buy": t.buy, "quantity_wh": t.quantity, "price_sen_per_kwh": t.price}
                for t in self.trades
            ],
        }
        if self.certificate is not None:
            data["certificate"] = {"sells": self.certificate.sell_duals, "buys": self.certificate.buy_duals}
        return data

    @classmethod
    def from_json(cls, data) -> Proposal:
        try:
            objective = data["objective"]
            value = Fraction(data["value"]) if objective == "maxmin" else int(data["value"])
            trades = tuple(
                Trade(str(t["sell"]), str(t["buy"]), t["quantity_wh"], t["price_sen_per_kwh"]) for t in data["trades"]
            )
            certificate = None
            if "certificate" in data:
                certificate = Certificate(dict(data["certificate"]["sells"]), dict(data["certificate"]["buys"]))
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as error:
            raise InvalidProposal(f"malformed proposal: {error!r}") from None
        return cls(objective, trades, value, certificate)


def in_canonical_order(trades) -> tuple:
    """The trades sorted by (sell id, buy id), the order verify requires (it does not merge repeated pairs)."""
    return tuple(sorted(trades, key=lambda t: (t.sell, t.buy)))


def midpoint_price(ask: int, bid: int) -> int:
    """(ask + bid) / 2 to a whole sen, halves to even; always within [ask, bid]."""
    half, odd = divmod(ask + bid, 2)
    return half + (odd and half % 2)


def traded_volume(trades) -> int:
    return sum(t.quantity for t in trades)


def total_surplus(by_id: dict, trades) -> int:
    return sum((by_id[t.buy].price - by_id[t.sell].price) * t.quantity for t in trades)


def worst_margin(by_id: dict, trades) -> Fraction:
    """min over trades of the seller's (price - ask) and the buyer's (bid - price), sen per kWh; 0 without trades."""
    worst = None
    for t in trades:
        margin = min(t.price - by_id[t.sell].price, by_id[t.buy].price - t.price)
        if worst is None or margin < worst:
            worst = margin
    return Fraction(worst or 0)


def objective_value(objective: str, orders, trades) -> int | Fraction:
    """The exact value of trades for objective (see the module docstring for units)."""
    by_id = {o.id: o for o in orders}
    if objective == "volume":
        return traded_volume(trades)
    if objective == "welfare":
        return total_surplus(by_id, trades)
    if objective == "maxmin":
        return worst_margin(by_id, trades)
    raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")


def value_in_display_units(objective: str, value) -> float:
    """kWh for volume, yen for welfare, yen per kWh for maxmin."""
    if objective == "volume":
        return value / WH_PER_KWH
    if objective == "welfare":
        return value / MILLISEN_PER_YEN
    return float(Fraction(value) / SEN_PER_YEN)


def order_by_id(orders) -> dict[str, Order]:
    return {o.id: o for o in orders}
