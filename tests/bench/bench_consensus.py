"""Raft (etcdraft) against SmartBFT (BFT) for the topology's three orderers, on the same machine in one run: for each,
`network up` on a new network, submit throughput at 1, 10 and 50 clients (bench_gateway's load), and the leading
orderer killed under load and brought back. Prints a table and writes JSON.

    .venv/bin/python tests/bench/bench_consensus.py [--rounds 1] [--seconds 20] [--clients 1,10,50]
        [--out bench-results/consensus.json]

Rounds alternate the two types (Raft, BFT, Raft, BFT, ...) so that a machine shared with other work loads both
alike. Each network is its own, in a temporary directory with ports at GRIDLEDGER_BENCH_PORT_BASE (default 30100),
taken down afterwards; every load is bounded in time and stays on 127.0.0.1.
"""

import argparse
import itertools
import json
import threading
import time
from pathlib import Path

from bench_gateway import run_load
from harness import count_failure, own_network

from consortium import CHAINCODE_NAME
from consortium.topology import CONSENSUS_TYPES
from network.bringup import Network
from network.connections import connect_as

FAULT_CLIENTS = 10
# The killed orderer stays down long enough for the other two to replace a leader (Raft: a 1 s election timeout;
# SmartBFT: a 5 s heartbeat timeout, network/configtx.py) and order on without it.
DOWN_SECONDS = 15.0
BEFORE_SECONDS = 5.0
AFTER_SECONDS = 5.0
CATCH_UP_LIMIT = 120.0


def leader_killed(network: Network, clients: int = FAULT_CLIENTS) -> dict:
    """`clients` submitting one record at a time; the orderer leading the consensus SIGKILLed after BEFORE_SECONDS,
    started again from its ledger DOWN_SECONDS later. Figures: throughput before, while it is down and after; the
    longest time without a commit while it is down; how long the restarted orderer takes to reach the others."""
    orgs = network.topology.org_names
    committed: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(index: int) -> None:
        # Short timeouts: a transaction lost with the killed orderer shows as a failure and is replaced at once.
        gateway = connect_as(network, orgs[index % len(orgs)], submit_timeout=10, commit_status_timeout=10)
        contract = gateway.get_network(network.topology.channel).get_contract(CHAINCODE_NAME, "records")
        for sequence in itertools.count():
            if stop.is_set():
                break
            try:
                contract.submit("put_record", f"fault-{index}-{sequence}", json.dumps({"n": sequence}))
            except Exception as error:  # counted and reported, the load goes on
                count_failure(failures, lock, error)
                continue
            with lock:
                committed.append(time.monotonic())
        gateway.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(BEFORE_SECONDS)
    victim = network.leader()
    if victim is None:
        stop.set()
        raise SystemExit(f"benchmark: no orderer leads {network.topology.consensus}: {network.ordering_diagnosis()}")
    killed_at = time.monotonic()
    network.process(victim).kill()
    time.sleep(DOWN_SECONDS)
    restarted_at = time.monotonic()
    network._start([victim], lambda line: None, restarted_at + 60)
    caught_up_at = _caught_up(network, victim, restarted_at + CATCH_UP_LIMIT)
    time.sleep(AFTER_SECONDS)
    stop.set()
    for thread in threads:
        thread.join()
    ended = time.monotonic()
    new_leader = network.leader()

    def tps(since: float, until: float) -> float:
        return round(sum(since <= t < until for t in committed) / max(until - since, 1e-9), 1)

    during = sorted([killed_at, *(t for t in committed if killed_at <= t < restarted_at), restarted_at])
    after_kill = [t for t in committed if t >= killed_at]
    return {
        "clients": clients,
        "victim": victim.name,
        "leader_after": new_leader.name if new_leader else None,
        "down_seconds": round(restarted_at - killed_at, 1),
        "tps_before": tps(began, killed_at),
        "tps_while_down": tps(killed_at, restarted_at),
        "tps_after": tps(caught_up_at, ended),
        "committed_while_down": sum(killed_at <= t < restarted_at for t in committed),
        "first_commit_after_kill_seconds": round(after_kill[0] - killed_at, 2) if after_kill else None,
        "longest_stall_while_down_seconds": round(max(b - a for a, b in itertools.pairwise(during)), 2),
        "catch_up_seconds": round(caught_up_at - restarted_at, 2),
        "failed_submits": len(failures),
        "first_failures": failures[:3],
    }


def _caught_up(network: Network, node, deadline: float) -> float:
    """When `node`'s channel height reaches the other orderers' (as read just before)."""
    others = [o for o in network.topology.orderers if o.name != node.name]
    while time.monotonic() < deadline:
        try:
            target = max(network.orderer_admin(o).height(network.topology.channel) for o in others)
            if network.orderer_admin(node).height(network.topology.channel) >= target:
                return time.monotonic()
        except Exception:  # not answering yet: ask again
            pass
        time.sleep(0.3)
    raise SystemExit(f"benchmark: {node.name} did not catch up within {CATCH_UP_LIMIT:.0f} s")


def one_round(consensus: str, clients: list[int], seconds: float) -> dict:
    began = time.monotonic()
    with own_network(f"gridledger-bench-{consensus.lower()}-", 30100, consensus) as network:
        up_seconds = round(time.monotonic() - began, 1)
        loads = [run_load(network, n, seconds) for n in clients]
        fault = leader_killed(network)
    return {"consensus": consensus, "network_up_seconds": up_seconds, "submit": loads, "leader_killed": fault}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="rounds per consensus type, alternating")
    parser.add_argument("--seconds", type=float, default=20.0, help="load per client count")
    parser.add_argument("--clients", default="1,10,50")
    parser.add_argument("--out", default="bench-results/consensus.json")
    args = parser.parse_args()
    clients = [int(n) for n in args.clients.split(",")]
    rounds = []
    for _ in range(args.rounds):
        for consensus in CONSENSUS_TYPES:
            rounds.append(one_round(consensus, clients, args.seconds))
            print(json.dumps(rounds[-1]), flush=True)
    print(f"{'consensus':>9} {'up s':>6} " + " ".join(f"{f'tps@{n}':>8} {f'p50ms@{n}':>9}" for n in clients))
    for r in rounds:
        print(
            f"{r['consensus']:>9} {r['network_up_seconds']:>6} "
            + " ".join(f"{s['tps']:>8} {s['p50_ms']!s:>9}" for s in r["submit"])
        )
    print(f"{'consensus':>9} {'victim':>8} {'tps before':>10} {'while down':>10} {'1st commit s':>12} {'stall s':>8}")
    for r in rounds:
        f = r["leader_killed"]
        print(
            f"{r['consensus']:>9} {f['victim']:>8} {f['tps_before']:>10} {f['tps_while_down']:>10} "
            f"{f['first_commit_after_kill_seconds']!s:>12} {f['longest_stall_while_down_seconds']:>8}"
            f"  catch-up {f['catch_up_seconds']} s, {f['failed_submits']} failed submits"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "consensus", "rounds": rounds}, indent=2))
    print(f"written {out}")
    if not all(s["committed"] for r in rounds for s in r["submit"]) or not all(
        r["leader_killed"]["committed_while_down"] for r in rounds
    ):
        raise SystemExit("benchmark: some load committed nothing; see the figures above")


if __name__ == "__main__":
    main()
