"""Simulated trading rounds on the network: the matchers' services and agents in threads, simulated prosumers
(sim.traders) bidding each gate through their RAs with sealed orders, and a run of rounds reported gate by gate
against the continuous double auction.

`gridledger demo` runs each organisation's part in a process of its own holding that organisation's keys only:
`market serve --as RAn` (start_matchers for one matcher), `market trade --as RAn` (trade: that RA's prosumers),
`market watch --as TSO`. `gridledger market simulate` (simulate_market) plays every organisation in one process:
the development and test path.

`sessions(who)` is an identity's session (network.connections.Sessions): `.market` its market client, `.dr` its
DR client; `sessions.topology` the network's topology, `sessions.run_dir` its run directory, where each
organisation keeps its contribution key and the salts of its sealed orders (clients.market_agent).
"""

import threading
import time

from clients.contract import Refused
from clients.market import MarketClient
from clients.market_agent import MarketAgent, contribution_key, sealed_orders_of
from consortium.units import SEN_PER_YEN
from sim.meters import MeterFleet
from sim.traders import TraderFleet
from solver.service import MatchingService

ORDERS_PER_TRANSACTION = 1000


def market_of(sessions, who: str) -> MarketClient:
    """`who`'s market client, keeping the salts of its sealed orders where its organisation's agent finds them."""
    market = sessions(who).market
    if market.sealed.directory is None:
        market.sealed = sealed_orders_of(sessions.run_dir, market.org.name)
    return market


def start_matchers(sessions, matchers: list[str], stop: threading.Event, poll_seconds: float = 2.0):
    """A MatchingService and a MarketAgent (seed contributions, reveals of its organisation's orders) per matcher,
    each in a thread of its own until `stop`; returns (services, threads). A matcher's rank (its stagger) is its
    place among the topology's matchers, the same whichever process runs it."""
    ranks = sessions.topology.market.matchers
    services = [
        MatchingService(org, market_of(sessions, org), rank=ranks.index(org), poll_seconds=poll_seconds)
        for org in matchers
    ]
    agents = [
        MarketAgent(market_of(sessions, org), contributes=True, key=contribution_key(sessions.run_dir, org))
        for org in matchers
    ]
    threads = [threading.Thread(target=s.run, args=(stop,), name=f"matcher-{s.org}", daemon=True) for s in services]
    threads += [threading.Thread(target=a.run, args=(stop,), name=f"agent-{a.org}", daemon=True) for a in agents]
    for thread in threads:
        thread.start()
    return services, threads


def traders_for(sessions, count: int, seed: int = 0, ra: str | None = None) -> TraderFleet:
    """`count` prosumers: the topology's consumers, then synthetic ones registered with their RAs if needed (the
    same ids as the DR simulation's meter fleet); with `ra`, only that RA's share of them, registered by it."""
    fleet = MeterFleet.for_topology(sessions.topology, count)
    consumers = [c for c in fleet.consumers if ra is None or c.ra == ra]
    by_ra: dict[str, list[str]] = {}
    for consumer in consumers:
        by_ra.setdefault(consumer.ra, []).append(consumer.id)
    for owner, ids in by_ra.items():
        sessions(owner).dr.register_consumers(ids)
    return TraderFleet.for_consumers([(c.id, c.ra) for c in consumers], seed)


def run_rounds(
    sessions,
    traders: TraderFleet,
    gates: int,
    log=lambda line: None,
    stop: threading.Event | None = None,
    on_finalised=None,
    viewer: str | None = None,
):
    """Places each gate's orders as it opens, for `gates` gates; returns the gate ids. Traders adjust to the
    latest clearing price they can see (B8), read as `viewer` (default: the market operator; gates, trades and
    prices are public). `on_finalised(report)` gets MarketClient.report of each gate these rounds placed orders
    in, once it is finalised."""
    stop = stop or threading.Event()
    market_view = sessions(viewer or sessions.topology.market.operator).market
    placed: list[str] = []
    seen_final: set[str] = set()
    index = 0
    while len(placed) < gates and not stop.is_set():
        config = market_view.config()
        gate = config["current_gate"]
        end = config["current_gate_end_ms"] / 1000
        if gate in placed or end - time.time() < min(2.0, config["gate_seconds"] / 2):
            stop.wait(max(0.1, end - time.time() + 0.05))  # too late for this gate: wait for the next
            continue
        for gate_record in market_view.gates(10):
            if gate_record["status"] == "finalised" and gate_record["id"] not in seen_final:
                seen_final.add(gate_record["id"])
                if on_finalised and gate_record["id"] in placed:
                    on_finalised(market_view.report(gate_record["id"]))
                clearing = gate_record.get("clearing")
                traded = set()
                if clearing:
                    for t in market_view.trades(gate_record["id"])["trades"]:
                        traded.update((t["seller"], t["buyer"]))
                traders.observe(traded, clearing["average_price_sen_per_kwh"] / SEN_PER_YEN if clearing else None)
        by_ra = traders.orders_for_gate(index)
        count = 0
        for ra, orders in by_ra.items():
            market = market_of(sessions, ra)
            refs = [{**o, "ref": f"{gate[11:].replace(':', '')}-{o['participant']}"} for o in orders]
            for chunk in range(0, len(refs), ORDERS_PER_TRANSACTION):
                batch = refs[chunk : chunk + ORDERS_PER_TRANSACTION]
                result = market.place_orders(batch, resend=True)
                if result is not None and result["gate"] != gate:
                    log(f"  note: {ra}'s orders landed in gate {result['gate']} (the clock moved on)")
                count += len(batch)
        log(f"gate {gate}: {count} orders from {', '.join(by_ra) or 'no RA'}")
        placed.append(gate)
        index += 1
        stop.wait(max(0.0, end - time.time() + 0.05))
    return placed


