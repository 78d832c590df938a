"""History simulator: 30-minute smart-meter values of simulated consumers for the weeks before a day, posted to the
ledger through their RAs, each consumer's days signed by its meter (clients.dr_units); what the settlement by Japan's
rules needs for kWh-type baselines, and what `gridledger dr history simulate` and the settlement bench post.

Load model: the same consumers as sim.meters.MeterFleet (base load, JST hourly shape), per 30-minute slot its
expected Wh × a day factor (weekends and holidays 0.85: homes and shops run differently; each day ±5 %) × ±3 %
noise per slot, whole Wh; seeded per consumer and day, so a run repeats exactly.
"""

import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

from chaincode.contracts.baselines import day_start, day_type, japanese_holidays
from clients.dr_units import HistoryDay, UnitsClient, history_batches
from sim.meters import MeterFleet, SimulatedConsumer

SLOT_MINUTES = 30
SLOTS = 48
DAY_NOISE = 0.05
SLOT_NOISE = 0.03
HOLIDAY_FACTOR = 0.85


def day_values(consumer: SimulatedConsumer, day: date, holiday: bool, seed: int = 0) -> tuple[int, ...]:
    """One consumer's 48 30-minute Wh values of `day`."""
    draw = random.Random(f"{seed}:{consumer.id}:{day.isoformat()}")
    factor = (HOLIDAY_FACTOR if holiday else 1.0) * (1 + draw.uniform(-DAY_NOISE, DAY_NOISE))
    start = day_start(day)
    values = []
    for slot in range(SLOTS):
        expected = consumer.expected_load_wh(start + slot * SLOT_MINUTES) * SLOT_MINUTES
        values.append(max(0, round(expected * factor * (1 + draw.gauss(0.0, SLOT_NOISE)))))
    return tuple(values)


def fleet_history(fleet: MeterFleet, before: date, days: int = 35) -> list[HistoryDay]:
    """Every consumer's history for the `days` days before `before` (not including it), oldest first."""
    span = [before - timedelta(days=back) for back in range(days, 0, -1)]
    calendar = japanese_holidays({d.year for d in span})
    kinds = {d: day_type(d, calendar) != "weekday" for d in span}
    return [
        HistoryDay(c.ra, c.id, d.isoformat(), day_values(c, d, kinds[d], fleet.seed))
        for c in fleet.consumers
        for d in span
    ]


def post_history(
    client_for: Callable[[str], UnitsClient],
    days: Iterable[HistoryDay],
    batch_days: int = 700,
    workers: int = 4,
) -> dict:
    """Posts the history in batches of whole consumers (at most `batch_days` consumer-days each), `workers` at a
    time, each through its RA's client (`client_for(ra)`, one with `meters`, so that each consumer's days carry its
    meter's signature). Raises the first failure; returns how many days, transactions and seconds."""
    batches = list(history_batches(days, batch_days))
    posted = [0]
    lock = threading.Lock()
    began = time.monotonic()

    def post(batch: list[HistoryDay]) -> None:
        client_for(batch[0].ra).post_history(batch)
        with lock:
            posted[0] += len(batch)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(post, batch) for batch in batches]:
            future.result()
    seconds = time.monotonic() - began
    return {
        "days": posted[0],
        "transactions": len(batches),
        "seconds": round(seconds, 2),
        "days_per_second": round(posted[0] / seconds, 1) if seconds else None,
    }
