"""The audit's checks on a chain built here, with real certificates and signatures: a channel config of the topology's
organisations (each with its own CA and node OUs) and an ordering organisation, blocks signed by an orderer,
transactions signed by their creator and endorsed by peers. The replay of the chain against a peer's state (a
tampered value, a missing key, an extra key, an invalid transaction's writes), and the signatures against the
policies (a bad block or creator signature, an endorsement policy not met, an endorser from a forged CA)."""

import datetime
import hashlib
import os
from dataclasses import replace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2, configtx_pb2, policies_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.msp import identities_pb2, msp_config_pb2, msp_principal_pb2
from fabric_protos.orderer import configuration_pb2 as orderer_configuration_pb2
from fabric_protos.peer import proposal_pb2, proposal_response_pb2, transaction_pb2

from consortium import topology as topology_file
from gateway.blocks import header_hash, parse_block
from gateway.signing import P256_ORDER, Signer
from network.audit import member_collections, replay, signature_problems, state_problems
from network.channel_policies import parse_policy
from network.statedb import StateEntry

TOPOLOGY = topology_file.load()
ROLE = msp_principal_pb2.MSPRole


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def composite(kind: str, *attributes: str) -> str:
    return "\x00" + kind + "\x00" + "".join(a + "\x00" for a in attributes)


class Member:
    """A key and a certificate issued by an organisation's CA, with the node OU of its role."""

    def __init__(self, msp_id: str, ca_key, ca_name: x509.Name, role: str, name: str):
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                x509.NameAttribute(NameOID.COMMON_NAME, name),
            ]
        )
        self.certificate = _certificate(subject, ca_name, self.key.public_key(), ca_key)
        self.identity = identities_pb2.SerializedIdentity(
            mspid=msp_id, id_bytes=self.certificate.public_bytes(serialization.Encoding.PEM)
        ).SerializeToString()
        self.signer = Signer(
            self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )

    def sign(self, data: bytes) -> bytes:
        return self.signer.sign(data)


def _certificate(subject, issuer, public_key, signing_key) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=subject == issuer, path_length=None), critical=True)
        .sign(signing_key, hashes.SHA256())
    )


class Organisation:
    def __init__(self, msp_id: str):
        self.msp_id = msp_id
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"ca.{msp_id}")])
        self.ca = _certificate(self.ca_name, self.ca_name, self.ca_key.public_key(), self.ca_key)
        self.peer = self.member("peer", f"peer0.{msp_id}")
        self.client = self.member("client", f"User1.{msp_id}")
        self.orderer = self.member("orderer", f"orderer0.{msp_id}")

    def member(self, role: str, name: str) -> Member:
        return Member(self.msp_id, self.ca_key, self.ca_name, role, name)

    def group(self, policies: dict[str, str]) -> configtx_pb2.ConfigGroup:
        ous = msp_config_pb2.FabricNodeOUs(enable=True)
        for role in ("client", "peer", "admin", "orderer"):
            getattr(ous, f"{role}_ou_identifier").organizational_unit_identifier = role
        fabric = msp_config_pb2.FabricMSPConfig(
            name=self.msp_id, root_certs=[self.ca.public_bytes(serialization.Encoding.PEM)], fabric_node_ous=ous
        )
        group = configtx_pb2.ConfigGroup()
        group.values["MSP"].value = msp_config_pb2.MSPConfig(config=fabric.SerializeToString()).SerializeToString()
        for name, rule in policies.items():
            group.policies[name].policy.CopyFrom(signature_policy(self.msp_id, rule))
        return group


def signature_policy(msp_id: str, roles: str) -> policies_pb2.Policy:
    """OR of `roles` ("admin,client") of the MSP, as configtxgen writes a Signature policy."""
    names = {"member": ROLE.MEMBER, "admin": ROLE.ADMIN, "client": ROLE.CLIENT, "peer": ROLE.PEER}
    identities = [
        msp_principal_pb2.MSPPrincipal(
            principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
            principal=ROLE(msp_identifier=msp_id, role=names[role]).SerializeToString(),
        )
        for role in roles.split(",")
    ]
    rule = policies_pb2.SignaturePolicy(
        n_out_of=policies_pb2.SignaturePolicy.NOutOf(
            n=1, rules=[policies_pb2.SignaturePolicy(signed_by=i) for i in range(len(identities))]
        )
    )
    envelope = policies_pb2.SignaturePolicyEnvelope(rule=rule, identities=identities)
    return policies_pb2.Policy(type=policies_pb2.Policy.SIGNATURE, value=envelope.SerializeToString())


