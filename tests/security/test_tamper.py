"""Tamper evidence on the real network: `gridledger audit` passes on an untouched ledger, and catches a private value
altered in one peer's state database (it no longer hashes to what the block recorded) and a block altered on one
peer's disk (its transactions no longer hash to its header). Each alteration is made on a stopped peer, as an
intruder with access to its disk would, and undone afterwards, so the network stays usable by the other tests."""

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from waiting import eventually

from consortium.policies import collection_writers
from network import fabric


def eventually_audited(check):
    """A peer still catching up may fail an audit or a read in any way: retry whatever it raises."""
    return eventually(check, retry_on=(Exception,))


pytestmark = [pytest.mark.timeout(600)]

# What the tool is built from: its source and the pinned module graph (goleveldb's version is the peer's).
TAMPER_INPUTS = (fabric.FABRIC_BUILD / "tamper" / "main.go", fabric.FABRIC_BUILD / "go.sum")


@pytest.fixture(scope="module")
def tamper_tool() -> Path:
    """network/fabric-build/tamper, built once into the cache (keyed by its inputs) with the pinned module graph."""
    if shutil.which("go") is None:
        pytest.skip("the tamper tool is Go (goleveldb, as the peer's state database); `go` is not on PATH")
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in TAMPER_INPUTS)).hexdigest()[:12]
    binary = fabric.cache_root() / "tools" / f"tamper-{digest}"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=readonly")
        subprocess.run(
            ["go", "build", "-trimpath", "-o", str(binary), "./tamper"],
            cwd=fabric.FABRIC_BUILD,
            env=env,
            check=True,
            timeout=300,
        )
    return binary


def audit(network, org, peer_org=None):
    from network.audit import audit_ledger

    return audit_ledger(network, org, peer_org)


def stop_peer(network, node):
    """Stops a peer so that its stores can be altered: it must have been running, and its state database's lock
    must be free (goleveldb holds an flock on LOCK; a busy machine may release it a moment after the pid is gone)."""
    assert network.process(node).stop(), f"{node.name} was not running"
    lock = network.root / "data" / node.name / "ledgersData" / "stateLeveldb" / "LOCK"
    deadline = time.monotonic() + 20
    while True:
        with open(lock, "a") as held:
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(held, fcntl.LOCK_UN)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{node.name}'s state database is still locked 20 s after it stopped"
                    ) from None
        time.sleep(0.2)


def restart(network, org):
    """Starts the organisation's stopped peer and waits until it sees the channel's other peers again."""
    node = network.topology.peer_of(org)
    deadline = time.monotonic() + 60
    network._start([node], lambda line: None, deadline)
    network.wait_for_gossip(deadline)


def put_private(network, org, collection, key, value: bytes):
    from network.connections import connect_as

    with connect_as(network, org) as gateway:
        contract = gateway.get_network(network.topology.channel).get_contract("gridledger", "records")
        contract.submit(
            "put_private_record",
            collection,
            key,
            transient={"record": value},
            # the collection's owner and a second member, as the collection's endorsement policy requires
            endorsing_organizations=[
                network.topology.organisation(o).msp_id for o in collection_writers(network.topology, collection)[0]
            ],
        )


def read_private(network, org, collection, key, peer_org) -> bytes:
    from network.connections import connect_as

    with connect_as(network, org) as gateway:
        contract = gateway.get_network(network.topology.channel).get_contract("gridledger", "records")
        return contract.evaluate(
            "get_private_record",
            collection,
            key,
            endorsing_organizations=[network.topology.organisation(peer_org).msp_id],
        )


def test_the_audit_passes_on_an_untouched_ledger_for_every_organisation(security_network):
    network = security_network
    tag = uuid.uuid4().hex[:8]
    for collection in network.topology.collections():
        put_private(network, collection, collection, f"audit-{tag}", json.dumps({"n": tag}).encode())
    for org in network.topology.org_names:
        report = eventually_audited(lambda: _clean(audit(network, org)))
        assert report.blocks > 1 and report.private_values_checked >= 1, report
        assert all(n.endswith(": same") for n in report.nodes_compared), report.nodes_compared
        assert len(report.nodes_compared) == len(network.topology.nodes) - 1


def _clean(report):
    assert report.ok, report.problems
    return report


