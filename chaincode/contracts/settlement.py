"""Settlement maths of the dr contract as pure functions: per-minute sums of readings, each slot's performance, an
organisation's figure and reward, and the sums an AC and the TSO see. The contract reads the ledger; these compute.

All integers: energy in Wh, prices in hundredths of a yen per kWh, rewards in hundredths of a yen. Per slot,
delivered = baseline − actual (0 when some declared consumer has no reading for some minute of it: the slot is
incomplete); shortfall = max(expected − delivered, 0); rewarded = max(delivered, 0). An RA's reward is
sum(rewarded Wh) × price_per_kwh // 1000, rounded down once; an AC's (and the TSO's) is the sum of its RAs'.

The baseline is the declared one, or for "mean-before" the mean per minute of the RA's aggregate over the
command's baseline minutes, counting only complete minutes (every declared consumer has a reading), times the
slot length.
"""

from collections.abc import Iterable

from chaincode.contracts.dr_inputs import Command, Reading
from consortium.topology import Organisation
from consortium.units import WH_PER_KWH, minute_label

SLOT_FIELDS = ("baseline_wh", "actual_wh", "delivered_wh", "expected_wh", "shortfall_wh", "rewarded_wh")
UNITS = {"energy": "Wh", "price_per_kwh": "hundredths of a yen per kWh", "reward": "hundredths of a yen"}

# Minute label → (Wh, readings): what one RA's readings add up to in each minute.
MinuteSums = dict[str, tuple[int, int]]


def batch_sums(readings: Iterable[Reading]) -> dict[str, list[int]]:
    """Minute label → [Wh, readings] of one batch: the delta key a post_readings transaction writes."""
    sums: dict[str, list[int]] = {}
    for reading in readings:
        total = sums.setdefault(minute_label(reading.minute), [0, 0])
        total[0] += reading.wh
        total[1] += 1
    return sums


def added_sums(batches: Iterable[dict[str, list[int]]]) -> MinuteSums:
    """The batches' sums added up per minute: an RA's aggregate."""
    sums: dict[str, list[int]] = {}
    for batch in batches:
        for label, (wh, count) in batch.items():
            total = sums.setdefault(label, [0, 0])
            total[0] += wh
            total[1] += count
    return {label: (wh, count) for label, (wh, count) in sums.items()}


def aggregate(org: Organisation, labels: list[str], parts: list[MinuteSums]) -> dict:
    """An organisation's per-minute Wh and reading counts over `labels`: its RAs' sums (`parts`) added up."""
    minutes = []
    for label in labels:
        found = [part.get(label, (0, 0)) for part in parts]
        minutes.append({"minute": label, "wh": sum(p[0] for p in found), "readings": sum(p[1] for p in found)})
    return {"org": org.name, "level": org.role, "parent": org.parent, "minutes": minutes}


def reward(rewarded_wh: int, price_per_kwh: int) -> int:
    """Hundredths of a yen for rewarded Wh at a price in hundredths of a yen per kWh, rounded down."""
    return rewarded_wh * price_per_kwh // WH_PER_KWH


def slot_row(label: str, baseline: int, actual: int, expected: int, complete: bool) -> dict:
    """One slot's performance; an incomplete slot delivers nothing."""
    delivered = baseline - actual if complete else 0
    return {
        "slot": label,
        "complete": complete,
        "baseline_wh": baseline,
        "actual_wh": actual,
        "delivered_wh": delivered,
        "expected_wh": expected,
        "shortfall_wh": max(expected - delivered, 0),
        "rewarded_wh": max(delivered, 0),
    }


def figure(org: Organisation, price_per_kwh: int, rows: list[dict], **extra) -> dict:
    """An organisation's slots, their totals and the reward of its rewarded Wh."""
    totals = {name: sum(row[name] for row in rows) for name in SLOT_FIELDS}
    return {
        "org": org.name,
        "level": org.role,
        "parent": org.parent,
        **extra,
        "slots": rows,
        **totals,
        "reward_hundredth_yen": reward(totals["rewarded_wh"], price_per_kwh),
    }


def ra_figure(command: Command, ra: Organisation, header: dict | None, sums: MinuteSums) -> dict:
    """One RA's performance per slot and its reward, from its declaration's header (None: it did not declare,
    and every slot is zero) and the per-minute sums of its readings."""
    slots = command.slot_count
    if header is None:
        rows = [slot_row(command.slot_label(s), 0, 0, 0, True) for s in range(slots)]
        return figure(ra, command.price_per_kwh, rows, declared=False, consumers=0, baseline_method=None)
    consumers = len(header["consumers"])

    def complete(minute: int) -> bool:
        return sums.get(minute_label(minute), (0, 0))[1] >= consumers

    if header["baseline_method"] == "declared":
        baseline = header["baseline_wh"]
        baseline_minutes_used = None
    else:
        before = [m for m in range(command.earliest_reading, command.first) if complete(m)]
        mean = sum(sums[minute_label(m)][0] for m in before) * command.granularity // len(before) if before else 0
        baseline = [mean] * slots
        baseline_minutes_used = len(before)
    rows = []
    for s in range(slots):
        minutes = command.slot_minutes(s)
        actual = sum(sums.get(minute_label(m), (0, 0))[0] for m in minutes)
        rows.append(
            slot_row(command.slot_label(s), baseline[s], actual, header["expected_wh"][s], all(map(complete, minutes)))
        )
    result = figure(
        ra, command.price_per_kwh, rows, declared=True, consumers=consumers, baseline_method=header["baseline_method"]
    )
    result["baseline_minutes_used"] = baseline_minutes_used
    return result


def sum_figures(org: Organisation, command: Command, parts: list[dict]) -> dict:
    """An AC's (or the TSO's) figure: its parts' slots added up; its reward is the sum of theirs, each rounded."""
    rows = []
    for slot in range(command.slot_count):
        row = {
            "slot": command.slot_label(slot),
            "complete": all(p["slots"][slot]["complete"] for p in parts if p["declared"]),
        }
        row.update({name: sum(p["slots"][slot][name] for p in parts) for name in SLOT_FIELDS})
        rows.append(row)
    result = figure(org, command.price_per_kwh, rows, declared=any(p["declared"] for p in parts))
    result["reward_hundredth_yen"] = sum(p["reward_hundredth_yen"] for p in parts)
    return result


def settlement_view(caller: Organisation, command: Command, figures: list[dict], settled: bool) -> dict:
    """What get_settlement answers: the figures the caller may see and, for the TSO, the total of the ACs'."""
    view = {
        "command": command.id,
        "settled": settled,
        "price_per_kwh": command.price_per_kwh,
        "units": dict(UNITS),
        "figures": figures,
    }
    if caller.role == "tso":
        view["total"] = sum_figures(caller, command, [f for f in figures if f["level"] == "ac"])
    return view
