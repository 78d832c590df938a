"""The orderers' consensus type: chosen in topology.yaml (Raft unless it says BFT), kept by a network once created,
and turned into the channel configuration each type needs (Raft's consenters; SmartBFT's consenter mapping with
each orderer's signing identity, and options SmartBFT accepts)."""

import json
import re

import pytest
import yaml

from consortium import topology as topology_file
from consortium.topology import TopologyError
from network import configtx
from network.bringup import STATE_CHANGES, Network, NetworkError, _last_line_with
from network.crypto import CryptoLayout


def test_raft_unless_the_topology_or_the_environment_says_bft(monkeypatch, tmp_path):
    monkeypatch.delenv("GRIDLEDGER_ORDERER_CONSENSUS", raising=False)
    assert topology_file.load().consensus == "etcdraft"
    assert topology_file.load(consensus="BFT").consensus == "BFT"
    monkeypatch.setenv("GRIDLEDGER_ORDERER_CONSENSUS", "BFT")
    assert topology_file.load().consensus == "BFT"
    assert topology_file.load(consensus="etcdraft").consensus == "etcdraft"  # the argument wins
    assert topology_file.load().with_port_base(12100).consensus == "BFT"
    monkeypatch.delenv("GRIDLEDGER_ORDERER_CONSENSUS")
    raw = yaml.safe_load(topology_file.DEFAULT_PATH.read_text())
    raw["orderers"]["consensus"] = "solo"
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(TopologyError, match="consensus must be one of etcdraft, BFT, got 'solo'"):
        topology_file.load(path)


def _layout_with_signing_certs(topology, tmp_path) -> CryptoLayout:
    layout = CryptoLayout(topology, tmp_path / "crypto")
    for orderer in topology.orderers:
        signcerts = layout.node_dir(orderer) / "msp" / "signcerts"
        signcerts.mkdir(parents=True)
        (signcerts / f"{orderer.hostname}-cert.pem").write_text(f"certificate of {orderer.name}")
    return layout


def test_bft_channel_maps_each_orderer_to_an_id_its_identity_and_tls_certificates(tmp_path):
    topology = topology_file.load(port_base=12100, consensus="BFT")
    layout = _layout_with_signing_certs(topology, tmp_path)
    profile = configtx.configtx(topology, layout)["Profiles"][configtx.PROFILE]
    orderer = profile["Orderer"]
    assert orderer["OrdererType"] == "BFT" and "EtcdRaft" not in orderer
    assert profile["Capabilities"] == {"V3_0": True}  # configtxgen refuses BFT on any lower channel level
    mapping = orderer["ConsenterMapping"]
    assert [c["ID"] for c in mapping] == [1, 2, 3]
    for consenter, node in zip(mapping, topology.orderers, strict=True):
        assert (consenter["Host"], consenter["Port"]) == (node.host, node.listen_port)
        assert consenter["MSPID"] == topology.orderer_msp_id
        with open(consenter["Identity"]) as identity:
            assert identity.read() == f"certificate of {node.name}"
        assert consenter["ClientTLSCert"] == consenter["ServerTLSCert"] == str(layout.node_dir(node) / "tls/server.crt")


def test_bft_options_are_complete_and_pass_smartbfts_own_checks(tmp_path):
    topology = topology_file.load(consensus="BFT")
    options = configtx.configtx(topology, _layout_with_signing_certs(topology, tmp_path))["Profiles"][configtx.PROFILE][
        "Orderer"
    ]["SmartBFT"]

    def seconds(name: str) -> float:
        """A Go duration as the options use them: 250ms, 5s, 3m."""
        amount, unit = re.fullmatch(r"(\d+)(ms|s|m)", options[name]).groups()
        return int(amount) * {"ms": 0.001, "s": 1, "m": 60}[unit]

    # configtxgen takes the block whole: an option left out would be zero, which SmartBFT refuses at start.
    durations = [k for k in options if k.endswith(("Timeout", "Interval"))]
    assert all(seconds(k) > 0 for k in durations)
    assert all(options[k] > 0 for k in ("RequestBatchMaxCount", "RequestBatchMaxBytes", "RequestPoolSize"))
    # SmartBFT's Configuration.Validate (vendor/github.com/hyperledger-labs/SmartBFT/pkg/types/config.go).
    assert seconds("RequestForwardTimeout") <= seconds("RequestComplainTimeout") <= seconds("RequestAutoRemoveTimeout")
    assert seconds("ViewChangeResendInterval") <= seconds("ViewChangeTimeout")
    assert options["RequestBatchMaxCount"] <= options["RequestBatchMaxBytes"]
    # Batches as Raft's, so that the two are compared on the same blocks.
    raft = configtx.configtx(topology_file.load(consensus="etcdraft"), CryptoLayout(topology, tmp_path))
    assert (
        options["RequestBatchMaxCount"] == raft["Profiles"][configtx.PROFILE]["Orderer"]["BatchSize"]["MaxMessageCount"]
    )


def test_raft_channel_has_raft_consenters_and_no_bft_mapping(tmp_path):
    topology = topology_file.load(consensus="etcdraft")
    orderer = configtx.configtx(topology, CryptoLayout(topology, tmp_path))["Profiles"][configtx.PROFILE]["Orderer"]
    assert orderer["OrdererType"] == "etcdraft"
    assert "ConsenterMapping" not in orderer and "SmartBFT" not in orderer
    assert [c["Port"] for c in orderer["EtcdRaft"]["Consenters"]] == [o.listen_port for o in topology.orderers]


def test_a_network_keeps_the_consensus_type_it_was_created_with(monkeypatch, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "network.json").write_text(json.dumps({"port_base": 12100}))  # saved before the type was recorded
    monkeypatch.setenv("GRIDLEDGER_ORDERER_CONSENSUS", "BFT")
    assert Network(run).topology.consensus == "etcdraft"
    with pytest.raises(NetworkError, match="created with etcdraft orderers, not BFT"):
        Network(run, topology_file.load(port_base=12100, consensus="BFT"))
    (run / "network.json").write_text(json.dumps({"port_base": 12100, "consensus": "BFT"}))
    monkeypatch.delenv("GRIDLEDGER_ORDERER_CONSENSUS")
    assert Network(run).topology.consensus == "BFT"


def test_the_diagnosis_reads_smartbfts_role_changes_from_the_log(tmp_path):
    log = tmp_path / "orderer1.log"
    log.write_text(
        "2026-12-01 16:50:19.439 UTC 00e7 INFO [orderer.consensus.smartbft.consensus] ChangeRole -> Changing to "
        "follower role, current view: 1, current leader: 2 channel=grid\n"
        "2026-12-01 16:50:19.439 UTC 00e8 INFO [orderer.consensus.smartbft.consensus] startView -> Starting view "
        "with number 1, sequence 46, and decisions 40 channel=grid\n"
    )
    assert _last_line_with(log, STATE_CHANGES["BFT"]) == (
        "Changing to follower role, current view: 1, current leader: 2 channel=grid"
    )
    assert _last_line_with(log, STATE_CHANGES["etcdraft"]) is None