def test_the_audit_command_prints_a_verdict(security_network):
    from cli.audit import audit as audit_command

    result = CliRunner().invoke(audit_command, ["--as", "RA1", "--run-dir", str(security_network.root), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["blocks"] > 1 and report["peer"] == "peer0.ra1"
    result = CliRunner().invoke(audit_command, ["--as", "Mallory", "--run-dir", str(security_network.root)])
    assert result.exit_code == 1 and result.stderr.startswith("error: --as and --peer must be one of")


def test_a_private_value_altered_in_one_peers_store_is_caught(security_network, tamper_tool):
    network = security_network
    key = f"tamper-{uuid.uuid4().hex[:8]}"
    original = b'{"kwh":12}'
    put_private(network, "RA1", "RA1", key, original)
    # AC1 is a member of RA1's collection: its peer holds the value. Alter it there, and only there.
    eventually_audited(lambda: _equal(read_private(network, "TSO", "RA1", key, "AC1"), original))
    peer = network.topology.peer_of("AC1")
    state = network.root / "data" / peer.name / "ledgersData" / "stateLeveldb"

    def alter(value: bytes):
        stop_peer(network, peer)
        subprocess.run(
            [
                str(tamper_tool),
                "-db",
                str(state),
                "-channel",
                network.topology.channel,
                "-ns",
                "gridledger$$pRA1",
                "-key",
                key,
                "-value",
                value.decode(),
            ],
            check=True,
            timeout=60,
        )
        restart(network, "AC1")

    alter(b'{"kwh":99}')
    try:
        # The altered peer serves the altered value; the other members still serve the one the block hashed.
        assert eventually_audited(lambda: read_private(network, "AC1", "RA1", key, "AC1")) == b'{"kwh":99}'
        assert read_private(network, "TSO", "RA1", key, "TSO") == original
        report = audit(network, "AC1")
        caught = [p for p in report.problems if repr(key) in p]
        assert len(caught) == 1 and "the private data was altered" in caught[0], report.problems
        assert hashlib.sha256(original).hexdigest()[:16] in caught[0]
        assert audit(network, "TSO").ok and audit(network, "RA1").ok  # theirs is intact
        assert not audit(network, "TSO", peer_org="AC1").ok  # anyone can audit AC1's peer
    finally:
        alter(original)
    assert eventually_audited(lambda: _clean(audit(network, "AC1")))


def _equal(got, expected):
    assert got == expected, (got, expected)
    return got


def test_a_block_altered_on_one_peers_disk_is_caught(security_network):
    from network.connections import connect_as

    network = security_network
    marker = f"BLOCK-{uuid.uuid4().hex[:12]}".encode()
    forged = b"FORGE" + marker[5:]
    with connect_as(network, "RA2") as gateway:
        gateway.get_network(network.topology.channel).get_contract("gridledger", "records").submit(
            "put_record", f"tamper-block-{marker.decode()}", json.dumps({"note": marker.decode()})
        )
    # One more block after it, so the altered block is not the newest.
    with connect_as(network, "RA2") as gateway:
        gateway.get_network(network.topology.channel).get_contract("gridledger", "records").submit(
            "put_record", f"after-{uuid.uuid4().hex[:12]}", "{}"
        )
    peer = network.topology.peer_of("RA2")
    chain_dir = network.root / "data" / peer.name / "ledgersData" / "chains" / "chains" / network.topology.channel
    files = sorted(chain_dir.glob("blockfile_*"))

    def replace(old: bytes, new: bytes):
        stop_peer(network, peer)
        changed = 0
        for path in files:
            data = path.read_bytes()
            if old in data:
                path.write_bytes(data.replace(old, new))
                changed += 1
        restart(network, "RA2")
        return changed

    eventually_audited(lambda: _seen_by_ra2(network, marker))
    try:
        assert replace(marker, forged) == 1
        report = audit(network, "RA2")
        assert any("its transactions hash to" in p for p in report.problems), report.problems
        assert audit(network, "RA1").ok
    finally:
        replace(forged, marker)
    assert eventually_audited(lambda: _clean(audit(network, "RA2")))


def _seen_by_ra2(network, marker: bytes):
    peer = network.topology.peer_of("RA2")
    chain_dir = network.root / "data" / peer.name / "ledgersData" / "chains" / "chains" / network.topology.channel
    assert any(marker in path.read_bytes() for path in chain_dir.glob("blockfile_*"))
