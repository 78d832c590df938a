"""An organisation's audit of what its peer keeps, against the chain: every key of the peer's state (public and
private, simple and composite), every block's and every transaction's signatures against the channel's and the
consortium's policies, and the chain against every other node's (`gridledger audit` prints it).

What is checked, and against what:
- the hash chain: every block's data hash against its transactions, every previous hash against the block before
  (gateway.blocks.chain_problems), block 0 against the genesis block the network was created with;
- every block from 1 on is signed by the ordering service (/Channel/Orderer/BlockValidation of the channel config);
- every transaction the block marks VALID (the peer writes those flags, nobody signs them) again: its id is the hash
  of its nonce and creator, the creator's signature is good and meets /Channel/Application/Writers, and its
  endorsements meet the policy of everything it writes: consortium/policies.py's majority for the chaincode's
  public keys and each collection's own policy for its private writes, the channel's lifecycle policies for
  `_lifecycle`;
- the VALID flags of the blocks (the peer writes those, nobody signs them) against the replay: a transaction marked
  VALID read each key at the version committed before it, and each of its range queries, re-run over the replayed
  state before it, returns the keys and versions it recorded or, when Fabric kept only a Merkle summary of them
  (more results than its max degree), the same summary (Fabric's algorithm, rwsetutil/query_results_helper.go);
- the peer's state database, read from its files (network/statedb.py), against the replay of the VALID writes of
  the blocks it has applied (its savepoint): each public key's value and version, each private-data hash, and each
  private value (its SHA-256 against the hash on chain) of the collections the organisation is a member of; a key
  the chain does not explain, a key it wrote that the peer lacks, and key-level metadata are each named;
- the private write sets the peer delivers beside each block against the hashes in that block;
- the newest block's header hash against the same block on every other peer and orderer.
Anything that could not be checked (a node unreachable, a database unreadable, a policy unknown) is a problem too:
the audit passes only when every part was checked and held.
"""

import hashlib
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from consortium import CHAINCODE_NAME
from consortium.policies import collection_policy, endorsement_policy
from network.connections import connect_as

LIFECYCLE = "_lifecycle"
# The peer keeps the channel's config envelope in its state, in the namespace of the peer itself.
CONFIG_NAMESPACE, CONFIG_KEY = "", b"CHANNEL_CONFIG_ENV_BYTES"
PRIVATE, HASHES = "$$p", "$$h"


@dataclass
class AuditReport:
    org: str
    peer: str
    blocks: int = 0
    transactions: int = 0
    valid_transactions: int = 0
    signatures_checked: int = 0
    savepoint: int | None = None
    public_keys_checked: int = 0
    private_hashes_checked: int = 0
    private_values_checked: int = 0
    private_write_sets: int = 0
    range_queries_checked: int = 0
    range_queries_summarised: int = 0  # of those checked, the ones Fabric recorded as a Merkle summary
    nodes_compared: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


@dataclass(frozen=True)
class ChainWrite:
    """The latest VALID write of a key, as the replay of the blocks finds it."""

    value: bytes | None  # None: deleted; for a private-data hash key, the value's hash
    block: int
    tx: int
    tx_id: str


