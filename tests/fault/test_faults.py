"""Faults on the real network under a steady load of meter readings: one of the three orderers (the Raft leader)
killed and brought back, an RA's peer killed and brought back, an RA's chaincode server killed and restarted, and
the whole network stopped and started again from its ledgers. After each: every write acknowledged to a client is
on every live peer, nothing is committed twice; the load held during the fault and the time to recover are
recorded (printed at the end of the run; conftest.py).

Kills are SIGKILL, as a crash. The short runs (the default) keep each phase a few seconds; GRIDLEDGER_CHAOS=1
(`make chaos`) runs them for tens of seconds."""

import re
import time

import pytest
from fault_load import (
    DOWN,
    LONG,
    RECOVERY_LIMIT,
    SteadyLoad,
    node_killed_and_restarted,
    orderer_killed_and_brought_back,
    run_fault,
    wait_caught_up,
)

from network.chaincode import ChaincodeDeployment

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(1200 if LONG else 300)]

# Killing the Raft leader stops ordering until the other two elect one (Fabric's sample election timeout, 10 ticks
# of 500 ms): the orderer stays down long enough to show ordering resume without it.
ORDERER_DOWN = 9.0
LEADER = re.compile(r"^(\S+ \S+).*Raft leader changed: \d+ -> (\d+)")


@pytest.fixture(scope="module")
def load(fault_network):
    load = SteadyLoad(fault_network, consumers_per_ra=8 if LONG else 4)
    yield load
    load.stop()
    load.close()


def raft_leader(network):
    """The orderer the newest "Raft leader changed" line names (consenter ids follow the topology's order)."""
    newest = ("", 1)
    for node in network.topology.orderers:
        log = network.process(node).log_file
        for line in log.read_text(errors="replace").splitlines():
            match = LEADER.search(line)
            if match and match.group(1) > newest[0]:
                newest = (match.group(1), int(match.group(2)))
    return network.topology.orderers[newest[1] - 1]


def wait_for_ack(load, moment, deadline, ras) -> float:
    """The time of the first acknowledgement after `moment` from each of `ras`, the latest of them."""
    while time.monotonic() < deadline:
        firsts = [load.first_ack_after(moment, ra) for ra in ras]
        if all(firsts):
            return max(firsts)
        time.sleep(0.2)
    raise AssertionError(f"no acknowledged write from {', '.join(ras)} within {RECOVERY_LIMIT:.0f} s of recovery")


def test_an_orderer_killed_and_brought_back(fault_network, load, figures):
    network = fault_network
    victim = raft_leader(network)
    row = orderer_killed_and_brought_back(
        network, load, figures, victim, f"orderer ({victim.name}, Raft leader)", down=max(DOWN, ORDERER_DOWN)
    )
    # Two of three orderers elect a new leader and keep ordering while the third is still down.
    assert row["acked_while_down"] > 0, row


def test_a_peer_killed_and_brought_back(fault_network, load, figures):
    network = fault_network
    victim = network.topology.peer_of("RA1")
    others = [p for p in network.topology.peers if p.name != victim.name]

    def recovered(restarted_at, deadline):
        acked = wait_for_ack(load, restarted_at, deadline, ["RA1"])
        wait_caught_up(network, victim, others, deadline)
        return max(acked, time.monotonic())

    row = run_fault(
        network,
        load,
        figures,
        f"peer ({victim.name})",
        *node_killed_and_restarted(network, victim),
        recovered=recovered,
    )
    # RA2's and RA3's writes never needed RA1's peer.
    assert row["acked_while_down"] > 0, row


def test_a_chaincode_server_killed_and_restarted(fault_network, load, figures):
    network = fault_network
    deployment = ChaincodeDeployment(network)

    row = run_fault(
        network,
        load,
        figures,
        "chaincode server (RA1)",
        kill=lambda: deployment.server_process("RA1").kill(),
        restart=lambda: deployment.start_servers(log=lambda line: None),
        recovered=lambda at, deadline: wait_for_ack(load, at, deadline, ["RA1"]),
    )
    assert row["acked_while_down"] > 0, row


def test_the_whole_network_restarted_from_its_ledgers(fault_network, load, figures):
    network = fault_network
    ras = [w.ra for w in load.workers]

    def restart():
        # Network.up() without its final wait for equal heights, which a network under load never shows.
        deadline = time.monotonic() + RECOVERY_LIMIT
        network._start_nodes(list(network.topology.nodes), lambda line: None, deadline)
        network.wait_for_gossip(deadline)
        ChaincodeDeployment(network).deploy(lambda line: None)

    row = run_fault(
        network,
        load,
        figures,
        "whole network restart",
        kill=lambda: network.down(log=lambda line: None),
        restart=restart,
        recovered=lambda at, deadline: wait_for_ack(load, at, deadline, ras),
    )
    assert row["acked_readings"] > 0
