"""The records contract on the in-memory world: what it stores, the events it emits, and its input checks."""

import hashlib
import json

import pytest

from chaincode.contracts.records import RecordsContract
from chaincode.shim import Chaincode, MemoryWorld
from chaincode.shim.testing import make_identity

RA1, RA2 = make_identity("RA1MSP", "ra1"), make_identity("RA2MSP", "ra2")
CHAINCODE = Chaincode([RecordsContract()])


@pytest.fixture
def world():
    return MemoryWorld({"RA1": {"TSOMSP", "RA1MSP"}})


def invoke(world, function, *args, identity=RA1, **options):
    return world.invoke(CHAINCODE, f"records:{function}", *args, identity=identity, **options)


def test_put_stores_canonical_json_and_announces_its_hash(world):
    stub = world.new_stub(["records:put_record", "k1", '{ "b": 1, "a": "\u00e9" }'], identity=RA1)
    response = CHAINCODE.invoke(stub)
    stored = '{"a":"\u00e9","b":1}'.encode()
    summary = {"key": "k1", "collection": None, "hash": hashlib.sha256(stored).hexdigest()}
    assert json.loads(response.payload) == summary
    assert (stub.event.name, json.loads(stub.event.payload)) == ("RecordPut", summary)
    assert stub.writes[0].value == stored


def test_get_returns_what_put_stored(world):
    invoke(world, "put_record", "k1", '{"kwh": 3}')
    assert invoke(world, "get_record", "k1").payload == b'{"kwh":3}'


@pytest.mark.parametrize(
    "function, args, message",
    [
        ("put_record", ("", "{}"), "failed to put record: key must be 1-64 characters, got ''"),
        ("put_record", ("k" * 65, "{}"), f"failed to put record: key must be 1-64 characters, got '{'k' * 65}'"),
        ("put_record", ("a\nb", "{}"), "failed to put record: key must be printable characters, got 'a\\nb'"),
        (
            "put_record",
            ("k", "{oops"),
            "failed to put record: record must be a JSON object, got malformed JSON '{oops'",
        ),
        ("put_record", ("k", "[1]"), "failed to put record: record must be a JSON object, got list"),
        (
            "put_record",
            ("k", json.dumps({"x": "y" * 70000})),
            "failed to put record: record must be at most 65536 bytes of JSON, got 70008",
        ),
        ("get_record", ("nothing",), "failed to get record: no record with key 'nothing'"),
        ("delete_record", ("nothing",), "failed to delete record: no record with key 'nothing'"),
        (
            "put_private_record",
            ("RA1", "c1"),
            "failed to put private record: the record must travel in transient data under 'record'",
        ),
        ("put_private_record", ("", "c1"), "failed to put private record: collection must be named"),
        ("get_private_record_hash", ("RA1", "c9"), "failed to get private record hash: no record with key 'c9' in RA1"),
    ],
)
def test_bad_input_is_refused_with_a_message_and_changes_nothing(world, function, args, message):
    response = invoke(world, function, *args)
    assert (response.status, response.message) == (500, message)
    assert world.public_state() == {} and world.private_state("RA1") == {}


def test_private_record_comes_from_transient_data_and_only_its_hash_is_announced(world):
    stub = world.new_stub(
        ["records:put_private_record", "RA1", "c1"], identity=RA1, transient={"record": b'{"kwh": 7}'}
    )
    response = CHAINCODE.invoke(stub)
    assert response.status == 200
    summary = {"key": "c1", "collection": "RA1", "hash": hashlib.sha256(b'{"kwh":7}').hexdigest()}
    assert json.loads(stub.event.payload) == summary and b"kwh" not in stub.event.payload
    world.commit(stub)
    assert invoke(world, "get_private_record", "RA1", "c1").payload == b'{"kwh":7}'
    assert invoke(world, "get_private_record_hash", "RA1", "c1", identity=RA2).payload.decode() == summary["hash"]


def test_malformed_transient_record_is_refused(world):
    response = invoke(world, "put_private_record", "RA1", "c1", transient={"record": b"\xff"})
    assert response.message == "failed to put private record: transient 'record' is not UTF-8 text"
    response = invoke(world, "put_private_record", "RA1", "c1", transient={"record": b"7"})
    assert response.message == "failed to put private record: transient 'record' must be a JSON object, got int"


def test_range_and_history(world):
    for key, value in (("b", 2), ("a", 1), ("c", 3)):
        invoke(world, "put_record", key, json.dumps({"n": value}))
    invoke(world, "delete_record", "c")
    listed = json.loads(invoke(world, "get_records_by_range", "a", "z").payload)
    assert listed == [{"key": "a", "record": {"n": 1}}, {"key": "b", "record": {"n": 2}}]
    history = json.loads(invoke(world, "get_history", "c").payload)
    assert [(h["is_delete"], h["record"]) for h in history] == [(True, None), (False, {"n": 3})]
    assert invoke(world, "delete_record", "c").status == 500
