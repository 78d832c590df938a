"""The fast path: the optimum of models.py's programmes without building all O(n^2) pairs.

Every method below ends with a proof that its answer is optimal for the full programme of models.py; the
tests check the values agree on random gates.

welfare: column generation over pairs (HiGHS through highspy)
--------------------------------------------------------------
An optimum uses about n pairs (one per basic variable), not n^2. The programme starts with the pairs of the
merit-order crossing (cheapest asks against dearest bids); after each solve it adds, for every buy and every
sell, the compatible pair with the largest reduced cost (bid - ask) - u[s] - v[b] (u, v the capacity duals),
until no pair anywhere has a positive one. That search takes O(n) per round, not O(n^2): compatibility is
"ask <= bid and another participant", so sweeping buys by bid while sells join by ask, a buy's best partner is
the smallest u[s] + ask[s] seen so far, or the second smallest if that is the buy's own participant's. When no
pair prices out, (u, v) is feasible for the dual of the full programme and equal in value to the restricted
optimum, so by LP duality the restricted optimum is the full one. The programme is a bipartite transportation
problem (totally unimodular): the simplex optimum is whole Wh with whole duals, the certificate verify.py
checks with the same sweep.

volume: maximum flow (pure Python, exact integers); see max_volume
------------------------------------------------------------------
Volume's dual is so degenerate that column generation crawls; a max-flow algorithm ends with a minimum cut,
which is volume's whole-number certificate.

maxmin: column generation over pairs, two stages
------------------------------------------------
Each pair's trade is split as xS (its surplus goes to the seller: price = bid) plus xB (to the buyer:
price = ask), so pay = bid xS + ask xB and models.py's payment rows disappear; any price in [ask, bid] is such a
mix. Stage 1 starts from the welfare optimum's pairs plus every order's best partner by gain; the reduced cost
of a pair is gain (base + gamma_i / offered_i) - alpha_s - beta_b, with gamma_i the dual of the fairness row of
the participant credited, base 0 in stage 1 and 1 in stage 2. Where gamma_i = 0 (most participants) that is
welfare's reduced cost and the O(n) sweep prices it; only orders of participants with gamma_i > 0 are priced
against every counter-order, with numpy. No positive reduced cost left means optimal over all pairs (LP
duality), i.e. models.py's optimum, stage by stage.
"""

from __future__ import annotations

import bisect
import heapq
from collections import deque

import highspy
import numpy as np

from consortium.units import MILLISEN_PER_YEN, SEN_PER_YEN, WH_PER_KWH
from solver.orders import LowestOfOthers
from solver.proposals import eligible_offers
from solver.relaxation import STAGE_TWO_SLACK, LpSolution, native_stdout_silenced

INF = highspy.kHighsInf
# A Wh amount this close to a whole number is that number (HiGHS's feasibility tolerance is 1e-7 kWh = 1e-4 Wh).
WHOLE_WH_TOLERANCE = 1e-3
# Reduced cost above which a pair still improves a programme (HiGHS's dual feasibility tolerance is 1e-7).
ENTERING_TOLERANCE = 1e-6
# Buys (or sells) priced against all counter-orders at once: 256 x 5000 doubles is about 10 MB per array.
PRICING_CHUNK = 256
# Entering pairs per order and round for the orders maxmin prices by brute force, and at most this many per
# order in all per round (measured: fewer means more rounds, more means slower rounds).
ENTERING_PER_ORDER = 20
ENTERING_PER_ROUND = 2


def new_highs() -> highspy.Highs:
    with native_stdout_silenced():
        highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("solver", "simplex")  # a basic solution: whole flows and duals (module docstring)
    return highs


def _run(highs: highspy.Highs, what: str) -> None:
    highs.run()
    status = highs.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"HiGHS did not find an optimum for {what}: {highs.modelStatusToString(status)}")


def _pair_lp(sells, buys) -> highspy.Highs:
    """A maximising programme with the capacity rows of models.py (sells, then buys, kWh) and no columns yet."""
    highs = new_highs()
    highs.changeObjectiveSense(highspy.ObjSense.kMaximize)
    capacities = np.array([o.quantity / WH_PER_KWH for o in sells + buys])
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


def _add_pair_columns(highs, pairs, costs, n_sells) -> None:
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


def merit_order_pairs(sells, buys) -> list:
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


