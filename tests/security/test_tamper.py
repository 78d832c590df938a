"""Tamper evidence on the real network, played as an intruder with access to one peer's disk: `gridledger audit`
passes on an untouched ledger holding DR readings and market trades, and names what the intruder changed: a DR
reading (a composite key in RA1's private collection) and a market trade (a public composite key) altered in the
stopped AC1 peer's state database, each caught because it no longer matches the chain (the reading's hash on chain,
the trade's value in its block); a block altered on a peer's disk, caught because its transactions no longer hash
to its header. An audit that cannot reach a node, or its own peer, fails and names it. A range read of more results
than Fabric's max degree (50), which Fabric records as a Merkle summary rather than as the reads, is rechecked by
the audit rebuilding that summary from the replayed state (it passes, and counts it). Each alteration is undone
afterwards, so the network stays usable by the other tests."""

import fcntl
import json
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from click.testing import CliRunner
from waiting import eventually

from network.statedb import read_state, state_dir, state_tool

pytestmark = [pytest.mark.timeout(900)]


def eventually_audited(check):
    """A peer still catching up may fail an audit or a read in any way: retry whatever it raises."""
    return eventually(check, retry_on=(Exception,))


@pytest.fixture(scope="module")
def readings_and_trades(security_network):
    """A DR run (readings in every RA's collection) and one finalised market gate (trades, positions) on the
    network; the market's gate length put back to the topology's afterwards. The DR run is live (a one-minute
    window a little ahead, settled once its readings are due: about three minutes), so the market's gate runs
    beside it, each with sessions of its own."""
    from network.connections import Sessions
    from network.crypto import MeterOperator
    from sim.aggregation_system import AggregationSystem
    from sim.dr_run import simulate_dr
    from sim.market_rounds import simulate_market

    def dr_run():
        sessions = Sessions(str(security_network.root))
        meters = MeterOperator(security_network.layout)  # the meters sign what the RAs relay, as `dr simulate` has them
        for org in sessions.topology.organisations:
            if org.role == "ra":
                sessions(org.name).dr.meters = meters
        system = AggregationSystem(security_network.root / "audit-as.sqlite", sessions.topology)
        try:
            simulate_dr(sessions, system, consumer_count=6, minutes=1, baseline_minutes=3)
        finally:
            sessions.close()

    sessions = Sessions(str(security_network.root))
    rules = security_network.topology.market
    with ThreadPoolExecutor(max_workers=1) as pool:
        dr = pool.submit(dr_run)
        try:
            simulate_market(sessions, gates=1, gate_seconds=8, proposal_seconds=4, trader_count=10)
            sessions(rules.operator).market.configure(
                {
                    "gate_seconds": rules.gate_seconds,
                    "proposal_seconds": rules.proposal_seconds,
                    "objective": rules.objective,
                }
            )
        finally:
            sessions.close()
        dr.result()
    return security_network


def audit_command(network, org):
    """`gridledger audit --as ORG --json`: its exit code and report."""
    from cli.audit import audit

    result = CliRunner().invoke(audit, ["--as", org, "--run-dir", str(network.root), "--json"])
    assert result.exit_code in (0, 2), result.output
    return result.exit_code, json.loads(result.stdout)


def clean(network, org):
    code, report = audit_command(network, org)
    assert code == 0 and report["ok"], report["problems"]
    return report


def stop(network, node):
    """Stops a node; for a peer, waits until its state database's lock is free (goleveldb holds an flock on LOCK;
    a busy machine may release it a moment after the pid is gone)."""
    assert network.process(node).stop(), f"{node.name} was not running"
    if node.kind != "peer":
        return
    lock = state_dir(network.root, node.name) / "LOCK"
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


def start(network, node):
    """Starts a stopped node and waits until every peer sees the channel's other peers again."""
    deadline = time.monotonic() + 60
    network._start([node], lambda line: None, deadline)
    network.wait_for_gossip(deadline)