def implicit(rule: int, sub_policy: str) -> policies_pb2.Policy:
    meta = policies_pb2.ImplicitMetaPolicy(sub_policy=sub_policy, rule=rule)
    return policies_pb2.Policy(type=policies_pb2.Policy.IMPLICIT_META, value=meta.SerializeToString())


class Channel:
    """The topology's organisations and an ordering organisation, the config of their channel, and a chain."""

    def __init__(self):
        self.orgs = {o.name: Organisation(o.msp_id) for o in TOPOLOGY.organisations}
        self.ordering = Organisation(TOPOLOGY.orderer_msp_id)
        config = configtx_pb2.Config()
        application = config.channel_group.groups["Application"]
        for name, org in self.orgs.items():
            application.groups[name].CopyFrom(
                org.group({"Writers": "admin,client", "Endorsement": "peer", "Readers": "admin,peer,client"})
            )
        application.policies["Writers"].policy.CopyFrom(implicit(policies_pb2.ImplicitMetaPolicy.ANY, "Writers"))
        application.policies["LifecycleEndorsement"].policy.CopyFrom(
            implicit(policies_pb2.ImplicitMetaPolicy.MAJORITY, "Endorsement")
        )
        orderer = config.channel_group.groups["Orderer"]
        orderer.groups["OrdererOrg"].CopyFrom(self.ordering.group({"Writers": "member"}))
        orderer.policies["BlockValidation"].policy.CopyFrom(implicit(policies_pb2.ImplicitMetaPolicy.ANY, "Writers"))
        orderer.values["ConsensusType"].value = orderer_configuration_pb2.ConsensusType(
            type="etcdraft"
        ).SerializeToString()
        self.config = config
        self.blocks: list[common_pb2.Block] = []
        self.codes: list[list[int]] = []
        header = common_pb2.Header(
            channel_header=common_pb2.ChannelHeader(type=common_pb2.CONFIG, channel_id="grid").SerializeToString(),
            signature_header=common_pb2.SignatureHeader().SerializeToString(),
        )
        payload = common_pb2.Payload(header=header, data=configtx_pb2.ConfigEnvelope(config=config).SerializeToString())
        self.append([common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString()], signed=False)

    def transaction(
        self,
        creator: Member,
        endorsers: list[Member],
        public: dict[str, bytes | None] | None = None,
        private: dict[str, dict[str, bytes | None]] | None = None,
        chaincode: str = "gridledger",
        reads: dict[str, tuple[int, int] | None] | None = None,
    ) -> tuple[bytes, dict]:
        """An endorser transaction's envelope (public reads with the version seen, public writes, and private
        writes as hashes per collection; None deletes) and the private write sets a member peer keeps."""
        read_set = [
            kv_rwset_pb2.KVRead(key=k, version=None if v is None else kv_rwset_pb2.Version(block_num=v[0], tx_num=v[1]))
            for k, v in (reads or {}).items()
        ]
        namespace = rwset_pb2.NsReadWriteSet(
            namespace=chaincode,
            rwset=kv_rwset_pb2.KVRWSet(
                reads=read_set,
                writes=[
                    kv_rwset_pb2.KVWrite(key=k, value=v or b"", is_delete=v is None) for k, v in (public or {}).items()
                ],
            ).SerializeToString(),
        )
        for collection, writes in (private or {}).items():
            hashed = kv_rwset_pb2.HashedRWSet(
                hashed_writes=[
                    kv_rwset_pb2.KVWriteHash(
                        key_hash=sha(k.encode()), value_hash=b"" if v is None else sha(v), is_delete=v is None
                    )
                    for k, v in writes.items()
                ]
            )
            namespace.collection_hashed_rwset.add(collection_name=collection, hashed_rwset=hashed.SerializeToString())
        action = proposal_pb2.ChaincodeAction(
            results=rwset_pb2.TxReadWriteSet(ns_rwset=[namespace]).SerializeToString()
        )
        action.chaincode_id.name = chaincode
        response_payload = proposal_response_pb2.ProposalResponsePayload(
            proposal_hash=b"\x01" * 32, extension=action.SerializeToString()
        ).SerializeToString()
        action_payload = transaction_pb2.ChaincodeActionPayload()
        action_payload.action.proposal_response_payload = response_payload
        for endorser in endorsers:
            action_payload.action.endorsements.add(
                endorser=endorser.identity, signature=endorser.sign(response_payload + endorser.identity)
            )
        transaction = transaction_pb2.Transaction(
            actions=[transaction_pb2.TransactionAction(payload=action_payload.SerializeToString())]
        )
        nonce = os.urandom(24)
        header = common_pb2.Header(
            channel_header=common_pb2.ChannelHeader(
                type=common_pb2.ENDORSER_TRANSACTION,
                tx_id=hashlib.sha256(nonce + creator.identity).hexdigest(),
                channel_id="grid",
            ).SerializeToString(),
            signature_header=common_pb2.SignatureHeader(creator=creator.identity, nonce=nonce).SerializeToString(),
        )
        payload = common_pb2.Payload(header=header, data=transaction.SerializeToString()).SerializeToString()
        return common_pb2.Envelope(payload=payload, signature=creator.sign(payload)).SerializeToString(), {}

    def append(self, envelopes: list[bytes], codes: list[int] | None = None, signed: bool = True) -> None:
        made = common_pb2.Block()
        made.header.number = len(self.blocks)
        if self.blocks:
            previous = self.blocks[-1].header
            made.header.previous_hash = header_hash(previous.number, previous.previous_hash, previous.data_hash)
        made.header.data_hash = sha(b"".join(envelopes))
        made.data.data.extend(envelopes)
        codes = codes or [transaction_pb2.VALID] * len(envelopes)
        signatures = b""
        if signed:
            signatures = self.orderer_signature(made.header, self.ordering.orderer).SerializeToString()
        made.metadata.metadata.extend([signatures, b"", bytes(codes), b"", b""])
        self.blocks.append(made)

    def orderer_signature(self, header, orderer: Member) -> common_pb2.Metadata:
        value = b"orderer block metadata"
        signature_header = common_pb2.SignatureHeader(creator=orderer.identity, nonce=b"n" * 24).SerializeToString()
        signed = value + signature_header + _header_bytes(header)
        metadata = common_pb2.Metadata(value=value)
        metadata.signatures.add(signature_header=signature_header, signature=orderer.sign(signed))
        return metadata

    def parsed(self):
        return [parse_block(b) for b in self.blocks]

    def problems(self):
        return signature_problems(self.parsed(), TOPOLOGY)


