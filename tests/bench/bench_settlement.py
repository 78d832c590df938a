"""Settling one DR command by Japan's rules for 1,000 and 10,000 consumers with five weeks of 30-minute history, on
the real Fabric network: the time to post the history, the time to compute the settlement per 30-minute unit, the
resident memory of the peers and chaincode servers, and an extrapolation to 100,000; prints a summary, writes JSON.

    .venv/bin/python tests/bench/bench_settlement.py [--consumers 1000,10000] [--days 35] [--workers 4]
                                                    [--out bench-results/settlement.json]

For each size, in increasing order on one network: the consumers not yet there are registered and their history
posted through their RAs (sim.history: whole consumers per transaction, each consumer's days signed by its meter and
checked by both endorsers), then a kWh-type DR command for a one-minute window about a minute ahead is issued, every
RA declares all its consumers, the window minute's readings are posted once the minute has ended, the dr contract's
settle closes it, and the TSO's and AC1's peers compute get_unit_settlement (timed: the TSO's reads every RA's
collection, 30 days of history per consumer); then AC1 records its statement (AC1's peer and the TSO's each
recompute AC1's figures) and delivers its RAs' shares (timed). The command's product turns the same-day adjustment off, so that the
readings of one minute are all the window needs (the adjustment would add the readings of the hours before it:
one more private key per consumer and hour, read in the same batched calls).

Brings up its own network (ports at GRIDLEDGER_BENCH_PORT_BASE, default 16100) in a temporary directory and takes it
down afterwards; every phase is bounded in time (`--limit-seconds`); everything stays on 127.0.0.1.
"""

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import own_network

from clients.dr_units import UnitsClient
from consortium.units import EPOCH, JST, minute_label
from network.connections import Sessions, open_session
from network.crypto import MeterOperator
from sim.history import fleet_history, post_history
from sim.meters import MeterFleet, batches, post_all

PRODUCT = {"name": "kwh-dr", "same_day": None}
EVALUATE_TIMEOUT_SECONDS = 600.0
READINGS_DUE_MINUTES = 3  # after the window: time to post 10,000 readings on a loaded machine


def resident_memory(run_root: Path) -> dict[str, int]:
    """MiB resident per process of the network (peers and chaincode servers), from /proc (psutil is not a
    dependency)."""
    found = {}
    for pid_file in sorted((run_root / "pids").glob("*.pid")):
        name = pid_file.stem
        if not (name.startswith("peer") or name.startswith("chaincode")):
            continue
        try:
            status = Path(f"/proc/{int(pid_file.read_text().split()[0])}/status").read_text()
        except (OSError, ValueError, IndexError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                found[name] = int(line.split()[1]) // 1024
    return found


def wait_until_ended(minute: int) -> None:
    ends = EPOCH + timedelta(minutes=minute + 1, seconds=1)
    time.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()))


