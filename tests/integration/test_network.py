"""The network comes up from the topology, every node healthy and in step, and goes down leaving nothing."""

import json
import os
import socket
import urllib.request

import pytest

from consortium import topology as topology_file
from network.bringup import Network
from network.chaincode import ChaincodeDeployment
from network.connections import connect_as
from network.processes import PortInUse


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


def test_status_reports_each_node_and_chaincode_server_with_its_pid(fabric_network):
    statuses = fabric_network.status()
    assert sorted(s.kind for s in statuses) == ["chaincode"] * 6 + ["orderer"] * 3 + ["peer"] * 6
    for status in statuses:
        assert status.healthy and status.pid and _is_running(status.pid), status


def test_up_leaves_the_chaincode_committed_with_the_topologys_collections(fabric_network):
    committed = ChaincodeDeployment(fabric_network).committed()
    assert committed["approvals"] == {f"{org}MSP": True for org in fabric_network.topology.org_names}
    names = [c["Payload"]["StaticCollectionConfig"]["name"] for c in committed["collections"]["config"]]
    assert sorted(names) == sorted(fabric_network.topology.collections())


def test_a_killed_chaincode_server_is_restarted_by_up(fabric_network):
    deployment = ChaincodeDeployment(fabric_network)
    deployment.server_process("RA2").kill()
    assert not next(s for s in fabric_network.status() if s.name == "chaincode.ra2").healthy
    fabric_network.up(log=lambda line: None)
    assert next(s for s in fabric_network.status() if s.name == "chaincode.ra2").healthy


def test_a_changed_definition_is_committed_as_the_next_sequence_and_still_serves(fabric_network):
    deployment = ChaincodeDeployment(fabric_network)
    before = deployment.committed()["sequence"]
    (deployment.dir / "definition").unlink()  # as if the collections or packages had changed
    assert deployment.deploy(log=lambda line: None) == before + 1
    assert deployment.committed()["sequence"] == before + 1
    gateway = connect_as(fabric_network, "AC2")
    contract = gateway.get_network(fabric_network.topology.channel).get_contract("gridledger", "records")
    contract.submit("put_record", "after-redeploy", json.dumps({"sequence": before + 1}))
    assert json.loads(contract.evaluate("get_record", "after-redeploy")) == {"sequence": before + 1}


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
        assert network.down(clean=True, log=lambda line: None) == 15  # 9 nodes, 6 chaincode servers
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