def _best_partners(sells, buys, key_sell, key_buy, by_ask, by_bid):
    """For each buy the compatible sell with the smallest key_sell, and for each sell the compatible buy with the
    largest key_buy (compatible: ask <= bid, another participant). Two sweeps over prices, O(n)."""
    for_buy = {}
    lowest = LowestOfOthers()
    i = 0
    for j in by_bid:
        while i < len(by_ask) and sells[by_ask[i]].price <= buys[j].price:
            lowest.add(key_sell[by_ask[i]], by_ask[i], sells[by_ask[i]].participant)
            i += 1
        found = lowest.lowest_not_of(buys[j].participant)
        if found is not None:
            for_buy[j] = found
    for_sell = {}
    highest = LowestOfOthers()
    j = len(by_bid) - 1
    for i in reversed(by_ask):
        while j >= 0 and buys[by_bid[j]].price >= sells[i].price:
            highest.add(-key_buy[by_bid[j]], by_bid[j], buys[by_bid[j]].participant)
            j -= 1
        found = highest.lowest_not_of(sells[i].participant)
        if found is not None:
            for_sell[i] = found
    return for_buy, for_sell


def welfare_relaxation(orders) -> LpSolution:
    """Welfare by column generation over pairs (module docstring)."""
    sells = [o for o in orders if o.is_sell]
    buys = [o for o in orders if not o.is_sell]
    ask = [s.price / SEN_PER_YEN for s in sells]
    bid = [b.price / SEN_PER_YEN for b in buys]
    highs = _pair_lp(sells, buys)
    columns = []
    known = set()

    def add(pairs):
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
        key_sell = [u + a for u, a in zip(duals[: len(sells)], ask)]
        key_buy = [b - v for b, v in zip(bid, duals[len(sells) :])]
        for_buy, for_sell = _best_partners(sells, buys, key_sell, key_buy, by_ask, by_bid)
        pairs = [(i, j) for j, i in for_buy.items()] + list(for_sell.items())
        entering += [(i, j) for i, j in pairs if key_buy[j] - key_sell[i] > ENTERING_TOLERANCE]
        if not add(entering):
            break
        _run(highs, "the welfare programme")
        duals = np.asarray(highs.getSolution().row_dual)
        entering = []

    if not columns:
        return LpSolution(flows={}, bound=0.0, surplus=0.0)
    value = np.asarray(highs.getSolution().col_value) * WH_PER_KWH
    flows = {(sells[i].id, buys[j].id): wh for (i, j), wh in zip(columns, value) if wh > WHOLE_WH_TOLERANCE}
    return LpSolution(
        flows=flows,
        bound=highs.getInfo().objective_function_value,
        surplus=highs.getInfo().objective_function_value,
        # duals are yen per kWh; the certificate is in sen per kWh (millisen per Wh)
        sell_duals={s.id: duals[r] * SEN_PER_YEN for r, s in enumerate(sells)},
        buy_duals={b.id: duals[len(sells) + r] * SEN_PER_YEN for r, b in enumerate(buys)},
    )