def _header_bytes(header) -> bytes:
    from gateway.blocks import header_bytes

    return header_bytes(header.number, header.previous_hash, header.data_hash)


@pytest.fixture(scope="module")
def channel_template():
    return Channel()


@pytest.fixture
def channel(channel_template):
    """A fresh chain on the module's organisations (certificates are slow to make)."""
    fresh = Channel.__new__(Channel)
    fresh.__dict__.update(channel_template.__dict__)
    fresh.blocks = list(channel_template.blocks[:1])
    return fresh


def majority(channel) -> list[Member]:
    return [channel.orgs[name].peer for name in ("TSO", "AC1", "RA1", "RA2")]


# Signatures and policies.


def test_a_chain_signed_and_endorsed_as_the_policies_say_has_no_problem(channel):
    orgs = channel.orgs
    reading = composite("reading", "1", "C1", "2026-12-01T10:00")
    channel.append(
        [
            channel.transaction(orgs["TSO"].client, majority(channel), {composite("command", "1"): b"{}"})[0],
            # RA1's collection: RA1's peer and its AC's, as collection_policy("RA1") requires
            channel.transaction(
                orgs["RA1"].client, [orgs["RA1"].peer, orgs["AC1"].peer], None, {"RA1": {reading: b"5"}}
            )[0],
        ]
    )
    assert channel.problems() == []


