"""Maxmin's fast path: column generation over pairs with HiGHS, in models.py's two stages.

Why it reaches models.py's optimum: each pair's trade is split as xS (its surplus goes to the seller:
price = bid) plus xB (to the buyer: price = ask), so pay = bid xS + ask xB and models.py's payment rows
disappear; any price in [ask, bid] is such a mix, so both programmes have the same optima. Stage 1 starts from
the welfare optimum's pairs plus every order's best partner by gain; the reduced cost of a pair is
gain (base + gamma_i / offered_i) - alpha_s - beta_b, with gamma_i the dual of the fairness row of the
participant credited, base 0 in stage 1 and 1 in stage 2. Where gamma_i = 0 (most participants) that is
welfare's reduced cost and the O(n) sweep prices it (columns.best_partners); only orders of participants with
gamma_i > 0 are priced against every counter-order, with numpy. No positive reduced cost left means optimal over
all pairs (LP duality), i.e. models.py's optimum, stage by stage.
"""

from __future__ import annotations

from collections.abc import Sequence

import highspy
import numpy as np
import numpy.typing as npt

from consortium.units import MILLISEN_PER_YEN, SEN_PER_YEN, WH_PER_KWH
from solver.fast.columns import ENTERING_TOLERANCE, INF, Pair, best_partners, new_highs, run_to_optimum
from solver.fast.welfare import welfare_relaxation
from solver.orders import Order
from solver.proposals import eligible_offers
from solver.relaxation import STAGE_TWO_SLACK, LpSolution

# Buys (or sells) priced against all counter-orders at once: 256 x 5000 doubles is about 10 MB per array.
PRICING_CHUNK = 256
# Entering pairs per order and round for the orders maxmin prices by brute force, and at most this many per
# order in all per round (measured: fewer means more rounds, more means slower rounds).
ENTERING_PER_ORDER = 20
ENTERING_PER_ROUND = 2

Column = tuple[int, int, bool]  # (sell index, buy index, surplus to the seller?)
Indexes = npt.NDArray[np.intp]


def maxmin_relaxation(orders: Sequence[Order]) -> LpSolution:
    """Stage 1 and stage 2 of maxmin by column generation over (sell, buy) pairs (module docstring)."""
    offered = eligible_offers(orders)
    if not offered:
        return LpSolution(flows={}, bound=0.0, surplus=0.0)
    market = _MaxminMarket(orders, offered)
    welfare_pairs = sorted(welfare_relaxation(orders).flows)
    welfare_columns = [(market.sell_index[s], market.buy_index[b]) for s, b in welfare_pairs]

    # Stage 1 starts from the welfare optimum's pairs and, for the participants who could earn least, their
    # orders' best partners by gain: the worst-off are those with little possible surplus, they need exactly
    # those partners, and finding them one round at a time is what makes plain column generation crawl.
    stage_one = _MaxminProgramme(market, stage_two=False)
    stage_one.add(welfare_columns + market.best_partner_of_every_order())
    stage_one.generate()
    t1 = stage_one.t()

    # Stage 2 starts afresh from the pairs stage 1 uses and the welfare pairs: a small programme re-optimises
    # faster than stage 1's with all its columns.
    stage_two = _MaxminProgramme(market, stage_two=True, worst_off_at_least=t1 - STAGE_TWO_SLACK * max(1.0, abs(t1)))
    stage_two.add(welfare_columns + stage_one.used_pairs())
    stage_two.generate()
    return stage_two.solution(t1)


