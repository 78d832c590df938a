"""What a client sees of the ledger, the same on both backends: the real Fabric network through the Gateway,
and the embedded ledger. Public state, private data by membership, history, events, errors, every peer."""

import json
import threading
import uuid

import pytest
from waiting import eventually

from chaincode.shim.testing import make_identity
from consortium import topology as topology_file
from gateway import EndorseError, GatewayError, X509Identity

TOPOLOGY = topology_file.load()
COLLECTIONS = TOPOLOGY.collections()
CHANNEL = TOPOLOGY.channel


class FabricLedger:
    def __init__(self, network):
        self.network = network

    def connect(self, org):
        from network.connections import connect_as

        return connect_as(self.network, org)


class EmbeddedLedgerForTests:
    def __init__(self):
        from chaincode.server import build_chaincode
        from gateway.embedded import EmbeddedLedger

        self.ledger = EmbeddedLedger(
            build_chaincode(),
            collections={
                name: [TOPOLOGY.organisation(m).msp_id for m in members] for name, members in COLLECTIONS.items()
            },
        )
        self.identities = {org: _throwaway_identity(TOPOLOGY.organisation(org).msp_id) for org in TOPOLOGY.org_names}

    def connect(self, org):
        from gateway.embedded import EmbeddedGateway

        return EmbeddedGateway(self.identities[org], self.ledger)


def _throwaway_identity(msp_id: str) -> X509Identity:
    """A client of `msp_id` issued by a test CA: the embedded ledger checks the MSP id, not the chain."""
    return X509Identity(msp_id, make_identity(msp_id).credentials)


@pytest.fixture(scope="module", params=[pytest.param("fabric", marks=pytest.mark.fabric), "embedded"])
def ledger(request):
    if request.param == "fabric":
        return FabricLedger(request.getfixturevalue("fabric_network"))
    return EmbeddedLedgerForTests()


def records(gateway):
    return gateway.get_network(CHANNEL).get_contract("gridledger", "records")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def test_public_record_round_trip_is_readable_by_every_organisation(ledger):
    key = unique("public")
    records(ledger.connect("TSO")).submit("put_record", key, json.dumps({"kwh": 4}))
    for org in TOPOLOGY.org_names:
        assert eventually(lambda: json.loads(records(ledger.connect(org)).evaluate("get_record", key))) == {"kwh": 4}


@pytest.mark.parametrize("collection", sorted(COLLECTIONS))
def test_private_record_is_read_by_members_and_refused_to_everyone_else(ledger, collection):
    members = COLLECTIONS[collection]
    writer = members[-1]
    key = unique("private")
    records(ledger.connect(writer)).submit(
        "put_private_record", collection, key, transient={"record": json.dumps({"kwh": 3})}
    )
    for org in TOPOLOGY.org_names:
        contract = records(ledger.connect(org))
        if org in members:
            assert eventually(lambda: json.loads(contract.evaluate("get_private_record", collection, key))) == {
                "kwh": 3
            }
        else:
            with pytest.raises(GatewayError, match="read access"):
                contract.evaluate("get_private_record", collection, key)


def test_private_value_never_travels_in_the_transaction(ledger):
    """Only the hash reaches the non-members: the value went in transient data, and the hash matches it."""
    key = unique("hashed")
    value = json.dumps({"kwh": 7})
    result = json.loads(
        records(ledger.connect("RA2")).submit("put_private_record", "RA2", key, transient={"record": value})
    )
    assert value not in json.dumps(result)
    outsider_hash = eventually(lambda: records(ledger.connect("RA3")).evaluate("get_private_record_hash", "RA2", key))
    assert outsider_hash.decode() == result["hash"]


def test_history_of_a_key_lists_every_change_in_order(ledger):
    key = unique("history")
    contract = records(ledger.connect("AC1"))
    for n in (1, 2, 3):
        contract.submit("put_record", key, json.dumps({"n": n}))
    history = json.loads(contract.evaluate("get_history", key))
    assert [entry["record"]["n"] for entry in history] == [3, 2, 1]  # newest first, as Fabric gives it
    assert len({entry["tx_id"] for entry in history}) == 3
    assert not any(entry["is_delete"] for entry in history)


def test_a_listening_client_receives_the_chaincode_event_and_can_resume(ledger):
    key = unique("event")
    gateway = ledger.connect("RA1")
    network = gateway.get_network(CHANNEL)
    submitted = records(gateway).new_proposal("put_record", key, json.dumps({"kwh": 1})).endorse().submit()
    status = submitted.status()
    assert status.successful
    found = []
    events = network.get_chaincode_events("gridledger", start_block=status.block_number)
    timer = threading.Timer(20.0, events.close)  # bounded: a missing event fails the test, never hangs it
    timer.start()
    try:
        for event in events:
            if event.transaction_id == submitted.transaction_id:
                found.append(event)
                break
    finally:
        timer.cancel()
        events.close()
    assert found, "the event of the committed transaction did not arrive"
    assert found[0].block_number == status.block_number
    assert json.loads(found[0].payload)["key"] == key


def test_an_invalid_call_returns_the_contracts_own_message_and_changes_nothing(ledger):
    contract = records(ledger.connect("TSO"))
    with pytest.raises(EndorseError, match="failed to put record: key must be 1-64 characters"):
        contract.submit("put_record", "", "{}")
    with pytest.raises(GatewayError, match=r"no_such_function|not found|unknown"):
        contract.evaluate("no_such_function")
    key = unique("malformed")
    with pytest.raises(EndorseError, match="failed to put record"):
        contract.submit("put_record", key, "{not json")
    with pytest.raises(GatewayError):
        contract.evaluate("get_record", key)  # nothing was written


def test_a_committed_transaction_is_visible_on_every_peer(ledger):
    key = unique("everywhere")
    records(ledger.connect("RA3")).submit("put_record", key, json.dumps({"kwh": 9}))
    for org in TOPOLOGY.org_names:
        msp = TOPOLOGY.organisation(org).msp_id
        contract = records(ledger.connect(org))
        assert eventually(lambda: json.loads(contract.evaluate("get_record", key, endorsing_organizations=[msp]))) == {
            "kwh": 9
        }
