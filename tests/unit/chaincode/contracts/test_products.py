"""A command's product: the topology's defaults fill what it leaves out, and a product frozen with them (as a
command could record it at issue) settles by the same rules whatever the topology says later."""

from dataclasses import replace

import pytest

from chaincode.contracts.common import Refusal
from chaincode.contracts.products import checked_product, frozen, resolved
from consortium import topology as topology_file

DEFAULTS = topology_file.load().settlement


@pytest.mark.parametrize(
    "product",
    [
        {"name": "kwh-dr"},
        {"name": "kwh-dr", "same_day": None},
        {"name": "kwh-dr", "same_day": {"cap_percent": None}, "penalty_sen_per_kwh": 5},
        {"name": "tertiary-2", "contracted_w": {"AC1": 7}, "baseline": "forecast"},
        {"name": "secondary-1", "contracted_w": {"AC1": 7}, "tolerance_percent": 3},
    ],
)
def test_a_frozen_product_settles_by_the_same_rules_under_other_defaults(product):
    checked = checked_product(product, ["AC1"])
    assert checked is not None
    record = frozen(checked, DEFAULTS)
    assert checked_product(record, ["AC1"]) == record
    other = replace(DEFAULTS, price_sen_per_kw=1, same_day_cap_percent=None, measure_minutes=9, tolerance_percent=50)
    assert resolved(record, other).record() == resolved(checked, DEFAULTS).record()
    assert resolved(checked, other).record() != resolved(checked, DEFAULTS).record() or "same_day" in product


def test_the_topology_gives_the_defaults():
    rules = resolved({"name": "tertiary-1", "contracted_w": {"AC1": 1}}, DEFAULTS)
    assert (rules.baseline, rules.price_sen_per_kw, rules.measure_minutes) == ("measured", 100, 5)
    kwh = resolved({"name": "kwh-dr"}, DEFAULTS)
    assert (kwh.same_day.starts_before_minutes, kwh.same_day.ends_before_minutes, kwh.same_day.cap_percent) == (
        240,
        60,
        20,
    )


def test_a_same_day_window_that_ends_before_it_starts_is_refused():
    with pytest.raises(Refusal, match="must end after it starts"):
        resolved({"name": "kwh-dr", "same_day": {"starts_before_minutes": 30, "ends_before_minutes": 60}}, DEFAULTS)
