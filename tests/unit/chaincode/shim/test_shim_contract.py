"""The contract API: routing "contract:method", argument conversion, results, and errors that never leak internals."""

import json
import logging

import pytest

from chaincode.shim import Chaincode, Contract, ContractError, MemoryWorld, evaluate, submit
from chaincode.shim.testing import make_identity

ALICE = make_identity("Org1MSP", "alice", {"role": "meter", "consumer": "C1"})


class Ledger(Contract):
    name = "ledger"

    @submit
    def put(self, ctx, key: str, value: str) -> None:
        ctx.stub.put_state(key, value)

    @evaluate
    def get(self, ctx, key: str) -> bytes:
        return ctx.stub.get_state(key) or b""

    @evaluate
    def typed(self, ctx, count: int, flag: bool, doc: dict, items: list, raw: bytes, note: str = "none") -> dict:
        return {"count": count, "flag": flag, "doc": doc, "items": items, "raw": raw.hex(), "note": note}

    @evaluate
    def whoami(self, ctx) -> dict:
        return {"msp": ctx.client_identity.msp_id, "consumer": ctx.client_identity.get_attribute_value("consumer")}

    @evaluate
    def sneaky_write(self, ctx) -> None:
        ctx.stub.put_state("k", b"v")

    @submit
    def refuse(self, ctx, amount: int) -> None:
        raise ContractError(f"failed to refuse: amount must be between 0 and 100, got {amount}")

    @submit
    def crash(self, ctx) -> None:
        secret = {"password": "hunter2"}
        raise KeyError(f"internal detail {secret}")

    @evaluate
    def private(self, ctx, key: str) -> bytes:
        return ctx.stub.get_private_data("RA1", key)

    @evaluate
    def unjsonable(self, ctx) -> object:
        return object()

    def _helper(self):
        return "not a transaction"


class Other(Contract):
    @evaluate
    def ping(self, ctx) -> str:
        return "pong"


@pytest.fixture
def world():
    return MemoryWorld({"RA1": {"RA1MSP"}})


@pytest.fixture(scope="module")
def chaincode():
    return Chaincode([Ledger(), Other()])


def test_submit_then_evaluate_round_trip(world, chaincode):
    assert world.invoke(chaincode, "ledger:put", "k", "v", identity=ALICE).status == 200
    response = world.evaluate(chaincode, "ledger:get", "k", identity=ALICE)
    assert (response.status, response.payload) == (200, b"v")


def test_bare_function_goes_to_the_first_contract_and_contract_name_defaults_to_class_name(world, chaincode):
    assert world.evaluate(chaincode, "get", "nothing", identity=ALICE).status == 200
    assert world.evaluate(chaincode, "Other:ping", identity=ALICE).payload == b"pong"


def test_arguments_are_converted_by_annotation_and_results_are_canonical_json(world, chaincode):
    response = world.evaluate(
        chaincode, "ledger:typed", "-7", "true", '{"b":1,"a":2}', "[1,2]", b"\x00\xff", identity=ALICE
    )
    assert response.status == 200
    assert response.payload == (
        b'{"count":-7,"doc":{"a":2,"b":1},"flag":true,"items":[1,2],"note":"none","raw":"00ff"}'
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (("x", "true", "{}", "[]", ""), "failed to typed: argument count must be an integer, got 'x'"),
        (("1.5", "true", "{}", "[]", ""), "failed to typed: argument count must be an integer, got '1.5'"),
        (("1", "yes", "{}", "[]", ""), "failed to typed: argument flag must be true or false, got 'yes'"),
        (("1", "true", "{", "[]", ""), "failed to typed: argument doc must be a JSON object, got malformed JSON '{'"),
        (("1", "true", "[]", "[]", ""), "failed to typed: argument doc must be a JSON object, got list"),
        (("1",), "failed to typed: expected 5 to 6 arguments (count, flag, doc, items, raw, note), got 1"),
    ],
)
def test_bad_arguments_are_a_400_naming_the_argument(world, chaincode, args, message):
    response = world.evaluate(chaincode, "ledger:typed", *args, identity=ALICE)
    assert (response.status, response.message) == (400, message)