def audit_ledger(network, org: str) -> AuditReport:
    """Audits `org`'s own peer as `org`'s User1: its state database, its blocks and the other nodes' tips."""
    from gateway import grpc_channel_for
    from gateway.blocks import BlockFetchError, chain_problems, fetch_blocks, private_data_problems
    from network.statedb import StateUnreadable, read_state, state_dir

    started = time.monotonic()
    topology = network.topology
    peer = topology.peer_of(org)
    report = AuditReport(org, peer.name)
    try:
        state = read_state(state_dir(network.root, peer.name), topology.channel)
        report.savepoint = state.savepoint
    except StateUnreadable as error:
        state = None
        report.problems.append(f"the state of {peer.name} could not be checked: {error}")
    channel = grpc_channel_for(peer.address, network.layout.node_dir(peer) / "tls" / "ca.crt")
    with connect_as(network, org) as gateway:
        try:
            blocks = list(fetch_blocks(gateway, topology.channel, channel=channel, private=True, timeout=120))
        except BlockFetchError as error:
            report.problems.append(f"{peer.name} is unreachable, its blocks could not be checked: {error}")
            blocks = []
        report.blocks = len(blocks)
        report.transactions = sum(len(b.transactions) for b in blocks)
        report.valid_transactions = sum(t.valid for b in blocks for t in b.transactions)
        report.problems += chain_problems(blocks)
        if blocks:
            report.problems += _genesis_problems(network, blocks[0])
        for block in blocks:
            report.private_write_sets += sum(len(sets) for sets in block.private_data.values())
            report.problems += private_data_problems(block)
        report.problems += signature_problems(blocks, topology, report)
        if state is not None and blocks:
            if state.savepoint is None or state.savepoint > blocks[-1].number:
                report.problems.append(
                    f"the state of {peer.name} says block {state.savepoint} is applied, its chain ends at "
                    f"block {blocks[-1].number}"
                )
            else:
                expected, stale_reads = replay(blocks, through=state.savepoint, report=report)
                report.problems += stale_reads
                report.problems += state_problems(expected, state.entries, member_collections(topology, org), report)
        if blocks:
            report.problems += _compare_tips(network, gateway, peer, blocks[-1], report)
    report.seconds = round(time.monotonic() - started, 2)
    return report


# The replay.


def replay(
    blocks: Iterable, through: int | None = None, report=None
) -> tuple[dict[tuple[str, bytes], ChainWrite], list[str]]:
    """(namespace, key) → the latest VALID write of the key in blocks up to `through`, as the peer's state database
    keys them: public keys in their namespace, private-data hashes in "<ns>$$h<collection>" keyed by the key's
    hash, the channel config under CONFIG_KEY. And every VALID transaction that read a key at another version than
    the one committed before it, or whose range query returns something else over the state before it: the flags
    say VALID, but Fabric's MVCC check would have refused it. Range queries checked are counted in `report`."""
    from fabric_protos.common import common_pb2

    latest: dict[tuple[str, bytes], ChainWrite] = {}
    problems = []
    for block in blocks:
        if through is not None and block.number > through:
            break
        for tx in block.transactions:
            if not tx.valid:
                continue
            if tx.type == common_pb2.HeaderType.Name(common_pb2.CONFIG):
                envelope = _config_envelope(block, tx.index)
                latest[(CONFIG_NAMESPACE, CONFIG_KEY)] = ChainWrite(envelope, block.number, tx.index, tx.tx_id)
            for read in tx.reads:
                namespace = f"{read.namespace}{HASHES}{read.collection}" if read.collection else read.namespace
                current = latest.get((namespace, read.key))
                committed = None if current is None or current.value is None else (current.block, current.tx)
                if committed != read.version:
                    problems.append(
                        f"block {block.number} transaction {tx.tx_id[:12]}… is marked VALID, but it read "
                        f"{_where(namespace, read.key)} at version {read.version} while {committed} was committed: "
                        "MVCC_READ_CONFLICT"
                    )
            for query in tx.range_reads:
                problem = range_read_problem(latest, query)
                if problem:
                    problems.append(f"block {block.number} transaction {tx.tx_id[:12]}…{problem}")
                elif report is not None:
                    report.range_queries_checked += 1
                    report.range_queries_summarised += query.merkle is not None
            for write in tx.public_writes:
                value = None if write.is_delete else write.value
                latest[(write.namespace, write.key.encode())] = ChainWrite(value, block.number, tx.index, tx.tx_id)
            for hashed in tx.hashed_writes:
                value = None if hashed.is_delete else hashed.value_hash
                namespace = f"{hashed.namespace}{HASHES}{hashed.collection}"
                latest[(namespace, hashed.key_hash)] = ChainWrite(value, block.number, tx.index, tx.tx_id)
    return latest, problems


