"""A dishonest RA on the real network: RA1's chaincode server is replaced by a modified contract whose post_readings
writes an inflated reading with no checks at all, served where the honest one was (RA1's chaincode server address,
RA1's package id and TLS pair), so RA1's peer runs it for every RA1 transaction. What refuses each attack:

(a) the reading endorsed by RA1's peer alone is ordered but never takes effect: every peer's validation checks the
    RA1 collection's endorsement policy, AND('RA1MSP.peer', OR('AC1MSP.peer', 'TSOMSP.peer')) (consortium.policies),
    and records the transaction as ENDORSEMENT_POLICY_FAILURE;
(b) endorsed by RA1's peer and AC1's (as every client sends it, clients.contract), AC1's honest chaincode accepts the
    batch (C1's meter signed it) and computes a different write set: the gateway refuses to assemble the transaction ("ProposalResponsePayloads do not match"),
    so it is never even ordered; the same with the TSO as the second endorser;
(c) so nothing of the inflated value is readable on the TSO's, AC1's or RA1's peer.
Then the honest server is restored and an honest reading, and a meter's own, commit as usual.

A second test reads the committed chaincode definition: each collection carries the policy consortium.policies
derives from the topology.
"""

import base64
import json
import uuid

import pytest
from live_commands import live_command, past_baseline_minutes
from modified_servers import modified_server
from waiting import eventually

from clients.dr import Reading, meter_signatures, uniform_declaration
from consortium import topology as topology_file
from consortium.policies import SignaturePolicy, collection_policy
from gateway.errors import EndorseError
from network.chaincode import ChaincodeDeployment
from network.connections import open_session
from network.crypto import MeterOperator

pytestmark = [pytest.mark.timeout(600)]

TOPOLOGY = topology_file.load()
INFLATED_WH = 77_777  # per minute: far above any real consumer's, and refused by the honest contract

# The modified chaincode server: the honest one with DrContract.post_readings replaced by a version that records
# INFLATED_WH for every reading it is sent, with no check of caller, declaration, range or duplicates.
MODIFIED_SERVER = f"""
import json

from chaincode import server
from chaincode.contracts import dr
from chaincode.contracts.common import announced, canonical_json
from chaincode.shim import submit


@submit
def post_readings(self, ctx, command_id):
    items = json.loads(ctx.stub.get_transient()["readings"])
    for item in items:
        hour = item["minute"][:14] + "00"
        key = ctx.stub.create_composite_key(dr.READING, [command_id, item["consumer"], hour])
        block = {{"command": command_id, "consumer": item["consumer"], "hour": hour,
                  "minutes": {{item["minute"]: {INFLATED_WH}}}}}
        ctx.stub.put_private_data("RA1", key, canonical_json(block))
    sums = {{item["minute"]: [{INFLATED_WH}, 1] for item in items}}
    batch = ctx.stub.create_composite_key(dr.READINGS_BATCH, [command_id, ctx.stub.get_tx_id()])
    ctx.stub.put_private_data("RA1", batch, canonical_json({{"minutes": sums}}))
    minutes = sorted(sums)
    summary = {{"command": command_id, "ra": "RA1", "readings": len(items), "first_minute": minutes[0],
               "last_minute": minutes[-1]}}
    return announced(ctx, dr.READINGS_POSTED, summary)


dr.DrContract.post_readings = post_readings
server.main()
"""


@pytest.fixture(scope="module")
def command(security_network):
    """A command targeting AC1, its window a little ahead, for which RA1 has declared its consumer C1 (and C4); its
    "minutes": three of its baseline minutes, already ended, so that every honest contract takes a reading for them
    (the modified one is refused for who endorsed it, never for the reading's time)."""
    tso, ra1 = open_session(security_network, "TSO"), open_session(security_network, "RA1")
    record = tso.dr.issue(
        live_command(f"atk-{uuid.uuid4().hex[:8]}", minutes=1, baseline_minutes=5, due_minutes=10, target_acs=["AC1"])
    )
    ra1.dr.wait_for_command(record["id"])
    ra1.dr.declare(record["id"], uniform_declaration(record, ["C1", "C4"], 10, None))
    yield {**record, "minutes": past_baseline_minutes(record)[:3]}  # all but the latest two of five have ended
    tso.close()
    ra1.close()


@pytest.fixture
def modified_ra1(security_network):
    """RA1's chaincode server replaced by MODIFIED_SERVER until the test ends; then the honest one again."""
    with modified_server(security_network, "RA1", MODIFIED_SERVER) as deployment:
        yield deployment


def relaying(security_network, org):
    """`org`'s session, its DR client relaying readings its consumers' meters signed (as an honest RA's does)."""
    session = open_session(security_network, org)
    session.dr.meters = MeterOperator(security_network.layout)
    return session


def post(session, command_id, consumer, minute, wh, endorsers):
    """post_readings of one meter-signed reading as `session`, endorsed by exactly `endorsers` (MSP ids); the commit
    status. The meter's signature is genuine: only the modified contract differs from an honest relay."""
    readings = [Reading("", consumer, minute, wh)]
    transient = {
        "readings": json.dumps([r.as_json() for r in readings]),
        "meter_signatures": json.dumps(meter_signatures(command_id, readings, session.dr.meters)),
    }
    proposal = session.dr.contract.new_proposal(
        "post_readings", command_id, transient=transient, endorsing_organizations=endorsers
    )
    return proposal.endorse().submit().status()


