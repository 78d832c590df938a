"""Windows off the 30-minute boundaries (our rule): the units a window overlaps with its minutes in each, a unit's
baseline pro-rated to them, and a declaration's slots spread over the units they fall in, rounded down once."""

import pytest

from chaincode.contracts.common import Refusal
from chaincode.contracts.settlement_units import contracted_from_slots, pro_rated, window_units

T0 = 30 * 1000  # a unit boundary


def test_a_window_straddling_a_boundary_has_a_part_of_each_unit():
    units = window_units(T0 + 25, T0 + 34)
    assert [(start - T0, minutes.start - T0, len(minutes)) for start, minutes in units] == [(0, 25, 5), (30, 30, 5)]
    assert [(s - T0, len(m)) for s, m in window_units(T0, T0 + 59)] == [(0, 30), (30, 30)]
    with pytest.raises(Refusal):
        window_units(T0 + 5, T0 + 4)


def test_a_units_baseline_is_pro_rated_down_to_whole_wh():
    assert pro_rated(100, 20) == 66 and pro_rated(100, 30) == 100 and pro_rated(7, 1) == 0


def test_declared_slots_spread_over_the_units_by_their_minutes():
    """Three 7-minute slots from T0+25 (7, 14, 21 Wh): unit T0 takes 5 minutes of the first slot, unit T0+30 the
    rest: 7×5/7 = 5 and (7×2 + 14×7 + 21×7)/7 = 37."""
    expected = [7, 14, 21]
    first_unit, second_unit = window_units(T0 + 25, T0 + 45)
    assert contracted_from_slots(expected, T0 + 25, 7, first_unit[1]) == 5
    assert contracted_from_slots(expected, T0 + 25, 7, second_unit[1]) == 37