class _MaxminMarket:
    """The gate as arrays: prices in yen/kWh, owners, and each order's participant row and 1 / offered kWh."""

    def __init__(self, orders: Sequence[Order], offered: dict[str, int]):
        self.sells = [o for o in orders if o.is_sell]
        self.buys = [o for o in orders if not o.is_sell]
        self.sell_index = {s.id: i for i, s in enumerate(self.sells)}
        self.buy_index = {b.id: j for j, b in enumerate(self.buys)}
        self.people = sorted(offered)
        first_person_row = len(self.sells) + len(self.buys)
        person_row = {p: first_person_row + k for k, p in enumerate(self.people)}
        number = {p: k for k, p in enumerate(sorted({o.participant for o in orders}))}
        self.ask = np.array([s.price for s in self.sells], dtype=np.float64) / SEN_PER_YEN
        self.bid = np.array([b.price for b in self.buys], dtype=np.float64) / SEN_PER_YEN
        self.sell_owner = np.array([number[s.participant] for s in self.sells])
        self.buy_owner = np.array([number[b.participant] for b in self.buys])
        # Participant rows are divided by offered kWh: t - profit_i / offered_i <= 0, all of a similar scale.
        # Orders of participants who cannot profit get row -1; they only appear in zero-gain pairs, left out.
        self.sell_row = np.array([person_row.get(s.participant, -1) for s in self.sells])
        self.buy_row = np.array([person_row.get(b.participant, -1) for b in self.buys])
        self.sell_share = np.array([WH_PER_KWH / offered.get(s.participant, 1) for s in self.sells])
        self.buy_share = np.array([WH_PER_KWH / offered.get(b.participant, 1) for b in self.buys])
        self.capacities = np.array([o.quantity / WH_PER_KWH for o in [*self.sells, *self.buys]])
        self.person_rows = np.array(list(person_row.values()), dtype=np.int32)
        self.by_ask = sorted(range(len(self.sells)), key=lambda i: self.sells[i].price)
        self.by_bid = sorted(range(len(self.buys)), key=lambda j: self.buys[j].price)
        self.offered = offered

    def usable(self, sells: Indexes, buys: Indexes) -> npt.NDArray[np.float64]:
        """gain[b, s] = bid - ask for the given buys (rows) and sells (columns), -inf where they may not trade
        at a profit (ask >= bid or the same participant)."""
        gain = self.bid[buys, None] - self.ask[None, sells]
        return np.where((gain > 0) & (self.buy_owner[buys, None] != self.sell_owner[None, sells]), gain, -np.inf)

    def best_partner_of_every_order(self) -> list[Pair]:
        """Each order's pair with the largest gain (the cheapest ask for a buy, the dearest bid for a sell) among
        the counter-orders of other participants, where that gain is positive."""
        pairs = best_partners(self.sells, self.buys, list(self.ask), list(self.bid), self.by_ask, self.by_bid)
        return [(i, j) for i, j in pairs if self.bid[j] > self.ask[i]]


