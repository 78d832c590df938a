"""Endorsement policies derived from the topology: the exact strings Fabric's lifecycle is given for the seed's
topology, a new RA in a changed topology getting its own, and the client asking the peers the policy names."""

import json
from pathlib import Path

import pytest
import yaml

from clients.contract import ContractClient
from consortium import topology as topology_file
from consortium.policies import (
    SignaturePolicy,
    collection_policy,
    collection_writers,
    collections_config,
    endorsement_policy,
    private_endorsers,
)
from gateway.errors import EndorseError

TOPOLOGY = topology_file.load()

STRICT = {
    "AC1": "AND('AC1MSP.peer', 'TSOMSP.peer')",
    "AC2": "AND('AC2MSP.peer', 'TSOMSP.peer')",
    "RA1": "AND('RA1MSP.peer', OR('AC1MSP.peer', 'TSOMSP.peer'))",
    "RA2": "AND('RA2MSP.peer', OR('AC1MSP.peer', 'TSOMSP.peer'))",
    "RA3": "AND('RA3MSP.peer', OR('AC2MSP.peer', 'TSOMSP.peer'))",
}


def test_the_chaincode_policy_is_a_majority_of_the_peers():
    assert endorsement_policy(TOPOLOGY) == (
        "OutOf(4, 'TSOMSP.peer', 'AC1MSP.peer', 'AC2MSP.peer', 'RA1MSP.peer', 'RA2MSP.peer', 'RA3MSP.peer')"
    )


def test_each_collection_needs_its_owners_peer_and_another_members():
    assert {name: str(collection_policy(TOPOLOGY, name)) for name in TOPOLOGY.collections()} == STRICT
    got = {c["name"]: c["endorsementPolicy"]["signaturePolicy"] for c in collections_config(TOPOLOGY)}
    assert got == STRICT


def test_no_collection_policy_is_satisfied_by_its_owner_alone():
    for name in TOPOLOGY.collections():
        owner = TOPOLOGY.organisation(name).msp_id
        assert not satisfied(collection_policy(TOPOLOGY, name), {owner}), name
        for writers in collection_writers(TOPOLOGY, name):
            assert satisfied(collection_policy(TOPOLOGY, name), {TOPOLOGY.organisation(o).msp_id for o in writers})


def test_the_collection_config_keeps_membership_and_dissemination():
    config = {c["name"]: c for c in collections_config(TOPOLOGY)}
    assert config["RA1"]["policy"] == "OR('TSOMSP.member', 'AC1MSP.member', 'RA1MSP.member')"
    assert (config["RA1"]["requiredPeerCount"], config["RA1"]["maxPeerCount"]) == (1, 2)
    assert config["AC2"]["policy"] == "OR('TSOMSP.member', 'AC2MSP.member')"
    assert (config["AC2"]["requiredPeerCount"], config["AC2"]["maxPeerCount"]) == (0, 1)
    assert all(c["memberOnlyRead"] and c["memberOnlyWrite"] and c["blockToLive"] == 0 for c in config.values())


def test_private_writes_go_to_the_writers_peer_and_its_ac_then_the_tso():
    assert private_endorsers(TOPOLOGY, "RA1") == [("RA1", "AC1"), ("RA1", "TSO")]
    assert private_endorsers(TOPOLOGY, "RA3") == [("RA3", "AC2"), ("RA3", "TSO")]
    assert private_endorsers(TOPOLOGY, "AC2") == [("AC2", "TSO")]
    with pytest.raises(ValueError, match="the TSO owns no collection"):
        private_endorsers(TOPOLOGY, "TSO")


def test_a_new_ra_in_a_changed_topology_gets_its_own_collection_and_policy(tmp_path: Path):
    raw = yaml.safe_load(topology_file.DEFAULT_PATH.read_text())
    raw["organisations"].append({"name": "RA4", "role": "ra", "parent": "AC2", "consumers": ["C7"]})
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(raw))
    changed = topology_file.load(path)
    config = {c["name"]: c for c in collections_config(changed)}
    assert config["RA4"]["policy"] == "OR('TSOMSP.member', 'AC2MSP.member', 'RA4MSP.member')"
    assert (
        config["RA4"]["endorsementPolicy"]["signaturePolicy"] == "AND('RA4MSP.peer', OR('AC2MSP.peer', 'TSOMSP.peer'))"
    )
    assert private_endorsers(changed, "RA4") == [("RA4", "AC2"), ("RA4", "TSO")]
    assert {name: config[name]["endorsementPolicy"]["signaturePolicy"] for name in STRICT} == STRICT
    assert endorsement_policy(changed).startswith("OutOf(4, ")  # seven peers: a majority is still four


def test_the_policy_language_is_written_as_fabric_parses_it():
    assert str(SignaturePolicy(2, ("A", "B"))) == "AND('A.peer', 'B.peer')"
    assert str(SignaturePolicy(1, ("A", SignaturePolicy(2, ("B", "C"))))) == "OR('A.peer', AND('B.peer', 'C.peer'))"
    assert str(SignaturePolicy(2, ("A", "B", "C"))) == "OutOf(2, 'A.peer', 'B.peer', 'C.peer')"


# The client side (clients.contract): a private write asks the peers the policy names, in order.


class FakeProposal:
    def __init__(self, calls: list, outcome, endorsers):
        self.calls, self.outcome, self.endorsers = calls, outcome, endorsers

    def endorse(self):
        self.calls.append(self.endorsers)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self

    def submit(self):
        return self

    def committed(self):
        return self.result

    result = json.dumps({"ok": True}).encode()
    transaction_id = "tx"


class FakeChannel:
    """Answers each proposal with the next outcome: an exception raised at endorsement, or success."""

    def __init__(self, outcomes: list):
        self.outcomes, self.calls = outcomes, []

    def get_contract(self, chaincode, contract):
        return self

    def new_proposal(self, name, *args, transient=None, endorsing_organizations=None):
        return FakeProposal(self.calls, self.outcomes.pop(0), endorsing_organizations)


class Client(ContractClient):
    contract_name = "dr"


def test_a_private_write_is_endorsed_by_the_ra_and_its_ac():
    channel = FakeChannel([None])
    Client(channel, TOPOLOGY.organisation("RA1"), topology=TOPOLOGY).submit("post_readings", "1", private=True)
    assert channel.calls == [["RA1MSP", "AC1MSP"]]


def test_when_the_ac_cannot_endorse_the_tso_does_and_a_refusal_is_final():
    down = EndorseError("endorse failed with UNAVAILABLE", "tx")
    channel = FakeChannel([down, None])
    Client(channel, TOPOLOGY.organisation("RA2"), topology=TOPOLOGY).submit("declare", "1", private=True)
    assert channel.calls == [["RA2MSP", "AC1MSP"], ["RA2MSP", "TSOMSP"]]
    refused = EndorseError("failed to declare: no", "tx", refused=True)
    channel = FakeChannel([refused])
    with pytest.raises(EndorseError, match="failed to declare"):
        Client(channel, TOPOLOGY.organisation("RA2"), topology=TOPOLOGY).submit("declare", "1", private=True)
    assert channel.calls == [["RA2MSP", "AC1MSP"]]


def satisfied(policy: "SignaturePolicy | str", msps: set[str]) -> bool:
    if isinstance(policy, str):
        return policy in msps
    return sum(satisfied(rule, msps) for rule in policy.rules) >= policy.n
