"""Bad input against every transaction of every contract (read from the chaincode's own metadata, so a new
transaction is fuzzed without anyone listing it), on the embedded ledger (the same contract classes, Fabric's
collection rules, a hash-chained block log): whatever the input and whoever sends it, nothing crashes, a refusal is
one clear "failed to …: …" line with no stack trace, and a refused transaction changes neither the state nor the
block log.

Inputs are drawn by hypothesis two ways: arguments and transient data of arbitrary types and shapes, and a valid
call with one part mutated (a field removed, added, or replaced by a value of another type, out of range, not
UTF-8, deeply nested, NaN, huge). GRIDLEDGER_FUZZ_EXAMPLES sets the examples per transaction (default 120;
`make chaos` raises it and draws new cases each run). The count of cases tried and failed is printed at the end
of the run (conftest.py).
"""

import json
import os
import re
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from live_commands import live_command, past_baseline_minutes
from meter_keys import OPERATOR_AUTHORITY, OPERATOR_METERS, signed_transient

from chaincode.contracts.market_seed import order_commitment
from chaincode.server import build_chaincode
from chaincode.shim.testing import make_identity
from consortium import topology as topology_file
from gateway.embedded import EmbeddedGateway, EmbeddedLedger
from gateway.errors import CommitError, GatewayError

pytestmark = pytest.mark.chaos

TOPOLOGY = topology_file.load()
COLLECTIONS = {
    name: {TOPOLOGY.organisation(m).msp_id for m in members} for name, members in TOPOLOGY.collections().items()
}
CHAINCODE = build_chaincode()
EXAMPLES = int(os.environ.get("GRIDLEDGER_FUZZ_EXAMPLES", "120"))
# The default run draws the same cases every time (a failure is reproducible); `make chaos` sets
# GRIDLEDGER_FUZZ_RANDOM=1 to explore new ones on each run.
DERANDOMIZE = os.environ.get("GRIDLEDGER_FUZZ_RANDOM") != "1"
DEEPLY_NESTED = "[" * 5000 + "]" * 5000
CLEAR_ERROR = re.compile(r"(failed to [^:\n]+: .+|unknown function .+|no function name given)", re.DOTALL)

USERS = {org: make_identity(f"{org}MSP", f"User1@{org.lower()}") for org in TOPOLOGY.org_names}
METERS = {
    c: make_identity(TOPOLOGY.meter_operator_msp_id, f"meter-{c}", {"role": "meter", "consumer": c})
    for org in TOPOLOGY.organisations
    for c in org.consumers
}
CALLERS = {
    **USERS,
    **{f"meter:{c}": identity for c, identity in METERS.items()},
    "stranger": make_identity("MalloryMSP", "mallory"),
    "forged-meter": make_identity("RA1MSP", "meter-x", {"role": "meter", "consumer": "C2"}),  # RA1's own CA
}

# The contracts hold DR to real time by the system clock, and this module is imported when the whole run is collected,
# long before its tests run: command 1's window starts three hours after collection (a long run in `make chaos`
# included), and its readings are of its 240 baseline minutes, the first hour of which has ended at collection.
COMMAND = live_command("1", minutes=5, baseline_minutes=240, due_minutes=60, lead_seconds=3 * 3600)
POSTED_MINUTES = past_baseline_minutes(COMMAND)[:4]  # three for the ledger's readings, one for the example's
READINGS = [{"consumer": "C1", "minute": POSTED_MINUTES[3], "wh": 500}]
DECLARATION = {"baseline_method": "mean-before", "consumers": {"C2": {"expected_wh": [100] * 5}}}
# Orders are sealed (issue 13): place_orders takes commitments, reveal_orders the order and its salt.
ORDERS = [
    {"commitment": order_commitment({"participant": "C1", "side": "buy", "price": 20, "quantity": 1.5}, "00" * 16)}
]

