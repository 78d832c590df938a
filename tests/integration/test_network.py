"""The network comes up from the topology, every node healthy and in step, and goes down leaving nothing."""

import os
import socket
import urllib.request
import json

import pytest

from network.bringup import Network
from network.processes import PortInUse
from network import topology as topology_file

pytestmark = pytest.mark.fabric


def test_every_node_of_the_topology_runs_and_reports_healthy(fabric_network):
    topology = fabric_network.topology
    assert [n.name for n in topology.orderers] == ["orderer0", "orderer1", "orderer2"]
    assert sorted(p.org for p in topology.peers) == ["AC1", "AC2", "RA1", "RA2", "RA3", "TSO"]
    for node in topology.nodes:
        with urllib.request.urlopen(f"http://{node.host}:{node.operations_port}/healthz", timeout=5) as answer:
            assert answer.status == 200 and json.load(answer)["status"] == "OK", node.name


def test_orderers_and_peers_are_members_of_the_channel_at_one_height(fabric_network):
    channel = fabric_network.topology.channel
    heights = {}
    for node in fabric_network.topology.orderers:
        admin = fabric_network.orderer_admin(node)
        assert admin.channels() == [channel]
        heights[node.name] = admin.height(channel)
    for node in fabric_network.topology.peers:
        admin = fabric_network.peer_admin(node)
        assert channel in admin.channels()
        heights[node.name] = admin.height(channel)
    assert len(set(heights.values())) == 1, heights
    assert min(heights.values()) >= 1


def test_status_reports_each_node_with_its_pid(fabric_network):
    statuses = fabric_network.status()
    assert len(statuses) == 9
    for status in statuses:
        assert status.healthy and status.pid and os.path.exists(f"/proc/{status.pid}"), status


def test_up_on_a_running_network_starts_no_twins(fabric_network):
    before = {s.name: s.pid for s in fabric_network.status()}
    lines = []
    fabric_network.up(log=lines.append)
    assert any("already running" in line for line in lines)
    assert {s.name: s.pid for s in fabric_network.status()} == before


def test_a_taken_port_is_named_in_a_clear_error(tmp_path):
    topology = topology_file.load(port_base=27100)
    taken = topology.orderers[1].admin_port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        with pytest.raises(PortInUse, match=f"port {taken} \\(orderer1 admin\\)"):
            Network(tmp_path / "run", topology).up(log=lambda line: None)
    assert not (tmp_path / "run" / "pids").exists(), "nothing may start when a port is taken"


def test_down_stops_exactly_what_it_started_and_clean_removes_the_ledgers(tmp_path):
    network = Network(tmp_path / "run", topology_file.load(port_base=27300))
    bystander = socket.socket()  # a process of someone else's on a neighbouring port stays untouched
    bystander.bind(("127.0.0.1", 27290))
    try:
        network.up(log=lambda line: None)
        pids = [s.pid for s in network.status()]
        assert all(pids)
        assert network.down(clean=True, log=lambda line: None) == 9
        assert not any(os.path.exists(f"/proc/{pid}") and _is_running(pid) for pid in pids)
        assert not network.root.exists()
        assert bystander.fileno() != -1
    finally:
        network.down(clean=True, log=lambda line: None)
        bystander.close()


def _is_running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except OSError:
        return False