def max_volume(orders) -> LpSolution:
    """Volume as a maximum flow: greedy, then augmenting paths, then the minimum cut as certificate.

    Greedy: buys by ascending bid take from the sells whose ask they meet (another participant's). Without
    participants on both sides that is already optimal (every sell a buy can use, every later, higher bid can
    use too); otherwise augmenting paths fix it: breadth-first from sells with Wh left, forward to any
    compatible buy, back from a buy to the sells already feeding it, until a buy with room is reached, and the
    path's flow is shifted by its bottleneck. When no path exists the flow is maximum (max-flow min-cut), and
    the sells not reached (u = 1) with the buys reached (v = 1) cover every compatible pair and weigh exactly
    the volume: the whole-number dual certificate.
    """
    sells = [o for o in orders if o.is_sell]
    buys = [o for o in orders if not o.is_sell]
    flow = {}  # (sell index, buy index) -> Wh
    feeding = [dict() for _ in buys]  # buy index -> {sell index: Wh}
    left_s = [s.quantity for s in sells]
    left_b = [b.quantity for b in buys]
    by_ask = sorted(range(len(sells)), key=lambda i: (sells[i].price, i))
    by_bid = sorted(range(len(buys)), key=lambda j: (buys[j].price, j))
    bids = [buys[j].price for j in by_bid]

    def shift(i, j, wh):
        flow[i, j] = flow.get((i, j), 0) + wh
        feeding[j][i] = feeding[j].get(i, 0) + wh
        if flow[i, j] == 0:
            del flow[i, j]
            del feeding[j][i]

    available = []  # heap of (ask, sell index) the current bid meets
    joined = 0
    for j in by_bid:
        while joined < len(by_ask) and sells[by_ask[joined]].price <= buys[j].price:
            heapq.heappush(available, (sells[by_ask[joined]].price, by_ask[joined]))
            joined += 1
        passed_over = []
        while left_b[j] and available:
            entry = heapq.heappop(available)
            i = entry[1]
            if sells[i].participant == buys[j].participant:
                passed_over.append(entry)
                continue
            wh = min(left_s[i], left_b[j])
            shift(i, j, wh)
            left_s[i] -= wh
            left_b[j] -= wh
            if left_s[i]:
                heapq.heappush(available, entry)
        for entry in passed_over:
            heapq.heappush(available, entry)

    while True:
        reached_s, reached_b, came_from_s, came_from_b, end = _search(
            sells, buys, left_s, left_b, feeding, by_bid, bids
        )
        if end is None:
            break
        path = []  # forward edges (i, j) on the path; the backward ones are (next i, previous j)
        j = end
        while True:
            i = came_from_b[j]
            path.append((i, j))
            if came_from_s[i] < 0:
                break
            j = came_from_s[i]
        start = path[-1][0]
        bottleneck = min(left_s[start], left_b[end])
        for k in range(len(path) - 1):
            bottleneck = min(bottleneck, flow[path[k][0], path[k + 1][1]])
        for k, (i, j) in enumerate(path):
            shift(i, j, bottleneck)
            if k + 1 < len(path):
                shift(i, path[k + 1][1], -bottleneck)
        left_s[start] -= bottleneck
        left_b[end] -= bottleneck

    volume = sum(flow.values())
    return LpSolution(
        flows={(sells[i].id, buys[j].id): float(wh) for (i, j), wh in flow.items()},
        bound=volume / WH_PER_KWH,
        surplus=sum((buys[j].price - sells[i].price) * wh for (i, j), wh in flow.items()) / MILLISEN_PER_YEN,
        sell_duals={s.id: 0.0 if reached_s[i] else 1.0 for i, s in enumerate(sells)},
        buy_duals={b.id: 1.0 if reached_b[j] else 0.0 for j, b in enumerate(buys)},
    )


def _search(sells, buys, left_s, left_b, feeding, by_bid, bids):
    """Breadth-first search of the residual graph from the sells with Wh left; stops at a buy with room."""
    reached_s = [False] * len(sells)
    reached_b = [False] * len(buys)
    came_from_s = [-1] * len(sells)
    came_from_b = [-1] * len(buys)
    # next_open[k]: the first position >= k in by_bid whose buy is not reached yet (path-halving skip list)
    next_open = list(range(len(by_bid) + 1))

    def first_open(k):
        while next_open[k] != k:
            next_open[k] = next_open[next_open[k]]
            k = next_open[k]
        return k

    queue = deque(i for i in range(len(sells)) if left_s[i])
    for i in queue:
        reached_s[i] = True
    while queue:
        i = queue.popleft()
        k = first_open(bisect.bisect_left(bids, sells[i].price))
        while k < len(by_bid):
            j = by_bid[k]
            if buys[j].participant == sells[i].participant:
                k = first_open(k + 1)
                continue
            reached_b[j] = True
            came_from_b[j] = i
            next_open[k] = k + 1
            if left_b[j]:
                return reached_s, reached_b, came_from_s, came_from_b, j
            for back in feeding[j]:
                if not reached_s[back]:
                    reached_s[back] = True
                    came_from_s[back] = j
                    queue.append(back)
            k = first_open(k + 1)
    return reached_s, reached_b, came_from_s, came_from_b, None