def test_the_audit_passes_on_an_untouched_ledger_for_every_organisation(readings_and_trades):
    network = readings_and_trades
    for org in network.topology.org_names:
        report = eventually_audited(lambda org=org: clean(network, org))
        print(
            f"audit as {org}: {report['seconds']} s, {report['blocks']} blocks, {report['signatures_checked']} "
            f"signatures, {report['public_keys_checked']} public keys, {report['private_values_checked']} private "
            f"values, {report['private_hashes_checked']} hashes"
        )
        assert report["blocks"] > 1 and report["public_keys_checked"] > 0 and report["private_hashes_checked"] > 0
        assert report["signatures_checked"] > report["valid_transactions"]
        assert all(n.endswith(": same") for n in report["nodes_compared"]), report["nodes_compared"]
        assert len(report["nodes_compared"]) == len(network.topology.nodes) - 1
        # every member organisation's peer holds private values (the TSO's of every RA collection)
        assert report["private_values_checked"] > 0


def test_the_audit_command_prints_a_verdict_and_refuses_an_unknown_organisation(security_network):
    from cli.audit import audit

    result = eventually_audited(
        lambda: _exit_zero(CliRunner().invoke(audit, ["--as", "RA1", "--run-dir", str(security_network.root)]))
    )
    assert result.output.startswith("audit of peer0.ra1 as RA1") and "every key, block and signature" in result.output
    result = CliRunner().invoke(audit, ["--as", "Mallory", "--run-dir", str(security_network.root)])
    assert result.exit_code == 1 and result.stderr.startswith("error: --as must be one of")


def _exit_zero(result):
    assert result.exit_code == 0, result.output
    return result


def _composite(key: bytes) -> str:
    kind, *attributes = key.decode()[1:-1].split("\x00")
    return f"{kind}({', '.join(attributes)})"


def test_the_audit_recomputes_fabrics_merkle_summary_of_a_large_range_read(security_network):
    """60 records put, then `records:get_records_by_range` over them submitted: a read-only function, yet its
    transaction commits with the range query in its rwset, as a Merkle summary since it returned more than 50."""
    from gateway import grpc_channel_for
    from gateway.blocks import fetch_blocks
    from network.connections import connect_as

    network, records_put = security_network, 60
    prefix = f"range-{uuid.uuid4().hex[:8]}-"
    with connect_as(network, "TSO") as gateway:
        records = gateway.get_network(network.topology.channel).get_contract("gridledger", "records")
        with ThreadPoolExecutor(max_workers=8) as pool:
            put = pool.map(
                lambda i: records.submit("put_record", f"{prefix}{i:03d}", json.dumps({"kwh": i})), range(records_put)
            )
            list(put)
        query = records.new_proposal("get_records_by_range", prefix, prefix[:-1] + ".").endorse()
        assert len(json.loads(query.result)) == records_put
        assert query.submit().status().successful
        peer = network.topology.peer_of("TSO")
        channel = grpc_channel_for(peer.address, network.layout.node_dir(peer) / "tls" / "ca.crt")
        blocks = list(fetch_blocks(gateway, network.topology.channel, channel=channel, timeout=60))
    (committed,) = [t for b in blocks for t in b.transactions if t.tx_id == query.transaction_id]
    (range_read,) = committed.range_reads
    assert committed.valid and range_read.reads == ()  # Fabric kept a summary, not the reads
    assert range_read.merkle is not None and range_read.merkle[0] == 50
    report = eventually_audited(lambda: clean(network, "TSO"))
    print(
        f"audit as TSO: {report['range_queries_checked']} range queries rechecked, "
        f"{report['range_queries_summarised']} of them summarised (Fabric's summary: level {range_read.merkle[1]}, "
        f"{len(range_read.merkle[2])} hashes)"
    )
    # it passed having rebuilt the summary: a summary it skipped or could not rebuild would not count (or pass)
    assert report["range_queries_summarised"] >= 1
    assert report["range_queries_checked"] >= report["range_queries_summarised"]


