"""`gridledger demo`'s plan of processes, each acting as one organisation: the operator configures and watches,
each matcher serves, each RA trades; and a rehearsal of that plan on the embedded ledger (real time, the same
contract) in which every part gets sessions that refuse any identity but its organisation's, as
network.identities.Keyring does, and the gates are still finalised with orders from every RA."""

import json
import threading

import pytest

from chaincode.server import build_chaincode
from chaincode.shim.testing import make_identity
from cli.common import sessions_of
from cli.demo import trading_parts, web_parts
from clients.contract import eventually
from clients.session import Session, SessionPool
from consortium import topology as topology_file
from gateway.embedded import EmbeddedGateway, EmbeddedLedger
from network.identities import CustodyError
from sim.market_rounds import start_matchers, trade

TOPOLOGY = topology_file.load()
RAS = [org.name for org in TOPOLOGY.organisations if org.role == "ra"]
COLLECTIONS = {
    name: {TOPOLOGY.organisation(m).msp_id for m in members} for name, members in TOPOLOGY.collections().items()
}


def acts_as(args: tuple[str, ...]) -> list[str]:
    """Every identity or organisation a gridledger command line names with --as or --org."""
    return [args[i + 1] for i, arg in enumerate(args) if arg in ("--as", "--org")]


def test_every_part_of_the_demo_acts_as_exactly_the_organisation_it_belongs_to(tmp_path):
    run = tmp_path / "run"
    configure, parts = trading_parts(str(run), TOPOLOGY, 30, 5, "welfare", 12, since_ms=0)
    webs = web_parts(str(run), TOPOLOGY)
    for part in [configure, *parts, *webs]:
        assert acts_as(part.args) == [part.org], part
        assert part.args[part.args.index("--run-dir") + 1] == str(run.resolve())
    operator = TOPOLOGY.market.operator
    assert configure.args[:2] == ("market", "configure") and configure.org == operator
    by_role = {role: sorted(p.org for p in parts if p.role == role) for role in {p.role for p in parts}}
    assert by_role == {
        "matcher": sorted(TOPOLOGY.market.matchers),
        "traders": sorted(RAS),
        "gates": [operator],
    }
    assert [(p.org, p.args[:2], p.args[-1]) for p in webs] == [
        (org, ("web", "serve"), "--detach") for org in TOPOLOGY.org_names
    ]
    commands = {p.role: p.args[:2] for p in parts}
    assert commands == {
        "matcher": ("market", "serve"),
        "traders": ("market", "trade"),
        "gates": ("market", "watch"),
    }


def test_an_as_command_opens_the_sessions_of_the_organisation_holding_its_identity_only(tmp_path):
    (tmp_path / "network.json").write_text(json.dumps({"port_base": TOPOLOGY.port_base}))
    ra1 = sessions_of(str(tmp_path), "RA1")
    with pytest.raises(CustodyError, match="hold no key of TSO"):
        ra1("TSO")
    with pytest.raises(CustodyError, match="hold no key of RA2"):
        ra1("RA2")
    assert sessions_of(str(tmp_path), "TSO").keyring.org == "TSO"


class OneOrganisation(SessionPool):
    """One organisation's sessions on the embedded ledger: any other identity is refused, as by its Keyring."""

    def __init__(self, ledger, run_dir, org: str):
        self.topology = TOPOLOGY
        self.run_dir = run_dir
        self.org = org
        self.asked: set[str] = set()
        super().__init__(
            lambda who: Session(
                EmbeddedGateway(make_identity(f"{who}MSP", f"User1@{who.lower()}"), ledger), TOPOLOGY, who
            )
        )

    def __call__(self, who: str) -> Session:
        self.asked.add(who)
        if who != self.org:
            raise CustodyError(f"{self.org}'s processes hold no key of {who}")
        return super().__call__(who)


def test_the_demo_plan_rehearsed_with_one_organisation_per_part_finalises_gates_with_every_ras_orders(tmp_path):
    ledger = EmbeddedLedger(build_chaincode(), COLLECTIONS)
    operator = OneOrganisation(ledger, tmp_path, TOPOLOGY.market.operator)
    operator(operator.org).market.configure({"gate_seconds": 3, "proposal_seconds": 1, "objective": "welfare"})
    stop = threading.Event()
    pools = [operator]
    threads = []
    for org in TOPOLOGY.market.matchers:
        pools.append(OneOrganisation(ledger, tmp_path, org))
        threads += start_matchers(pools[-1], [org], stop, poll_seconds=0.3)[1]
    placed: dict[str, list[str]] = {}
    failures: list[BaseException] = []

    def trader(ra: str) -> None:
        pools.append(OneOrganisation(ledger, tmp_path, ra))
        try:
            placed[ra] = trade(pools[-1], ra, trader_count=12, gates=2, stop=threading.Event())
        except BaseException as error:  # shown by the assertion below
            failures.append(error)

    traders = [threading.Thread(target=trader, args=(ra,)) for ra in RAS]
    try:
        for thread in traders:
            thread.start()
        for thread in traders:
            thread.join(timeout=60)
        assert not failures, failures
        gates = sorted({gate for ra_gates in placed.values() for gate in ra_gates})
        tso = operator(operator.org).market
        finals = [
            eventually(lambda g=g: (lambda r: r if r["status"] == "finalised" else None)(tso.gate(g)), g, 30)
            for g in gates
        ]
        books = {final["id"]: {o["placed_by"] for o in tso.book(final["id"])["orders"]} for final in finals}
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        ledger.close()
    assert set(placed) == set(RAS) and all(len(g) == 2 for g in placed.values())
    assert all(pool.asked == {pool.org} for pool in pools), [(p.org, p.asked) for p in pools]
    assert all(final["winner"] and final["withheld"] == [] for final in finals), finals
    for gate, placed_by in books.items():
        assert placed_by <= {ra for ra, ra_gates in placed.items() if gate in ra_gates}, gate
    assert set().union(*books.values()) == set(RAS)
    assert max(len(placed_by) for placed_by in books.values()) >= 2
