"""Blocks from a peer's Deliver service: fetch them (with the private data the caller may receive), check their
hash chain, and read what each transaction wrote, publicly and as private-data hashes, with the signatures that
vouch for it (the orderer's over each block header, the creator's over each transaction, each endorser's over the
endorsed response): network/channel_policies.py checks them.

After fabric-gateway's BlockEvents and Fabric's protoutil: a seek request is a signed envelope of type
DELIVER_SEEK_INFO; a block's header hash is SHA-256 of the ASN.1 DER of (number, previous hash, data hash), its
data hash SHA-256 of its envelopes concatenated; the transactions filter in the block metadata gives each
transaction's validation code. `DeliverWithPrivateData` returns, beside each block, the private write sets of the
collections the caller's organisation is a member of, as the peer keeps them (its private data store).

    with connect_as(network, "TSO") as gateway:            # any identity of the channel
        for block in fetch_blocks(gateway, "grid", channel=grpc_channel, private=True):
            ...
    problems = chain_problems(blocks)                      # [] when every block links and hashes as it says
"""

import hashlib
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import grpc
from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import chaincode_event_pb2, events_pb2_grpc, transaction_pb2
from google.protobuf.message import DecodeError

from gateway.api import VALID
from gateway.client import FabricGateway, FabricIdentity, Signing
from gateway.errors import GatewayError
from gateway.protoutil import NONCE_BYTES, chaincode_action, message_header, validation_code_name

DEFAULT_DELIVER_TIMEOUT = 60.0


class BlockFetchError(GatewayError):
    """The Deliver service refused the request or ended it with a status other than SUCCESS."""


@dataclass(frozen=True)
class PublicWrite:
    namespace: str
    key: str
    value: bytes
    is_delete: bool


@dataclass(frozen=True)
class HashedWrite:
    """A private write as every peer's block records it: SHA-256 of the key and of the value."""

    namespace: str
    collection: str
    key_hash: bytes
    value_hash: bytes
    is_delete: bool


@dataclass(frozen=True)
class Read:
    """A key a transaction read (point or range read) with the version it saw, (block, transaction) or None when
    the key did not exist: Fabric invalidates the transaction (MVCC_READ_CONFLICT) if the committed version differs."""

    namespace: str
    collection: str  # "" for public state
    key: bytes  # for a private key, its SHA-256
    version: tuple[int, int] | None


@dataclass(frozen=True)
class RangeRead:
    """A range query a transaction ran over public state: its range, and what it returned, as (key, version) in key
    order (`reads`) or, when it returned more than Fabric's max degree, as Fabric's Merkle summary of them (`merkle`:
    max degree, max level, the hashes of that level). Fabric re-runs the range at validation and invalidates the
    transaction (PHANTOM_READ_CONFLICT) if it returns anything else."""

    namespace: str
    start_key: bytes
    end_key: bytes  # the last key read when the scan stopped early (not `itr_exhausted`), and included then
    itr_exhausted: bool
    reads: tuple[tuple[bytes, tuple[int, int] | None], ...] = ()
    merkle: tuple[int, int, tuple[bytes, ...]] | None = None


@dataclass(frozen=True)
class PrivateWrite:
    """A private write in clear, from the private data a member peer delivered beside the block."""

    namespace: str
    collection: str
    key: str
    value: bytes
    is_delete: bool


@dataclass(frozen=True)
class SignedData:
    """`signature` by `identity` (a serialized msp.SerializedIdentity) over `data`, as protoutil.SignedData."""

    identity: bytes
    data: bytes
    signature: bytes


@dataclass(frozen=True)
class TransactionRecord:
    index: int  # position in the block
    tx_id: str
    type: str  # common.HeaderType name: ENDORSER_TRANSACTION, CONFIG, …
    validation_code: str  # peer.TxValidationCode name
    creator_msp_id: str
    chaincode: str
    public_writes: tuple[PublicWrite, ...] = ()
    hashed_writes: tuple[HashedWrite, ...] = ()
    # collection name → the pvt_rwset_hash the block records for it
    collection_rwset_hashes: tuple[tuple[str, str, bytes], ...] = ()
    event_name: str = ""
    event_payload: bytes = b""
    creator: bytes = b""  # the serialized identity of the signature header
    nonce: bytes = b""
    creator_signature: SignedData | None = None  # the envelope's signature over its payload
    endorsements: tuple[SignedData, ...] = ()  # each over proposal_response_payload ‖ endorser
    config: bytes = b""  # a CONFIG transaction's common.Config, serialized
    reads: tuple[Read, ...] = ()
    range_reads: tuple[RangeRead, ...] = ()

    @property
    def valid(self) -> bool:
        return self.validation_code == VALID


