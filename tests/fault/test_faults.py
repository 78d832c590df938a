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
from fault_load import LONG, SteadyLoad, verify

from network.chaincode import ChaincodeDeployment

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(1200 if LONG else 300)]

WARM = 20.0 if LONG else 2.0  # load before the fault
DOWN = 30.0 if LONG else 4.0  # how long the killed node stays down
AFTER = 20.0 if LONG else 2.0  # load after recovery
RECOVERY_LIMIT = 120.0
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


def _since(moment, start):
    return None if moment is None else round(moment - start, 2)


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


def height(network, node) -> int | None:
    try:
        admin = network.orderer_admin(node) if node.kind == "orderer" else network.peer_admin(node)
        return admin.height(network.topology.channel)
    except Exception:
        return None


def wait_caught_up(network, node, others, deadline) -> None:
    """Until `node`'s channel height reaches the highest of `others` (as read just before)."""
    while time.monotonic() < deadline:
        target = max(h for h in (height(network, other) for other in others) if h is not None)
        mine = height(network, node)
        if mine is not None and mine >= target:
            return
        time.sleep(0.3)
    raise AssertionError(f"{node.name} did not catch up within {RECOVERY_LIMIT:.0f} s")


def wait_for_ack(load, moment, deadline, ras) -> float:
    """The time of the first acknowledgement after `moment` from each of `ras`, the latest of them."""
    while time.monotonic() < deadline:
        firsts = [load.first_ack_after(moment, ra) for ra in ras]
        if all(firsts):
            return max(firsts)
        time.sleep(0.2)
    raise AssertionError(f"no acknowledged write from {', '.join(ras)} within {RECOVERY_LIMIT:.0f} s of recovery")


def node_killed_and_restarted(network, node):
    """(kill, restart) of one orderer or peer process: SIGKILL, then started again from its ledger."""
    return (
        lambda: network.process(node).kill(),
        lambda: network._start([node], lambda line: None, time.monotonic() + 60),
    )


def run_fault(network, load, figures, name, kill, restart, recovered, live_peers=None, down=DOWN):
    """Load, then kill(); `down` seconds; restart(); recovered(restarted_at) returns when the service is back;
    AFTER seconds more load; then the checks. Records the figures."""
    load.start()
    try:
        began = time.monotonic()
        time.sleep(WARM)
        killed_at = time.monotonic()
        kill()
        time.sleep(down)
        restarted_at = time.monotonic()
        restart()
        recovered_at = recovered(restarted_at, restarted_at + RECOVERY_LIMIT)
        time.sleep(AFTER)
    finally:
        load.stop()
    checks = verify(network, load, live_peers)
    row = {
        "fault": name,
        "load_before_wps": load.readings_per_second(began, killed_at),
        "load_during_wps": load.readings_per_second(killed_at, recovered_at),
        "acked_readings": checks["acked_readings"],
        "lost": checks["lost"],
        "duplicates": checks["duplicates"],
        "recovery_seconds": round(recovered_at - restarted_at, 2),
        "longest_stall_seconds": load.longest_stall(killed_at, recovered_at),
        "client_errors": load.errors_between(killed_at, recovered_at),
        "down_seconds": down,
        "first_ack_after_kill_seconds": _since(load.first_ack_after(killed_at), killed_at),
        "acked_while_down": len(load.acked(killed_at, restarted_at)),
        "details": checks,
    }
    figures.append(row)
    print(row)
    assert checks["lost"] == 0, checks
    assert checks["duplicates"] == 0, checks
    return row


def test_an_orderer_killed_and_brought_back(fault_network, load, figures):
    network = fault_network
    victim = raft_leader(network)
    others = [o for o in network.topology.orderers if o.name != victim.name]

    def recovered(restarted_at, deadline):
        wait_caught_up(network, victim, others, deadline)
        return time.monotonic()

    row = run_fault(
        network,
        load,
        figures,
        f"orderer ({victim.name}, Raft leader)",
        *node_killed_and_restarted(network, victim),
        recovered=recovered,
        down=max(DOWN, ORDERER_DOWN),
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
