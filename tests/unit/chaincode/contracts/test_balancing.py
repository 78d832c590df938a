"""Balancing-market ΔkW rules on hand-computed cases: the products' times, the measured and the locked forecast
baselines, Assessment I's shortfall and 不足率, Assessment II passing and failing after the response time, and the
penalties in whole sen."""

from fractions import Fraction

import pytest

from chaincode.contracts import balancing
from chaincode.contracts.common import Refusal
from consortium.units import minute_index

T0 = minute_index("2026-12-10T13:00")  # the instruction, on a 30-minute unit


def test_products_carry_their_response_times_durations_and_units():
    times = {name: (p.response_minutes, p.duration_minutes, p.block_minutes) for name, p in balancing.PRODUCTS.items()}
    assert times["secondary-1"][:2] == (5, 30)
    assert times["tertiary-1"] == (15, 180, 180)
    assert times["tertiary-2"] == (45, 30, 30)
    with pytest.raises(Refusal, match="unknown balancing product 'primary'"):
        balancing.product("primary")


def test_measured_baseline_is_the_consumption_just_before_the_instruction():
    readings = {T0 - 3: 90, T0 - 2: 100, T0 - 1: 110, T0: 10}
    assert balancing.measured_baseline(readings, T0) == 110
    assert balancing.measured_baseline(readings, T0, measure_minutes=3) == 100
    assert balancing.measured_baseline({T0 - 2: 1, T0 - 1: 2}, T0, measure_minutes=2) == 1  # 1.5 rounds down
    with pytest.raises(Refusal, match="each of the 4 minute"):
        balancing.measured_baseline(readings, T0, measure_minutes=4)


def test_a_forecast_baseline_locks_at_the_gate_closure():
    plan = balancing.locked_forecast([5000, 5000], T0, submitted_at=T0 - 60)
    assert plan.units_wh == (5000, 5000)
    with pytest.raises(Refusal, match="60 minutes before its first unit; it came 59"):
        balancing.locked_forecast([5000, 5000], T0, submitted_at=T0 - 59)
    with pytest.raises(Refusal, match="non-negative Wh"):
        balancing.locked_forecast([5000, -1], T0, submitted_at=T0 - 90)
    with pytest.raises(Refusal, match="30-minute unit"):
        balancing.locked_forecast([5000], T0 + 1, submitted_at=T0 - 90)


def test_assessment_i_finds_the_shortfall_and_its_rate():
    full = balancing.assessment_i(contracted_w=100_000, available_w=120_000)
    assert full.passed and full.shortfall_w == 0 and full.shortfall_rate == 0
    short = balancing.assessment_i(contracted_w=100_000, available_w=70_000)
    assert not short.passed and short.shortfall_w == 30_000 and short.shortfall_rate == Fraction(3, 10)
    # 1,000 Wh a minute below a 2,500 Wh/min baseline: 1,500 Wh/min = 90 kW.
    assert balancing.available_w(2500, 1000) == 90_000


def test_assessment_i_penalty_and_payment_in_whole_sen():
    short = balancing.assessment_i(contracted_w=100_000, available_w=70_333)  # 29.667 kW short
    # 29.667 kW × 1,234 sen/kW × 3/2 = 54,913.617 → 54,913 sen
    assert balancing.penalty_i_sen(short, price_sen_per_kw=1234) == 54_913
    # paid for 70.333 kW × 1,234 sen = 86,790.922 → 86,790
    assert balancing.delta_kw_payment_sen(100_000, short, 1234) == 86_790
    assert balancing.penalty_i_sen(balancing.assessment_i(100_000, 100_000), 1234) == 0


def tertiary_1_run(actual_after: list[int]) -> balancing.AssessmentII:
    """Tertiary ①: instructed 60 kW (1,000 Wh a minute) at T0 on a 2,000 Wh/min measured baseline; 20 minutes."""
    minutes = 20
    baseline = [2000] * minutes
    actual = [2000] * 15 + actual_after  # still ramping through the 15-minute response time
    instructed = [60_000] * minutes
    return balancing.assessment_ii(
        balancing.product("tertiary-1"), baseline, actual, instructed, 60_000, first_minute=T0, instructed_at=T0
    )


def test_assessment_ii_passes_within_tolerance_and_ignores_the_response_time():
    # 1,100 Wh/min actual: delivered 900 Wh/min = 54 kW, 6 kW below 60: exactly the 10 % tolerance.
    result = tertiary_1_run([1000, 1000, 1100, 950, 1000])
    assert result.passed and result.intervals == 5 and result.failed == 0


def test_assessment_ii_fails_a_minute_that_strays_beyond_tolerance():
    # 1,101 Wh/min: delivered 53.94 kW, 6.06 kW short; 899: 66.06 kW, over by more than 6 kW too.
    result = tertiary_1_run([1000, 1101, 1000, 899, 1000])
    assert not result.passed and result.failed_intervals == (T0 + 16, T0 + 18)
    # Penalty: 60 kW × 1,000 sen × 1 × 2/5 = 24,000 sen.
    assert balancing.penalty_ii_sen(result, 60_000, 1000) == 24_000
    assert balancing.penalty_ii_sen(tertiary_1_run([1000] * 5), 60_000, 1000) == 0


def test_assessment_ii_of_tertiary_2_judges_the_whole_30_minute_unit():
    product = balancing.product("tertiary-2")
    instructed_at = T0 - 45  # instructed 45 minutes ahead: the whole unit is assessed
    baseline = [3000] * 30
    instructed = [100_000] * 30  # 100 kW = 1,666.67 Wh/min
    on_average = [1000] * 10 + [1666] * 10 + [1333] * 10  # mean delivered 1,667 Wh/min = 100.02 kW
    result = balancing.assessment_ii(product, baseline, on_average, instructed, 100_000, T0, instructed_at)
    assert result.passed and result.intervals == 1
    lazy = [2000] * 30  # 1,000 Wh/min = 60 kW: 40 kW short of 100 ± 10
    result = balancing.assessment_ii(product, baseline, lazy, instructed, 100_000, T0, instructed_at)
    assert not result.passed and result.failed_intervals == (T0,)
    rules = balancing.AssessmentRules(tolerance_percent=40)
    assert balancing.assessment_ii(product, baseline, lazy, instructed, 100_000, T0, instructed_at, rules).passed


def test_assessment_ii_refuses_series_of_different_lengths():
    with pytest.raises(Refusal, match="same minutes"):
        balancing.assessment_ii(balancing.product("tertiary-2"), [1] * 30, [1] * 29, [1] * 30, 1, T0, T0)
