"""Smart-meter simulator: per-minute consumption of many consumers, reduced during DR command windows, posted to
the ledger through DR clients (clients.dr), by each configured meter under its own identity or in batches by the RA,
each consumer's readings of a batch signed by its meter (the RA's client signs with the meters its `meters` holds,
network.crypto.MeterOperator: the meter operator's, not the RA's).

Load model (seeded, so a run can be repeated exactly): each consumer has a base load between 0.3 and 3 kW (homes
to small shops), shaped by the hour of the day in JST (a night trough, morning and evening peaks), with ±8 %
noise per minute; during a command window it consumes `response` (10–40 %) less. Readings are whole Wh.
The randomness is in the simulator only; what reaches the ledger is integers.

Live meters (post_live): a meter reports a minute once it has ended, and the endorsers refuse a reading for a
minute not yet ended (chaincode.contracts.dr_time), so readings go out minute by minute, each minute's as soon as
it ends; minutes already over (a command's baseline minutes) go out at once.
"""

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from clients.dr import DrClient, Reading
from consortium.topology import Topology
from consortium.units import EPOCH, WH_PER_KWH, minute_index, minute_label

# Share of the base load per hour of the JST day, 00:00 to 23:00.
HOURLY_SHAPE = (
    0.55,
    0.5,
    0.5,
    0.5,
    0.5,
    0.55,
    0.7,
    0.9,
    0.85,
    0.75,
    0.7,
    0.7,
    0.75,
    0.7,
    0.7,
    0.75,
    0.85,
    1.0,
    1.15,
    1.2,
    1.1,
    0.95,
    0.8,
    0.65,
)
WH_PER_KW_MINUTE = WH_PER_KWH / 60
NOISE = 0.08


@dataclass(frozen=True)
class SimulatedConsumer:
    id: str
    ra: str
    base_kw: float
    response: float  # share of the load shed during a DR window

    def expected_load_wh(self, minute: int) -> float:
        hour = int(minute_label(minute)[11:13])
        return self.base_kw * HOURLY_SHAPE[hour] * WH_PER_KW_MINUTE


class MeterFleet:
    """The consumers being simulated and the readings their meters produce."""

    def __init__(self, consumers: list[SimulatedConsumer], seed: int = 0):
        self.consumers = consumers
        self.seed = seed

    @classmethod
    def for_topology(cls, topology: Topology, count: int, seed: int = 0) -> "MeterFleet":
        """`count` consumers: the topology's own (which have meter identities) first, C1, C2, … so that three
        give seed figure 7's one per RA; then synthetic ones ("RA1-S00001") spread over the RAs in turn."""
        ras = [org for org in topology.organisations if org.role == "ra"]
        configured = sorted(((c, org.name) for org in ras for c in org.consumers), key=lambda pair: _natural(pair[0]))
        chosen = configured[:count]
        for n in range(count - len(chosen)):
            ra = ras[n % len(ras)].name
            chosen.append((f"{ra}-S{n // len(ras) + 1:05d}", ra))
        consumers = []
        for consumer, ra in chosen:
            draw = random.Random(f"{seed}:{consumer}")
            consumers.append(
                SimulatedConsumer(consumer, ra, round(draw.uniform(0.3, 3.0), 3), round(draw.uniform(0.1, 0.4), 3))
            )
        return cls(consumers, seed)

    def by_ra(self) -> dict[str, list[SimulatedConsumer]]:
        grouped: dict[str, list[SimulatedConsumer]] = {}
        for consumer in self.consumers:
            grouped.setdefault(consumer.ra, []).append(consumer)
        return grouped

    def reading(self, consumer: SimulatedConsumer, minute: int, in_window: bool) -> Reading:
        noise = random.Random(f"{self.seed}:{consumer.id}:{minute}").gauss(0.0, NOISE)
        load = consumer.expected_load_wh(minute) * (1 + noise) * ((1 - consumer.response) if in_window else 1)
        return Reading(consumer.ra, consumer.id, minute_label(minute), max(0, round(load)))

    def readings_for(self, command: dict) -> list[Reading]:
        """Every consumer's readings over what the command accepts: its baseline minutes, then its window;
        ordered minute by minute, as meters report."""
        first, last = minute_index(command["start"]), minute_index(command["end"])
        return [
            self.reading(consumer, minute, minute >= first)
            for minute in range(first - command["baseline_minutes"], last + 1)
            for consumer in self.consumers
        ]

    def declaration(self, command: dict, consumers: list[SimulatedConsumer]) -> dict:
        """An RA's declaration for its consumers: the reduction it expects per slot, baseline "mean-before"."""
        first, last = minute_index(command["start"]), minute_index(command["end"])
        g = command["granularity_minutes"]
        slots = range(first, last + 1, g)
        return {
            "baseline_method": "mean-before",
            "consumers": {
                c.id: {
                    "expected_wh": [
                        int(sum(c.expected_load_wh(m) for m in range(s, s + g)) * c.response) for s in slots
                    ]
                }
                for c in consumers
            },
        }


