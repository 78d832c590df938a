"""A handful of bad inputs through the real gateway to the real chaincode servers (the same strategies as
test_fuzz_contracts.py, fewer cases: each is a round trip through Fabric): every one is refused with a clear
"failed to …: …", and nothing reaches the ledger — the channel height of every peer is unchanged."""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz_contracts import CLEAR_ERROR, DEEPLY_NESTED, DERANDOMIZE, draw_call, transactions

from consortium.policies import collection_writers, private_endorsers
from gateway.errors import CommitError, GatewayError

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]

GATEWAY_EXAMPLES = int(os.environ.get("GRIDLEDGER_GATEWAY_FUZZ_EXAMPLES", "25"))
tried = {"cases": 0, "failures": 0}
# Meters and strangers have no connection profile on the real network: organisations' users only.
# What clients/dr.py submits with private=True: writes to the caller's own group only.
PRIVATE_WRITES = {"dr:register_consumers", "dr:declare", "dr:post_readings"}
SUBMITS = [(name, description) for name, description in transactions() if "SUBMIT" in description["tag"]]


@pytest.fixture(scope="module")
def gateways(security_network, fuzz_figures):
    from network.connections import connect_as

    opened = {org: connect_as(security_network, org) for org in security_network.topology.org_names}
    yield opened
    for gateway in opened.values():
        gateway.close()
    fuzz_figures["real gateway"] = {"fuzz_cases": tried["cases"], "fuzz_failures": tried["failures"]}


def heights(network) -> dict[str, int]:
    return {peer.name: network.peer_admin(peer).height(network.topology.channel) for peer in network.topology.peers}


def submit(gateways, network, org, function, args, transient):
    contract_name, _, name = function.partition(":")
    contract = gateways[org].get_network(network.topology.channel).get_contract("gridledger", contract_name)
    return contract.submit(
        name, *args, transient=transient, endorsing_organizations=endorsers(network, org, function, args, transient)
    )


def endorsers(network, org, function, args, transient) -> list[str] | None:
    """Who endorses, as a client would have it: a private record write its collection's writers, the DR
    contract's private writes the caller's own group's writers (consortium.policies), everything else the gateway's
    choice under the chaincode's majority policy. So a valid call drawn by chance commits instead of failing
    validation, and only bad input is left to be refused."""
    topology = network.topology
    if function == "records:put_private_record" and args and args[0] in topology.collections():
        writers = collection_writers(topology, args[0])[0]
    elif function in PRIVATE_WRITES and topology.organisation(org).role != "tso":
        writers = private_endorsers(topology, org)[0]
    else:
        return None
    return [topology.organisation(name).msp_id for name in writers]


def test_bad_input_through_the_gateway_is_refused_and_never_reaches_a_block(security_network, gateways):
    network = security_network
    orgs = sorted(network.topology.org_names)

    @settings(
        max_examples=GATEWAY_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=DERANDOMIZE,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def run(data):
        function, description = data.draw(st.sampled_from(SUBMITS))
        _, args, transient, _ = data.draw(st.composite(lambda draw: draw_call(draw, function, description))())
        org = data.draw(st.sampled_from(orgs))
        before = heights(network)
        tried["cases"] += 1
        try:
            submit(gateways, network, org, function, args, transient)
        except CommitError as error:
            tried["failures"] += 1
            pytest.fail(
                f"{function} was ordered and failed to commit ({error.code}): it should have been refused "
                f"at endorsement"
            )
        except GatewayError as refused:
            message = str(refused)
            ok = CLEAR_ERROR.fullmatch(message) and "internal error" not in message and "Traceback" not in message
            if not ok or heights(network) != before:
                tried["failures"] += 1
            assert ok, f"unclear refusal of {function}: {message!r:.300}"
            assert heights(network) == before, f"refused {function} reached a block"
            return
        # Accepted: a valid input drawn by chance (the strategies mutate valid calls); it is on the ledger now.

    run()


def test_deeply_nested_json_through_the_gateway_is_refused_clearly(security_network, gateways):
    before = heights(security_network)
    with pytest.raises(GatewayError) as refused:
        submit(gateways, security_network, "TSO", "dr:issue_command", [DEEPLY_NESTED], {})
    assert heights(security_network) == before
    assert CLEAR_ERROR.fullmatch(str(refused.value)) and "internal error" not in str(refused.value), str(refused.value)