class _MaxminProgramme:
    """One stage's restricted programme.

    Rows: order capacities; per participant i, t - profit_i / offered_i <= 0 (stage 2: -profit_i / offered_i
    <= -t1, no t at all). Stage 1 holds t as a chain t_0 = t_1 = ... (one t_k per participant row, maximising
    their sum, i.e. P t): a single t column would have a nonzero in every participant row, and that dense column
    makes every simplex iteration several times dearer. Columns after the t's: the pairs.
    """

    def __init__(self, market: _MaxminMarket, stage_two: bool, worst_off_at_least: float = 0.0):
        self.market = market
        self.stage_two = stage_two
        self.columns: list[Column] = []
        self.known: set[Column] = set()
        m = market
        people = len(m.people)
        self.highs = new_highs()
        self.highs.changeObjectiveSense(highspy.ObjSense.kMaximize)
        chain = 0 if stage_two else people - 1
        rows = len(m.capacities) + people + chain
        fair_share = np.full(people, -worst_off_at_least if stage_two else 0.0)
        upper = np.concatenate([m.capacities, fair_share, np.zeros(chain)])
        lower = np.concatenate([np.full(len(m.capacities) + people, -INF), np.zeros(chain)])
        self.highs.addRows(
            rows, lower, upper, 0, np.zeros(rows, dtype=np.int32), np.array([], dtype=np.int32), np.array([])
        )
        self.t_columns = 0 if stage_two else people
        if not stage_two:
            first_chain_row = len(m.capacities) + people
            index: list[int] = []
            value: list[float] = []
            start: list[int] = []
            for k in range(people):
                start.append(len(index))
                index.append(m.person_rows[k])
                value.append(1.0)
                if k < people - 1:
                    index.append(first_chain_row + k)  # t_k - t_{k+1} = 0
                    value.append(1.0)
                if k > 0:
                    index.append(first_chain_row + k - 1)
                    value.append(-1.0)
            self.highs.addCols(
                people,
                np.ones(people),
                np.full(people, -INF),
                np.full(people, INF),
                len(index),
                np.array(start, dtype=np.int32),
                np.array(index, dtype=np.int32),
                np.array(value),
            )

    def add(self, pairs: list[Pair]) -> int:
        """Add both ways of sharing each pair's surplus: xS (to the seller, price = bid), xB (to the buyer)."""
        return self._add([(s, b, to_seller) for s, b in pairs for to_seller in (True, False)])

    def _add(self, candidates: list[Column]) -> int:
        m = self.market
        fresh = sorted({c for c in candidates if c not in self.known})
        if not fresh:
            return 0
        self.known.update(fresh)
        self.columns.extend(fresh)
        s_idx = np.array([c[0] for c in fresh])
        b_idx = np.array([c[1] for c in fresh])
        to_seller = np.array([c[2] for c in fresh])
        gain = m.bid[b_idx] - m.ask[s_idx]
        person = np.where(to_seller, m.sell_row[s_idx], m.buy_row[b_idx])
        share = np.where(to_seller, m.sell_share[s_idx], m.buy_share[b_idx])
        index = np.stack([s_idx, len(m.sells) + b_idx, person], axis=1).ravel().astype(np.int32)
        value = np.stack([np.ones(len(fresh)), np.ones(len(fresh)), -gain * share], axis=1).ravel()
        cost = gain if self.stage_two else np.zeros(len(fresh))
        self.highs.addCols(
            len(fresh),
            cost,
            np.zeros(len(fresh)),
            np.full(len(fresh), INF),
            len(index),
            np.arange(0, len(index), 3, dtype=np.int32),
            index,
            value,
        )
        return len(fresh)

    def generate(self) -> None:
        """Solve, add entering pairs, repeat until none prices out: then optimal over every pair.

        The first solve is from scratch (presolve, dual simplex); after adding columns the basis stays primal
        feasible, so primal simplex without presolve carries on from it in a few iterations where dual simplex
        would start over."""
        self.highs.setOptionValue("presolve", "on")
        self.highs.setOptionValue("simplex_strategy", 1)
        while True:
            run_to_optimum(self.highs, "the maxmin programme")
            self.highs.setOptionValue("presolve", "off")
            self.highs.setOptionValue("simplex_strategy", 4)
            if not self._add(self._entering()):
                return

    def _entering(self) -> list[Column]:
        """Pairs with a positive reduced cost gain (base + g) - alpha_s - beta_b, where g = gamma_i / offered_i of
        the participant credited with the surplus and base = 1 in stage 2 (0 in stage 1).

        Where g = 0 (most participants: their fairness row is slack), that is welfare's reduced cost, priced
        with the O(n) sweep; only the orders of participants with g > 0 are priced against every counter-order.
        """
        m = self.market
        duals = np.asarray(self.highs.getSolution().row_dual)
        alpha = duals[: len(m.sells)]
        beta = duals[len(m.sells) : len(m.sells) + len(m.buys)]
        sell_weight = np.where(m.sell_row >= 0, duals[m.sell_row] * m.sell_share, 0.0)
        buy_weight = np.where(m.buy_row >= 0, duals[m.buy_row] * m.buy_share, 0.0)
        base = 1.0 if self.stage_two else 0.0
        entering: list[tuple[float, int, int, bool]] = []  # (reduced cost, *column)
        weighted_sells = np.nonzero(sell_weight > 0)[0]
        weighted_buys = np.nonzero(buy_weight > 0)[0]
        everyone_s = np.arange(len(m.sells))
        everyone_b = np.arange(len(m.buys))
        for first in range(0, len(weighted_sells), PRICING_CHUNK):
            sells = weighted_sells[first : first + PRICING_CHUNK]
            reduced = (
                m.usable(sells, everyone_b) * (base + sell_weight[None, sells]) - alpha[None, sells] - beta[:, None]
            ).T
            entering += [(value, int(sells[r]), b, True) for value, b, r in _positive_top_per_row(reduced)]
        for first in range(0, len(weighted_buys), PRICING_CHUNK):
            buys = weighted_buys[first : first + PRICING_CHUNK]
            reduced = m.usable(everyone_s, buys) * (base + buy_weight[buys, None]) - alpha[None, :] - beta[buys, None]
            entering += [(value, s, int(buys[r]), False) for value, s, r in _positive_top_per_row(reduced)]
        if self.stage_two:
            key_sell = list(alpha + m.ask)
            key_buy = list(m.bid - beta)
            for to_seller in (True, False):
                by_ask = [i for i in m.by_ask if not (to_seller and sell_weight[i] > 0)]
                by_bid = [j for j in m.by_bid if to_seller or buy_weight[j] <= 0]
                pairs = best_partners(m.sells, m.buys, key_sell, key_buy, by_ask, by_bid)
                entering += [
                    (key_buy[j] - key_sell[i], i, j, to_seller)
                    for i, j in pairs
                    if m.bid[j] > m.ask[i] and key_buy[j] - key_sell[i] > ENTERING_TOLERANCE
                ]
        # Entering everything at once can bloat the programme many times over when most participants are at the
        # worst-off level; the most promising ones, a few per order, keep each round's solve quick.
        entering.sort(key=lambda candidate: -candidate[0])
        return [candidate[1:] for candidate in entering[: ENTERING_PER_ROUND * (len(m.sells) + len(m.buys))]]

    def t(self) -> float:
        return float(self.highs.getSolution().col_value[0])

    def used_pairs(self) -> list[Pair]:
        values = np.asarray(self.highs.getSolution().col_value)[self.t_columns :]
        return sorted({(s, b) for (s, b, _), v in zip(self.columns, values, strict=True) if v > 0})

    def solution(self, t1: float) -> LpSolution:
        m = self.market
        values = np.asarray(self.highs.getSolution().col_value)[self.t_columns :]
        flows: dict[tuple[str, str], float] = {}
        payments: dict[tuple[str, str], float] = {}
        surplus = 0.0
        for (s, b, to_seller), kwh in zip(self.columns, values, strict=True):
            if kwh <= 0:
                continue
            pair = (m.sells[s].id, m.buys[b].id)
            flows[pair] = flows.get(pair, 0.0) + kwh * WH_PER_KWH
            price = m.bid[b] if to_seller else m.ask[s]
            payments[pair] = payments.get(pair, 0.0) + kwh * price * MILLISEN_PER_YEN
            surplus += (m.bid[b] - m.ask[s]) * kwh
        return LpSolution(flows=flows, bound=t1, surplus=surplus, payments=payments)


def _positive_top_per_row(reduced: npt.NDArray[np.float64]) -> list[tuple[float, int, int]]:
    """(value, column, row) of each row's ENTERING_PER_ORDER largest values above ENTERING_TOLERANCE."""
    count = min(ENTERING_PER_ORDER, reduced.shape[1])
    if not count:
        return []
    rows = np.nonzero(reduced.max(axis=1, initial=-np.inf) > ENTERING_TOLERANCE)[0]
    if len(rows) == 0:
        return []
    candidates = reduced[rows]  # most rows price out nothing: partition only the others
    top = np.argpartition(candidates, -count, axis=1)[:, -count:]
    chosen = np.take_along_axis(candidates, top, axis=1)
    positive = zip(*np.nonzero(chosen > ENTERING_TOLERANCE), strict=True)
    return [(float(chosen[r, k]), int(top[r, k]), int(rows[r])) for r, k in positive]