# Range reads, re-run as Fabric's validator does (core/ledger/kvledger/txmgmt/validation/rangequery_validator.go).


def range_read_problem(latest: dict[tuple[str, bytes], ChainWrite], query) -> str | None:
    """None when the range query `query` (a gateway.blocks.RangeRead) returns over the state `latest` what the
    transaction recorded; else the end of a problem's sentence (after "block N transaction ID…")."""
    over = f"{query.namespace} [{_readable_key(query.start_key)}, {_readable_key(query.end_key)}"
    over += ")" if query.itr_exhausted else "]"
    if not query.namespace or PRIVATE in query.namespace or HASHES in query.namespace:
        return f": its range query over {over} could not be checked: the audit does not replay that namespace's state"
    if query.merkle is not None and query.merkle[0] < 2:
        return (
            f": its range query over {over} could not be checked: its Merkle summary has max degree {query.merkle[0]}"
        )
    returned = [(key, (chain.block, chain.tx)) for key, chain in _range(latest, query)]
    if query.merkle is None:
        if list(query.reads) == returned:
            return None
        return (
            f" is marked VALID, but its range query over {over} does not match the state before it: it read "
            f"{len(query.reads)} keys, the state held {len(returned)}{_first_difference(query.reads, returned)}: "
            "PHANTOM_READ_CONFLICT"
        )
    max_degree, max_level, hashes = query.merkle
    if merkle_summary(returned, max_degree) == (max_level, hashes):
        return None
    return (
        f" is marked VALID, but its range query over {over} does not match the state before it: its Merkle summary "
        f"(max degree {max_degree}) differs from that of the {len(returned)} keys the state held: PHANTOM_READ_CONFLICT"
    )


def _range(latest: dict[tuple[str, bytes], ChainWrite], query) -> list[tuple[bytes, ChainWrite]]:
    """The live keys of the namespace in [start, end) in key order (the state database's byte order), the end key
    included when the scan stopped there; an empty end key of an exhausted scan is no bound."""
    unbounded = query.itr_exhausted and not query.end_key
    return sorted(
        (key, chain)
        for (namespace, key), chain in latest.items()
        if namespace == query.namespace
        and chain.value is not None
        and key >= query.start_key
        and (unbounded or key < query.end_key or (not query.itr_exhausted and key == query.end_key))
    )


def _first_difference(recorded, returned) -> str:
    for read, held in zip(recorded, returned, strict=False):
        if read != held:
            return f" (it read {_readable_key(read[0])} at {read[1]}, the state held {_readable_key(held[0])} at {held[1]})"
    return ""


def merkle_summary(reads: list[tuple[bytes, tuple[int, int] | None]], max_degree: int):
    """(max level, hashes of that level) of Fabric's Merkle summary of the range query results `reads`, as its
    RangeQueryResultsHelper builds it; None when they are few enough (at most `max_degree`) to be kept raw. Every
    max_degree + 1 results are hashed (SHA-256 of their kvrwset.QueryReads); a level holding more than max_degree
    hashes is hashed (their concatenation) into one of the next level; at the end each lower level's remaining
    hashes are carried up, and a top level of more than max_degree hashes hashed into one above it."""
    from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2

    tree: dict[int, list[bytes]] = {}
    max_level = 1

    def update(leaf: bytes) -> None:
        nonlocal max_level
        tree.setdefault(1, []).append(leaf)
        level = 1
        while len(tree.get(level, [])) > max_degree:
            combined = _sha256(b"".join(tree.pop(level)))
            level += 1
            tree.setdefault(level, []).append(combined)
            max_level = max(max_level, level)

    def hashed(pending: list) -> bytes:
        kv_reads = [
            kv_rwset_pb2.KVRead(
                key=key.decode(), version=None if v is None else kv_rwset_pb2.Version(block_num=v[0], tx_num=v[1])
            )
            for key, v in pending
        ]
        return _sha256(kv_rwset_pb2.QueryReads(kv_reads=kv_reads).SerializeToString())

    pending: list = []
    for read in reads:
        pending.append(read)
        if len(pending) > max_degree:
            update(hashed(pending))
            pending = []
    if not tree:
        return None
    if pending:
        update(hashed(pending))
    for level in range(1, max_level):
        remaining = tree.pop(level, [])
        if remaining:
            carried = remaining[0] if len(remaining) == 1 else _sha256(b"".join(remaining))
            tree.setdefault(level + 1, []).append(carried)
    top = tree[max_level]
    if len(top) > max_degree:
        max_level, top = max_level + 1, [_sha256(b"".join(top))]
    return max_level, tuple(top)


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _config_envelope(block, index: int) -> bytes:
    from fabric_protos.common import common_pb2

    envelope = common_pb2.Envelope.FromString(common_pb2.Block.FromString(block.raw).data.data[index])
    return common_pb2.Payload.FromString(envelope.payload).data