@dataclass(frozen=True)
class BlockRecord:
    number: int
    previous_hash: bytes
    data_hash: bytes
    computed_data_hash: bytes
    header_hash: bytes
    transactions: tuple[TransactionRecord, ...]
    # (namespace, collection, raw rwset bytes, writes in clear) of each transaction index, as delivered
    private_data: dict[int, tuple[tuple[str, str, bytes, tuple[PrivateWrite, ...]], ...]] = field(default_factory=dict)
    raw: bytes = b""
    # The orderer's signatures over the header (metadata SIGNATURES): each over value ‖ signature header ‖ header bytes
    signatures: tuple[SignedData, ...] = ()


# Hashes, as protoutil computes them.


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def _der_unsigned(number: int) -> bytes:
    # Two's complement, minimal: a leading zero byte when the high bit would make it negative.
    return _der(0x02, number.to_bytes(number.bit_length() // 8 + 1, "big"))


def header_bytes(number: int, previous_hash: bytes, data_hash: bytes) -> bytes:
    """protoutil.BlockHeaderBytes: asn1.Marshal of {Number *big.Int, PreviousHash, DataHash []byte}."""
    return _der(0x30, _der_unsigned(number) + _der(0x04, previous_hash) + _der(0x04, data_hash))


def header_hash(number: int, previous_hash: bytes, data_hash: bytes) -> bytes:
    return hashlib.sha256(header_bytes(number, previous_hash, data_hash)).digest()


def data_hash(envelopes: Iterable[bytes]) -> bytes:
    """protoutil.BlockDataHash: SHA-256 of the block's envelopes, concatenated."""
    return hashlib.sha256(b"".join(envelopes)).digest()


# Fetching.


def seek_envelope(
    identity: FabricIdentity, signer: Signing, channel_name: str, start: int, stop: int | None
) -> common_pb2.Envelope:
    """A signed DELIVER_SEEK_INFO envelope for blocks start..stop (stop None: the newest when asked)."""
    creator = identity.serialize()
    nonce = secrets.token_bytes(NONCE_BYTES)
    seek = ab_pb2.SeekInfo(
        start=ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=start)),
        behavior=ab_pb2.SeekInfo.BLOCK_UNTIL_READY,
    )
    if stop is None:
        seek.stop.newest.SetInParent()
    else:
        seek.stop.specified.number = stop
    payload = common_pb2.Payload(
        header=message_header(common_pb2.DELIVER_SEEK_INFO, channel_name, creator, nonce), data=seek.SerializeToString()
    ).SerializeToString()
    return common_pb2.Envelope(payload=payload, signature=signer.sign(payload))


def fetch_blocks(
    gateway: FabricGateway,
    channel_name: str,
    *,
    channel: grpc.Channel,
    start: int = 0,
    stop: int | None = None,
    private: bool = False,
    timeout: float = DEFAULT_DELIVER_TIMEOUT,
) -> Iterator[BlockRecord]:
    """Blocks start..stop (default: to the newest) from the peer at the other end of `channel`, as the gateway's
    identity. With `private`, also the private write sets this identity's organisation may receive."""
    stub = events_pb2_grpc.DeliverStub(channel)
    envelope = seek_envelope(gateway.identity, gateway.signer, channel_name, start, stop)
    call = (stub.DeliverWithPrivateData if private else stub.Deliver)(iter([envelope]), timeout=timeout)
    try:
        for response in call:
            kind = response.WhichOneof("Type")
            if kind == "status":
                if response.status != common_pb2.SUCCESS:
                    raise BlockFetchError(
                        f"failed to fetch blocks of {channel_name}: the peer answered "
                        f"{common_pb2.Status.Name(response.status)}"
                    )
                return
            if kind == "block":
                yield parse_block(response.block)
            elif kind == "block_and_private_data":
                yield parse_block(
                    response.block_and_private_data.block, dict(response.block_and_private_data.private_data_map)
                )
    except grpc.RpcError as error:
        raise BlockFetchError(
            f"failed to fetch blocks of {channel_name}: {error.code().name}: {error.details()}"
        ) from error
    finally:
        call.cancel()


# Reading a block.


