"""Order placement through the real Fabric network: batches of orders with refs placed by every RA into one long
gate, sustained; prints transactions and orders per second with commit latency, and writes JSON.

    .venv/bin/python tests/bench/bench_orders.py [--seconds 30] [--orders-per-batch 20] [--workers-per-ra 4]
                                                [--out bench-results/orders.json]

Each transaction places `--orders-per-batch` orders with refs for the RA's consumers, so the contract reads the
gate, the configuration and one order key per order (the duplicate check), and writes one key per order plus the
gate's pending marker. The TSO first configures a gate long enough that none closes during the run. Brings up its
own network (ports at GRIDLEDGER_BENCH_PORT_BASE, default 28100) in a temporary directory and takes it down
afterwards; the load is bounded in time and stays on 127.0.0.1.
"""

import argparse
import json
import re
import statistics
import threading
import time
from pathlib import Path

from harness import count_failure, own_network

from network.bringup import Network
from network.connections import Sessions

# What a peer logs for each proposal it runs (core/endorser): the chaincode's time from invocation to COMPLETED.
CHAINCODE_DURATION = re.compile(r"finished chaincode: \S+ duration: (\d+)ms")


def chaincode_milliseconds(network: Network) -> list[int]:
    """Every peer's chaincode duration for each proposal it ran so far."""
    found = []
    for log in sorted((network.root / "logs").glob("peer*.log")):
        found += [int(m.group(1)) for m in CHAINCODE_DURATION.finditer(log.read_text(errors="replace"))]
    return found


def run_load(sessions: Sessions, seconds: float, orders_per_batch: int, workers_per_ra: int) -> dict:
    ras = [org for org in sessions.topology.organisations if org.role == "ra"]
    latencies: list[float] = []
    failures: list[str] = []
    committed = {"transactions": 0, "orders": 0}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(ra, index: int) -> None:
        market = sessions(ra.name).market
        sequence = 0
        while time.monotonic() < stop_at:
            orders = [
                {
                    "participant": ra.consumers[n % len(ra.consumers)],
                    "side": "buy" if n % 2 else "sell",
                    "price": 20 + n % 7,
                    "quantity": 1 + n % 3,
                    "ref": f"w{index}-{sequence}-{n}",
                }
                for n in range(orders_per_batch)
            ]
            sequence += 1
            began = time.monotonic()
            try:
                market.place_orders(orders)
            except Exception as error:  # counted and reported, the load goes on
                count_failure(failures, lock, error)
                continue
            with lock:
                latencies.append(time.monotonic() - began)
                committed["transactions"] += 1
                committed["orders"] += orders_per_batch

    threads = [threading.Thread(target=worker, args=(ra, i)) for ra in ras for i in range(workers_per_ra)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    ordered = sorted(1000 * v for v in latencies)
    return {
        "seconds": round(elapsed, 2),
        "workers": len(threads),
        "orders_per_batch": orders_per_batch,
        "transactions": committed["transactions"],
        "tps": round(committed["transactions"] / elapsed, 1),
        "orders_per_second": round(committed["orders"] / elapsed, 1),
        "failed": len(failures),
        "first_failures": failures[:5],
        "p50_ms": round(statistics.median(ordered), 1) if ordered else None,
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1) if ordered else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--orders-per-batch", type=int, default=20)
    parser.add_argument("--workers-per-ra", type=int, default=4)
    parser.add_argument("--out", default="bench-results/orders.json")
    args = parser.parse_args()
    with own_network("gridledger-bench-orders-", 28100) as network:
        sessions = Sessions(network.root)
        sessions("TSO").market.configure({"gate_seconds": 3600})
        time.sleep(1.5)  # the configuration applies from the next whole second on
        before = len(chaincode_milliseconds(network))
        result = run_load(sessions, args.seconds, args.orders_per_batch, args.workers_per_ra)
        durations = sorted(chaincode_milliseconds(network)[before:])
        result["chaincode_ms"] = {
            "proposals": len(durations),
            "p50": statistics.median(durations) if durations else None,
            "p95": durations[int(0.95 * (len(durations) - 1))] if durations else None,
        }
    print(
        f"{result['workers']} workers, {result['orders_per_batch']} orders a batch: {result['tps']} tps, "
        f"{result['orders_per_second']} orders/s, p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, "
        f"{result['failed']} failed; chaincode time per proposal (peers' logs) p50 {result['chaincode_ms']['p50']} ms, "
        f"p95 {result['chaincode_ms']['p95']} ms over {result['chaincode_ms']['proposals']} proposals"
    )
    for failure in result["first_failures"]:
        print(f"  failure: {failure}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "order-placement", "result": result}, indent=2))
    print(f"written {out}")
    if not result["transactions"]:
        raise SystemExit("benchmark: nothing committed; see the failures above")


if __name__ == "__main__":
    main()