def member_collections(topology, org: str) -> set[str]:
    """The private namespaces ("<ns>$$p<collection>") whose values `org`'s peer must hold."""
    own = {f"{CHAINCODE_NAME}{PRIVATE}{name}" for name, members in topology.collections().items() if org in members}
    return own | {f"{LIFECYCLE}{PRIVATE}_implicit_org_{topology.organisation(org).msp_id}"}


def state_problems(expected: dict[tuple[str, bytes], ChainWrite], entries, members: set[str], report=None) -> list[str]:
    """Every difference between the peer's state `entries` and the replayed chain `expected`: a value or version
    that differs, a key the chain never wrote (or deleted), a key it wrote that the peer lacks, a private value of a
    collection in `members` that is absent or does not hash to the hash on chain. Counts go to `report`."""
    problems = []
    held_private: set[tuple[str, bytes]] = set()
    found: set[tuple[str, bytes]] = set()
    for entry in entries:
        private = PRIVATE in entry.namespace
        if private:
            namespace, collection = entry.namespace.split(PRIVATE, 1)
            lookup = (f"{namespace}{HASHES}{collection}", hashlib.sha256(entry.key).digest())
            held_private.add(lookup)
        else:
            lookup = (entry.namespace, entry.key)
            found.add(lookup)
        where = _where(entry.namespace, entry.key)
        if entry.metadata:
            problems.append(f"{where}: holds key-level metadata, which the audit cannot check")
        chain = expected.get(lookup)
        if chain is None or chain.value is None:
            problems.append(
                f"{where}: the peer holds it, but no valid transaction wrote it"
                if chain is None
                else f"{where}: the peer holds it, but {_written(chain)} deleted it"
            )
            continue
        actual = hashlib.sha256(entry.value).digest() if private else entry.value
        if not _same_value(lookup, actual, chain.value):
            shown = f"a value hashing to {actual.hex()[:16]}…" if private else _shown(actual)
            recorded = f"{chain.value.hex()[:16]}…" if private else _shown(chain.value)
            problems.append(
                f"{where}: the peer holds {shown}, but {_written(chain)} recorded {recorded}: the "
                f"{'private data' if private else 'state'} was altered"
            )
        elif (entry.block, entry.tx) != (chain.block, chain.tx):
            problems.append(
                f"{where}: the peer's version is block {entry.block} transaction {entry.tx}, but the latest write "
                f"is {_written(chain)}"
            )
        if report is not None:
            if private:
                report.private_values_checked += 1
            elif HASHES in entry.namespace:
                report.private_hashes_checked += 1
            else:
                report.public_keys_checked += 1
    for (namespace, key), chain in expected.items():
        if chain.value is None:
            continue
        if (namespace, key) not in found:
            problems.append(f"{_where(namespace, key)}: {_written(chain)} wrote it, but the peer does not hold it")
        if HASHES in namespace:
            private = namespace.replace(HASHES, PRIVATE, 1)
            if private in members and (namespace, key) not in held_private:
                problems.append(
                    f"{private} key hash {key.hex()[:16]}…: {_written(chain)} wrote it to a collection the "
                    "organisation is a member of, but the peer does not hold the value"
                )
    return problems


