"""ERAB-guideline baselines on hand-computed 30-minute histories: High 4 of 5 on a weekday, High 2 of 3 on a public
holiday, a low day excluded and replaced, the 25 % boundary, ties, DR days and the 30-day lookback, the same-day
adjustment with and without its cap, and the refusals."""

from datetime import date, timedelta

import pytest

from chaincode.contracts import baselines
from chaincode.contracts.common import Refusal

EVENT = date(2026, 12, 10)  # a Thursday
FILL_WH = 500


def at(day: date, clock: str) -> int:
    hours, minutes = (int(part) for part in clock.split(":"))
    return baselines.day_start(day) + hours * 60 + minutes


def filled(first=date(2026, 10, 1), last=EVENT) -> dict[int, int]:
    """Every 30-minute slot of every day from `first` to `last` at FILL_WH."""
    history = {}
    day = first
    while day <= last:
        for slot in range(48):
            history[baselines.day_start(day) + slot * 30] = FILL_WH
        day += timedelta(days=1)
    return history


def put(history: dict[int, int], day: date, clock: str, values: list[int]) -> None:
    for n, value in enumerate(values):
        history[at(day, clock) + n * 30] = value


def weekday_history() -> dict[int, int]:
    """The five candidate weekdays before 2026-12-10 once the DR day 12-08 is left out, 13:00-15:00 JST."""
    history = filled()
    put(history, date(2026, 12, 9), "13:00", [1000, 1000, 1000, 1000])  # 4000
    put(history, date(2026, 12, 8), "13:00", [100, 100, 100, 100])  # the DR day
    put(history, date(2026, 12, 7), "13:00", [1200, 1100, 1000, 900])  # 4200
    put(history, date(2026, 12, 4), "13:00", [800, 800, 800, 801])  # 3201
    put(history, date(2026, 12, 3), "13:00", [900, 900, 900, 900])  # 3600
    put(history, date(2026, 12, 2), "13:00", [700, 700, 700, 700])  # 2800: the lowest of five
    return history


def event_baseline(history, adjustment=None, dr_days=(date(2026, 12, 8),), day=EVENT, start="13:00", end="15:00"):
    return baselines.baseline(history, at(day, start), at(day, end), dr_days=dr_days, adjustment=adjustment)


def test_weekday_high_4_of_5_drops_the_lowest_day_and_averages_per_slot_rounding_down():
    result = event_baseline(weekday_history())
    assert result.rule == "high-4-of-5" and result.day_type == baselines.WEEKDAY
    assert result.candidate_days == tuple(date(2026, 12, d) for d in (9, 7, 4, 3, 2))
    assert result.selected_days == tuple(date(2026, 12, d) for d in (9, 7, 4, 3))
    # (1000+1200+800+900)/4, (1000+1100+800+900)/4, (1000+1000+800+900)/4, (1000+900+801+900)/4 = 900.25
    assert result.slots_wh == (975, 950, 925, 900)
    assert result.adjustment_wh == (0, 0, 0, 0) and result.low_days == ()


def test_a_low_day_is_excluded_and_replaced_by_the_next_older_day():
    history = weekday_history()
    put(history, date(2026, 12, 3), "13:00", [100, 100, 100, 100])  # 400 < 25 % of 14601 / 5
    put(history, date(2026, 12, 1), "13:00", [600, 600, 600, 600])  # 2400, the replacement
    result = event_baseline(history)
    assert result.low_days == (date(2026, 12, 3),)
    assert result.candidate_days == tuple(date(2026, 12, d) for d in (9, 7, 4, 2, 1))
    assert result.selected_days == tuple(date(2026, 12, d) for d in (9, 7, 4, 2))
    # (1200+1000+800+700)/4, (1100+1000+800+700)/4, (1000+1000+800+700)/4, (900+1000+801+700)/4 = 850.25
    assert result.slots_wh == (925, 900, 875, 850)


@pytest.mark.parametrize(("per_slot", "low"), [(100, False), (99, True)])
def test_the_low_day_line_is_strictly_below_25_percent_of_the_candidates_average(per_slot, low):
    history = filled()
    for day in (9, 7, 4, 3):
        put(history, date(2026, 12, day), "13:00", [475] * 4)  # 1900 each
    # 400 is exactly 25 % of (4 × 1900 + 400) / 5 = 1600; 396 is below 25 % of 1599.2.
    put(history, date(2026, 12, 2), "13:00", [per_slot] * 4)
    result = event_baseline(history)
    assert (date(2026, 12, 2) in result.low_days) is low


def test_equal_lowest_days_leave_out_the_one_farthest_from_the_event():
    history = weekday_history()
    put(history, date(2026, 12, 2), "13:00", [801, 800, 800, 800])  # ties with 12-04 at 3201, the lowest
    result = event_baseline(history)
    assert result.selected_days == tuple(date(2026, 12, d) for d in (9, 7, 4, 3))


