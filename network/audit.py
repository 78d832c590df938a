"""An organisation's audit of the ledger its peer keeps: the block hash chain, that the chain is the one every other
node holds, and that the private data it holds matches the hashes the blocks record (`gridledger audit` prints it).

What is checked, and against what:
- every block's data hash against its transactions, and every block's previous hash against the header hash of
  the block before (gateway.blocks.chain_problems), from block 0 to the peer's newest;
- the newest block's header hash against the same block on every other peer and orderer: a chain rewritten
  consistently on one peer still differs from everyone else's;
- the private write sets the peer delivers beside each block (its private data store, for the collections the
  organisation is a member of) against the hashes in that block;
- the private values the peer serves now (its state database, read through the chaincode) against the hash of
  the latest valid write of each key in the blocks: a value altered in one peer's store is caught here.

The last check reads each value with the records contract's `get_private_record`, for the keys it accepts
(printable, at most 64 characters); other keys are counted as unchecked, never as verified.
"""

import hashlib
import time
from dataclasses import asdict, dataclass, field

from consortium import CHAINCODE_NAME
from network.connections import connect_as

RECORDS = "records"
MAX_RECORD_KEY_CHARS = 64


@dataclass
class AuditReport:
    org: str
    peer: str
    blocks: int = 0
    transactions: int = 0
    valid_transactions: int = 0
    private_write_sets: int = 0
    private_values_checked: int = 0
    private_values_unchecked: int = 0
    nodes_compared: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def audit_ledger(network, org: str, peer_org: str | None = None, compare: bool = True) -> AuditReport:
    """Audits the ledger of `peer_org`'s peer (default: org's own) as `org`'s User1."""
    from gateway import grpc_channel_for
    from gateway.blocks import BlockFetchError, chain_problems, fetch_blocks, private_data_problems

    started = time.monotonic()
    topology = network.topology
    peer = topology.peer_of(peer_org or org)
    report = AuditReport(org, peer.name)
    channel = grpc_channel_for(peer.address, network.layout.node_dir(peer) / "tls" / "ca.crt")
    with connect_as(network, org) as gateway:
        try:
            blocks = list(fetch_blocks(gateway, topology.channel, channel=channel, private=True))
        except BlockFetchError as error:
            report.problems.append(str(error))
            return report
        report.blocks = len(blocks)
        report.transactions = sum(len(b.transactions) for b in blocks)
        report.valid_transactions = sum(t.valid for b in blocks for t in b.transactions)
        report.problems += chain_problems(blocks)
        for block in blocks:
            report.private_write_sets += sum(len(sets) for sets in block.private_data.values())
            report.problems += private_data_problems(block)
        if compare and blocks:
            report.problems += _compare_tips(network, gateway, peer, blocks[-1], report)
        latest, keys = _latest_private_writes(blocks)
        contract = gateway.get_network(topology.channel).get_contract(CHAINCODE_NAME, RECORDS)
        report.problems += _check_private_state(contract, topology.organisation(peer.org).msp_id, latest, keys, report)
    report.seconds = round(time.monotonic() - started, 2)
    return report


def _compare_tips(network, gateway, own_peer, tip, report: AuditReport) -> list[str]:
    """The block `tip` (number and header hash) as every other node has it."""
    from fabric_protos.orderer import ab_pb2_grpc

    from gateway import grpc_channel_for
    from gateway.blocks import BlockFetchError, fetch_blocks, parse_block, seek_envelope

    problems = []
    topology = network.topology
    for node in topology.nodes:
        if node.name == own_peer.name:
            continue
        channel = grpc_channel_for(node.address, network.layout.node_dir(node) / "tls" / "ca.crt")
        try:
            if node.kind == "peer":
                blocks = list(
                    fetch_blocks(
                        gateway, topology.channel, channel=channel, start=tip.number, stop=tip.number, timeout=10
                    )
                )
            else:
                envelope = seek_envelope(gateway.identity, gateway.signer, topology.channel, tip.number, tip.number)
                call = ab_pb2_grpc.AtomicBroadcastStub(channel).Deliver(iter([envelope]), timeout=10)
                blocks = [parse_block(r.block) for r in call if r.WhichOneof("Type") == "block"]
        except (BlockFetchError, Exception) as error:  # a node that is down is reported, not fatal
            report.nodes_compared.append(f"{node.name}: unreachable ({type(error).__name__})")
            continue
        if not blocks:
            report.nodes_compared.append(f"{node.name}: has no block {tip.number} yet")
            continue
        other = blocks[0]
        if other.header_hash != tip.header_hash:
            problems.append(
                f"block {tip.number} on {own_peer.name} hashes to {tip.header_hash.hex()[:16]}…, on "
                f"{node.name} to {other.header_hash.hex()[:16]}…: the chains differ"
            )
            report.nodes_compared.append(f"{node.name}: DIFFERS")
        else:
            report.nodes_compared.append(f"{node.name}: same")
    return problems


def _latest_private_writes(blocks):
    """(collection, key hash) → (value hash or None when deleted, block number, tx id) of the latest valid write
    of the chaincode's private keys; and (collection, key hash) → key, for the keys delivered in clear."""
    latest: dict[tuple[str, bytes], tuple[bytes | None, int, str]] = {}
    keys: dict[tuple[str, bytes], str] = {}
    for block in blocks:
        for tx in block.transactions:
            if not tx.valid:
                continue
            for write in tx.hashed_writes:
                if write.namespace == CHAINCODE_NAME:
                    latest[(write.collection, write.key_hash)] = (
                        None if write.is_delete else write.value_hash,
                        block.number,
                        tx.tx_id,
                    )
            for namespace, collection, _, writes in block.private_data.get(tx.index, ()):
                if namespace == CHAINCODE_NAME:
                    for write in writes:
                        keys[(collection, hashlib.sha256(write.key.encode()).digest())] = write.key
    return latest, keys


def _check_private_state(contract, peer_msp_id: str, latest, keys, report: AuditReport) -> list[str]:
    from gateway.errors import GatewayError

    problems = []
    collections = sorted({collection for collection, _ in keys})
    for collection in collections:
        expected = {key_hash: entry for (c, key_hash), entry in latest.items() if c == collection}
        for key_hash, (value_hash, number, tx_id) in sorted(expected.items(), key=lambda item: item[1][1]):
            key = keys.get((collection, key_hash))
            where = (
                f"collection {collection} key {key!r}"
                if key is not None
                else f"collection {collection} key hash {key_hash.hex()[:16]}…"
            )
            if key is None or not key.isprintable() or not 1 <= len(key) <= MAX_RECORD_KEY_CHARS:
                report.private_values_unchecked += 1  # the records contract cannot read this key
                continue
            try:
                value = contract.evaluate("get_private_record", collection, key, endorsing_organizations=[peer_msp_id])
                actual = hashlib.sha256(value).digest()
            except GatewayError as error:
                actual = None if "no record with key" in str(error) else error
            if isinstance(actual, Exception):
                report.private_values_unchecked += 1
                problems.append(f"{where}: could not be read ({actual})")
                continue
            report.private_values_checked += 1
            if actual != value_hash:
                shown = "absent" if actual is None else f"{actual.hex()[:16]}…"
                recorded = "a delete" if value_hash is None else f"{value_hash.hex()[:16]}…"
                problems.append(
                    f"{where}: the peer holds a value hashing to {shown}, but block {number} "
                    f"(transaction {tx_id[:12]}…) records {recorded}: the private data was altered"
                )
    return problems