def readings_seen(security_network, org, command_id, consumer) -> dict[str, int]:
    session = open_session(security_network, org)
    try:
        return {r["minute"]: r["wh"] for r in session.dr.readings(consumer, command_id)["readings"]}
    finally:
        session.close()


def test_a_modified_chaincode_on_the_ras_peer_cannot_record_a_reading(security_network, command, modified_ra1):
    ra1 = relaying(security_network, "RA1")
    try:
        # (a) RA1's peer alone: ordered, then invalid on every peer.
        status = post(ra1, command["id"], "C1", command["minutes"][0], 500, ["RA1MSP"])
        assert status.code == "ENDORSEMENT_POLICY_FAILURE", (
            f"a reading endorsed by RA1's (modified) peer alone committed as {status.code}: the RA1 collection's "
            "endorsement policy AND('RA1MSP.peer', OR('AC1MSP.peer', 'TSOMSP.peer')) should have invalidated it"
        )

        # (b) RA1's peer and AC1's: the honest AC1 writes something else; the gateway refuses to assemble it.
        with pytest.raises(EndorseError) as refused:
            post(ra1, command["id"], "C1", command["minutes"][1], 500, ["RA1MSP", "AC1MSP"])
        assert "ProposalResponsePayloads do not match" in str(refused.value), (
            "the gateway should refuse a reading whose endorsements by RA1's modified chaincode and AC1's honest one "
            f"differ, got: {refused.value}"
        )
        assert not refused.value.refused, "no honest contract refused it: the endorsements disagreed"
        # … and the same through the DR client, which tries RA1 + AC1, then RA1 + the TSO.
        with pytest.raises(EndorseError, match="ProposalResponsePayloads do not match"):
            ra1.dr.post_readings(command["id"], [Reading("RA1", "C1", command["minutes"][2], 500)])
    finally:
        ra1.close()

    # (c) nothing of it is readable anywhere (AC1 and the TSO read on their own peers; RA1 on its own, which runs
    # the modified contract but holds only what committed).
    for org in ("TSO", "AC1", "RA1"):
        seen = readings_seen(security_network, org, command["id"], "C1")
        assert INFLATED_WH not in seen.values() and seen == {}, (
            f"{org}'s peer shows readings {seen} that no honest endorsement policy allowed"
        )


def test_after_the_honest_server_is_back_an_honest_reading_and_a_meters_commit(security_network, command):
    ra1, meter = relaying(security_network, "RA1"), open_session(security_network, "meter:C4")
    try:
        assert ra1.dr.private_endorsers[0] == ["RA1MSP", "AC1MSP"]
        ra1.dr.post_readings(command["id"], [Reading("RA1", "C1", command["minutes"][0], 321)])
        meter.dr.post_readings(command["id"], [Reading("RA1", "C4", command["minutes"][0], 123)])
    finally:
        ra1.close()
        meter.close()
    for org in ("TSO", "AC1", "RA1"):
        assert eventually(
            lambda org=org: readings_seen(security_network, org, command["id"], "C1"), "C1's reading"
        ) == {command["minutes"][0]: 321}
        assert eventually(
            lambda org=org: readings_seen(security_network, org, command["id"], "C4"), "C4's reading"
        ) == {command["minutes"][0]: 123}


def test_the_committed_definition_carries_the_collection_policies_derived_from_the_topology(security_network):
    committed = ChaincodeDeployment(security_network).committed()
    found = {}
    for config in committed["collections"]["config"]:
        static = config["Payload"]["StaticCollectionConfig"]
        found[static["name"]] = signature_policy(static["endorsement_policy"])
    assert found == {name: collection_policy(TOPOLOGY, name) for name in TOPOLOGY.collections()}


def signature_policy(application_policy: dict) -> SignaturePolicy:
    """The committed collection's endorsement policy (as `peer lifecycle chaincode querycommitted` prints a
    SignaturePolicyEnvelope) in consortium.policies' form: n-out-of rules over MSP ids of peers."""
    from fabric_protos.msp import msp_principal_pb2

    envelope = _unwrap(application_policy, "SignaturePolicy")
    identities = []
    for identity in envelope["identities"]:
        role = msp_principal_pb2.MSPRole.FromString(base64.b64decode(identity["principal"]))
        assert role.role == msp_principal_pb2.MSPRole.PEER, f"a collection policy names a non-peer role: {identity}"
        identities.append(role.msp_identifier)

    def rule(node: dict) -> "SignaturePolicy | str":
        node = node.get("Type", node)
        if "SignedBy" in node:
            return identities[node["SignedBy"]]
        n_out_of = node["NOutOf"]
        return SignaturePolicy(n_out_of["n"], tuple(rule(r) for r in n_out_of["rules"]))

    return rule(envelope["rule"])


def _unwrap(value: dict, name: str) -> dict:
    """The `name` field of a protobuf oneof as the peer CLI prints it ({"Type": {name: …}} or {name: …})."""
    return value.get("Type", value)[name]
