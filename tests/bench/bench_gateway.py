"""Submit throughput and commit latency of a simple write through the real Fabric network, at 1, 10 and 50
concurrent clients; prints a table and writes JSON.

    .venv/bin/python tests/bench/bench_gateway.py [--seconds 20] [--clients 1,10,50] [--consensus etcdraft|BFT]
        [--out bench-results/gateway.json]

Brings up its own network (ports at GRIDLEDGER_BENCH_PORT_BASE, default 30100) in a temporary directory and
takes it down afterwards; the load is bounded in time and stays on 127.0.0.1. Its orderers run the topology's
consensus type unless --consensus says otherwise (tests/bench/bench_consensus.py compares the two).
"""

import argparse
import json
import os
import statistics
import threading
import time
from pathlib import Path

from harness import count_failure, own_network

from consortium import CHAINCODE_NAME
from consortium.topology import CONSENSUS_TYPES
from network.bringup import Network
from network.connections import connect_as

TARGET_TPS = 300


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds_by_kind(network: Network) -> dict[str, float]:
    """CPU seconds used so far by the network's processes (per kind) and by this client process."""
    used = {"peer": 0.0, "orderer": 0.0, "chaincode": 0.0}
    for status in network.status():
        try:
            fields = Path(f"/proc/{status.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, TypeError):
            continue
        used[status.kind] += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    times = os.times()
    used["client"] = times.user + times.system
    return used


def run_load(network: Network, clients: int, seconds: float) -> dict:
    orgs = network.topology.org_names
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(index: int) -> None:
        gateway = connect_as(network, orgs[index % len(orgs)])
        contract = gateway.get_network(network.topology.channel).get_contract(CHAINCODE_NAME, "records")
        sequence = 0
        while time.monotonic() < stop_at:
            key = f"bench-{clients}-{index}-{sequence}"
            sequence += 1
            began = time.monotonic()
            try:
                contract.submit("put_record", key, json.dumps({"n": sequence}))
            except Exception as error:  # counted and reported, the load goes on
                count_failure(failures, lock, error)
                continue
            with lock:
                latencies.append(time.monotonic() - began)
        gateway.close()

    cpu_before = cpu_seconds_by_kind(network)
    began = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    cpu_after = cpu_seconds_by_kind(network)
    cpu_ms_per_tx = {
        kind: round(1000 * (cpu_after[kind] - cpu_before[kind]) / max(1, len(latencies)), 2) for kind in cpu_after
    }
    ordered = sorted(latencies)
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "committed": len(latencies),
        "failed": len(failures),
        "first_failures": failures[:3],
        "tps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(ordered), 1) if ordered else None,
        "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 1) if ordered else None,
        "cpu_ms_per_tx": cpu_ms_per_tx,
        "cpu_utilisation": round(sum(cpu_after.values()) - sum(cpu_before.values()), 1) / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", default="1,10,50")
    parser.add_argument("--consensus", choices=CONSENSUS_TYPES, help="the orderers' (default: the topology's)")
    parser.add_argument("--out", default="bench-results/gateway.json")
    args = parser.parse_args()
    with own_network("gridledger-bench-", 30100, args.consensus) as network:
        consensus = network.topology.consensus
        results = [run_load(network, int(n), args.seconds) for n in args.clients.split(",")]
    print(
        f"{'clients':>8} {'committed':>10} {'failed':>7} {'tps':>8} {'p50 ms':>8} {'p95 ms':>8}  vs target {TARGET_TPS} tps"
    )
    for r in results:
        print(
            f"{r['clients']:>8} {r['committed']:>10} {r['failed']:>7} {r['tps']:>8} {r['p50_ms']!s:>8} "
            f"{r['p95_ms']!s:>8}  {r['tps'] / TARGET_TPS:.2f}x"
        )
        print(f"         CPU ms per committed tx: {r['cpu_ms_per_tx']}; cores busy: {r['cpu_utilisation']:.2f}")
        for failure in r["first_failures"]:
            print(f"         failure: {failure}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"benchmark": "gateway-submit", "consensus": consensus, "target_tps": TARGET_TPS, "results": results},
            indent=2,
        )
    )
    print(f"written {out}")
    if not all(r["committed"] for r in results):
        raise SystemExit("benchmark: some load committed nothing; see the failures above")


if __name__ == "__main__":
    main()
