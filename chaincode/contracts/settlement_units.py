"""Settlement in 30-minute units (コマ) as pure functions: per-minute readings summed into units, each unit's
baseline, actual, delivered, contracted and shortfall per consumer, RA and AC, what the TSO pays each AC, and that
amount split to the AC's RAs and each RA's to its consumers in whole sen that add up exactly.

Japan meters and settles in 30-minute units: programmes following the ERAB guideline count 「30分値を1単位として」,
and the balancing market trades tertiary ② in 30-minute units (EPRX 取引ガイド §1-2; §2-11 精算 for settlement). Who pays whom follows the contracts: the TSO contracts with the AC (the
market member), so the AC's aggregate decides the payment; the split below the AC is the aggregators' own contract,
which no public rule fixes: here reward is split in proportion to rewarded Wh and penalty in proportion to shortfall
Wh, each by the largest-remainder rule (see allocate).

All integers: Wh, and sen (1/100 yen); a price is sen per kWh.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from math import floor

from chaincode.contracts import balancing
from chaincode.contracts.common import Refusal
from consortium.units import WH_PER_KWH, minute_label

UNIT_MINUTES = 30
ROW_FIELDS = ("baseline_wh", "actual_wh", "delivered_wh", "contracted_wh", "shortfall_wh", "rewarded_wh")


@dataclass(frozen=True)
class Unit:
    """One 30-minute unit of a consumer's readings: its first minute, the Wh read, and whether every minute has a
    reading."""

    start: int
    wh: int
    complete: bool


def units_from_minutes(readings: Mapping[int, int], first: int, end: int) -> list[Unit]:
    """The 30-minute units of [first, end) from per-minute Wh; the window must be whole units on the clock (JST is
    a whole number of units from UTC, so a unit that starts on :00 or :30 JST starts on a multiple of 30)."""
    if first % UNIT_MINUTES or end % UNIT_MINUTES or end <= first:
        raise Refusal(
            f"a settlement window must be whole 30-minute units, got {minute_label(first)} to {minute_label(end)}"
        )
    units = []
    for start in range(first, end, UNIT_MINUTES):
        minutes = range(start, start + UNIT_MINUTES)
        units.append(Unit(start, sum(readings.get(m, 0) for m in minutes), all(m in readings for m in minutes)))
    return units


def unit_row(start: int, baseline_wh: int, actual_wh: int, contracted_wh: int, complete: bool = True) -> dict:
    """One unit's figures; an incomplete unit delivers nothing (a missing minute is never counted as curtailment)."""
    delivered = baseline_wh - actual_wh if complete else 0
    return {
        "unit": minute_label(start),
        "complete": complete,
        "baseline_wh": baseline_wh,
        "actual_wh": actual_wh,
        "delivered_wh": delivered,
        "contracted_wh": contracted_wh,
        "shortfall_wh": max(contracted_wh - delivered, 0),
        "rewarded_wh": max(delivered, 0),
    }


def summed_rows(parts: Sequence[Sequence[dict]]) -> list[dict]:
    """Rows of several parts added unit by unit; shortfall and rewarded are recomputed on the sum, since the
    aggregate is what was contracted (one consumer's surplus covers another's shortfall)."""
    if not parts:
        return []
    rows = []
    for same_unit in zip(*parts, strict=True):
        row = {
            "unit": same_unit[0]["unit"],
            "complete": all(r["complete"] for r in same_unit),
            "baseline_wh": sum(r["baseline_wh"] for r in same_unit),
            "actual_wh": sum(r["actual_wh"] for r in same_unit),
            "delivered_wh": sum(r["delivered_wh"] for r in same_unit),
            "contracted_wh": sum(r["contracted_wh"] for r in same_unit),
        }
        row["shortfall_wh"] = max(row["contracted_wh"] - row["delivered_wh"], 0)
        row["rewarded_wh"] = max(row["delivered_wh"], 0)
        rows.append(row)
    return rows