def batches(readings: Iterable[Reading], size: int) -> Iterator[tuple[str, list[Reading]]]:
    """(RA, readings of that RA's consumers), each batch made of whole consumer-hours: the contract keeps a
    consumer's hour under one key, so batches posted at the same time never touch the same key (and never
    conflict). At most `size` readings a batch, unless a single consumer-hour is larger."""
    hours: dict[tuple[str, str, str], list[Reading]] = {}
    for reading in readings:
        hours.setdefault((reading.ra, reading.consumer, reading.minute[:13]), []).append(reading)
    pending: dict[str, list[Reading]] = {}
    for (ra, _, _), hour in hours.items():
        batch = pending.setdefault(ra, [])
        if batch and len(batch) + len(hour) > size:
            yield ra, pending.pop(ra)
            batch = pending.setdefault(ra, [])
        batch.extend(hour)
    for ra, batch in pending.items():
        yield ra, batch


def post_all(
    poster_for: Callable[[Reading], DrClient],
    command_id: str,
    groups: Iterable[list[Reading]],
    workers: int = 4,
    on_posted: Callable[[list[Reading], dict], None] | None = None,
) -> list[dict]:
    """Posts each group of readings as one transaction (DrClient.post_readings, resuming: see there), `workers`
    at a time. `poster_for(first reading)` is the DR client to post it with: an RA's (with `meters`, so that the
    batch carries its meters' signatures), or the meter's own. Raises the first failure."""
    summaries = []
    lock = threading.Lock()

    def post(group: list[Reading]) -> None:
        summary = poster_for(group[0]).post_readings(command_id, group, resume=True)
        with lock:
            summaries.append(summary)
            if on_posted:
                on_posted(group, summary)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(post, group) for group in groups]:
            future.result()
    return summaries


Clock = Callable[[], datetime]
MARGIN_SECONDS = 1.0  # past a minute's end before posting it: the proposal's timestamp is the client's clock


def system_clock() -> datetime:
    return datetime.now(UTC)


def minute_begins(label: str) -> datetime:
    """The moment a JST minute label begins."""
    return EPOCH + timedelta(minutes=minute_index(label))


def wait_until(moment: datetime, clock: Clock, sleep: Callable[[float], None], margin: float = MARGIN_SECONDS) -> None:
    """Sleeps until `margin` seconds after `moment` by `clock`."""
    delay = (moment - clock()).total_seconds() + margin
    if delay > 0:
        sleep(delay)


def post_live(
    readings: list[Reading],
    post_round: Callable[[list[Reading]], None],
    clock: Clock = system_clock,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] | None = None,
) -> int:
    """Posts `readings` as live meters report them: the readings of every minute already ended at once, then each
    minute's as soon as it ends (`post_round(readings)` once per round, minutes in order). Returns the rounds."""
    by_minute: dict[str, list[Reading]] = {}
    for reading in readings:
        by_minute.setdefault(reading.minute, []).append(reading)
    pending = sorted(by_minute)
    rounds = 0
    while pending:
        now = clock()
        ended = [label for label in pending if minute_begins(label) + timedelta(minutes=1) <= now]
        if not ended:
            following = minute_label(minute_index(pending[0]) + 1)
            if log:
                log(f"waiting for minute {pending[0]} JST to end ({following}) to post its readings")
            wait_until(minute_begins(following), clock, sleep)
            continue
        post_round([reading for label in ended for reading in by_minute[label]])
        rounds += 1
        if log:
            shown = ended[0] if len(ended) == 1 else f"{ended[0]} to {ended[-1]}"
            log(f"posted the readings of {shown} JST ({sum(len(by_minute[label]) for label in ended)} readings)")
        pending = pending[len(ended) :]
    return rounds


def _natural(consumer: str) -> tuple:
    digits = "".join(ch for ch in consumer if ch.isdigit())
    return (int(digits) if digits else 0, consumer)