def test_a_dr_reading_and_a_market_trade_altered_in_a_stopped_peers_store_are_both_named(readings_and_trades):
    network = readings_and_trades
    tool = state_tool()
    peer = network.topology.peer_of("AC1")  # a member of RA1's collection: its peer holds RA1's readings
    database = state_dir(network.root, peer.name)
    held = {(e.namespace, e.key): e.value for e in read_state(database, network.topology.channel).entries}
    reading = (
        "gridledger$$pRA1",
        next(k for ns, k in held if ns == "gridledger$$pRA1" and k.startswith(b"\x00reading\x00")),
    )
    trade = ("gridledger", next(k for ns, k in held if ns == "gridledger" and k.startswith(b"\x00trades\x00")))
    originals = {reading: held[reading].decode(), trade: held[trade].decode()}
    forged = {
        reading: json.dumps({**json.loads(originals[reading]), "forged": 1}),  # one reading more, say
        trade: json.dumps({**json.loads(originals[trade]), "trades": []}),  # the gate's trades erased
    }

    def alter(values):
        stop(network, peer)
        for (namespace, key), value in values.items():
            subprocess.run(
                [
                    str(tool),
                    "-db",
                    str(database),
                    "-channel",
                    network.topology.channel,
                    "-ns",
                    namespace,
                    "-key-hex",
                    key.hex(),
                    "-value",
                    value if isinstance(value, str) else value.decode(),
                ],
                check=True,
                timeout=60,
            )
        start(network, peer)

    alter(forged)
    try:
        _, report = eventually_audited(lambda: _failing(audit_command(network, "AC1")))
        reading_problems = [p for p in report["problems"] if f"gridledger$$pRA1 key {_composite(reading[1])}" in p]
        trade_problems = [p for p in report["problems"] if f"gridledger key {_composite(trade[1])}" in p]
        assert len(reading_problems) == 1 and "the private data was altered" in reading_problems[0], report["problems"]
        assert len(trade_problems) == 1 and "the state was altered" in trade_problems[0], report["problems"]
        assert len(report["problems"]) == 2, report["problems"]  # nothing else is blamed
        # Refused by: the chain every other node holds, whose hashes and values the altered store no longer matches.
        clean(network, "TSO")
        clean(network, "RA1")
    finally:
        alter(originals)
    eventually_audited(lambda: clean(network, "AC1"))


def _failing(result):
    code, report = result
    assert code == 2 and len(report["problems"]) >= 2, report["problems"]
    return result


def test_an_audit_that_cannot_reach_a_node_or_its_own_peer_fails_and_names_it(readings_and_trades):
    network = readings_and_trades
    orderer = network.topology.orderers[-1]
    stop(network, orderer)
    try:
        code, report = audit_command(network, "TSO")
        assert code == 2 and f"{orderer.name}: unreachable" in report["nodes_compared"]
        assert any(p.startswith(f"{orderer.name} is unreachable") for p in report["problems"]), report["problems"]
    finally:
        start(network, orderer)
    peer = network.topology.peer_of("RA3")
    stop(network, peer)
    try:
        code, report = audit_command(network, "RA3")
        # its stopped peer's store is still read, but its blocks cannot be fetched: nothing to compare it with
        assert code == 2 and any(p.startswith(f"{peer.name} is unreachable") for p in report["problems"])
    finally:
        start(network, peer)
    eventually_audited(lambda: clean(network, "TSO"))
    eventually_audited(lambda: clean(network, "RA3"))


def test_a_block_altered_on_one_peers_disk_is_caught(security_network):
    from network.audit import audit_ledger
    from network.connections import connect_as

    network = security_network
    marker = f"BLOCK-{uuid.uuid4().hex[:12]}".encode()
    forged = b"FORGE" + marker[5:]
    with connect_as(network, "RA2") as gateway:
        records = gateway.get_network(network.topology.channel).get_contract("gridledger", "records")
        records.submit("put_record", f"tamper-block-{marker.decode()}", json.dumps({"note": marker.decode()}))
        records.submit("put_record", f"after-{uuid.uuid4().hex[:12]}", "{}")  # so the altered block is not the newest
    peer = network.topology.peer_of("RA2")
    chain_dir = network.root / "data" / peer.name / "ledgersData" / "chains" / "chains" / network.topology.channel

    def replace(old: bytes, new: bytes):
        stop(network, peer)
        changed = 0
        for path in sorted(chain_dir.glob("blockfile_*")):
            data = path.read_bytes()
            if old in data:
                path.write_bytes(data.replace(old, new))
                changed += 1
        start(network, peer)
        return changed

    eventually_audited(lambda: _holds(chain_dir, marker))
    try:
        assert replace(marker, forged) == 1
        report = audit_ledger(network, "RA2")
        assert any("its transactions hash to" in p for p in report.problems), report.problems
        assert audit_ledger(network, "RA1").ok
    finally:
        replace(forged, marker)
    eventually_audited(lambda: clean(network, "RA2"))


def _holds(chain_dir, marker: bytes):
    assert any(marker in path.read_bytes() for path in chain_dir.glob("blockfile_*"))
