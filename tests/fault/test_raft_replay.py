"""Issue 16's Raft hang, found: the orderers restarted on a Raft log longer than one etcd/raft Ready must elect a
leader and order. Restarting, an orderer replays its whole Raft log since the last snapshot (Fabric sets no
`Applied` index), its three ConfChange entries first. etcd/raft hands the replay over in Readys of at most
MaxSizePerMsg (the channel's PreferredMaxBytes, 2 MB here); once the log is longer than that, the 2023 build's
chain goroutine, applying a ConfChange, waited on `WALSyncC` (chain.go:1183) while the node goroutine waited to
hand it the next Ready (node.go:156): a deadlock that leaves the raft node granting pre-votes it never sends and
never ticking (hyperledger/fabric#4199; fixed by #4201, in v2.5.3 and v3). A 14-minute demo writes about 4 MB;
a 4-minute one stays under 2 MB: hence "after a 14-minute demo, not after a 4-minute one".

This fills the Raft log past one Ready in seconds (60 KB records), then stops and starts the three orderers
CYCLES times; each time one must lead within LEADER_LIMIT and a submit commit within SUBMIT_LIMIT. On the 2023
build (GRIDLEDGER_FABRIC_VERSION=v1.4.0-rc1.0.20230405174026-695dd57e01c2) 5 of 6 such restarts had no leader
after 20 s; on v3.1.5, 0 of 6. The orderers are started directly, not through `network up`, whose restart of
orderers that stop campaigning would mask the deadlock."""

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from consortium import topology as topology_file
from network.bringup import Network
from network.connections import connect_as

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]

PORT_OFFSET = 600  # above the fault suite's base, beside fault_network and test_bft's network
READY_BYTES = 2 * 1024 * 1024  # MaxSizePerMsg = the channel's PreferredMaxBytes (network/configtx.py)
SNAPSHOT_BYTES = 16 * 1024 * 1024  # SnapshotIntervalSize: past it the replay starts after a snapshot
RECORD = json.dumps({"pad": "x" * 60_000})  # near the records contract's 64 KB limit
CYCLES = 3
LEADER_LIMIT = 10.0
SUBMIT_LIMIT = 10.0


@pytest.fixture(scope="module")
def raft_network(tmp_path_factory):
    port_base = int(os.environ.get("GRIDLEDGER_FAULT_PORT_BASE", "25100")) + PORT_OFFSET
    network = Network(tmp_path_factory.mktemp("raft-replay") / "run", topology_file.load(port_base=port_base))
    try:
        network.up(log=print)
        yield network
    finally:
        network.down(log=lambda line: None)


def ledger_bytes(network) -> int:
    """The orderer's block files: each block is one Raft entry, so this is the Raft log's size while no snapshot
    has been taken."""
    ledger = network.root / "data" / network.topology.orderers[0].name / "ledger"
    return sum(f.stat().st_size for f in ledger.rglob("*") if f.is_file())


def fill_past_one_ready(network) -> int:
    def client(index: int) -> None:
        org = network.topology.org_names[index % len(network.topology.org_names)]
        with connect_as(network, org) as gateway:
            records = gateway.get_network(network.topology.channel).get_contract("gridledger", "records")
            while ledger_bytes(network) < 2 * READY_BYTES:
                records.submit("put_record", f"replay-{index}-{time.time_ns()}", RECORD)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(client, range(4)))
    return ledger_bytes(network)


def test_orderers_restarted_on_a_raft_log_longer_than_one_ready_elect_a_leader(raft_network, figures):
    network = raft_network
    orderers = list(network.topology.orderers)
    size = fill_past_one_ready(network)
    snapshots = [
        p for o in orderers for p in (network.root / "data" / o.name / "etcdraft" / "snapshot").rglob("*.snap")
    ]
    assert READY_BYTES < size < SNAPSHOT_BYTES and not snapshots, (size, snapshots)  # what the replay needs
    leader_seconds = []
    for cycle in range(CYCLES):
        for node in orderers:
            network.process(node).stop()
        log_marks = {o.name: network.process(o).log_file.stat().st_size for o in orderers}
        started = time.monotonic()
        network._start(orderers, lambda line: None, started + 60)
        while network.leader() is None:
            assert time.monotonic() - started < LEADER_LIMIT, f"cycle {cycle}: {network.ordering_diagnosis()}"
            time.sleep(0.2)
        leader_seconds.append(round(time.monotonic() - started, 2))
        for node in orderers:  # each replayed its log from the start: the case that deadlocked
            with open(network.process(node).log_file, "rb") as log:
                log.seek(log_marks[node.name])
                assert log.read().count(b"Applied config change to add node") == 3, node.name
        submitted = time.monotonic()
        with connect_as(network, "TSO", submit_timeout=SUBMIT_LIMIT, commit_status_timeout=SUBMIT_LIMIT) as gateway:
            records = gateway.get_network(network.topology.channel).get_contract("gridledger", "records")
            records.submit("put_record", f"replay-probe-{cycle}", json.dumps({"cycle": cycle}))
        assert time.monotonic() - submitted < SUBMIT_LIMIT
    figures.append(
        {
            "fault": f"3 orderers restarted {CYCLES}x on a {size / 1e6:.1f} MB Raft log (> one 2 MB Ready)",
            "recovery_seconds": max(leader_seconds),
            "leader_seconds": leader_seconds,
        }
    )