def test_a_public_holiday_takes_high_2_of_3_from_weekends_and_holidays_only():
    day = date(2026, 11, 23)  # 勤労感謝の日, a Monday
    history = filled()
    put(history, date(2026, 11, 22), "13:00", [300, 300])  # Sunday, 600
    put(history, date(2026, 11, 21), "13:00", [500, 700])  # Saturday, 1200
    put(history, date(2026, 11, 20), "13:00", [9000, 9000])  # Friday: a weekday, never a candidate
    put(history, date(2026, 11, 15), "13:00", [400, 401])  # Sunday, 801
    put(history, date(2026, 11, 14), "13:00", [9000, 9000])  # Saturday, but the fourth most recent
    result = event_baseline(history, dr_days=(), day=day, end="14:00")
    assert result.rule == "high-2-of-3" and result.day_type == baselines.HOLIDAY
    assert result.candidate_days == (date(2026, 11, 22), date(2026, 11, 21), date(2026, 11, 15))
    assert result.selected_days == (date(2026, 11, 21), date(2026, 11, 15))
    assert result.slots_wh == (450, 550)  # (500+400)/2, (700+401)/2 = 550.5


def test_the_holiday_calendar_comes_from_the_library_and_decides_the_candidates():
    history = filled()
    sunday = event_baseline(history, dr_days=(), day=date(2026, 11, 8), end="14:00")
    assert sunday.candidate_days == (date(2026, 11, 7), date(2026, 11, 3), date(2026, 11, 1))  # 11-03 文化の日
    wednesday = event_baseline(history, dr_days=(), day=date(2026, 11, 4), end="14:00")
    assert date(2026, 11, 3) not in wednesday.candidate_days
    assert wednesday.candidate_days[0] == date(2026, 11, 2)
    assert date(2026, 9, 22) in baselines.japanese_holidays({2026})  # 国民の休日 between two holidays


def test_dr_days_are_skipped_and_nothing_older_than_30_days_counts():
    history = filled(first=date(2026, 10, 1))
    dr_days = {
        date(2026, 11, 10) + timedelta(days=n) for n in range(30) if date(2026, 11, 10) + timedelta(days=n) != EVENT
    } - {date(2026, 12, 9), date(2026, 12, 7)}
    put(history, date(2026, 11, 9), "13:00", [9000] * 4)  # a Monday 31 days back: outside the lookback
    result = event_baseline(history, dr_days=dr_days)
    assert result.candidate_days == (date(2026, 12, 9), date(2026, 12, 7))
    assert result.slots_wh == (FILL_WH,) * 4


def test_same_day_adjustment_adds_the_difference_of_the_hours_before_the_event():
    history = weekday_history()
    put(history, EVENT, "09:00", [560] * 6)  # 09:00-12:00: 4 h to 1 h before 13:00; the kept days read 500 there
    result = event_baseline(history, adjustment=baselines.SameDayAdjustment())
    assert result.slots_wh == (1035, 1010, 985, 960)  # +60 on 975, 950, 925, 900.25
    assert result.adjustment_wh == (60, 60, 60, 60) and result.capped == (False,) * 4


def test_same_day_adjustment_lowers_the_baseline_when_the_morning_was_lower():
    history = weekday_history()
    put(history, EVENT, "09:00", [400] * 6)
    result = event_baseline(history, adjustment=baselines.SameDayAdjustment())
    assert result.slots_wh == (875, 850, 825, 800)


def test_same_day_adjustment_is_capped_at_its_share_of_the_unadjusted_slot():
    history = weekday_history()
    put(history, EVENT, "09:00", [800] * 6)  # +300 a slot, more than 20 %
    result = event_baseline(history, adjustment=baselines.SameDayAdjustment(cap_percent=20))
    # 975 × 1.2, 950 × 1.2, 925 × 1.2, 900.25 × 1.2 = 1080.3
    assert result.slots_wh == (1170, 1140, 1110, 1080)
    assert result.capped == (True,) * 4
    uncapped = event_baseline(history, adjustment=baselines.SameDayAdjustment(cap_percent=None))
    assert uncapped.slots_wh == (1275, 1250, 1225, 1200)


def test_refusals_say_what_is_missing():
    with pytest.raises(Refusal, match="whole 30-minute slots"):
        baselines.baseline(weekday_history(), at(EVENT, "13:10"), at(EVENT, "15:00"), adjustment=None)
    with pytest.raises(Refusal, match="0 eligible day"):
        baselines.baseline({}, at(EVENT, "13:00"), at(EVENT, "15:00"), adjustment=None)
    history = weekday_history()
    del history[at(EVENT, "10:00")]
    with pytest.raises(Refusal, match="same-day adjustment needs the event day"):
        event_baseline(history, adjustment=baselines.SameDayAdjustment())