def _same_value(lookup: tuple[str, bytes], actual: bytes, recorded: bytes) -> bool:
    if actual == recorded:
        return True
    if lookup != (CONFIG_NAMESPACE, CONFIG_KEY):
        return False
    # The peer stores the config envelope as it marshals it again; compare the messages, not the bytes.
    from fabric_protos.common import configtx_pb2
    from google.protobuf.message import DecodeError

    try:
        return configtx_pb2.ConfigEnvelope.FromString(actual) == configtx_pb2.ConfigEnvelope.FromString(recorded)
    except DecodeError:
        return False


def _where(namespace: str, key: bytes) -> str:
    if HASHES in namespace:
        return f"{namespace} key hash {key.hex()[:16]}…"
    return f"{namespace or '(peer)'} key {_readable_key(key)}"


def _readable_key(key: bytes) -> str:
    """A key as a person reads it: a composite key (NUL, type, NUL, each attribute, NUL) as type(attr, …)."""
    text = key.decode(errors="replace")
    if text.startswith("\x00") and text.endswith("\x00"):
        kind, *attributes = text[1:-1].split("\x00")
        return f"{kind}({', '.join(attributes)})"
    return repr(text)


def _shown(value: bytes) -> str:
    text = value[:60].decode(errors="replace")
    return repr(text + ("…" if len(value) > 60 else ""))


def _written(chain: ChainWrite) -> str:
    return f"block {chain.block} (transaction {chain.tx_id[:12]}…)"


# Signatures.


def signature_problems(blocks: list, topology, report=None) -> list[str]:
    """Every block from 1 on signed by the ordering service; every VALID transaction's creator and endorsers as the
    policies require (the module's docstring). The channel config is block 0's, updated by each config block."""
    from fabric_protos.common import common_pb2
    from google.protobuf.message import DecodeError

    from network.channel_policies import ChannelConfig, PolicyUnknown

    problems: list[str] = []
    channel = None
    chaincode_policy = endorsement_policy(topology)

    def check(where: str, what: str, policy, signatures) -> None:
        try:
            problems.extend(f"{where}: {what}{p}" for p in channel.satisfies(policy, signatures))
        except PolicyUnknown as error:
            problems.append(f"{where}: no policy {error} in the channel config, its {what or 'signatures'} unchecked")

    for block in blocks:
        if block.number > 0:
            if channel is None:
                problems.append(f"block {block.number}: no channel config before it, its signatures are unchecked")
                continue
            if not block.signatures:
                problems.append(f"block {block.number}: no orderer signature")
            check(f"block {block.number}", "", "/Channel/Orderer/BlockValidation", block.signatures)
            _count(report, len(block.signatures))
        for tx in block.transactions:
            where = f"block {block.number} transaction {tx.tx_id[:12] or tx.index}…"
            if tx.type == common_pb2.HeaderType.Name(common_pb2.CONFIG):
                if block.number > 0 and tx.valid:
                    problems.append(f"{where}: a config update, whose modification policies the audit cannot check")
                if tx.config and tx.valid:
                    try:
                        channel = ChannelConfig.parse(tx.config)
                    except (DecodeError, ValueError, KeyError) as error:
                        problems.append(f"{where}: its channel config cannot be read ({error})")
                        channel = None
                continue
            if not tx.valid:
                continue  # its writes do not count, and it was not required to meet any policy
            if channel is None:
                problems.append(f"{where}: no channel config before it, its signatures are unchecked")
                continue
            if tx.type != common_pb2.HeaderType.Name(common_pb2.ENDORSER_TRANSACTION):
                problems.append(f"{where}: a {tx.type} transaction marked VALID, which the audit cannot check")
                continue
            if hashlib.sha256(tx.nonce + tx.creator).hexdigest() != tx.tx_id:
                problems.append(f"{where}: its id is not the hash of its nonce and creator")
            creator = [tx.creator_signature] if tx.creator_signature else []
            check(where, "creator: ", "/Channel/Application/Writers", creator)
            _count(report, 1 + len(tx.endorsements))
            try:
                required = endorsement_policies(tx, topology, channel, chaincode_policy)
            except PolicyUnknown as error:
                problems.append(f"{where}: no policy known for {error}, its endorsements are unchecked")
                continue
            for policy in required:
                check(where, "endorsement: ", policy, tx.endorsements)
    return problems


