"""The audit's recheck of range queries (network/audit.py's replay) on blocks built here: a range query Fabric
recorded as a Merkle summary (more results than its max degree, 50) is re-run over the replayed state before the
transaction and its summary recomputed; one whose state differs (another key, another version) is named, and so is
a summary the audit cannot recompute. The expected summaries are built here, level by level, from Fabric's
description of them (rwsetutil/query_results_helper.go), not by the audit's own function."""

import hashlib
import os

from fabric_protos.common import common_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import proposal_pb2, proposal_response_pb2, transaction_pb2

from gateway.blocks import parse_block
from network.audit import AuditReport, replay

NAMESPACE = "gridledger"
MAX_DEGREE = 50  # Fabric's maxDegreeQueryReadsHashing (core/ledger/kvledger/txmgmt/txmgr/query_executor.go)


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def expected_summary(reads: list[tuple[str, tuple[int, int]]], degree: int = MAX_DEGREE):
    """Fabric's summary of `reads`, level by level: the leaves hash each run of degree + 1 reads (a serialized
    kvrwset.QueryReads), the last run being shorter; each full group of degree + 1 hashes of a level hashes into one
    of the level above, the rest stays; at the end each level's rest, bottom up, goes up as one hash (itself if
    alone) appended to the level above; a top level of more than `degree` hashes is hashed into one above it."""
    queries = [
        kv_rwset_pb2.QueryReads(
            kv_reads=[
                kv_rwset_pb2.KVRead(key=k, version=kv_rwset_pb2.Version(block_num=b, tx_num=t)) for k, (b, t) in c
            ]
        )
        for c in chunks(reads, degree + 1)
    ]
    level = [sha(q.SerializeToString()) for q in queries]
    rests = []
    while len(level) > degree:
        full = len(level) // (degree + 1) * (degree + 1)
        rests.append(level[full:])
        level = [sha(b"".join(group)) for group in chunks(level[:full], degree + 1)]
    levels = [*rests, level]
    for index in range(len(levels) - 1):
        if levels[index]:
            rest = levels[index]
            levels[index + 1].append(rest[0] if len(rest) == 1 else sha(b"".join(rest)))
    top, max_level = levels[-1], len(levels)
    if len(top) > degree:
        top, max_level = [sha(b"".join(top))], max_level + 1
    return kv_rwset_pb2.QueryReadsMerkleSummary(max_degree=degree, max_level=max_level, max_level_hashes=top)


def envelope(kv: kv_rwset_pb2.KVRWSet, namespace: str = NAMESPACE) -> tuple[bytes, str]:
    """An endorser transaction carrying `kv` as its namespace's rwset (unsigned: the replay does not look) and its id."""
    action = proposal_pb2.ChaincodeAction(
        results=rwset_pb2.TxReadWriteSet(
            ns_rwset=[rwset_pb2.NsReadWriteSet(namespace=namespace, rwset=kv.SerializeToString())]
        ).SerializeToString()
    )
    action.chaincode_id.name = NAMESPACE
    action_payload = transaction_pb2.ChaincodeActionPayload()
    action_payload.action.proposal_response_payload = proposal_response_pb2.ProposalResponsePayload(
        extension=action.SerializeToString()
    ).SerializeToString()
    transaction = transaction_pb2.Transaction(
        actions=[transaction_pb2.TransactionAction(payload=action_payload.SerializeToString())]
    )
    tx_id = os.urandom(32).hex()
    header = common_pb2.Header(
        channel_header=common_pb2.ChannelHeader(
            type=common_pb2.ENDORSER_TRANSACTION, tx_id=tx_id, channel_id="grid"
        ).SerializeToString(),
        signature_header=common_pb2.SignatureHeader().SerializeToString(),
    )
    payload = common_pb2.Payload(header=header, data=transaction.SerializeToString())
    return common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString(), tx_id


def block(number: int, *envelopes: bytes):
    made = common_pb2.Block()
    made.header.number = number
    made.data.data.extend(envelopes)
    made.metadata.metadata.extend([b"", b"", bytes([transaction_pb2.VALID] * len(envelopes)), b"", b""])
    return parse_block(made)


def writes(keys: list[str]) -> kv_rwset_pb2.KVRWSet:
    return kv_rwset_pb2.KVRWSet(writes=[kv_rwset_pb2.KVWrite(key=k, value=b"{}") for k in keys])


def summarised_range(summary, start: str = "record-", end: str = "record.", exhausted: bool = True):
    info = kv_rwset_pb2.RangeQueryInfo(start_key=start, end_key=end, itr_exhausted=exhausted)
    info.reads_merkle_hashes.CopyFrom(summary)
    return kv_rwset_pb2.KVRWSet(range_queries_info=[info])


KEYS = [f"record-{i:03d}" for i in range(60)]


def audited(blocks) -> tuple[list[str], AuditReport]:
    report = AuditReport("TSO", "peer0")
    return replay(blocks, report=report)[1], report