def allocate(total: int, weights: Mapping[str, int]) -> dict[str, int]:
    """`total` sen split in proportion to `weights` by the largest-remainder (Hamilton) rule: each name gets the
    whole part of total × weight / Σ weights, and the sen left over go one each to the largest remainders, equal
    remainders in the names' sorted order. The shares add up to `total` exactly, and each is within one sen of its
    exact quota. All weights zero: equal shares."""
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise Refusal(f"an amount to split must be a whole non-negative number of sen, got {total!r}")
    if not weights:
        if total:
            raise Refusal(f"{total} sen cannot be split among nobody")
        return {}
    if any(isinstance(w, bool) or not isinstance(w, int) or w < 0 for w in weights.values()):
        raise Refusal("weights must be whole non-negative numbers")
    names = sorted(weights)
    used = {name: weights[name] for name in names} if any(weights.values()) else dict.fromkeys(names, 1)
    whole = sum(used.values())
    shares = {name: total * used[name] // whole for name in names}
    remainders = sorted(names, key=lambda name: (-(total * used[name] % whole), name))
    for name in remainders[: total - sum(shares.values())]:
        shares[name] += 1
    return shares


# What the TSO owes an AC (its name, its aggregate rows): (reward sen, penalty sen, per-unit notes such as
# assessments).
Payable = Callable[[str, list[dict]], tuple[int, int, list[dict]]]


def kwh_payable(price_sen_per_kwh: int, penalty_sen_per_kwh: int = 0) -> Payable:
    """kWh-type DR: reward = Σ rewarded Wh × price, penalty = Σ shortfall Wh × penalty price, each rounded down
    once over the AC's units. The ERAB guideline leaves the price and any shortfall charge to the contract: both
    come with the command (penalty default 0)."""

    def payable(ac: str, rows: list[dict]) -> tuple[int, int, list[dict]]:
        rewarded = sum(r["rewarded_wh"] for r in rows)
        short = sum(r["shortfall_wh"] for r in rows)
        return rewarded * price_sen_per_kwh // WH_PER_KWH, short * penalty_sen_per_kwh // WH_PER_KWH, []

    return payable


def _figure(name: str, level: str, parent: str | None, rows: list[dict], **extra) -> dict:
    totals = {field: sum(r[field] for r in rows) for field in ROW_FIELDS}
    return {"org": name, "level": level, "parent": parent, "units": rows, **totals, **extra}


def settle(
    consumer_rows: Mapping[str, list[dict]],
    ra_of: Mapping[str, str],
    ac_of: Mapping[str, str],
    payable: Payable,
    tso: str = "TSO",
) -> dict:
    """Every figure of one command: per consumer, RA, AC and the TSO, the unit rows and their totals; the TSO's
    payment to each AC from the AC's aggregate (`payable`), split to RAs and then consumers by `allocate` (reward
    by rewarded Wh, penalty by shortfall Wh). amount_sen = reward_sen − penalty_sen at every level, and every level
    adds up exactly to the one above."""
    unknown = sorted(c for c in consumer_rows if ra_of.get(c) not in ac_of)
    if unknown:
        raise Refusal(f"consumer(s) without an RA under a known AC: {', '.join(unknown)}")
    ras = sorted({ra_of[c] for c in consumer_rows})
    consumers_of = {ra: sorted(c for c in consumer_rows if ra_of[c] == ra) for ra in ras}
    acs = sorted({ac_of[ra] for ra in ras})
    ras_of = {ac: [ra for ra in ras if ac_of[ra] == ac] for ac in acs}
    consumer_figures = {
        c: _figure(c, "consumer", ra_of[c], list(consumer_rows[c])) for ra in ras for c in consumers_of[ra]
    }
    ra_figures = {
        ra: _figure(ra, "ra", ac_of[ra], summed_rows([consumer_rows[c] for c in consumers_of[ra]])) for ra in ras
    }
    ac_figures = {}
    for ac in acs:
        rows = summed_rows([ra_figures[ra]["units"] for ra in ras_of[ac]])
        reward, penalty, notes = payable(ac, rows)
        ac_figures[ac] = _figure(ac, "ac", tso, rows, reward_sen=reward, penalty_sen=penalty, assessments=notes)
        split(ac_figures[ac], [ra_figures[ra] for ra in ras_of[ac]])
        for ra in ras_of[ac]:
            split(ra_figures[ra], [consumer_figures[c] for c in consumers_of[ra]])
    total = _figure(tso, "tso", None, summed_rows([f["units"] for f in ac_figures.values()]))
    total["reward_sen"] = sum(f["reward_sen"] for f in ac_figures.values())
    total["penalty_sen"] = sum(f["penalty_sen"] for f in ac_figures.values())
    for figure in (total, *ac_figures.values(), *ra_figures.values(), *consumer_figures.values()):
        figure["amount_sen"] = figure["reward_sen"] - figure["penalty_sen"]
    return {
        "units_minutes": UNIT_MINUTES,
        "tso": total,
        "acs": ac_figures,
        "ras": ra_figures,
        "consumers": consumer_figures,
    }


def split(parent: dict, children: list[dict]) -> None:
    """Sets each child's reward_sen and penalty_sen: the parent's split by `allocate`, reward by rewarded Wh and
    penalty by shortfall Wh."""
    rewards = allocate(parent["reward_sen"], {c["org"]: c["rewarded_wh"] for c in children})
    penalties = allocate(parent["penalty_sen"], {c["org"]: c["shortfall_wh"] for c in children})
    for child in children:
        child["reward_sen"] = rewards[child["org"]]
        child["penalty_sen"] = penalties[child["org"]]


# A command's window in 30-minute units: each unit's first minute and the minutes of the window in it.


def window_units(first: int, last: int) -> list[tuple[int, range]]:
    """The 30-minute units (コマ) a window [first, last] (both included) overlaps, each with the window's minutes in
    it. Our rule for a window off the 30-minute boundaries: each unit it overlaps is assessed over its minutes in
    the window, with the unit's baseline pro-rated to them (see pro_rated); the guideline and the guide settle whole
    units only."""
    if last < first:
        raise Refusal("a window ends at or after its start")
    return [
        (start, range(max(start, first), min(start + UNIT_MINUTES, last + 1)))
        for start in range(first - first % UNIT_MINUTES, last + 1, UNIT_MINUTES)
    ]


def pro_rated(unit_wh: int, minutes: int) -> int:
    """A whole unit's Wh for `minutes` of it, rounded down (our rule, see window_units)."""
    return unit_wh * minutes // UNIT_MINUTES


def contracted_from_slots(expected_wh: Sequence[int], first: int, granularity: int, minutes: range) -> int:
    """kWh-type DR: what a consumer's declaration promises in `minutes` of a unit: each declared slot's expected Wh
    in proportion to its minutes there, rounded down once. (The ERAB guideline leaves the promised amount to the
    contract between aggregator and TSO; here it is the RA's declaration.)"""
    total = 0
    for slot, wh in enumerate(expected_wh):
        start = first + slot * granularity
        overlap = min(start + granularity, minutes.stop) - max(start, minutes.start)
        if overlap > 0:
            total += wh * overlap  # exact: the slot's Wh × its minutes here, over its length, summed below
    return total // granularity


@dataclass(frozen=True)
class AcMinutes:
    """One AC's per-minute aggregate over a window, for Assessment II: the baseline (Wh per minute, exact) and the
    actual Wh of the consumers that have a baseline; a minute without a consumer's reading counts that consumer as
    at its baseline (nothing delivered)."""

    baseline: Mapping[int, Fraction]
    actual: Mapping[int, Fraction]


def delta_kw_payable(
    product: balancing.Product,
    contracted_w: Mapping[str, int],
    price_sen_per_kw: int,
    rules: balancing.AssessmentRules,
    units: Sequence[tuple[int, range]],
    minutes_of: Mapping[str, AcMinutes],
    instructed_at: int,
) -> Payable:
    """A balancing product: per unit, Assessment I on the ΔkW the AC delivered (mean W over the unit's minutes in the
    window; our reading for a dispatched demand resource, the guide's check of 基準値 and capacity outside dispatch is
    not modelled), the ΔkW payment on what it found suppliable, its penalty, and Assessment II on the AC's per-minute
    response to an instruction of the contracted ΔkW from `instructed_at` (the command's issue), with its penalty.
    A unit the window covers in part is paid and penalised in proportion (`share`, our rule; see window_units);
    an interval longer than the unit's minutes shrinks to them."""

    def payable(ac: str, rows: list[dict]) -> tuple[int, int, list[dict]]:
        contracted = contracted_w[ac]
        series = minutes_of[ac]
        reward = penalty = 0
        notes = []
        for row, (start, minutes) in zip(rows, units, strict=True):
            count = len(minutes)
            share = Fraction(count, UNIT_MINUTES)
            delivered_w = Fraction(row["delivered_wh"] * balancing.MINUTES_PER_HOUR, count)
            first_check = balancing.assessment_i(contracted, max(floor(delivered_w), 0))
            assessed = product
            if count < product.assessed_every_minutes:
                assessed = replace(product, assessed_every_minutes=count)
            second_check = balancing.assessment_ii(
                assessed,
                [series.baseline.get(m, Fraction(0)) for m in minutes],
                [series.actual.get(m, Fraction(0)) for m in minutes],
                [contracted] * count,
                contracted,
                minutes.start,
                instructed_at,
                rules,
            )
            payment = balancing.delta_kw_payment_sen(contracted, first_check, price_sen_per_kw, share)
            penalty_i = balancing.penalty_i_sen(first_check, price_sen_per_kw, rules, share)
            penalty_ii = balancing.penalty_ii_sen(second_check, contracted, price_sen_per_kw, rules, share)
            reward += payment
            penalty += penalty_i + penalty_ii
            notes.append(
                {
                    "unit": minute_label(start),
                    "minutes": count,
                    "contracted_w": contracted,
                    "available_w": first_check.available_w,
                    "assessment_i": {
                        "passed": first_check.passed,
                        "shortfall_w": first_check.shortfall_w,
                        "shortfall_rate": str(first_check.shortfall_rate),
                    },
                    "assessment_ii": {
                        "passed": second_check.passed,
                        "intervals": second_check.intervals,
                        "failed": second_check.failed,
                        "failed_intervals": [minute_label(m) for m in second_check.failed_intervals],
                    },
                    "payment_sen": payment,
                    "penalty_i_sen": penalty_i,
                    "penalty_ii_sen": penalty_ii,
                }
            )
        return reward, penalty, notes

    return payable