def _count(report, signatures: int) -> None:
    if report is not None:
        report.signatures_checked += signatures


def endorsement_policies(tx, topology, channel, chaincode_policy: str) -> list:
    """The policies a VALID transaction's endorsements must meet, as Fabric's validation (statebased, v20) applies
    them: the chaincode's for its public writes (or when it writes nothing), each collection's for that
    collection's writes. Raises PolicyUnknown for a namespace or collection without a known policy."""
    from network.channel_policies import PolicyUnknown, parse_policy

    namespaces = {w.namespace for w in tx.public_writes} | {w.namespace for w in tx.hashed_writes}
    collections = {(w.namespace, w.collection) for w in tx.hashed_writes}
    if namespaces - {tx.chaincode}:
        raise PolicyUnknown(f"a write by {tx.chaincode} to namespace {sorted(namespaces - {tx.chaincode})}")
    public = bool(tx.public_writes) or not namespaces
    if tx.chaincode == CHAINCODE_NAME:
        known = topology.collections()
        unknown = sorted(c for _, c in collections if c not in known)
        if unknown:
            raise PolicyUnknown(f"collection {', '.join(unknown)}")
        return ([parse_policy(chaincode_policy)] if public else []) + [
            collection_policy(topology, c) for _, c in sorted(collections)
        ]
    if tx.chaincode == LIFECYCLE:
        required: list = ["/Channel/Application/LifecycleEndorsement"] if public else []
        for _, collection in sorted(collections):
            msp_id = collection.removeprefix("_implicit_org_")
            group = channel.org_group(msp_id)
            if not collection.startswith("_implicit_org_") or group is None:
                raise PolicyUnknown(f"_lifecycle collection {collection}")
            required.append(f"/Channel/Application/{group}/Endorsement")
        return required
    raise PolicyUnknown(f"chaincode {tx.chaincode!r}")


# Against the network.


def _genesis_problems(network, first) -> list[str]:
    from fabric_protos.common import common_pb2

    from gateway.blocks import parse_block

    if first.number != 0:
        return [f"the chain starts at block {first.number}, not at the genesis block"]
    if not network.block.exists():
        return [f"block 0 could not be checked: no genesis block at {network.block}"]
    genesis = parse_block(common_pb2.Block.FromString(network.block.read_bytes()))
    if genesis.header_hash != first.header_hash:
        return [f"block 0 is not the genesis block the network was created with ({network.block})"]
    return []


def _compare_tips(network, gateway, own_peer, tip, report: AuditReport) -> list[str]:
    """The block `tip` (number and header hash) as every other node has it; a node that cannot answer is a
    problem, since the chain could not be compared with its copy."""
    from fabric_protos.orderer import ab_pb2_grpc

    from gateway import grpc_channel_for
    from gateway.blocks import fetch_blocks, parse_block, seek_envelope

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
        except Exception as error:  # any failure to answer (down, refusing, timing out) is reported as such
            report.nodes_compared.append(f"{node.name}: unreachable")
            problems.append(
                f"{node.name} is unreachable ({type(error).__name__}): block {tip.number} was not compared with it"
            )
            continue
        if not blocks:
            report.nodes_compared.append(f"{node.name}: no block {tip.number}")
            problems.append(f"{node.name} has no block {tip.number}: the chains could not be compared")
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