def trade(
    sessions,
    ra: str,
    trader_count: int,
    gates: int,
    seed: int = 0,
    log=lambda line: None,
    stop: threading.Event | None = None,
    retry_seconds: float = 5.0,
) -> list[str]:
    """One RA's prosumers bidding gate after gate as that RA alone: its share of `trader_count` prosumers
    (traders_for), registered by it, for `gates` gates or until `stop`; the gates and prices they adjust to are
    read with the RA's own session (they are public). The salts wait in the RA's market/<ra>/sealed for its agent
    to reveal: a matcher's runs in its `market serve`; an RA that is no matcher runs one here. A failure of the
    network (busy or restarting) is logged and trading resumes after `retry_seconds`; a refusal by this client
    (Refused: among them network.identities.CustodyError, a key this process does not hold) is a fault, not weather,
    and ends it. Returns the gates it placed orders in."""
    stop = stop or threading.Event()
    placed: list[str] = []
    done = threading.Event()  # ends this RA's own agent, if it runs one
    threads = []
    if ra not in sessions.topology.market.matchers:
        agent = MarketAgent(market_of(sessions, ra), contributes=False, key=b"")
        threads.append(threading.Thread(target=agent.run, args=(done,), name=f"agent-{ra}", daemon=True))
        threads[-1].start()
    traders = None
    try:
        while len(placed) < gates and not stop.is_set():
            try:
                if traders is None:
                    traders = traders_for(sessions, trader_count, seed, ra=ra)
                    log(f"{len(traders.traders)} prosumers of {ra} trade")
                placed += run_rounds(sessions, traders, gates - len(placed), log=log, stop=stop, viewer=ra)
            except Refused:
                raise
            except Exception as error:  # the network is busy or restarting: keep trading
                log(f"{error}; retrying in {retry_seconds:g} s")
                stop.wait(retry_seconds)
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=10)
    return placed


def simulate_market(
    sessions,
    gates: int = 3,
    gate_seconds: int = 10,
    proposal_seconds: int = 5,
    objective: str = "welfare",
    trader_count: int = 30,
    seed: int = 0,
    log=lambda line: None,
) -> dict:
    """Trading rounds in this one process, playing every organisation (`sessions` opens any identity): the operator
    configures the gates, every matcher's service runs, `trader_count` simulated prosumers bid each of `gates`
    gates; then each gate's proposals, winner and clearing price against the continuous double auction on the
    same book. The development and test path; `gridledger demo` runs each organisation's part in its own process."""
    began = time.monotonic()
    topology = sessions.topology
    operator = sessions(topology.market.operator).market
    operator.configure({"gate_seconds": gate_seconds, "proposal_seconds": proposal_seconds, "objective": objective})
    traders = traders_for(sessions, trader_count, seed)
    stop = threading.Event()
    services, threads = start_matchers(sessions, list(topology.market.matchers), stop, poll_seconds=1.0)
    try:
        placed = run_rounds(sessions, traders, gates, log=log)
        deadline = time.time() + gate_seconds + 3 * proposal_seconds + 60  # two reveal phases, then proposals
        while time.time() < deadline:
            statuses = [operator.gate(g)["status"] for g in placed]
            if all(s == "finalised" for s in statuses):
                break
            time.sleep(0.5)
        else:
            raise Refused(f"gates not finalised in time: {dict(zip(placed, statuses, strict=True))}")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    return {
        "gates": [operator.report(gate) for gate in placed],
        "traders": trader_count,
        "objective": objective,
        "seconds": round(time.monotonic() - began, 1),
        "solve_seconds": {s.org: s.record.solve_seconds for s in services},
    }