# A valid call of each transaction we know how to make, to mutate: (caller, arguments, transient).
EXAMPLES_BY_FUNCTION = {
    "records:put_record": ("RA1", ["k-new", '{"kwh":3}'], {}),
    "records:get_record": ("RA1", ["k-public"], {}),
    "records:delete_record": ("RA1", ["k-public"], {}),
    "records:get_records_by_range": ("RA1", ["", ""], {}),
    "records:get_history": ("RA1", ["k-public"], {}),
    "records:put_private_record": ("RA1", ["RA1", "k-new"], {"record": '{"kwh":7}'}),
    "records:get_private_record": ("RA1", ["RA1", "k-private"], {}),
    "records:get_private_record_hash": ("RA2", ["RA1", "k-private"], {}),
    "dr:issue_command": ("TSO", [json.dumps({**COMMAND, "id": "2"})], {}),
    "dr:get_command": ("RA1", ["1"], {}),
    "dr:list_commands": ("RA1", [], {}),
    "dr:register_consumers": ("RA1", [], {"consumers": '["RA1-N1"]'}),
    "dr:list_consumers": ("RA1", [], {}),
    "dr:declare": ("RA2", ["1"], {"declaration": json.dumps(DECLARATION)}),
    "dr:publish_declaration": (
        "RA1",
        ["1", json.dumps({"command": "1", "ra": "RA1", "consumers": 1, "expected_wh": 500})],
        {},
    ),
    "dr:list_declarations": ("RA1", ["1"], {}),
    "dr:get_declaration": ("AC1", ["1", "RA1"], {}),
    "dr:post_readings": ("RA1", ["1"], signed_transient("1", READINGS, OPERATOR_METERS)),
    "dr:get_readings": ("RA1", ["C1", "1"], {}),
    "dr:get_aggregates": ("AC1", ["1", ""], {}),
    "dr:settle": ("TSO", ["1"], {}),
    "dr:get_settlement": ("TSO", ["1"], {}),
    "market:place_orders": ("RA1", [json.dumps(ORDERS)], {}),
}
TRANSIENT_NAMES = ("record", "consumers", "declaration", "readings", "meter_signatures", "orders", "proposal")

tried: Counter = Counter()
failed: set = set()


def transactions() -> list[tuple[str, dict]]:
    """Every transaction of the chaincode, as its metadata describes it: ("contract:name", its description)."""
    metadata = CHAINCODE.metadata()["contracts"]
    return [(f"{contract}:{t['name']}", t) for contract, spec in metadata.items() for t in spec["transactions"]]


@pytest.fixture(scope="module")
def ledger(fuzz_figures):
    """The embedded ledger with a little of everything: command 1 declared by RA1 for C1, readings, records."""
    chaincode = build_chaincode()
    chaincode.contracts["dr"].meter_authority = OPERATOR_AUTHORITY  # relayed readings are checked, as on a peer
    ledger = EmbeddedLedger(chaincode, COLLECTIONS)

    def submit(org, contract, name, *args, transient=None):
        gateway = EmbeddedGateway(CALLERS[org], ledger)
        return gateway.get_network("grid").get_contract("gridledger", contract).submit(name, *args, transient=transient)

    submit("TSO", "dr", "issue_command", json.dumps(COMMAND))
    summary = json.loads(
        submit(
            "RA1",
            "dr",
            "declare",
            "1",
            transient={
                "declaration": json.dumps(
                    {"baseline_method": "mean-before", "consumers": {"C1": {"expected_wh": [500] * 5}}}
                )
            },
        )
    )
    submit("RA1", "dr", "publish_declaration", "1", json.dumps(summary))
    submit(
        "RA1",
        "dr",
        "post_readings",
        "1",
        transient=signed_transient(
            "1",
            [{"consumer": "C1", "minute": m, "wh": 1000 + i} for i, m in enumerate(POSTED_MINUTES[:3])],
            OPERATOR_METERS,
        ),
    )
    submit("RA1", "records", "put_record", "k-public", '{"kwh":1}')
    submit("RA1", "records", "put_private_record", "RA1", "k-private", transient={"record": '{"kwh":2}'})
    yield ledger
    fuzz_figures["contracts, embedded ledger"] = {
        "fuzz_cases": sum(tried.values()),
        "fuzz_failures": len(failed),
        "transactions": len(tried),
        "failed_transactions": sorted(failed),
    }
    ledger.close()


# Strategies.

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["", "1", "C1", "RA1", "2021-01-14T00:00", "-1", "\x00", "NaN", "9" * 400, "C1\x00x", "../x"]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)
RAW = st.one_of(
    JSON_VALUES.map(lambda v: json.dumps(v)),
    st.text(max_size=60),
    st.binary(max_size=60),
    st.sampled_from(
        [
            b"\xff\xfe",
            b"{",
            b"[" * 900 + b"]" * 900,
            b"1e999999",
            b"-0",
            b"NaN",
            b"Infinity",
            b"[]",
            b"{}",
            b'"x"',
            b"null",
            b"true",
            "é".encode("utf-16"),
        ]
    ),
)


def mutate(draw, value):
    """`value` (a JSON value) with one part changed: replaced, removed, or grown by an unknown field."""
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        choice = draw(st.sampled_from(["replace", "remove", "add", "deeper"]))
        changed = dict(value)
        if choice == "remove":
            del changed[key]
        elif choice == "add":
            changed[draw(st.text(max_size=8))] = draw(JSON_VALUES)
        elif choice == "deeper":
            changed[key] = mutate(draw, value[key])
        else:
            changed[key] = draw(JSON_VALUES)
        return changed
    if isinstance(value, list) and value and draw(st.booleans()):
        index = draw(st.integers(0, len(value) - 1))
        changed = list(value)
        changed[index] = mutate(draw, value[index])
        if draw(st.booleans()):
            changed = changed * draw(st.integers(2, 3))  # duplicates
        return changed
    return draw(JSON_VALUES)


