"""Matching services on the embedded ledger (the same contract, real time): with the matchers' agents sealing,
revealing and drawing the seed, three matchers close a gate, solve it, propose, finalise; the winner equals an
independent solve; a restarted service does not propose twice."""

import json
import threading
import time

from waiting import eventually

from chaincode.server import build_chaincode
from chaincode.shim.testing import make_identity
from clients.market import MarketClient
from clients.market_agent import MarketAgent
from consortium import topology as topology_file
from gateway.embedded import EmbeddedGateway, EmbeddedLedger
from solver.matching import solve
from solver.orders import order_from_ledger
from solver.service import MatchingService

TOPOLOGY = topology_file.load()
COLLECTIONS = {
    name: {TOPOLOGY.organisation(m).msp_id for m in members} for name, members in TOPOLOGY.collections().items()
}


class EmbeddedMarket:
    """What MatchingService needs, over the embedded ledger."""

    def __init__(self, ledger, org):
        self.network = EmbeddedGateway(make_identity(f"{org}MSP", f"User1@{org.lower()}"), ledger).get_network("grid")
        self.contract = self.network.get_contract("gridledger", "market")
        self.client = MarketClient(self.network, TOPOLOGY.organisation(org), topology=TOPOLOGY)  # seals orders

    def evaluate(self, name, *args):
        return json.loads(self.contract.evaluate(name, *args))

    def submit(self, name, *args, all_peers=False):
        return json.loads(self.contract.submit(name, *args))

    def events(self):
        return self.network.get_chaincode_events("gridledger")


def test_three_services_close_solve_propose_and_finalise_a_gate():
    ledger = EmbeddedLedger(build_chaincode(), COLLECTIONS)
    markets = {org: EmbeddedMarket(ledger, org) for org in ("TSO", "RA1", "RA2", "RA3")}
    markets["TSO"].submit("configure", json.dumps({"gate_seconds": 2, "proposal_seconds": 1, "objective": "welfare"}))

    def gate_with_time_left():
        config = markets["TSO"].evaluate("get_config")
        return config["current_gate"] if config["current_gate_end_ms"] / 1000 - time.time() > 1.2 else None

    def finalised():
        state = markets["TSO"].evaluate("get_gate", gate)
        return state if state["status"] == "finalised" else None

    gate = eventually(gate_with_time_left, "a gate with more than 1.2 s left", 5)
    markets["RA1"].client.place_orders(
        [
            {"participant": "C1", "side": "sell", "price": 20, "quantity": 3},
            {"participant": "C4", "side": "buy", "price": 30, "quantity": 1},
        ]
    )
    markets["RA2"].client.place_orders([{"participant": "C2", "side": "buy", "price": 26, "quantity": 2}])
    markets["RA3"].client.place_orders([{"participant": "C3", "side": "sell", "price": 18, "quantity": 1}])

    stop = threading.Event()
    services = [
        MatchingService(org, markets[org], rank=rank, poll_seconds=0.3)
        for rank, org in enumerate(("RA1", "RA2", "RA3"))
    ]
    agents = [
        MarketAgent(markets[org].client, contributes=True, key=org.encode() * 8, poll_seconds=0.1)
        for org in ("RA1", "RA2", "RA3")
    ]
    threads = [threading.Thread(target=s.run, args=(stop,), daemon=True) for s in [*services, *agents]]
    for thread in threads:
        thread.start()
    try:
        final = eventually(finalised, "the gate to be finalised", 15)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
    assert sorted(p["org"] for p in markets["TSO"].evaluate("list_proposals", gate)) == ["RA1", "RA2", "RA3"]
    book = markets["TSO"].evaluate("get_book", gate)["orders"]
    orders = [order_from_ledger(o) for o in book]
    assert final["winner"]["value"] == str(solve(orders, "welfare", bytes.fromhex(final["seed"])).value)
    assert sum(s.record.closed.count(gate) for s in services) == 1  # the others found it closed
    assert sum(s.record.finalised.count(gate) for s in services) == 1

    # A service started again (e.g. after a crash) finds its proposal on the ledger and proposes nothing new.
    restarted = MatchingService("RA1", markets["RA1"], poll_seconds=0.3)
    restarted.step()
    assert restarted.record.proposed == {} and restarted.record.refused == {}
    assert len(markets["TSO"].evaluate("list_proposals", gate)) == 3
