"""Volume's fast path: a gate's maximum flow in exact integers (pure Python), its minimum cut the certificate.

Why it reaches models.py's optimum: the volume programme (max sum x[s, b] over compatible pairs within the
capacity rows) is a bipartite maximum flow, source -> sell (qty[s]) -> compatible buy (no limit) -> sink
(qty[b]). max_volume stops only when no augmenting path is left, and then the flow is maximum (max-flow
min-cut). The cut is also a whole-number optimum of the programme's dual: u[s] = 1 for the sells the last search
did not reach, v[b] = 1 for the buys it reached. A reached sell reaches every compatible buy, so u[s] + v[b] >= 1
for every pair; unreached sells are full and reached buys have no room left and are fed by reached sells only,
so sum qty u + sum qty v is exactly the volume. That is the certificate verify.py checks.

Why not column generation like welfare: volume's dual is so degenerate that it crawls.
"""

from __future__ import annotations

import bisect
import heapq
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple

from consortium.units import MILLISEN_PER_YEN, WH_PER_KWH
from solver.orders import Order
from solver.relaxation import LpSolution


def max_volume(orders: Sequence[Order]) -> LpSolution:
    """Volume as a maximum flow: greedy, then augmenting paths, then the minimum cut as certificate.

    Greedy: buys by ascending bid take from the sells whose ask they meet (another participant's). Without
    participants on both sides that is already optimal (every sell a buy can use, every later, higher bid can
    use too); otherwise augmenting paths fix it: breadth-first from sells with Wh left, forward to any
    compatible buy, back from a buy to the sells already feeding it, until a buy with room is reached, and the
    path's flow is shifted by its bottleneck.
    """
    sells = [o for o in orders if o.is_sell]
    buys = [o for o in orders if not o.is_sell]
    flow: dict[tuple[int, int], int] = {}  # Wh
    feeding: list[dict[int, int]] = [{} for _ in buys]  # per buy: {sell index: Wh}
    left_s = [s.quantity for s in sells]
    left_b = [b.quantity for b in buys]
    by_ask = sorted(range(len(sells)), key=lambda i: (sells[i].price, i))
    by_bid = sorted(range(len(buys)), key=lambda j: (buys[j].price, j))
    bids = [buys[j].price for j in by_bid]

    def shift(i: int, j: int, wh: int) -> None:
        flow[i, j] = flow.get((i, j), 0) + wh
        feeding[j][i] = feeding[j].get(i, 0) + wh
        if flow[i, j] == 0:
            del flow[i, j]
            del feeding[j][i]

    available: list[tuple[int, int]] = []  # heap of (ask, sell index) the current bid meets
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
        reach = _search(sells, buys, left_s, left_b, feeding, by_bid, bids)
        end = reach.end
        if end is None:
            break
        path = []  # forward edges (i, j) on the path; the backward ones are (next i, previous j)
        j = end
        while True:
            i = reach.came_from_b[j]
            path.append((i, j))
            if reach.came_from_s[i] < 0:
                break
            j = reach.came_from_s[i]
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
        sell_duals={s.id: 0.0 if reach.reached_s[i] else 1.0 for i, s in enumerate(sells)},
        buy_duals={b.id: 1.0 if reach.reached_b[j] else 0.0 for j, b in enumerate(buys)},
    )


class _Reach(NamedTuple):
    """What a search of the residual graph reached, and from where. end: the buy with room an augmenting path
    ends at, or None when there is none: then reached_s and reached_b are the minimum cut."""

    reached_s: list[bool]
    reached_b: list[bool]
    came_from_s: list[int]  # sell index -> the buy it was reached back from (-1: a sell with Wh left)
    came_from_b: list[int]  # buy index -> the sell it was reached from
    end: int | None


def _search(
    sells: Sequence[Order],
    buys: Sequence[Order],
    left_s: Sequence[int],
    left_b: Sequence[int],
    feeding: Sequence[dict[int, int]],
    by_bid: Sequence[int],
    bids: Sequence[int],
) -> _Reach:
    """Breadth-first search of the residual graph from the sells with Wh left; stops at a buy with room."""
    reach = _Reach([False] * len(sells), [False] * len(buys), [-1] * len(sells), [-1] * len(buys), None)
    # next_open[k]: the first position >= k in by_bid whose buy is not reached yet (path-halving skip list)
    next_open = list(range(len(by_bid) + 1))

    def first_open(k: int) -> int:
        while next_open[k] != k:
            next_open[k] = next_open[next_open[k]]
            k = next_open[k]
        return k

    queue = deque(i for i in range(len(sells)) if left_s[i])
    for i in queue:
        reach.reached_s[i] = True
    while queue:
        i = queue.popleft()
        k = first_open(bisect.bisect_left(bids, sells[i].price))
        while k < len(by_bid):
            j = by_bid[k]
            if buys[j].participant == sells[i].participant:
                k = first_open(k + 1)
                continue
            reach.reached_b[j] = True
            reach.came_from_b[j] = i
            next_open[k] = k + 1
            if left_b[j]:
                return reach._replace(end=j)
            for back in feeding[j]:
                if not reach.reached_s[back]:
                    reach.reached_s[back] = True
                    reach.came_from_s[back] = j
                    queue.append(back)
            k = first_open(k + 1)
    return reach