def settle_one(network, sessions, fleet: MeterFleet, size: int, workers: int, viewers: dict) -> dict:
    """A command for the first `size` consumers: declared, its window minute read, settled; then timed."""
    by_ra = fleet.by_ra()
    began = time.monotonic()
    # The window: one minute, far enough ahead for every RA to declare up to 10,000 consumers.
    first = (datetime.now(UTC) + timedelta(seconds=90) - EPOCH) // timedelta(minutes=1)
    command = {
        "id": f"bench-{size}",
        "start": minute_label(first),
        "end": minute_label(first),
        "requested_kw": max(1, size // 2),
        "target_acs": ["AC1", "AC2"],
        "price_per_kwh": 2500,
        "baseline_minutes": 1,
        "readings_due": minute_label(first + 1 + READINGS_DUE_MINUTES),
        "product": PRODUCT,
    }
    sessions("TSO").dr.issue(command)
    for ra, consumers in by_ra.items():
        dr = sessions(ra).dr
        dr.wait_for_command(command["id"])
        declaration = {"baseline_method": "mean-before", "consumers": {c.id: {"expected_wh": [5]} for c in consumers}}
        dr.declare(command["id"], declaration)
    declared_seconds = time.monotonic() - began
    wait_until_ended(first)
    readings = [fleet.reading(c, first, True) for c in fleet.consumers]
    posted = time.monotonic()
    post_all(lambda r: sessions(r.ra).dr, command["id"], [g for _, g in batches(readings, 500)], workers)
    readings_seconds = time.monotonic() - posted
    wait_until_ended(first + READINGS_DUE_MINUTES)  # settlement comes once the readings are due
    sessions("TSO").dr.settle(command["id"])
    figures = {}
    for who, client in viewers.items():
        for attempt in range(2):  # the first read after the settle may meet a peer a block behind
            start = time.monotonic()
            try:
                result = client.unit_settlement(command["id"])
            except Exception as error:  # the figure to report is the failure, e.g. the chaincode's timeout
                figures[who] = {"error": f"{type(error).__name__}: {error}"[:300], "seconds": time.monotonic() - start}
                break
            if result["settled"] or attempt:
                figures[who] = {
                    "seconds": round(time.monotonic() - start, 2),
                    "consumers": len(result["consumers"]),
                    "baselines_set": sum(c["baseline"]["ok"] for c in result["consumers"]),
                    "tso_amount_sen": result["tso"]["amount_sen"] if result["tso"] else None,
                    "answer_bytes": len(json.dumps(result, separators=(",", ":"))),
                }
                break
            time.sleep(2)
    return {
        "command": command["id"],
        "declare_seconds": round(declared_seconds, 1),
        "readings_seconds": round(readings_seconds, 1),
        "settlement": figures,
        "statement": record_statement(viewers["AC1"], command["id"]),
        "rss_mib_after": resident_memory(network.root),
    }


def record_statement(ac: UnitsClient, command_id: str) -> dict:
    """AC1's statement recorded (endorsed by AC1's peer and the TSO's, both recomputing AC1's figures) and its RAs'
    shares delivered: the seconds of each, or the failure."""
    figure: dict = {}
    for step, call in (("record", ac.record_statement), ("deliver_shares", ac.deliver_shares)):
        start = time.monotonic()
        try:
            call(command_id)
        except Exception as error:  # the figure to report is the failure, e.g. a transaction too large
            figure[step] = {"error": f"{type(error).__name__}: {error}"[:300], "seconds": time.monotonic() - start}
            break
        figure[step] = {"seconds": round(time.monotonic() - start, 2)}
    return figure


def run(sizes: list[int], days: int, workers: int, batch_days: int) -> dict:
    results: dict = {"days_of_history": days, "sizes": {}}
    with own_network("gridledger-bench-settlement-", 16100) as network:
        sessions = Sessions(network.root)
        topology = sessions.topology
        meters = MeterOperator(network.layout)
        for org in topology.organisations:
            if org.role == "ra":
                sessions(org.name).dr.meters = meters
        units = {ra: UnitsClient.of(sessions(ra), topology, meters) for ra in topology.org_names}
        viewers = {
            who: UnitsClient.of(open_session(network, who, evaluate_timeout=EVALUATE_TIMEOUT_SECONDS), topology)
            for who in ("TSO", "AC1")
        }
        results["rss_mib_idle"] = resident_memory(network.root)
        posted: set[str] = set()
        today = datetime.now(JST).date()  # the event day is a JST day
        for size in sorted(sizes):
            fleet = MeterFleet.for_topology(topology, size, seed=14)
            new = MeterFleet([c for c in fleet.consumers if c.id not in posted], seed=14)
            for ra, consumers in new.by_ra().items():
                sessions(ra).dr.register_consumers([c.id for c in consumers])
            history = post_history(units.__getitem__, fleet_history(new, today, days), batch_days, workers)
            posted |= {c.id for c in new.consumers}
            figure = {"history_posted": history, "rss_mib_after_history": resident_memory(network.root)}
            figure |= settle_one(network, sessions, fleet, size, workers, viewers)
            results["sizes"][str(size)] = figure
            print(json.dumps({str(size): figure}), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consumers", default="1000,10000", help="Sizes, comma-separated.")
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch-days", type=int, default=700)
    parser.add_argument("--out", type=Path, default=Path("bench-results/settlement.json"))
    arguments = parser.parse_args()
    sizes = [int(n) for n in arguments.consumers.split(",")]
    results = run(sizes, arguments.days, arguments.workers, arguments.batch_days)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    unset = [
        f"{size} as {who}"
        for size, figure in results["sizes"].items()
        for who, seen in figure["settlement"].items()
        if seen.get("baselines_set") != seen.get("consumers")
    ]
    if unset:  # a settlement that set no baselines measured the wrong thing
        print(f"error: not every baseline was set ({', '.join(unset)})", file=sys.stderr)
    sys.exit(1 if unset else 0)


if __name__ == "__main__":
    main()
