"""A dishonest AC on the real network: AC1's chaincode server is replaced by a modified contract that records AC1's
settlement statement 10,000 yen higher than the rules give (tests/security/modified_servers.py), so AC1's peer
endorses the inflated statement of a settled command. What refuses each attempt:

(a) the statement endorsed by AC1's peer alone is ordered but never takes effect: every peer's validation checks the
    AC1 collection's endorsement policy, AND('AC1MSP.peer', 'TSOMSP.peer') (consortium.policies), and records the
    transaction as ENDORSEMENT_POLICY_FAILURE;
(b) endorsed by AC1's peer and the TSO's, as the units client sends it, the TSO's honest chaincode writes the
    honest statement: the write sets differ, and the gateway refuses to assemble the transaction
    ("ProposalResponsePayloads do not match"), so it is never ordered;
(c) so no statement is recorded, on the TSO's peer or on AC1's.
Then the honest server is back, and AC1's honest statement is recorded and matches the settlement, and no block
holds it.
"""

import json
import uuid

import pytest
from live_commands import live_command, wait_until_begun
from modified_servers import modified_server
from waiting import eventually

from clients.dr import uniform_declaration
from clients.dr_units import UnitsClient
from consortium import topology as topology_file
from gateway import grpc_channel_for
from gateway.blocks import fetch_blocks
from gateway.errors import EndorseError, GatewayError
from network.connections import open_session

pytestmark = [pytest.mark.timeout(600)]

TOPOLOGY = topology_file.load()
INFLATION_SEN = 1_000_000

# The modified chaincode server: the honest one, with the figures a statement records raised by INFLATION_SEN.
MODIFIED_SERVER = f"""
from chaincode import server
from chaincode.contracts import dr_units

honest = dr_units._statement_figures


def inflated(view, ac):
    figures = honest(view, ac)
    figure = figures["ac_figure"]
    figures["ac_figure"] = {{**figure, "reward_sen": figure["reward_sen"] + {INFLATION_SEN},
                            "amount_sen": figure["amount_sen"] + {INFLATION_SEN}}}
    return figures


dr_units._statement_figures = inflated
server.main()
"""


@pytest.fixture(scope="module")
def settled(security_network):
    """A kWh-type command for AC1 with a one-minute window, RA1's consumer C1 declared, settled once its readings are
    due (C1 has no history, so it delivers nothing: the statement's figures are the shortfall's)."""
    tso, ra1 = open_session(security_network, "TSO"), open_session(security_network, "RA1")
    try:
        record = tso.dr.issue(
            live_command(
                f"stm-{uuid.uuid4().hex[:8]}", minutes=1, due_minutes=1, target_acs=["AC1"], product={"name": "kwh-dr"}
            )
        )
        ra1.dr.wait_for_command(record["id"])
        ra1.dr.declare(record["id"], uniform_declaration(record, ["C1"], 10, None))
        wait_until_begun(record["readings_due"])
        eventually(lambda: tso.dr.settle(record["id"]), "the settlement", 60)
        yield record
    finally:
        tso.close()
        ra1.close()


@pytest.fixture(scope="module")
def units(security_network):
    """The units clients of the TSO and AC1."""
    sessions = {org: open_session(security_network, org) for org in ("TSO", "AC1")}
    yield {org: UnitsClient.of(session, TOPOLOGY) for org, session in sessions.items()}
    for session in sessions.values():
        session.close()


def test_a_modified_chaincode_on_the_acs_peer_cannot_record_an_inflated_statement(security_network, settled, units):
    ac1 = units["AC1"]
    with modified_server(security_network, "AC1", MODIFIED_SERVER):
        # (a) AC1's peer alone: ordered, then invalid on every peer.
        alone = ac1.contract.new_proposal(
            "record_statement", settled["id"], "AC1", transient={"salt": "ab" * 16}, endorsing_organizations=["AC1MSP"]
        )
        status = alone.endorse().submit().status()
        assert status.code == "ENDORSEMENT_POLICY_FAILURE", (
            f"a statement endorsed by AC1's (modified) peer alone committed as {status.code}: the AC1 collection's "
            "endorsement policy AND('AC1MSP.peer', 'TSOMSP.peer') should have invalidated it"
        )
        # (b) AC1's peer and the TSO's, as the client sends it: the honest TSO writes another statement.
        with pytest.raises(EndorseError) as refused:
            ac1.record_statement(settled["id"])
        assert "ProposalResponsePayloads do not match" in str(refused.value), refused.value
        assert not refused.value.refused, "no honest contract refused it: the endorsements disagreed"

    # (c) nothing is recorded, on either peer.
    for org in ("TSO", "AC1"):
        with pytest.raises(GatewayError, match="is not recorded yet"):
            units[org].statement(settled["id"], "AC1")


def test_after_the_honest_server_is_back_the_honest_statement_is_recorded(security_network, settled, units):
    ac1, tso = units["AC1"], units["TSO"]
    ac1.record_statement(settled["id"])
    statement = eventually(lambda: tso.statement(settled["id"], "AC1"), "AC1's statement at the TSO")
    computed = tso.unit_settlement(settled["id"])["acs"][0]
    assert statement["ac_figure"]["amount_sen"] == computed["amount_sen"] < INFLATION_SEN
    assert computed["statement"]["matches"] and computed["statement"]["recorded_by"] == "AC1"
    # AC1 delivering RA1 a larger share than its statement records: RA1's honest peer checks it against the
    # recorded share's hash and refuses it.
    share = statement["shares"]["RA1"]
    forged = {
        **share,
        "reward_sen": share["reward_sen"] + INFLATION_SEN,
        "amount_sen": share["amount_sen"] + INFLATION_SEN,
    }
    proposal = ac1.contract.new_proposal(
        "deliver_share",
        settled["id"],
        "RA1",
        transient={"share": json.dumps(forged)},
        endorsing_organizations=["RA1MSP", "AC1MSP"],
    )
    with pytest.raises(EndorseError, match="the share sent is not the one AC1's statement records for RA1"):
        proposal.endorse()
    assert [d["ra"] for d in ac1.deliver_shares(settled["id"])] == ["RA1"]
    # The statement stays in AC1's collection: no block holds it, only its hash (the digest is a value no other
    # data can hold by chance).
    ra2 = open_session(security_network, "RA2")
    try:
        peer = security_network.topology.peer_of("RA2")
        channel = grpc_channel_for(peer.address, security_network.layout.node_dir(peer) / "tls" / "ca.crt")
        blocks = b"".join(b.raw for b in fetch_blocks(ra2.gateway, TOPOLOGY.channel, channel=channel))
    finally:
        ra2.close()
    assert statement["consumers_digest"].encode() not in blocks and b"consumers_digest" not in blocks
