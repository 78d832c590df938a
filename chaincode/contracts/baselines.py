"""kWh-type DR baselines by METI's ERAB guideline: High 4 of 5 on weekdays, High 2 of 3 on weekends and holidays,
low days excluded, and the same-day adjustment (当日調整), as pure functions of 30-minute history.

Source: 資源エネルギー庁「エネルギー・リソース・アグリゲーション・ビジネスに関するガイドライン」(策定 平成27年3月30日,
改定 平成31年4月1日 edition read for its outline: 第2章 ベースライン, 「ベースラインの設定方法」; the 令和2年6月1日 revision
is the one retail programmes cite for the rules below). What each function takes from it is in its docstring; every
figure the readable transcripts did not show is a field of BaselineRule or SameDayAdjustment with a default, and
/work/wt/notes/settlement.md lists which.

History is 30-minute metered energy (Japan's smart meters record 30-minute values): a mapping from the first minute
of each 30-minute slot (a minute index, consortium.units) to its Wh. The arithmetic is exact (fractions) and rounds
down to whole Wh once per slot, so every endorser computes the same integers.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from math import floor

import holidays

from chaincode.contracts.common import Refusal
from consortium.units import EPOCH, JST

SLOT_MINUTES = 30
DAY_MINUTES = 1440
WEEKDAY = "weekday"
HOLIDAY = "weekend-or-holiday"  # 土日祝日


@dataclass(frozen=True)
class BaselineRule:
    """High `kept` of `candidates`: the `candidates` most recent eligible days within `lookback_days`, keeping the
    `kept` with the highest consumption in the DR window.

    `low_day_percent`: a day whose window consumption is below this share of the candidates' average is excluded
    and replaced by the next older eligible day (guideline figure: 25 %). `min_days`: fewer eligible days than this
    and no baseline can be set (not found in a source: default 1, the guideline's wording covers only full sets)."""

    name: str
    candidates: int
    kept: int
    lookback_days: int = 30
    low_day_percent: int = 25
    min_days: int = 1


WEEKDAY_RULE = BaselineRule("high-4-of-5", candidates=5, kept=4)
HOLIDAY_RULE = BaselineRule("high-2-of-3", candidates=3, kept=2)


@dataclass(frozen=True)
class SameDayAdjustment:
    """当日調整: the event day's consumption in a window just before the event, compared with the same slots of the
    baseline days; the difference per slot is added to every baseline slot, limited to ±`cap_percent` of it.

    The guideline names the adjustment; the window and the cap were not in any transcript read (see the notes):
    defaults 4 h to 1 h before the event and a 20 % cap are parameters, not quoted rules. `cap_percent=None`
    applies no cap."""

    starts_before_minutes: int = 240
    ends_before_minutes: int = 60
    cap_percent: int | None = 20


@dataclass(frozen=True)
class Baseline:
    """A consumer's baseline for one event: Wh per 30-minute slot of the window, and how it was reached."""

    rule: str
    day_type: str
    candidate_days: tuple[date, ...]  # the candidates finally used, most recent first
    low_days: tuple[date, ...]  # excluded as low days
    selected_days: tuple[date, ...]  # the `kept` highest, most recent first
    unadjusted_wh: tuple[int, ...]
    adjustment_wh: tuple[int, ...]  # per slot, after the cap; zeros without a same-day adjustment
    capped: tuple[bool, ...]
    slots_wh: tuple[int, ...]


def jst_date(minute: int) -> date:
    return (EPOCH + timedelta(minutes=minute)).astimezone(JST).date()


def day_start(day: date) -> int:
    """Minute index of 00:00 JST of `day`."""
    return (datetime(day.year, day.month, day.day, tzinfo=JST) - EPOCH) // timedelta(minutes=1)


def japanese_holidays(years: Collection[int]) -> holidays.HolidayBase:
    """Japan's public holidays (国民の祝日, 振替休日, 国民の休日) from the `holidays` package, pinned in pyproject so that
    every endorser agrees on the calendar."""
    return holidays.country_holidays("JP", years=sorted(years))


def day_type(day: date, calendar: Collection[date]) -> str:
    """土日祝日 or weekday: the guideline sets weekday and weekend/holiday baselines apart (第2章)."""
    return HOLIDAY if day.weekday() >= 5 or day in calendar else WEEKDAY


def rule_for(day_kind: str) -> BaselineRule:
    return WEEKDAY_RULE if day_kind == WEEKDAY else HOLIDAY_RULE


def window_slots(first: int, end: int) -> list[int]:
    """First minutes of the 30-minute slots of [first, end); both must fall on slot boundaries (コマ)."""
    if first % SLOT_MINUTES or end % SLOT_MINUTES or end <= first:
        raise Refusal(f"a baseline window must be whole 30-minute slots, got minutes {first} to {end}")
    return list(range(first, end, SLOT_MINUTES))


def _shifted(slots: list[int], days: int) -> list[int]:
    return [slot + days * DAY_MINUTES for slot in slots]


def _window_total(history: Mapping[int, int], slots: list[int]) -> int | None:
    values = [history.get(slot) for slot in slots]
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def select_days(
    history: Mapping[int, int],
    slots: list[int],
    dr_days: Collection[date],
    calendar: Collection[date],
    rule: BaselineRule | None = None,
) -> tuple[str, BaselineRule, list[date], list[date], list[date]]:
    """The day type of the event, its rule, the candidate days, the low days excluded, and the days kept.

    Guideline rule (as a programme citing the 令和2年6月1日 revision restates it): on a weekday, the 5 most recent
    days before the event day (not counting it) within 30 days; on a weekend or holiday, the 3 most recent; DR days
    are not candidates (「DRの発動日を除いた5日間」). A candidate must be of the event day's type and have every window
    slot in the history. Low days (window consumption below 25 % of the candidates' average) are excluded and
    replaced by going further back. Of the candidates the `kept` highest by window consumption are kept; where
    days tie, the most recent is kept (the programme: among equal minimum days the one farthest from the event
    day is the one left out)."""
    event_day = jst_date(slots[0])
    kind = day_type(event_day, calendar)
    rule = rule or rule_for(kind)
    pool = []
    for back in range(1, rule.lookback_days + 1):
        day = event_day - timedelta(days=back)
        if day in dr_days or day_type(day, calendar) != kind:
            continue
        total = _window_total(history, _shifted(slots, -back))
        if total is not None:
            pool.append((day, total))
    chosen: list[tuple[date, int]] = []
    low: list[date] = []
    while True:
        while len(chosen) < rule.candidates and pool:
            chosen.append(pool.pop(0))
        if not chosen:
            break
        # total × 100 × n < percent × Σ totals  ⇔  total < percent % of the average, in integers.
        reference = sum(total for _, total in chosen)
        lows = [d for d, total in chosen if total * 100 * len(chosen) < rule.low_day_percent * reference]
        if not lows:
            break
        low.extend(lows)
        chosen = [(d, total) for d, total in chosen if d not in lows]
    if len(chosen) < rule.min_days or not chosen:
        raise Refusal(
            f"no {rule.name} baseline for {event_day.isoformat()}: {len(chosen)} eligible day(s) in the last "
            f"{rule.lookback_days} days, at least {max(rule.min_days, 1)} needed"
        )
    ranked = sorted(chosen, key=lambda item: (-item[1], -item[0].toordinal()))
    kept = sorted((d for d, _ in ranked[: rule.kept]), reverse=True)
    return kind, rule, [d for d, _ in chosen], low, kept


def baseline(
    history: Mapping[int, int],
    first: int,
    end: int,
    dr_days: Collection[date] = (),
    calendar: Collection[date] | None = None,
    adjustment: SameDayAdjustment | None = SameDayAdjustment(),
    rule: BaselineRule | None = None,
) -> Baseline:
    """A consumer's baseline for the event window [first, end) (minute indexes, 30-minute aligned).

    Per slot, the average of that slot over the kept days (High 4 of 5 / High 2 of 3, see select_days). With
    `adjustment`, the same-day adjustment: (the event day's mean per slot over the adjustment window) − (the kept
    days' mean over the same slots), added to each slot and limited to ±cap % of the unadjusted slot; a baseline
    never goes below 0 Wh. Exact fractions, rounded down to whole Wh once per slot (truncation, as the programme
    citing the guideline truncates its kWh)."""
    slots = window_slots(first, end)
    event_day = jst_date(first)
    if calendar is None:
        calendar = japanese_holidays({event_day.year - 1, event_day.year})
    kind, rule, candidates, low, kept = select_days(history, slots, dr_days, calendar, rule)
    offsets = [(d - event_day).days for d in kept]
    averages = [Fraction(sum(history[slot + o * DAY_MINUTES] for o in offsets), len(kept)) for slot in slots]
    shift = Fraction(0)
    if adjustment is not None:
        before = window_slots(first - adjustment.starts_before_minutes, first - adjustment.ends_before_minutes)
        today = [history.get(slot) for slot in before]
        if any(value is None for value in today):
            raise Refusal(
                f"the same-day adjustment needs the event day's readings from {adjustment.starts_before_minutes} "
                f"to {adjustment.ends_before_minutes} minutes before the event"
            )
        past = [history.get(slot + o * DAY_MINUTES) for slot in before for o in offsets]
        if any(value is None for value in past):
            raise Refusal("the same-day adjustment needs the baseline days' readings over the adjustment window")
        shift = Fraction(sum(v for v in today if v is not None), len(before)) - Fraction(
            sum(v for v in past if v is not None), len(before) * len(kept)
        )
    adjusted, shifts, capped = [], [], []
    for average in averages:
        limit = None if adjustment is None or adjustment.cap_percent is None else average * adjustment.cap_percent / 100
        applied = shift if limit is None else max(-limit, min(limit, shift))
        capped.append(applied != shift)
        value = max(average + applied, Fraction(0))
        adjusted.append(floor(value))
        shifts.append(floor(value) - floor(average))
    return Baseline(
        rule=rule.name,
        day_type=kind,
        candidate_days=tuple(candidates),
        low_days=tuple(low),
        selected_days=tuple(kept),
        unadjusted_wh=tuple(floor(a) for a in averages),
        adjustment_wh=tuple(shifts),
        capped=tuple(capped),
        slots_wh=tuple(adjusted),
    )
