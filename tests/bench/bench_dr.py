"""Meter readings ingested per second into private data through the real Fabric network, sustained, and the
latency from posting a batch to its readings being visible on the TSO's peer; prints a summary and writes JSON.

    .venv/bin/python tests/bench/bench_dr.py [--seconds 60] [--consumers-per-ra 2000] [--consumers-per-batch 20]
                                            [--workers-per-ra 2] [--out bench-results/dr.json]

Two phases of `--seconds` each: unpaced (the most it takes: throughput), then paced at the target of 1,000
readings/s (latency at the load the system is sized for), after the TSO's peer has caught up with the first.

What is posted: the endorsers hold DR to real time (a reading only once its minute has ended), so the command's
window starts a minute ahead and the readings are of its baseline (tests/bench/baseline_load.py): the whole clock
hours of the 240 minutes before the window, three (or four), 180 readings or more of each consumer, posted with no
wait. `--consumers-per-ra` is sized for the readings never to run out (the run fails, saying so, if they do).

How readings are batched: a transaction carries one hour of readings (60 per consumer) for
`--consumers-per-batch` consumers of one RA: the contract keeps a consumer's hour under one private key, so the
transaction makes two ledger calls per consumer, not two per reading. It is endorsed by the RA's peer and its AC's
(the collection's endorsement policy) and writes only the RA's collection; `--workers-per-ra` such transactions are in flight per RA. Batches share no
consumer-hour and each writes its own aggregate delta key, so none conflicts with another. Latency: for every
`--probe-every`-th batch (every batch when paced), the time from starting its submit until the TSO's peer answers
get_readings with the batch's readings (its peer is the busiest, holding every RA's private data). (Not
get_aggregates, which counts the window's minutes only.) Setup (consumer registration, the command, declarations,
fitting each consumer's meter with its certificate) is not timed.

Brings up its own network (ports at GRIDLEDGER_BENCH_PORT_BASE, default 29100) in a temporary directory and takes
it down afterwards; the load and every wait are bounded in time; everything stays on 127.0.0.1.
"""

import argparse
import json
import sys
import threading
import time
from pathlib import Path

from baseline_load import baseline_hours, load_command, wait_for_baseline
from harness import count_failure, own_network

from consortium.units import minute_label
from network.connections import Sessions
from network.crypto import MeterOperator
from sim.meters import MeterFleet, SimulatedConsumer

TARGET_READINGS_PER_SECOND = 1000
COMMAND_ID = "bench"
LEAD_SECONDS = 60  # to issue the command and declare every RA's consumers before its window starts
PROBE_TIMEOUT_SECONDS = 30.0
DRAIN_SECONDS = 120.0


def percentile(values: list[float], share: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[int(share * (len(ordered) - 1))], 1) if ordered else None


def set_up(
    sessions: Sessions, per_ra: int, meters: MeterOperator
) -> tuple[dict, MeterFleet, dict[str, list[SimulatedConsumer]]]:
    """`per_ra` registered consumers per RA, each with its meter; the command; each RA's declaration of them all."""
    ras = [org.name for org in sessions.topology.organisations if org.role == "ra"]
    by_ra = {
        ra: [SimulatedConsumer(f"{ra}-B{n:05d}", ra, 0.3 + (n % 27) / 10, 0.1 + (n % 4) / 10) for n in range(per_ra)]
        for ra in ras
    }
    fleet = MeterFleet([c for consumers in by_ra.values() for c in consumers], seed=1)
    for ra, consumers in by_ra.items():
        sessions(ra).dr.register_consumers([c.id for c in consumers])
        for consumer in consumers:
            meters.meter(consumer.id)  # its certificate, issued now rather than in the timed load
    command = sessions("TSO").dr.issue(load_command(COMMAND_ID, LEAD_SECONDS))
    for ra, consumers in by_ra.items():
        dr = sessions(ra).dr
        dr.wait_for_command(command["id"])  # the TSO's peer committed the command; the RA's may be a moment behind
        dr.declare(command["id"], fleet.declaration(command, consumers))
    wait_for_baseline(command)
    return command, fleet, by_ra