def test_an_orderer_signature_over_another_header_is_named(channel):
    channel.append([channel.transaction(channel.orgs["TSO"].client, majority(channel), {"k": b"v"})[0]])
    block = channel.blocks[-1]
    other = common_pb2.BlockHeader(
        number=block.header.number, previous_hash=block.header.previous_hash, data_hash=sha(b"x")
    )
    block.metadata.metadata[0] = channel.orderer_signature(other, channel.ordering.orderer).SerializeToString()
    problems = channel.problems()
    assert any(p.startswith("block 1: the signature of OrdererMSP") and "does not verify" in p for p in problems)
    assert any("/Channel/Orderer/BlockValidation is not met" in p for p in problems), problems


def test_a_block_signed_by_a_peer_not_an_orderer_member_fails_block_validation(channel):
    channel.append([channel.transaction(channel.orgs["TSO"].client, majority(channel), {"k": b"v"})[0]])
    block = channel.blocks[-1]
    block.metadata.metadata[0] = channel.orderer_signature(block.header, channel.orgs["RA1"].peer).SerializeToString()
    assert any("/Channel/Orderer/BlockValidation is not met" in p for p in channel.problems())


def test_a_creator_signature_that_does_not_verify_is_named(channel):
    orgs = channel.orgs
    envelope = common_pb2.Envelope.FromString(
        channel.transaction(orgs["TSO"].client, majority(channel), {"k": b"v"})[0]
    )
    envelope.signature = orgs["TSO"].client.sign(b"something else")
    channel.append([envelope.SerializeToString()])
    problems = channel.problems()
    assert any("creator: the signature of TSOMSP User1.TSOMSP does not verify" in p for p in problems), problems


def test_a_peer_cannot_be_the_creator_of_a_transaction(channel):
    # /Channel/Application/Writers: an organisation's admins and clients, not its peers
    orgs = channel.orgs
    channel.append([channel.transaction(orgs["TSO"].peer, majority(channel), {"k": b"v"})[0]])
    assert any("creator: the policy /Channel/Application/Writers is not met" in p for p in channel.problems())


def test_a_valid_private_write_endorsed_by_its_owner_alone_breaks_the_collection_policy(channel):
    orgs = channel.orgs
    alone = channel.transaction(orgs["RA1"].client, [orgs["RA1"].peer], None, {"RA1": {"reading": b"99"}})[0]
    channel.append([alone])
    problems = channel.problems()
    assert len(problems) == 1, problems
    assert "endorsement: the policy AND('RA1MSP.peer', OR('AC1MSP.peer', 'TSOMSP.peer')) is not met" in problems[0]
    assert "RA1MSP peer0.RA1MSP" in problems[0]
    # The same transaction marked as Fabric marks it changes nothing and needs no policy.
    channel.blocks.pop()
    channel.append([alone], codes=[transaction_pb2.ENDORSEMENT_POLICY_FAILURE])
    assert channel.problems() == []


def test_public_writes_need_the_majority_and_peers_not_clients(channel):
    orgs = channel.orgs
    three = [orgs[name].peer for name in ("TSO", "AC1", "RA1")]
    channel.append([channel.transaction(orgs["TSO"].client, three, {"k": b"v"})[0]])
    assert any("OutOf(4," in p and "is not met" in p for p in channel.problems())
    channel.blocks.pop()
    with_a_client = [*three, orgs["RA2"].client]  # a client's signature is not a peer's endorsement
    channel.append([channel.transaction(orgs["TSO"].client, with_a_client, {"k": b"v"})[0]])
    assert any("OutOf(4," in p for p in channel.problems())