def mutated_text(draw, text: str):
    """A mutation of an argument: inside its JSON when it is JSON, else another string or raw bytes."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, (dict, list)) and draw(st.booleans()):
        return json.dumps(mutate(draw, value))
    return draw(RAW)


def draw_call(draw, function: str, description: dict):
    caller = draw(st.sampled_from(sorted(CALLERS)))
    example = EXAMPLES_BY_FUNCTION.get(function)
    if example and draw(st.integers(0, 3)):
        owner, args, transient = example
        caller = owner if draw(st.booleans()) else caller
        args, transient = list(args), dict(transient)
        parts = [("arg", i) for i in range(len(args))] + [("transient", k) for k in transient]
        if parts and draw(st.integers(0, 4)):
            where, which = draw(st.sampled_from(parts))
            if where == "arg":
                args[which] = mutated_text(draw, args[which])
            else:
                transient[which] = mutated_text(draw, transient[which])
        else:
            count = draw(st.sampled_from([0, len(args) - 1, len(args) + 1]))
            args = (args + [draw(RAW) for _ in range(count)])[: max(count, 0)]
        if draw(st.integers(0, 5)) == 0:
            transient[draw(st.sampled_from(TRANSIENT_NAMES))] = draw(RAW)
    else:
        count = len(description["parameters"]) + draw(st.sampled_from([0, 0, 0, -1, 1]))
        args = [draw(RAW) for _ in range(max(count, 0))]
        transient = {
            name: draw(RAW) for name in draw(st.lists(st.sampled_from(TRANSIENT_NAMES), max_size=2, unique=True))
        }
    peer = draw(st.sampled_from([None, None, *sorted(o.msp_id for o in TOPOLOGY.organisations)]))
    return caller, args, transient, peer


def snapshot(ledger):
    world = ledger.world
    return ledger.height, world.public_state(), {name: world.private_state(name) for name in COLLECTIONS}


@pytest.mark.parametrize("function, description", transactions(), ids=[name for name, _ in transactions()])
def test_bad_input_is_refused_clearly_and_changes_nothing(ledger, function, description):
    contract, _, name = function.partition(":")
    submits = "SUBMIT" in description["tag"]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=DERANDOMIZE,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(st.data())
    def run(data):
        caller, args, transient, peer = data.draw(st.composite(lambda draw: draw_call(draw, function, description))())
        tried[function] += 1
        gateway = EmbeddedGateway(CALLERS[caller], ledger)
        target = gateway.get_network("grid").get_contract("gridledger", contract)
        before = snapshot(ledger)
        options = {"transient": transient, "endorsing_organizations": [peer] if peer else None}
        try:
            if submits:
                target.submit(name, *args, **options)
            else:
                target.evaluate(name, *args, **options)
        except CommitError:
            pass  # ordered and recorded invalid, as Fabric does: the state is unchanged (checked below)
        except GatewayError as refused:
            message = str(refused)
            try:
                assert CLEAR_ERROR.fullmatch(message), f"unclear error from {function}: {message!r:.300}"
                assert "internal error" not in message and "Traceback" not in message, message
                assert snapshot(ledger) == before, f"refused {function} changed the ledger"
            except AssertionError:
                failed.add(function)
                raise
            return
        except Exception:
            failed.add(function)  # anything else is a crash of the contract or the shim
            raise
        if not submits:
            after = snapshot(ledger)
            if after != before:
                failed.add(function)
            assert after == before, f"evaluating {function} changed the ledger"

    run()


def _json_inputs():
    """Every JSON parameter of every transaction, and every transient name the contracts read."""
    for function, description in transactions():
        for position, parameter in enumerate(description["parameters"]):
            if parameter["schema"]["type"] in ("object", "array"):
                yield pytest.param(function, position, None, id=f"{function}-{parameter['name']}")
    for function, (_, _, transient) in EXAMPLES_BY_FUNCTION.items():
        for name in transient:
            yield pytest.param(function, None, name, id=f"{function}-transient-{name}")


@pytest.mark.parametrize("function, position, transient_name", list(_json_inputs()))
def test_deeply_nested_json_is_refused_clearly(ledger, function, position, transient_name):
    caller, args, transient = EXAMPLES_BY_FUNCTION.get(function, ("RA1", [], {}))
    if position is not None:
        args = (list(args) + ["{}"] * (position + 1))[: max(len(args), position + 1)]
        args[position] = DEEPLY_NESTED
    else:
        transient = {**transient, transient_name: DEEPLY_NESTED}
    contract, _, name = function.partition(":")
    target = EmbeddedGateway(CALLERS[caller], ledger).get_network("grid").get_contract("gridledger", contract)
    before = snapshot(ledger)
    with pytest.raises(GatewayError) as refused:
        target.submit(name, *args, transient=transient)
    assert CLEAR_ERROR.fullmatch(str(refused.value)) and "internal error" not in str(refused.value), str(refused.value)
    assert snapshot(ledger) == before