@pytest.mark.parametrize(
    "function, message",
    [
        ("ledger:nope", "unknown function 'ledger:nope': contract ledger has no transaction 'nope'"),
        ("ledger:_helper", "unknown function 'ledger:_helper': contract ledger has no transaction '_helper'"),
        ("bank:get", "unknown function 'bank:get': no contract named 'bank'"),
    ],
)
def test_unknown_functions_are_a_400(world, chaincode, function, message):
    response = world.evaluate(chaincode, function, identity=ALICE)
    assert (response.status, response.message) == (400, message)


def test_contract_error_reaches_the_caller_verbatim(world, chaincode):
    response = world.evaluate(chaincode, "ledger:refuse", "-3", identity=ALICE)
    assert (response.status, response.message) == (500, "failed to refuse: amount must be between 0 and 100, got -3")


def test_unexpected_exception_is_logged_and_the_caller_learns_nothing_more(world, chaincode, caplog):
    with caplog.at_level(logging.ERROR, logger="chaincode.shim.contract"):
        response = world.invoke(chaincode, "ledger:crash", identity=ALICE)
    assert (response.status, response.message, response.payload) == (500, "failed to crash: internal error", b"")
    assert "hunter2" not in response.message and "Traceback" not in response.message
    assert "ledger:crash failed" in caplog.text and "hunter2" in caplog.text  # the operator sees why


def test_unserialisable_result_is_an_internal_error(world, chaincode):
    response = world.evaluate(chaincode, "ledger:unjsonable", identity=ALICE)
    assert (response.status, response.message) == (500, "failed to unjsonable: internal error")


def test_ledger_error_names_the_transaction_and_keeps_the_peers_words(world, chaincode):
    response = world.evaluate(chaincode, "ledger:private", "c1", identity=ALICE)
    assert response.status == 500
    assert response.message.startswith("failed to private: GET_STATE failed: transaction ID: ")
    assert response.message.endswith(
        "tx creator does not have read access permission on privatedata in chaincodeName:gridledger collectionName: RA1"
    )


def test_evaluate_transactions_cannot_write(world, chaincode):
    response = world.invoke(chaincode, "ledger:sneaky_write", identity=ALICE)
    assert response.status == 500
    assert response.message == (
        "failed to sneaky write: ledger:sneaky_write is a read-only (@evaluate) transaction; it cannot put_state"
    )


def test_client_identity_comes_from_the_proposal_creator(world, chaincode):
    assert json.loads(world.evaluate(chaincode, "ledger:whoami", identity=ALICE).payload) == {
        "msp": "Org1MSP",
        "consumer": "C1",
    }


def test_init_without_a_function_succeeds_and_with_one_invokes(world, chaincode):
    assert chaincode.init(world.new_stub([], identity=ALICE)).status == 200
    assert chaincode.init(world.new_stub(["Other:ping"], identity=ALICE)).payload == b"pong"
    assert chaincode.invoke(world.new_stub([], identity=ALICE)).status == 400


def test_metadata_lists_transactions_with_their_kind(world, chaincode):
    metadata = json.loads(world.evaluate(chaincode, "org.hyperledger.fabric:GetMetadata", identity=ALICE).payload)
    transactions = {t["name"]: t for t in metadata["contracts"]["ledger"]["transactions"]}
    assert transactions["put"]["tag"] == ["SUBMIT"] and transactions["get"]["tag"] == ["EVALUATE"]
    assert [p["schema"]["type"] for p in transactions["typed"]["parameters"]] == [
        "integer",
        "boolean",
        "object",
        "array",
        "string",
        "string",
    ]
    assert "_helper" not in transactions


def test_undecorated_public_method_is_refused_at_registration():
    class Careless(Contract):
        def transfer(self, ctx, to: str):
            pass

    with pytest.raises(TypeError, match=r"Careless.transfer is public but marked neither @submit nor @evaluate"):
        Chaincode([Careless()])


def test_transaction_must_take_ctx_and_simple_argument_types():
    class NoContext(Contract):
        @submit
        def put(self, key: str):
            pass

    class Floaty(Contract):
        @submit
        def put(self, ctx, kwh: float):
            pass

    with pytest.raises(TypeError, match="must take ctx"):
        Chaincode([NoContext()])
    with pytest.raises(TypeError, match="parameter kwh has type"):
        Chaincode([Floaty()])