def test_an_endorser_whose_certificate_a_forged_ca_issued_does_not_count(channel):
    orgs = channel.orgs
    forger = Organisation("AC1MSP")  # a CA of its own, naming itself AC1MSP
    endorsers = [orgs["RA1"].peer, forger.peer]
    channel.append([channel.transaction(orgs["RA1"].client, endorsers, None, {"RA1": {"reading": b"99"}})[0]])
    problems = channel.problems()
    assert any("is not issued by a CA of AC1MSP" in p for p in problems), problems
    assert any("is not met" in p for p in problems)


def test_a_high_s_signature_is_refused_as_fabric_refuses_it(channel):
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

    orgs = channel.orgs
    envelope = common_pb2.Envelope.FromString(
        channel.transaction(orgs["TSO"].client, majority(channel), {"k": b"v"})[0]
    )
    r, s = decode_dss_signature(envelope.signature)
    envelope.signature = encode_dss_signature(r, P256_ORDER - s)  # verifies, but is the other form
    channel.append([envelope.SerializeToString()])
    assert any("has a high S" in p for p in channel.problems())


def test_the_policy_language_reads_what_policies_writes():
    from consortium.policies import collection_policy, endorsement_policy

    assert parse_policy(endorsement_policy(TOPOLOGY)).n == len(TOPOLOGY.organisations) // 2 + 1
    policy = collection_policy(TOPOLOGY, "RA1")
    assert parse_policy(str(policy)) == policy
    with pytest.raises(ValueError):
        parse_policy("AND('RA1MSP.peer'")


# The replay against the peer's state.


def entries_for(expected) -> list[StateEntry]:
    """The state a faithful peer holds for the replayed chain (no private values)."""
    return [
        StateEntry(namespace, key, write.value, write.block, write.tx)
        for (namespace, key), write in expected.items()
        if write.value is not None
    ]


def chain_with_trade_and_reading(channel):
    orgs = channel.orgs
    trade, reading = composite("trades", "2026-12-01T10:30:00"), composite("reading", "1", "C1", "10:00")
    channel.append(
        [
            channel.transaction(orgs["RA1"].client, majority(channel), {trade: b'{"wh":1500}', "gone": b"x"})[0],
            channel.transaction(
                orgs["RA1"].client, [orgs["RA1"].peer, orgs["AC1"].peer], None, {"RA1": {reading: b"5"}}
            )[0],
        ]
    )
    channel.append(
        [
            channel.transaction(orgs["RA1"].client, majority(channel), {"gone": None})[0],
            # refused by Fabric: its write never happened
            channel.transaction(orgs["RA1"].client, majority(channel), {trade: b'{"wh":9999}'})[0],
        ],
        codes=[transaction_pb2.VALID, transaction_pb2.MVCC_READ_CONFLICT],
    )
    return trade.encode(), reading.encode()


def test_a_faithful_state_matches_the_replay_and_every_key_is_counted(channel):
    trade, reading = chain_with_trade_and_reading(channel)
    expected, _ = replay(channel.parsed())
    assert expected[("gridledger", trade)].value == b'{"wh":1500}'  # the invalid transaction's write does not count
    assert expected[("gridledger", b"gone")].value is None
    state = [*entries_for(expected), StateEntry("gridledger$$pRA1", reading, b"5", 1, 1)]

    class Counts:
        public_keys_checked = private_hashes_checked = private_values_checked = 0

    counts = Counts()
    assert state_problems(expected, state, member_collections(TOPOLOGY, "AC1"), counts) == []
    # the config envelope, the trade; the reading's hash; the reading's value
    assert (counts.public_keys_checked, counts.private_hashes_checked, counts.private_values_checked) == (2, 1, 1)


def test_a_tampered_trade_and_a_tampered_reading_are_named(channel):
    trade, reading = chain_with_trade_and_reading(channel)
    expected, _ = replay(channel.parsed())
    state = [replace(e, value=b'{"wh":9999}') if e.key == trade else e for e in entries_for(expected)] + [
        StateEntry("gridledger$$pRA1", reading, b"50", 1, 1)
    ]
    problems = state_problems(expected, state, member_collections(TOPOLOGY, "AC1"))
    assert len(problems) == 2, problems
    assert problems[0].startswith("gridledger key trades(2026-12-01T10:30:00): the peer holds '{\"wh\":9999}'")
    assert "recorded '{\"wh\":1500}': the state was altered" in problems[0]
    assert problems[1].startswith("gridledger$$pRA1 key reading(1, C1, 10:00): the peer holds a value hashing to")
    assert sha(b"5").hex()[:16] in problems[1] and "the private data was altered" in problems[1]


