"""The audit's block checks on blocks built here: Fabric's header hash (ASN.1 DER), the data hash, the chain links,
the transactions filter, and private write sets checked against the hashes their block records."""

import hashlib

from fabric_protos.common import common_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import chaincode_event_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2

from gateway.blocks import chain_problems, header_bytes, header_hash, parse_block, private_data_problems


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def test_header_bytes_are_the_der_fabric_hashes():
    # asn1.Marshal(struct{Number *big.Int; PreviousHash, DataHash []byte}) in Go, for three numbers.
    assert header_bytes(0, b"", b"\x01" * 32) == bytes.fromhex("302702010004000420") + b"\x01" * 32
    assert header_bytes(128, b"\x02" * 32, b"\x03" * 32)[:6] == bytes.fromhex("304802020080")
    long = header_bytes(2**40, b"\x02" * 32, b"\x03" * 32)
    assert long[2:4] == bytes.fromhex("0206") and long[4:10] == (2**40).to_bytes(6, "big")


def private_write_set(collection_writes: dict[str, bytes]) -> bytes:
    return kv_rwset_pb2.KVRWSet(
        writes=[kv_rwset_pb2.KVWrite(key=k, value=v) for k, v in collection_writes.items()]
    ).SerializeToString()


def envelope(tx_id: str, public: dict[str, bytes], private: dict[str, dict[str, bytes]]) -> bytes:
    """An endorser transaction writing `public` keys and, per collection, `private` keys (as hashes)."""
    namespace = rwset_pb2.NsReadWriteSet(
        namespace="gridledger",
        rwset=kv_rwset_pb2.KVRWSet(
            writes=[kv_rwset_pb2.KVWrite(key=k, value=v) for k, v in public.items()]
        ).SerializeToString(),
    )
    for collection, writes in private.items():
        hashed = kv_rwset_pb2.HashedRWSet(
            hashed_writes=[
                kv_rwset_pb2.KVWriteHash(key_hash=sha(k.encode()), value_hash=sha(v)) for k, v in writes.items()
            ]
        )
        namespace.collection_hashed_rwset.add(
            collection_name=collection,
            hashed_rwset=hashed.SerializeToString(),
            pvt_rwset_hash=sha(private_write_set(writes)),
        )
    action = proposal_pb2.ChaincodeAction(
        results=rwset_pb2.TxReadWriteSet(ns_rwset=[namespace]).SerializeToString(),
        events=chaincode_event_pb2.ChaincodeEvent(event_name="RecordPut", payload=b"{}").SerializeToString(),
    )
    action.chaincode_id.name = "gridledger"
    response_payload = proposal_response_pb2.ProposalResponsePayload(extension=action.SerializeToString())
    action_payload = transaction_pb2.ChaincodeActionPayload()
    action_payload.action.proposal_response_payload = response_payload.SerializeToString()
    transaction = transaction_pb2.Transaction(
        actions=[transaction_pb2.TransactionAction(payload=action_payload.SerializeToString())]
    )
    header = common_pb2.Header(
        channel_header=common_pb2.ChannelHeader(
            type=common_pb2.ENDORSER_TRANSACTION, tx_id=tx_id, channel_id="grid"
        ).SerializeToString(),
        signature_header=common_pb2.SignatureHeader(
            creator=identities_pb2.SerializedIdentity(mspid="RA1MSP").SerializeToString()
        ).SerializeToString(),
    )
    payload = common_pb2.Payload(header=header, data=transaction.SerializeToString())
    return common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString()


def block(number: int, previous_hash: bytes, envelopes: list[bytes]) -> common_pb2.Block:
    made = common_pb2.Block()
    made.header.number = number
    made.header.previous_hash = previous_hash
    made.header.data_hash = sha(b"".join(envelopes))
    made.data.data.extend(envelopes)
    made.metadata.metadata.extend([b"", b"", bytes([transaction_pb2.VALID] * len(envelopes)), b"", b""])
    return made


def chain(length: int) -> list[common_pb2.Block]:
    blocks, previous = [], b""
    for n in range(length):
        made = block(n, previous, [envelope(f"tx{n}", {f"k{n}": b"v"}, {"RA1": {f"p{n}": b"secret"}})])
        blocks.append(made)
        previous = header_hash(n, made.header.previous_hash, made.header.data_hash)
    return blocks


def test_a_chain_that_links_and_hashes_has_no_problems_and_parses():
    parsed = [parse_block(b) for b in chain(4)]
    assert chain_problems(parsed) == []
    tx = parsed[2].transactions[0]
    assert (tx.tx_id, tx.valid, tx.creator_msp_id, tx.chaincode, tx.event_name) == (
        "tx2",
        True,
        "RA1MSP",
        "gridledger",
        "RecordPut",
    )
    assert [(w.key, w.value) for w in tx.public_writes] == [("k2", b"v")]
    assert tx.hashed_writes[0].key_hash == sha(b"p2") and tx.hashed_writes[0].value_hash == sha(b"secret")


def test_an_altered_transaction_a_broken_link_and_a_gap_are_each_named():
    blocks = chain(4)
    altered = blocks[1].data.data[0].replace(b"k1", b"K1")
    del blocks[1].data.data[:]
    blocks[1].data.data.append(altered)
    problems = chain_problems([parse_block(b) for b in blocks])
    assert problems == [problems[0]] and problems[0].startswith("block 1: its transactions hash to")

    blocks = chain(4)
    blocks[2].header.previous_hash = b"\x00" * 32
    assert chain_problems([parse_block(b) for b in blocks])[0].startswith("block 2 does not link to block 1")

    blocks = chain(4)
    assert chain_problems([parse_block(b) for b in (blocks[0], blocks[2])]) == [
        "block 1 is missing (block 2 follows 0)"
    ]


def test_a_rewritten_header_changes_the_hash_the_next_block_links_to():
    blocks = chain(3)
    blocks[1].header.data_hash = sha(b"forged")  # a forger who also fixes the data hash breaks the next link
    problems = chain_problems([parse_block(b) for b in blocks])
    assert any(p.startswith("block 2 does not link to block 1") for p in problems)


def test_private_data_is_checked_against_the_hashes_in_its_block():
    made = chain(1)[0]
    writes = {"p0": b"secret"}

    def delivered(values):
        raw = private_write_set(values)
        pvt = rwset_pb2.TxPvtReadWriteSet(
            ns_pvt_rwset=[
                rwset_pb2.NsPvtReadWriteSet(
                    namespace="gridledger",
                    collection_pvt_rwset=[rwset_pb2.CollectionPvtReadWriteSet(collection_name="RA1", rwset=raw)],
                )
            ]
        )
        return parse_block(made, {0: pvt})

    assert private_data_problems(delivered(writes)) == []
    problems = private_data_problems(delivered({"p0": b"SECRET"}))
    assert any("does not hash to what the block records" in p for p in problems)
    assert any("the value of key 'p0' does not hash" in p for p in problems)
