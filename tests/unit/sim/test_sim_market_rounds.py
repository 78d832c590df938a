"""Trading rounds on the embedded ledger (the same contract, real time): the matchers' services and agents seal,
reveal and draw each gate's seed by themselves, and every gate is finalised with the optimum of its book; the
salts wait in the run directory only until their orders are revealed, and each contribution key is its owner's
alone."""

import stat
import threading

from chaincode.contracts.market_seed import book_digest, gate_seed
from chaincode.server import build_chaincode
from chaincode.shim.testing import make_identity
from clients.contract import eventually
from clients.market_agent import MARKET_DIR
from clients.session import Session, SessionPool
from consortium import topology as topology_file
from gateway.embedded import EmbeddedGateway, EmbeddedLedger
from sim.market_rounds import market_of, run_rounds, start_matchers
from sim.traders import TraderFleet
from solver.matching import solve
from solver.orders import order_from_ledger

TOPOLOGY = topology_file.load()
COLLECTIONS = {
    name: {TOPOLOGY.organisation(m).msp_id for m in members} for name, members in TOPOLOGY.collections().items()
}
MATCHERS = list(TOPOLOGY.market.matchers)


class EmbeddedSessions(SessionPool):
    """What sim.market_rounds needs of network.connections.Sessions, over the embedded ledger."""

    def __init__(self, ledger, run_dir):
        self.topology = TOPOLOGY
        self.run_dir = run_dir
        super().__init__(
            lambda org: Session(
                EmbeddedGateway(make_identity(f"{org}MSP", f"User1@{org.lower()}"), ledger), TOPOLOGY, org
            )
        )


def test_services_and_agents_finalise_the_optimum_of_every_sealed_gate(tmp_path):
    ledger = EmbeddedLedger(build_chaincode(), COLLECTIONS)
    sessions = EmbeddedSessions(ledger, tmp_path)
    tso = sessions("TSO").market
    tso.configure({"gate_seconds": 3, "proposal_seconds": 1, "objective": "welfare"})
    consumers = [(c, org.name) for org in TOPOLOGY.organisations if org.role == "ra" for c in org.consumers]
    traders = TraderFleet.for_consumers(consumers, seed=3)
    stop = threading.Event()
    _, threads = start_matchers(sessions, MATCHERS, stop, poll_seconds=0.3)
    try:
        placed = run_rounds(sessions, traders, gates=2, stop=stop)
        finals = [
            eventually(lambda g=g: (lambda r: r if r["status"] == "finalised" else None)(tso.gate(g)), g, 20)
            for g in placed
        ]
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        ledger.close()
    for final in finals:
        book = tso.book(final["id"])["orders"]
        assert [c["org"] for c in final["contributions"]] == MATCHERS
        assert (final["withheld"], final["dropped"]) == ([], 0) and book
        secrets = [(c["org"], c["secret"]) for c in final["contributions"]]
        assert bytes.fromhex(final["seed"]) == gate_seed(final["id"], book_digest(book), secrets)
        optimum = solve([order_from_ledger(o) for o in book], "welfare", bytes.fromhex(final["seed"]))
        assert final["winner"]["value"] == str(optimum.value) and final["winner"]["optimal"]
    for org in MATCHERS:
        assert market_of(sessions, org).sealed.held() == {}  # every salt revealed, none left behind
        key = tmp_path / MARKET_DIR / org / "seed.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(key.parent.stat().st_mode) == 0o700