def test_a_missing_key_an_extra_key_a_resurrected_key_and_a_wrong_version_are_named(channel):
    trade, reading = chain_with_trade_and_reading(channel)
    expected, _ = replay(channel.parsed())
    faithful = entries_for(expected)
    state = [e for e in faithful if e.key != trade]
    state += [
        StateEntry("gridledger", b"planted", b"1", 2, 0),
        StateEntry("gridledger", b"gone", b"x", 1, 0),
        StateEntry("gridledger$$hRA1", sha(b"planted"), sha(b"1"), 1, 1),
    ]
    state = [replace(e, tx=5) if e.namespace == "gridledger$$hRA1" and e.key == sha(reading) else e for e in state]
    problems = state_problems(expected, state, set())
    assert any(
        p.startswith("gridledger key 'planted': the peer holds it, but no valid transaction wrote it") for p in problems
    )
    assert any(
        p.startswith("gridledger key 'gone': the peer holds it, but block 2") and "deleted it" in p for p in problems
    )
    assert any(p.startswith("gridledger$$hRA1 key hash") and "no valid transaction wrote it" in p for p in problems)
    assert any("version is block 1 transaction 5, but the latest write is block 1" in p for p in problems)
    assert any(
        p.startswith("gridledger key trades(2026-12-01T10:30:00): block 1") and "does not hold it" in p
        for p in problems
    )
    assert len(problems) == 5, problems


def test_a_member_peer_lacking_a_private_value_is_named_a_non_member_is_not_asked(channel):
    _, reading = chain_with_trade_and_reading(channel)
    expected, _ = replay(channel.parsed())
    assert state_problems(expected, entries_for(expected), member_collections(TOPOLOGY, "RA2")) == []
    problems = state_problems(expected, entries_for(expected), member_collections(TOPOLOGY, "AC1"))
    assert problems == [
        f"gridledger$$pRA1 key hash {sha(reading).hex()[:16]}…: block 1 (transaction "
        f"{channel.parsed()[1].transactions[1].tx_id[:12]}…) wrote it to a collection the organisation is a member "
        "of, but the peer does not hold the value"
    ]


def test_the_replay_stops_at_the_savepoint(channel):
    trade, _ = chain_with_trade_and_reading(channel)
    assert replay(channel.parsed(), through=1)[0][("gridledger", b"gone")].value == b"x"
    assert ("gridledger", trade) not in replay(channel.parsed(), through=0)[0]


def test_a_transaction_marked_valid_that_read_a_stale_version_is_named(channel):
    # The validation flags are the peer's own, outside the block hash: an intruder may flip a refused one to VALID.
    trade, _ = chain_with_trade_and_reading(channel)
    orgs = channel.orgs
    key = trade.decode()
    fresh = channel.transaction(orgs["RA1"].client, majority(channel), {key: b"{}"}, reads={key: (1, 0), "new": None})
    stale = channel.transaction(orgs["RA1"].client, majority(channel), {key: b"{}"}, reads={key: (1, 0)})
    channel.append([fresh[0], stale[0]])
    _, problems = replay(channel.parsed())
    assert len(problems) == 1, problems
    assert (
        problems[0].startswith("block 3 transaction")
        and "read gridledger key trades(2026-12-01T10:30:00)" in problems[0]
    )
    assert "at version (1, 0) while (3, 0) was committed: MVCC_READ_CONFLICT" in problems[0]
    channel.blocks.pop()
    channel.append([fresh[0], stale[0]], codes=[transaction_pb2.VALID, transaction_pb2.MVCC_READ_CONFLICT])
    assert replay(channel.parsed())[1] == []