def parse_block(
    block: common_pb2.Block, private_data: dict[int, rwset_pb2.TxPvtReadWriteSet] | None = None
) -> BlockRecord:
    """What a block says: its hashes, each transaction's writes and event, and the private data beside it."""
    header = block.header
    envelopes = list(block.data.data)
    metadata = block.metadata.metadata
    flags = metadata[common_pb2.TRANSACTIONS_FILTER] if len(metadata) > common_pb2.TRANSACTIONS_FILTER else b""
    transactions = tuple(
        _transaction(index, envelope, flags[index] if index < len(flags) else None)
        for index, envelope in enumerate(envelopes)
    )
    private = {}
    for index, pvt in (private_data or {}).items():
        private[int(index)] = tuple(_private_sets(pvt))
    signed_header = header_bytes(header.number, header.previous_hash, header.data_hash)
    return BlockRecord(
        header.number,
        bytes(header.previous_hash),
        bytes(header.data_hash),
        data_hash(envelopes),
        header_hash(header.number, header.previous_hash, header.data_hash),
        transactions,
        private,
        block.SerializeToString(),
        tuple(_block_signatures(metadata[common_pb2.SIGNATURES] if metadata else b"", signed_header)),
    )


def _block_signatures(metadata: bytes, signed_header: bytes) -> Iterator[SignedData]:
    """protoutil.BlockSignatureVerifier's signature set, for signature headers (Raft; BFT's identifier headers
    name a consenter by number instead, and are given with an empty identity)."""
    try:
        signed = common_pb2.Metadata.FromString(metadata)
    except DecodeError:
        return
    for entry in signed.signatures:
        if entry.signature_header:
            try:
                creator = bytes(common_pb2.SignatureHeader.FromString(entry.signature_header).creator)
            except DecodeError:
                creator = b""
            yield SignedData(creator, signed.value + entry.signature_header + signed_header, entry.signature)
        else:
            yield SignedData(b"", signed.value + entry.identifier_header + signed_header, entry.signature)


def _code_name(code: int | None) -> str:
    return "NOT_VALIDATED" if code is None else validation_code_name(code)


def _transaction(index: int, envelope_bytes: bytes, code: int | None) -> TransactionRecord:
    try:
        envelope = common_pb2.Envelope.FromString(envelope_bytes)
        payload = common_pb2.Payload.FromString(envelope.payload)
        channel_header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        signature_header = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
        creator = bytes(signature_header.creator)
        msp_id = identities_pb2.SerializedIdentity.FromString(creator).mspid
    except DecodeError:
        return TransactionRecord(index, "", "UNREADABLE", _code_name(code), "", "")
    try:
        kind = common_pb2.HeaderType.Name(channel_header.type)
    except ValueError:
        kind = str(channel_header.type)
    record = TransactionRecord(
        index,
        channel_header.tx_id,
        kind,
        _code_name(code),
        msp_id,
        "",
        creator=creator,
        nonce=bytes(signature_header.nonce),
        creator_signature=SignedData(creator, bytes(envelope.payload), bytes(envelope.signature)),
    )
    try:
        if channel_header.type == common_pb2.CONFIG:
            config = configtx_pb2.ConfigEnvelope.FromString(payload.data).config
            return replace(record, config=config.SerializeToString())
        if channel_header.type != common_pb2.ENDORSER_TRANSACTION:
            return record
        action = chaincode_action(payload)
        if action is None:
            return record
        rwset = rwset_pb2.TxReadWriteSet.FromString(action.results)
        event = chaincode_event_pb2.ChaincodeEvent.FromString(action.events)
        endorsed = transaction_pb2.ChaincodeActionPayload.FromString(
            transaction_pb2.Transaction.FromString(payload.data).actions[0].payload
        ).action
        public, hashed, collection_hashes, reads, ranges = [], [], [], [], []
        for ns in rwset.ns_rwset:
            kv = kv_rwset_pb2.KVRWSet.FromString(ns.rwset)
            for write in kv.writes:
                public.append(PublicWrite(ns.namespace, write.key, bytes(write.value), write.is_delete))
            reads += [Read(ns.namespace, "", r.key.encode(), _version(r)) for r in kv.reads]
            ranges += [_range_read(ns.namespace, query) for query in kv.range_queries_info]
            for collection in ns.collection_hashed_rwset:
                collection_hashes.append((ns.namespace, collection.collection_name, bytes(collection.pvt_rwset_hash)))
                hashed_set = kv_rwset_pb2.HashedRWSet.FromString(collection.hashed_rwset)
                reads += [
                    Read(ns.namespace, collection.collection_name, bytes(r.key_hash), _version(r))
                    for r in hashed_set.hashed_reads
                ]
                for hashed_write in hashed_set.hashed_writes:
                    hashed.append(
                        HashedWrite(
                            ns.namespace,
                            collection.collection_name,
                            bytes(hashed_write.key_hash),
                            bytes(hashed_write.value_hash),
                            hashed_write.is_delete or hashed_write.is_purge,  # a purge removes the hash too
                        )
                    )
    except DecodeError:
        return record
    return replace(
        record,
        chaincode=action.chaincode_id.name,
        public_writes=tuple(public),
        hashed_writes=tuple(hashed),
        collection_rwset_hashes=tuple(collection_hashes),
        event_name=event.event_name,
        event_payload=bytes(event.payload),
        reads=tuple(reads),
        range_reads=tuple(ranges),
        endorsements=tuple(
            SignedData(bytes(e.endorser), endorsed.proposal_response_payload + e.endorser, bytes(e.signature))
            for e in endorsed.endorsements
        ),
    )