def maxmin_relaxation(orders) -> LpSolution:
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

    def __init__(self, orders, offered):
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
        self.capacities = np.array([o.quantity / WH_PER_KWH for o in self.sells + self.buys])
        self.person_rows = np.array(list(person_row.values()), dtype=np.int32)
        self.by_ask = sorted(range(len(self.sells)), key=lambda i: self.sells[i].price)
        self.by_bid = sorted(range(len(self.buys)), key=lambda j: self.buys[j].price)
        self.offered = offered

    def usable(self, sells, buys):
        """gain[b, s] = bid - ask for the given buys (rows) and sells (columns), -inf where they may not trade
        at a profit (ask >= bid or the same participant)."""
        gain = self.bid[buys, None] - self.ask[None, sells]
        return np.where((gain > 0) & (self.buy_owner[buys, None] != self.sell_owner[None, sells]), gain, -np.inf)

    def best_partner_of_every_order(self) -> list:
        """Each order's pair with the largest gain (the cheapest ask for a buy, the dearest bid for a sell) among
        the counter-orders of other participants, where that gain is positive."""
        for_buy, for_sell = _best_partners(
            self.sells, self.buys, list(self.ask), list(self.bid), self.by_ask, self.by_bid
        )
        pairs = [(i, j) for j, i in for_buy.items()] + list(for_sell.items())
        return [(i, j) for i, j in pairs if self.bid[j] > self.ask[i]]


class _MaxminProgramme:
    """One stage's restricted programme.

    Rows: order capacities; per participant i, t - profit_i / offered_i <= 0 (stage 2: -profit_i / offered_i
    <= -t1, no t at all). Stage 1 holds t as a chain t_0 = t_1 = ... (one t_k per participant row, maximising
    their sum, i.e. P t): a single t column would have a nonzero in every participant row, and that dense column
    makes every simplex iteration several times dearer. Columns after the t's: the pairs.
    """

    def __init__(self, market, stage_two, worst_off_at_least=0.0):
        self.market = market
        self.stage_two = stage_two
        self.columns = []  # (sell index, buy index, surplus to the seller?)
        self.known = set()
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
            index, value, start = [], [], []
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

    def add(self, pairs) -> int:
        """Add both ways of sharing each pair's surplus: xS (to the seller, price = bid), xB (to the buyer)."""
        return self._add([(s, b, to_seller) for s, b in pairs for to_seller in (True, False)])

    def _add(self, candidates) -> int:
        m = self.market
        fresh = sorted(set(c for c in candidates if c not in self.known))
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
            _run(self.highs, "the maxmin programme")
            self.highs.setOptionValue("presolve", "off")
            self.highs.setOptionValue("simplex_strategy", 4)
            if not self._add(self._entering()):
                return

    def _entering(self) -> list:
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
        entering = []
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
                for_buy, for_sell = _best_partners(m.sells, m.buys, key_sell, key_buy, by_ask, by_bid)
                pairs = [(i, j) for j, i in for_buy.items()] + list(for_sell.items())
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

    def used_pairs(self) -> list:
        values = np.asarray(self.highs.getSolution().col_value)[self.t_columns :]
        return sorted({(s, b) for (s, b, _), v in zip(self.columns, values) if v > 0})

    def solution(self, t1) -> LpSolution:
        m = self.market
        values = np.asarray(self.highs.getSolution().col_value)[self.t_columns :]
        flows, payments = {}, {}
        surplus = 0.0
        for (s, b, to_seller), kwh in zip(self.columns, values):
            if kwh <= 0:
                continue
            pair = (m.sells[s].id, m.buys[b].id)
            flows[pair] = flows.get(pair, 0.0) + kwh * WH_PER_KWH
            price = m.bid[b] if to_seller else m.ask[s]
            payments[pair] = payments.get(pair, 0.0) + kwh * price * MILLISEN_PER_YEN
            surplus += (m.bid[b] - m.ask[s]) * kwh
        return LpSolution(flows=flows, bound=t1, surplus=surplus, payments=payments)


def _positive_top_per_row(reduced) -> list:
    """(value, column, row) of each row's ENTERING_PER_ORDER largest values above ENTERING_TOLERANCE."""
    count = min(ENTERING_PER_ORDER, reduced.shape[1])
    rows = np.nonzero(reduced.max(axis=1, initial=-np.inf) > ENTERING_TOLERANCE)[0] if count else []
    if len(rows) == 0:
        return []
    candidates = reduced[rows]  # most rows price out nothing: partition only the others
    top = np.argpartition(candidates, -count, axis=1)[:, -count:]
    chosen = np.take_along_axis(candidates, top, axis=1)
    positive = zip(*np.nonzero(chosen > ENTERING_TOLERANCE))
    return [(float(chosen[r, k]), int(top[r, k]), int(rows[r])) for r, k in positive]
