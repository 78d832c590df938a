"""SmartBFT (the topology's `orderers: consensus: BFT`) on a network of its own: it comes up and orders, and with
its leading orderer killed under the fault tests' load of meter readings the other two (a quorum, 2 of 3) change
the view and go on ordering; the orderer brought back catches up; nothing acknowledged is lost, nothing committed
twice. The figures go with the other faults' (conftest.py).

The network's ports start 500 above the fault suite's (GRIDLEDGER_FAULT_PORT_BASE, default 25100), so it runs
beside fault_network. Short by default (about a minute); GRIDLEDGER_CHAOS=1 loads it longer."""

import os
import time

import pytest
from fault_load import LONG, SteadyLoad, orderer_killed_and_brought_back

from consortium import topology as topology_file
from network.bringup import Network

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900 if LONG else 240)]

PORT_OFFSET = 500
# SmartBFT's followers suspect a silent leader after its 5 s heartbeat timeout (network/configtx.py), then change the
# view: the orderer stays down long enough to show ordering resume without it.
ORDERER_DOWN = 30.0 if LONG else 12.0


@pytest.fixture(scope="module")
def bft_network(tmp_path_factory):
    port_base = int(os.environ.get("GRIDLEDGER_FAULT_PORT_BASE", "25100")) + PORT_OFFSET
    network = Network(tmp_path_factory.mktemp("bft") / "run", topology_file.load(port_base=port_base, consensus="BFT"))
    try:
        began = time.monotonic()
        network.up(log=print)  # returns once a transaction has been ordered and committed
        yield network, round(time.monotonic() - began, 1)
    finally:
        network.down(log=lambda line: None)


def test_bft_orders_on_with_its_leader_killed_and_the_leader_catches_up(bft_network, figures):
    network, up_seconds = bft_network
    # The channel runs SmartBFT: its leader is named by SmartBFT's own gauge (Raft's would be absent).
    victim = network.leader()
    assert victim is not None, network.ordering_diagnosis()
    load = SteadyLoad(network, consumers_per_ra=8 if LONG else 4)
    try:
        row = orderer_killed_and_brought_back(
            network, load, figures, victim, f"orderer ({victim.name}, SmartBFT leader)", down=ORDERER_DOWN
        )
    finally:
        load.stop()
        load.close()
    row["network_up_seconds"] = up_seconds
    # The two live orderers changed the view and ordered while the third was down.
    assert row["acked_while_down"] > 0, row
    # Another orderer leads now. The restarted one's leader gauge may still say 1 for a while although its log says it
    # follows (seen in CI: "orderer0 (leader; last: Changing to follower role, current view: 1, current leader: 2)").
    leaders = [node.name for node in network.topology.orderers if network.leads(node)]
    assert any(name != victim.name for name in leaders), network.ordering_diagnosis()