class Load:
    """The readings to post: each RA works through (consumer group, hour) units in that order, one transaction
    each, its workers taking the next unit as they finish one; phases continue where the last one stopped."""

    def __init__(
        self,
        sessions: Sessions,
        command: dict,
        fleet: MeterFleet,
        by_ra: dict[str, list[SimulatedConsumer]],
        consumers_per_batch: int,
    ):
        self.sessions = sessions
        self.command_id = command["id"]
        self.fleet = fleet
        hours = baseline_hours(command)
        self.units = {}
        for ra, consumers in by_ra.items():
            groups = [consumers[i : i + consumers_per_batch] for i in range(0, len(consumers), consumers_per_batch)]
            self.units[ra] = [(group, hour) for group in groups for hour in hours]
        self.next_unit = {ra: 0 for ra in by_ra}
        self.last_posted: dict[str, tuple[str, str]] = {}  # RA → (consumer, hour) of its latest acknowledged batch
        self.posted = 0
        self.lock = threading.Lock()

    def exhausted(self) -> bool:
        """Whether some RA ran out of readings to post (then a phase stopped short: give more consumers)."""
        return any(self.next_unit[ra] >= len(units) for ra, units in self.units.items())

    def visible(self, consumer: str, hour: str) -> bool:
        """Whether the TSO's peer shows the reading of `consumer` at minute `hour` (a batch's first)."""
        readings = self.sessions("TSO").dr.readings(consumer, self.command_id)["readings"]
        return any(r["minute"] == hour for r in readings)

    def phase(self, seconds: float, rate: float, workers_per_ra: int, probe_every: int) -> dict:
        """Posts for `seconds`, at most `rate` readings per second overall (0: as fast as it goes)."""
        committed = {"readings": 0, "transactions": 0}
        commit_latencies: list[float] = []
        visible_latencies: list[float] = []
        failures: list[str] = []
        probes: list[threading.Thread] = []
        lock = self.lock
        began = time.monotonic()
        stop_at = began + seconds
        scheduled = {"readings": 0}

        def probe(ra: str, consumer: str, label: str, started: float) -> None:
            deadline = started + PROBE_TIMEOUT_SECONDS
            while time.monotonic() < deadline:
                try:
                    if self.visible(consumer, label):
                        with lock:
                            visible_latencies.append(time.monotonic() - started)
                        return
                except Exception as error:  # reported with the failures, the load goes on
                    count_failure(failures, lock, error, "probe: ")
                    return
                time.sleep(0.05)
            with lock:
                failures.append(f"probe: {ra} {label} not visible on the TSO's peer within {PROBE_TIMEOUT_SECONDS} s")

        def worker(ra: str) -> None:
            dr = self.sessions(ra).dr
            while time.monotonic() < stop_at:
                with lock:
                    number = self.next_unit[ra]
                    if number >= len(self.units[ra]):
                        return
                    self.next_unit[ra] += 1
                    group, hour = self.units[ra][number]
                    # Paced: this batch may start once the readings scheduled before it fit the rate.
                    start_at = began + scheduled["readings"] / rate if rate else 0.0
                    scheduled["readings"] += 60 * len(group)
                if start_at > time.monotonic():
                    time.sleep(start_at - time.monotonic())
                batch = [self.fleet.reading(c, minute, True) for c in group for minute in range(hour, hour + 60)]
                started = time.monotonic()
                try:
                    dr.post_readings(self.command_id, batch)
                except Exception as error:  # counted and reported, the load goes on
                    count_failure(failures, lock, error)
                    continue
                with lock:
                    commit_latencies.append(time.monotonic() - started)
                    committed["readings"] += len(batch)
                    committed["transactions"] += 1
                    self.posted += len(batch)
                    self.last_posted[ra] = (group[-1].id, minute_label(hour))
                if number % probe_every == 0:
                    thread = threading.Thread(target=probe, args=(ra, group[-1].id, minute_label(hour), started))
                    thread.start()
                    with lock:
                        probes.append(thread)

        threads = [threading.Thread(target=worker, args=(ra,)) for ra in self.units for _ in range(workers_per_ra)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - began
        for thread in probes:
            thread.join(PROBE_TIMEOUT_SECONDS)
        return {
            "rate_limit": rate or None,
            "seconds": round(elapsed, 2),
            "readings": committed["readings"],
            "transactions": committed["transactions"],
            "readings_per_second": round(committed["readings"] / elapsed, 1),
            "failed": len(failures),
            "first_failures": failures[:5],
            "commit_latency_ms": {
                "p50": percentile([1000 * v for v in commit_latencies], 0.5),
                "p95": percentile([1000 * v for v in commit_latencies], 0.95),
            },
            "visible_on_tso_peer_latency_ms": {
                "samples": len(visible_latencies),
                "p50": percentile([1000 * v for v in visible_latencies], 0.5),
                "p95": percentile([1000 * v for v in visible_latencies], 0.95),
                "max": round(1000 * max(visible_latencies), 1) if visible_latencies else None,
            },
        }

    def drain(self, seconds: float) -> float:
        """Waits (bounded) until the TSO's peer shows each RA's latest acknowledged batch (a peer commits blocks in
        order, so every earlier one too); returns how long it took."""
        began = time.monotonic()
        while time.monotonic() - began < seconds:
            if all(self.visible(consumer, hour) for consumer, hour in self.last_posted.values()):
                break
            time.sleep(1.0)
        return round(time.monotonic() - began, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="sustained load, seconds")
    parser.add_argument(
        "--consumers-per-ra", type=int, default=2000, help="each with 180 readings to post: 1,080,000 in all"
    )
    parser.add_argument(
        "--consumers-per-batch", type=int, default=20, help="consumers per transaction, each with an hour (60 readings)"
    )
    parser.add_argument("--workers-per-ra", type=int, default=2, help="transactions in flight per RA")
    parser.add_argument(
        "--probe-every",
        type=int,
        default=5,
        help="probe the latency of every n-th batch of the unpaced phase (the paced one: every batch)",
    )
    parser.add_argument("--out", default="bench-results/dr.json")
    args = parser.parse_args()
    started = time.monotonic()
    with own_network("gridledger-bench-dr-", 29100) as network:
        sessions = Sessions(network.root)
        meters = MeterOperator(network.layout)  # each consumer's meter signs what its RA relays
        for ra in (org.name for org in sessions.topology.organisations if org.role == "ra"):
            sessions(ra).dr.meters = meters
        setup_began = time.monotonic()
        command, fleet, by_ra = set_up(sessions, args.consumers_per_ra, meters)
        setup_seconds = time.monotonic() - setup_began
        load = Load(sessions, command, fleet, by_ra, args.consumers_per_batch)
        phases = {"unpaced": load.phase(args.seconds, 0, args.workers_per_ra, args.probe_every)}
        drained = load.drain(DRAIN_SECONDS)
        # Every batch probed: at the target rate there are few of them.
        phases["at_target_rate"] = load.phase(args.seconds, TARGET_READINGS_PER_SECOND, args.workers_per_ra, 1)
        exhausted = load.exhausted()
        sessions.close()
    result = {
        "benchmark": "dr-readings",
        "target_readings_per_second": TARGET_READINGS_PER_SECOND,
        "batching": f"one transaction = one RA's {args.consumers_per_batch} consumers x one hour "
        f"({60 * args.consumers_per_batch} readings, one key per consumer-hour), "
        f"{args.workers_per_ra} in flight per RA, {len(by_ra)} RAs, endorsed by the RA's peer",
        "consumers": args.consumers_per_ra * len(by_ra),
        "readings": f"the baseline's {len(baseline_hours(command))} whole hours before the window {command['start']}",
        "ran_out_of_readings": exhausted,
        "setup_seconds": round(setup_seconds, 1),
        "tso_peer_catch_up_seconds_after_unpaced": drained,
        "total_seconds": round(time.monotonic() - started, 1),
        "phases": phases,
    }
    for name, phase in phases.items():
        latency = phase["visible_on_tso_peer_latency_ms"]
        print(
            f"{name}: {phase['readings']} readings in {phase['transactions']} transactions over {phase['seconds']} s:"
            f" {phase['readings_per_second']} readings/s "
            f"({phase['readings_per_second'] / TARGET_READINGS_PER_SECOND:.2f}x target), {phase['failed']} failed"
        )
        print(
            f"  commit p50 {phase['commit_latency_ms']['p50']} ms, p95 {phase['commit_latency_ms']['p95']} ms; "
            f"post→readings visible on the TSO's peer p50 {latency['p50']} ms, p95 {latency['p95']} ms "
            f"({latency['samples']} samples)"
        )
        for failure in phase["first_failures"]:
            print(f"  failure: {failure}")
    print(f"the TSO's peer caught up {drained} s after the unpaced phase")
    if exhausted:
        print("the readings ran out before the phases ended: run again with more --consumers-per-ra")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"written {out}")
    sys.exit(0 if all(phase["readings"] for phase in phases.values()) and not exhausted else 1)


if __name__ == "__main__":
    main()
