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
from dataclasses import dataclass

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


# What the TSO owes an AC for its aggregate rows: (reward sen, penalty sen, per-unit notes such as assessments).
Payable = Callable[[list[dict]], tuple[int, int, list[dict]]]


def kwh_payable(price_sen_per_kwh: int, penalty_sen_per_kwh: int = 0) -> Payable:
    """kWh-type DR: reward = Σ rewarded Wh × price, penalty = Σ shortfall Wh × penalty price, each rounded down
    once over the AC's units. The ERAB guideline leaves the price and any shortfall charge to the contract: both
    come with the command (penalty default 0)."""

    def payable(rows: list[dict]) -> tuple[int, int, list[dict]]:
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
        reward, penalty, notes = payable(rows)
        ac_figures[ac] = _figure(ac, "ac", tso, rows, reward_sen=reward, penalty_sen=penalty, assessments=notes)
        _split(ac_figures[ac], [ra_figures[ra] for ra in ras_of[ac]])
        for ra in ras_of[ac]:
            _split(ra_figures[ra], [consumer_figures[c] for c in consumers_of[ra]])
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


def _split(parent: dict, children: list[dict]) -> None:
    rewards = allocate(parent["reward_sen"], {c["org"]: c["rewarded_wh"] for c in children})
    penalties = allocate(parent["penalty_sen"], {c["org"]: c["shortfall_wh"] for c in children})
    for child in children:
        child["reward_sen"] = rewards[child["org"]]
        child["penalty_sen"] = penalties[child["org"]]
