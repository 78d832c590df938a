"""30-minute units and the split of money down the hierarchy: units from per-minute readings, the largest-remainder
rule on awkward remainders and as properties, and one command settled by hand for 2 ACs, 3 RAs and 5 consumers,
reconciling to the sen at every level."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaincode.contracts import settlement_units as su
from chaincode.contracts.common import Refusal
from consortium.units import minute_index, minute_label

START = minute_index("2026-12-10T13:00")
EXAMPLES = int(os.environ.get("GRIDLEDGER_FUZZ_EXAMPLES", "200"))


def test_units_sum_each_half_hour_and_know_when_a_minute_is_missing():
    readings = {START + m: 10 for m in range(60)}
    readings[START + 5] = 40
    del readings[START + 45]
    units = su.units_from_minutes(readings, START, START + 60)
    assert units == [su.Unit(START, 330, True), su.Unit(START + 30, 290, False)]
    with pytest.raises(Refusal, match="whole 30-minute units"):
        su.units_from_minutes(readings, START + 1, START + 31)


def test_an_incomplete_unit_delivers_nothing_and_falls_short_by_its_contract():
    row = su.unit_row(START, 2000, 0, 500, complete=False)
    assert (row["delivered_wh"], row["shortfall_wh"], row["rewarded_wh"]) == (0, 500, 0)
    assert row["unit"] == "2026-12-10T13:00"


@pytest.mark.parametrize(
    ("total", "weights", "shares"),
    [
        (100, {"a": 1, "b": 1, "c": 1}, {"a": 34, "b": 33, "c": 33}),  # equal remainders: sorted order
        (10, {"x": 3, "y": 3, "z": 1}, {"x": 4, "y": 4, "z": 2}),  # z's remainder 3/7 beats x's and y's 2/7
        (2912, {"RA1": 999, "RA2": 167}, {"RA1": 2495, "RA2": 417}),
        (5, {"p": 0, "q": 0}, {"p": 3, "q": 2}),  # no weight at all: equal shares
        (7, {"only": 0, "w": 5}, {"only": 0, "w": 7}),
        (0, {"a": 3}, {"a": 0}),
    ],
)
def test_largest_remainder_on_awkward_remainders(total, weights, shares):
    assert su.allocate(total, weights) == shares


def test_allocate_refuses_what_it_cannot_split():
    with pytest.raises(Refusal, match="non-negative number of sen"):
        su.allocate(-1, {"a": 1})
    with pytest.raises(Refusal, match="among nobody"):
        su.allocate(3, {})
    with pytest.raises(Refusal, match="weights"):
        su.allocate(3, {"a": -1, "b": 2})


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    st.integers(min_value=0, max_value=10**12),
    st.dictionaries(st.text("abcdefgh", min_size=1, max_size=4), st.integers(0, 10**9), min_size=1, max_size=12),
)
def test_allocate_loses_no_sen_and_stays_within_one_of_each_quota(total, weights):
    shares = su.allocate(total, weights)
    assert sum(shares.values()) == total and set(shares) == set(weights)
    used = weights if any(weights.values()) else dict.fromkeys(weights, 1)
    whole = sum(used.values())
    for name, share in shares.items():
        # quota ≤ share + 1 and share ≤ quota + 1, in integers: |share × Σw − total × w| < Σw
        assert abs(share * whole - total * used[name]) < whole
    assert su.allocate(total, dict(reversed(list(weights.items())))) == shares  # order of the input is no choice


def rows(*units: tuple[int, int, int] | tuple[int, int, int, bool]) -> list[dict]:
    return [su.unit_row(START + 30 * n, *unit) for n, unit in enumerate(units)]


CONSUMERS = {
    "C1": rows((1000, 600, 300), (1000, 900, 300)),
    "C2": rows((800, 700, 100), (800, 401, 100)),
    "C3": rows((500, 501, 100), (500, 333, 100)),
    "C4": rows((2000, 1000, 500), (2000, 0, 500, False)),
    "C5": rows((0, 0, 0), (0, 0, 0)),
}
RA_OF = {"C1": "RA1", "C2": "RA1", "C3": "RA2", "C4": "RA3", "C5": "RA3"}
AC_OF = {"RA1": "AC1", "RA2": "AC1", "RA3": "AC2"}


def test_one_command_settled_by_hand_down_to_the_sen():
    result = su.settle(CONSUMERS, RA_OF, AC_OF, su.kwh_payable(2500, penalty_sen_per_kwh=1000))
    ac1, ac2 = result["acs"]["AC1"], result["acs"]["AC2"]
    # AC1 per unit: delivered 499 (contracted 500: 1 Wh short) and 666; rewarded 1,165 Wh × 25 yen = 2,912.5 → 2,912
    assert [u["delivered_wh"] for u in ac1["units"]] == [499, 666]
    assert (ac1["rewarded_wh"], ac1["shortfall_wh"]) == (1165, 1)
    assert (ac1["reward_sen"], ac1["penalty_sen"], ac1["amount_sen"]) == (2912, 1, 2911)
    # AC2: C4's second unit lacks a minute: it delivers nothing and falls 500 Wh short, 500 sen of penalty.
    assert (ac2["reward_sen"], ac2["penalty_sen"]) == (2500, 500)
    ras, consumers = result["ras"], result["consumers"]
    assert {ra: (f["reward_sen"], f["penalty_sen"]) for ra, f in ras.items()} == {
        "RA1": (2495, 0),  # 2,912 × 999/1,166 = 2,494.93; the sen left over goes to the larger remainder
        "RA2": (417, 1),  # the only RA short in AC1 pays its penalty
        "RA3": (2500, 500),
    }
    assert {c: f["amount_sen"] for c, f in consumers.items()} == {
        "C1": 1249,  # 2,495 × 500/999 = 1,248.75
        "C2": 1246,  # 2,495 × 499/999 = 1,246.25
        "C3": 416,
        "C4": 2000,
        "C5": 0,
    }
    tso = result["tso"]
    assert (tso["reward_sen"], tso["penalty_sen"], tso["amount_sen"]) == (5412, 501, 4911)


def reconciles(result: dict) -> None:
    for key in ("reward_sen", "penalty_sen", "amount_sen"):
        assert result["tso"][key] == sum(f[key] for f in result["acs"].values())
        for ac, figure in result["acs"].items():
            assert figure[key] == sum(f[key] for f in result["ras"].values() if f["parent"] == ac)
        for ra, figure in result["ras"].items():
            assert figure[key] == sum(f[key] for f in result["consumers"].values() if f["parent"] == ra)


def test_the_hand_settled_command_reconciles_at_every_level():
    reconciles(su.settle(CONSUMERS, RA_OF, AC_OF, su.kwh_payable(2500, penalty_sen_per_kwh=1000)))


unit_strategy = st.tuples(st.integers(0, 5000), st.integers(0, 5000), st.integers(0, 3000), st.booleans())


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([f"C{n}" for n in range(12)]),
        st.tuples(st.sampled_from(["RA1", "RA2", "RA3", "RA4"]), st.lists(unit_strategy, min_size=3, max_size=3)),
        min_size=1,
    ),
    st.integers(1, 100_000),
    st.integers(0, 100_000),
)
def test_any_settlement_reconciles_to_the_sen(consumers, price, penalty):
    ac_of = {"RA1": "AC1", "RA2": "AC1", "RA3": "AC2", "RA4": "AC2"}
    consumer_rows = {c: rows(*units) for c, (_, units) in consumers.items()}
    result = su.settle(
        consumer_rows, {c: ra for c, (ra, _) in consumers.items()}, ac_of, su.kwh_payable(price, penalty)
    )
    reconciles(result)
    for figure in result["consumers"].values():
        assert figure["reward_sen"] >= 0 and figure["penalty_sen"] >= 0


def test_settle_refuses_a_consumer_without_an_ra_under_an_ac():
    with pytest.raises(Refusal, match="C9"):
        su.settle({"C9": rows((1, 0, 0))}, {"C9": "RA9"}, AC_OF, su.kwh_payable(100))


def test_unit_labels_are_the_jst_half_hours():
    result = su.settle(CONSUMERS, RA_OF, AC_OF, su.kwh_payable(2500))
    assert [u["unit"] for u in result["tso"]["units"]] == [minute_label(START), minute_label(START + 30)]