def _range_read(namespace: str, query: kv_rwset_pb2.RangeQueryInfo) -> RangeRead:
    merkle = None
    if query.HasField("reads_merkle_hashes"):
        summary = query.reads_merkle_hashes
        merkle = (summary.max_degree, summary.max_level, tuple(bytes(h) for h in summary.max_level_hashes))
    return RangeRead(
        namespace,
        query.start_key.encode(),
        query.end_key.encode(),
        query.itr_exhausted,
        tuple((r.key.encode(), _version(r)) for r in query.raw_reads.kv_reads),
        merkle,
    )


def _version(read) -> tuple[int, int] | None:
    return (read.version.block_num, read.version.tx_num) if read.HasField("version") else None


def _private_sets(
    pvt: rwset_pb2.TxPvtReadWriteSet,
) -> Iterator[tuple[str, str, bytes, tuple[PrivateWrite, ...]]]:
    for ns in pvt.ns_pvt_rwset:
        for collection in ns.collection_pvt_rwset:
            writes = tuple(
                PrivateWrite(ns.namespace, collection.collection_name, w.key, bytes(w.value), w.is_delete)
                for w in kv_rwset_pb2.KVRWSet.FromString(collection.rwset).writes
            )
            yield ns.namespace, collection.collection_name, bytes(collection.rwset), writes


# Checking.


def chain_problems(blocks: Iterable[BlockRecord], first_previous_hash: bytes | None = None) -> list[str]:
    """Everything wrong with a run of consecutive blocks: a gap, a data hash that does not match the block's
    envelopes, a previous hash that is not the header hash of the block before. [] when the chain holds."""
    problems = []
    previous: BlockRecord | None = None
    for block in blocks:
        if block.computed_data_hash != block.data_hash:
            problems.append(
                f"block {block.number}: its transactions hash to {block.computed_data_hash.hex()[:16]}…, "
                f"its header says {block.data_hash.hex()[:16]}…"
            )
        if previous is not None:
            if block.number != previous.number + 1:
                problems.append(
                    f"block {previous.number + 1} is missing (block {block.number} follows {previous.number})"
                )
            elif block.previous_hash != previous.header_hash:
                problems.append(
                    f"block {block.number} does not link to block {previous.number}: previous hash "
                    f"{block.previous_hash.hex()[:16]}…, block {previous.number} hashes to "
                    f"{previous.header_hash.hex()[:16]}…"
                )
        elif first_previous_hash is not None and block.previous_hash != first_previous_hash:
            problems.append(f"block {block.number} does not link to the block before it")
        previous = block
    return problems


def private_data_problems(block: BlockRecord) -> list[str]:
    """Every private write set delivered beside the block that does not match the hashes the block records."""
    problems = []
    for index, sets in block.private_data.items():
        if index >= len(block.transactions):
            problems.append(f"block {block.number}: private data for transaction {index}, which does not exist")
            continue
        tx = block.transactions[index]
        recorded = {(ns, collection): digest for ns, collection, digest in tx.collection_rwset_hashes}
        hashed = {(w.namespace, w.collection, w.key_hash): w for w in tx.hashed_writes}
        for namespace, collection, raw, writes in sets:
            where = f"block {block.number} transaction {tx.tx_id[:12]}… collection {collection}"
            expected = recorded.get((namespace, collection))
            if expected is None:
                problems.append(f"{where}: the block records no hash for this collection")
                continue
            if hashlib.sha256(raw).digest() != expected:
                problems.append(f"{where}: the private write set does not hash to what the block records")
            for write in writes:
                entry = hashed.get((namespace, collection, hashlib.sha256(write.key.encode()).digest()))
                if entry is None:
                    problems.append(f"{where}: key {write.key!r} is not among the block's hashed writes")
                elif not write.is_delete and hashlib.sha256(write.value).digest() != entry.value_hash:
                    problems.append(f"{where}: the value of key {write.key!r} does not hash to what the block records")
    return problems
