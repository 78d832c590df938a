"""SmartBFT (the topology's `orderers: consensus: BFT`) on a network of its own: it comes up and orders, and with
its leading orderer killed under the fault tests' load of meter readings the other two (a quorum, 2 of 3) change
the view and go on ordering; the orderer brought back catches up; nothing acknowledged is lost, nothing committed
twice. The figures go with the other faults' (conftest.py).

The network's ports start 500 above the fault suite's (GRIDLEDGER_FAULT_PORT_BASE, default 25100), so it runs
beside fault_network. Short by default (about a minute); GRIDLEDGER_CHAOS=1 loads it longer."""

import os
import time

import pytest
from fault_load import LONG, SteadyLoad
from test_faults import node_killed_and_restarted, run_fault, wait_caught_up

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
    others = [o for o in network.topology.orderers if o.name != victim.name]
    load = SteadyLoad(network, consumers_per_ra=8 if LONG else 4)
    try:

        def recovered(restarted_at, deadline):
            wait_caught_up(network, victim, others, deadline)
            return time.monotonic()

        row = run_fault(
            network,
            load,
            figures,
            f"orderer ({victim.name}, SmartBFT leader)",
            *node_killed_and_restarted(network, victim),
            recovered=recovered,
            down=ORDERER_DOWN,
        )
    finally:
        load.stop()
        load.close()
    row["network_up_seconds"] = up_seconds
    # The two live orderers changed the view and ordered while the third was down.
    assert row["acked_while_down"] > 0, row
    new_leader = network.leader()
    assert new_leader is not None and new_leader.name != victim.name, network.ordering_diagnosis()