def test_a_summarised_range_read_matching_the_replayed_state_passes_and_is_counted():
    range_read, _ = envelope(summarised_range(expected_summary([(k, (1, 0)) for k in KEYS])))
    unrelated, _ = envelope(writes(["other"]))  # outside the range: not among its results
    problems, report = audited([block(1, envelope(writes(KEYS))[0], unrelated), block(2, range_read)])
    assert problems == []
    assert (report.range_queries_checked, report.range_queries_summarised) == (1, 1)


def test_a_summary_of_several_levels_is_recomputed():
    keys = [f"record-{i:05d}" for i in range(51 * 51 + 40)]  # 52 leaves: two levels, then carried up
    summary = expected_summary([(k, (1, 0)) for k in keys])
    assert summary.max_level == 2
    problems, report = audited([block(1, envelope(writes(keys))[0]), block(2, envelope(summarised_range(summary))[0])])
    assert problems == [] and report.range_queries_summarised == 1


def test_a_range_read_when_the_state_had_another_key_fails_naming_the_transaction():
    range_read, tx_id = envelope(summarised_range(expected_summary([(k, (1, 0)) for k in KEYS])))
    phantom, _ = envelope(writes(["record-030a"]))  # committed before the range query, which did not see it
    problems, report = audited([block(1, envelope(writes(KEYS))[0], phantom), block(2, range_read)])
    assert len(problems) == 1 and tx_id[:12] in problems[0]
    assert "marked VALID, but its range query over gridledger" in problems[0]
    assert "does not match the state before it" in problems[0]
    assert report.range_queries_checked == 0


def test_a_range_read_when_the_state_had_another_version_fails():
    range_read, tx_id = envelope(summarised_range(expected_summary([(k, (1, 0)) for k in KEYS])))
    # The key is rewritten in block 2 before the range query, which recorded its block 1 version.
    update, _ = envelope(writes([KEYS[17]]))
    problems, _ = audited([block(1, envelope(writes(KEYS))[0]), block(2, update, range_read)])
    assert len(problems) == 1 and tx_id[:12] in problems[0] and "does not match the state before it" in problems[0]


def test_a_scan_stopped_early_is_bounded_by_its_last_key_read():
    read = KEYS[:55]
    summary = expected_summary([(k, (1, 0)) for k in read])
    # Stopped at KEYS[54] (included); the keys after it are not in the range, as in Fabric's combined iterator.
    stopped, _ = envelope(summarised_range(summary, end=KEYS[54], exhausted=False))
    assert audited([block(1, envelope(writes(KEYS))[0]), block(2, stopped)])[0] == []
    # Read as exhausted at the same end key, the range excludes it: another summary.
    exhausted, tx_id = envelope(summarised_range(summary, end=KEYS[54], exhausted=True))
    problems = audited([block(1, envelope(writes(KEYS))[0]), block(2, exhausted)])[0]
    assert len(problems) == 1 and tx_id[:12] in problems[0]


def test_a_summary_the_audit_cannot_recompute_is_a_named_problem():
    # Fabric's merkle tree refuses a max degree below 2; the audit cannot rebuild such a summary.
    summary = expected_summary([(k, (1, 0)) for k in KEYS])
    summary.max_degree = 1
    unusable, tx_id = envelope(summarised_range(summary))
    problems, report = audited([block(1, envelope(writes(KEYS))[0]), block(2, unusable)])
    assert len(problems) == 1 and tx_id[:12] in problems[0] and "could not be checked" in problems[0]
    # A range over a namespace whose state the audit does not replay (the peer's own, "").
    own, own_id = envelope(summarised_range(expected_summary([(k, (1, 0)) for k in KEYS])), namespace="")
    problems, report = audited([block(1, envelope(writes(KEYS))[0]), block(2, own)])
    assert len(problems) == 1 and own_id[:12] in problems[0] and "could not be checked" in problems[0]
    assert report.range_queries_checked == 0


def test_raw_range_reads_are_rechecked_for_phantoms_too():
    info = kv_rwset_pb2.RangeQueryInfo(start_key="record-", end_key="record.", itr_exhausted=True)
    info.raw_reads.kv_reads.extend(
        kv_rwset_pb2.KVRead(key=k, version=kv_rwset_pb2.Version(block_num=1, tx_num=0)) for k in KEYS[:3]
    )
    raw, tx_id = envelope(kv_rwset_pb2.KVRWSet(range_queries_info=[info]))
    problems, report = audited([block(1, envelope(writes(KEYS[:3]))[0]), block(2, raw)])
    assert problems == [] and (report.range_queries_checked, report.range_queries_summarised) == (1, 0)
    problems, _ = audited([block(1, envelope(writes(KEYS[:4]))[0]), block(2, raw)])
    assert len(problems) == 1 and tx_id[:12] in problems[0] and "PHANTOM_READ_CONFLICT" in problems[0]
