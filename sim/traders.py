"""Simulated market participants: prosumers whose rooftop solar left the feed-in tariff, selling their surplus
or buying their shortfall each gate, and adjusting their limits to the last clearing price when they did not
trade (B8).

A participant is a consumer of an RA; its RA places its orders (one batch per RA and gate). Each gate a
participant sells if its solar output exceeds its load, otherwise buys, in standard lots of 0.5 kWh and whole
yen, the way a trading terminal would offer them: so equivalent orders (same side, price, quantity and time,
B7) really occur within an RA's batch. Everything is drawn from `seed`, the gate's index and the participant, so
a run can be repeated.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

LOT_KWH = Decimal("0.5")
# Where limits start, yen/kWh: a feed-in tariff's end leaves about 8 yen for surplus; retail is about 30 yen.
ASK_RANGE = (9, 19)
BID_RANGE = (15, 29)
MIN_PRICE, MAX_PRICE = 5, 35
# A participant who did not trade moves this share of the way to the last clearing price, at least 1 yen.
ADJUSTMENT = Decimal("0.3")


@dataclass
class Trader:
    id: str
    ra: str
    solar_kwh: float  # mean surplus output in a gate
    load_kwh: float  # mean load in a gate
    ask: int  # yen/kWh it will sell at, at least
    bid: int  # yen/kWh it will buy at, at most


class TraderFleet:
    def __init__(self, traders: list[Trader], seed: int = 0):
        self.traders = traders
        self.seed = seed
        self.last_side: dict[str, str] = {}

    @classmethod
    def for_consumers(cls, consumers: list[tuple[str, str]], seed: int = 0) -> TraderFleet:
        """consumers: (consumer id, its RA) pairs."""
        traders = []
        for consumer, ra in consumers:
            draw = random.Random(f"trader:{seed}:{consumer}")
            traders.append(
                Trader(
                    consumer,
                    ra,
                    round(draw.uniform(0.5, 4.0), 3),
                    round(draw.uniform(0.5, 3.5), 3),
                    draw.randint(*ASK_RANGE),
                    draw.randint(*BID_RANGE),
                )
            )
        return cls(traders, seed)

    def orders_for_gate(self, gate_index: int) -> dict[str, list[dict]]:
        """RA -> its participants' orders for one gate, as place_orders takes them."""
        by_ra: dict[str, list[dict]] = {}
        for trader in self.traders:
            draw = random.Random(f"gate:{self.seed}:{gate_index}:{trader.id}")
            net = trader.solar_kwh * draw.uniform(0.2, 1.8) - trader.load_kwh * draw.uniform(0.6, 1.4)
            lots = int(Decimal(str(abs(net))) / LOT_KWH)
            if lots == 0:
                self.last_side.pop(trader.id, None)
                continue
            side = "sell" if net > 0 else "buy"
            self.last_side[trader.id] = side
            price = trader.ask if side == "sell" else trader.bid
            by_ra.setdefault(trader.ra, []).append(
                {"participant": trader.id, "side": side, "price": price, "quantity": float(lots * LOT_KWH)}
            )
        return by_ra

    def observe(self, traded: set[str], clearing_yen: float | None) -> None:
        """After a gate: those who offered but did not trade move their limit toward the clearing price."""
        if clearing_yen is None:
            return
        clearing = Decimal(str(clearing_yen))
        for trader in self.traders:
            side = self.last_side.get(trader.id)
            if side is None or trader.id in traded:
                continue
            if side == "sell" and trader.ask > clearing:
                trader.ask = max(MIN_PRICE, trader.ask - max(1, int((trader.ask - clearing) * ADJUSTMENT)))
            elif side == "buy" and trader.bid < clearing:
                trader.bid = min(MAX_PRICE, trader.bid + max(1, int((clearing - trader.bid) * ADJUSTMENT)))
