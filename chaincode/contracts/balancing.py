"""Balancing-market (需給調整市場) ΔkW rules as pure functions: the products as data, the two baselines (直前計測型 and
事前予測型/基準値計画), Assessment I and II, and their penalties, after EPRX's 需給調整市場 取引ガイド.

Source: 電力需給調整力取引所 (EPRX)「取引ガイド」第3版 2020年8月1日, sections 1-2 リソース等が満たすべき要件 (products),
2-6 発電販売計画および基準値計画の提出方法 (the forecast baseline), 2-9 アセスメント, 2-10 ペナルティ; the OCCTO 作業会
material on 三次調整力① (第28回 調整力の細分化及び広域調達の技術的検討に関する作業会 資料2, 2020-02-17). The transcripts read
show those sections' titles and structure; the figures they hold (tolerances, penalty factors, measuring windows) were
not readable, so each is a named parameter whose default the notes (/work/wt/notes/settlement.md) mark as unverified.

Quantities: power in W, energy in Wh, money in sen; a ΔkW price is sen per kW per 30-minute unit (コマ). Readings are
per-minute Wh, as on the ledger; a minute's Wh × 60 is its mean power in W.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import floor

from chaincode.contracts.common import Refusal

UNIT_MINUTES = 30
MINUTES_PER_HOUR = 60
W_PER_KW = 1000


@dataclass(frozen=True)
class Product:
    """A balancing product: how fast the resource must reach the instructed ΔkW after an instruction, how long it
    must hold it, the trading unit, and how often the response is assessed (Assessment II)."""

    name: str
    label: str
    response_minutes: int
    duration_minutes: int
    block_minutes: int
    assessed_every_minutes: int


# 取引ガイド §1-2 (response time / duration). Block lengths as issue 14 states them for tertiary ① (3 h) and
# tertiary ② (30-minute units); secondary ①'s block and every product's assessment interval are parameters whose
# defaults were not verified in a source.
PRODUCTS: dict[str, Product] = {
    "secondary-1": Product("secondary-1", "二次調整力①", 5, 30, 180, 1),
    "tertiary-1": Product("tertiary-1", "三次調整力①", 15, 180, 180, 1),
    "tertiary-2": Product("tertiary-2", "三次調整力②", 45, 30, 30, 30),
}


@dataclass(frozen=True)
class AssessmentRules:
    """The figures of Assessment II and the penalties. None is quoted from the guide (not readable here); the
    defaults are placeholders a TSO's command overrides.

    `tolerance_percent`: an assessed interval passes when delivered is within ± this share of the contracted ΔkW
    of the instructed value. `penalty_i`: factor on the ΔkW price for each kW Assessment I found short.
    `penalty_ii`: factor on the ΔkW price × contracted kW, scaled by the share of assessed intervals that failed."""

    tolerance_percent: int = 10
    penalty_i: Fraction = Fraction(3, 2)
    penalty_ii: Fraction = Fraction(1, 1)


def product(name: str) -> Product:
    try:
        return PRODUCTS[name]
    except KeyError:
        raise Refusal(f"unknown balancing product {name!r}; one of {', '.join(sorted(PRODUCTS))}") from None


def measured_baseline(readings: Mapping[int, int], instructed_at: int, measure_minutes: int = 1) -> int:
    """直前計測型: the baseline is the resource's consumption measured just before the instruction, held for the whole
    dispatch; here the mean Wh per minute of the `measure_minutes` minutes before `instructed_at`, rounded down.
    (取引ガイド §2-9 names the type; the measuring window is a parameter, default the last minute.)"""
    minutes = range(instructed_at - measure_minutes, instructed_at)
    missing = [m for m in minutes if m not in readings]
    if measure_minutes < 1 or missing:
        raise Refusal(f"the measured baseline needs a reading for each of the {measure_minutes} minute(s) before it")
    return sum(readings[m] for m in minutes) // measure_minutes


@dataclass(frozen=True)
class ForecastBaseline:
    """事前予測型: a 基準値計画 (Wh per 30-minute unit) submitted by the gate closure and locked from then on."""

    units_wh: tuple[int, ...]
    first_unit: int
    submitted_at: int


def locked_forecast(
    units_wh: Sequence[int], first_unit: int, submitted_at: int, gate_closure_minutes: int = 60
) -> ForecastBaseline:
    """A 基準値計画 that counts: submitted at least `gate_closure_minutes` before its first unit (取引ガイド §2-6 sets
    the submission of 基準値計画; the 60-minute default is Japan's plan gate closure, not verified in the guide).
    A later plan is refused, so a forecast cannot be moved once the window is near."""
    if first_unit % UNIT_MINUTES:
        raise Refusal("a 基準値計画 must start on a 30-minute unit")
    if submitted_at > first_unit - gate_closure_minutes:
        raise Refusal(
            f"a 基準値計画 must be submitted {gate_closure_minutes} minutes before its first unit; it came "
            f"{first_unit - submitted_at} minutes before"
        )
    if not units_wh or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in units_wh):
        raise Refusal("a 基準値計画 is a non-empty list of whole non-negative Wh per unit")
    return ForecastBaseline(tuple(units_wh), first_unit, submitted_at)


@dataclass(frozen=True)
class AssessmentI:
    """Could the contracted ΔkW be supplied in the unit (アセスメントⅠ)."""

    contracted_w: int
    available_w: int
    passed: bool
    shortfall_w: int
    shortfall_rate: Fraction  # 不足率 = shortfall / contracted


def assessment_i(contracted_w: int, available_w: int) -> AssessmentI:
    """アセスメントⅠ (取引ガイド §2-9): the ΔkW the resource could supply in the unit against the contracted ΔkW;
    short by max(contracted − available, 0), and 不足率 = shortfall / contracted."""
    shortfall = max(contracted_w - available_w, 0)
    rate = Fraction(shortfall, contracted_w) if contracted_w else Fraction(0)
    return AssessmentI(contracted_w, available_w, shortfall == 0, shortfall, rate)


def available_w(baseline_wh_per_minute: int, floor_wh_per_minute: int) -> int:
    """A demand resource's ΔkW: how far it can go below its baseline, as mean power (Wh per minute × 60)."""
    return max(baseline_wh_per_minute - floor_wh_per_minute, 0) * MINUTES_PER_HOUR


@dataclass(frozen=True)
class AssessmentII:
    """Did the response follow the instruction (アセスメントⅡ): each assessed interval after the response time."""

    intervals: int
    failed: int
    passed: bool
    failed_intervals: tuple[int, ...]  # first minutes of the failed intervals


def assessment_ii(
    product: Product,
    baseline_wh_per_minute: Sequence[int | Fraction],
    actual_wh: Sequence[int | Fraction],
    instructed_w: Sequence[int],
    contracted_w: int,
    first_minute: int,
    instructed_at: int,
    rules: AssessmentRules = AssessmentRules(),
) -> AssessmentII:
    """アセスメントⅡ (取引ガイド §2-9): per assessed interval of `product.assessed_every_minutes`, the delivered ΔkW
    (baseline − actual, as mean W) against the instructed ΔkW, passing within ± tolerance % of the contracted ΔkW.
    Minutes before `instructed_at + product.response_minutes` are not assessed: the resource is still ramping.
    The three sequences are per minute from `first_minute`."""
    if not len(baseline_wh_per_minute) == len(actual_wh) == len(instructed_w):
        raise Refusal("baseline, actual and instructed series must cover the same minutes")
    step = product.assessed_every_minutes
    from_minute = instructed_at + product.response_minutes
    tolerance = Fraction(contracted_w * rules.tolerance_percent, 100)
    failed, intervals = [], 0
    for start in range(0, len(actual_wh) - step + 1, step):
        if first_minute + start < from_minute:
            continue
        intervals += 1
        minutes = range(start, start + step)
        delivered = Fraction(sum(baseline_wh_per_minute[m] - actual_wh[m] for m in minutes) * MINUTES_PER_HOUR, step)
        instructed = Fraction(sum(instructed_w[m] for m in minutes), step)
        if abs(delivered - instructed) > tolerance:
            failed.append(first_minute + start)
    return AssessmentII(intervals, len(failed), not failed, tuple(failed))


def penalty_i_sen(
    result: AssessmentI,
    price_sen_per_kw: int,
    rules: AssessmentRules = AssessmentRules(),
    share: Fraction = Fraction(1),
) -> int:
    """Assessment I's penalty (取引ガイド §2-10): the kW found short × the ΔkW price × `penalty_i`, in whole sen
    rounded down. `share`: the part of the unit assessed (our rule for a window that covers a unit in part)."""
    return floor(Fraction(result.shortfall_w * price_sen_per_kw, W_PER_KW) * rules.penalty_i * share)


def penalty_ii_sen(
    result: AssessmentII,
    contracted_w: int,
    price_sen_per_kw: int,
    rules: AssessmentRules = AssessmentRules(),
    share: Fraction = Fraction(1),
) -> int:
    """Assessment II's penalty (取引ガイド §2-10): contracted kW × the ΔkW price × `penalty_ii` × the share of assessed
    intervals that failed, in whole sen rounded down; 0 when it passed. `share` as in penalty_i_sen."""
    if not result.failed:
        return 0
    failed = Fraction(result.failed, result.intervals)
    return floor(Fraction(contracted_w * price_sen_per_kw, W_PER_KW) * rules.penalty_ii * failed * share)


def delta_kw_payment_sen(
    contracted_w: int, result: AssessmentI, price_sen_per_kw: int, share: Fraction = Fraction(1)
) -> int:
    """The ΔkW payment for a unit: the ΔkW Assessment I found suppliable (contracted less shortfall) × the price,
    rounded down; `share` as in penalty_i_sen."""
    return floor(Fraction((contracted_w - result.shortfall_w) * price_sen_per_kw, W_PER_KW) * share)
