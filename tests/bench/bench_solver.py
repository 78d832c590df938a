"""Matching solver benchmark: fast path against the Pyomo model, optimal matching against the continuous double
auction, and verification time, on seeded random gates; prints a table and writes JSON.

    .venv/bin/python tests/bench/bench_solver.py [--sizes 100,1000,10000,100000] [--out bench-results/solver.json]

Gates: half as many participants as orders, asks around 15 and bids around 19 yen/kWh (normal, sd 3.5, kept
within 8-30, in 0.1-yen steps), 0.1-10 kWh in 0.1-kWh steps, arrival within a 30-minute gate; 2 % of the
participants trade on both sides and 5 % of the orders are copies of another order by someone else
(equivalent orders). Every solve is verified; "verify" is the median of three runs of the chaincode's verifier,
"tie" the time of the proposal's tie-break key (solver.verify.fairness_key), which finalise computes per
proposal only when proposals tie on value.

Targets at 10,000 orders: volume and welfare solved to proven optimality in under 1 s, maxmin under 10 s,
verification under 100 ms. The Pyomo model builds variables per compatible pair (O(n^2)) and is skipped above
MODEL_LIMIT orders (1000 for volume and welfare, 300 for maxmin, whose model has two variables and three
constraints per pair: at 1000 orders it runs for over ten minutes); maxmin's fast path prices its worst-off
participants' orders against every counter-order and is skipped above MAXMIN_LIMIT orders. Both are said so in
the output.
"""

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from consortium import OBJECTIVES
from consortium.units import MILLISEN_PER_YEN, WH_PER_KWH
from solver.cda import continuous_double_auction
from solver.matching import solve
from solver.orders import Order
from solver.proposals import total_surplus, traded_volume, value_in_display_units
from solver.verify import verify

MODEL_LIMIT = {"volume": 1000, "welfare": 1000, "maxmin": 300}
MAXMIN_LIMIT = 20_000
TARGETS = {"volume": 1.0, "welfare": 1.0, "maxmin": 10.0}
VERIFY_TARGET = 0.1
GATE_START_MS = 1_767_193_200_000  # 2026-01-01 00:00 JST


def random_gate(size: int, seed: int) -> list[Order]:
    rng = random.Random(seed)
    participants = max(2, size // 2)
    both_sides = set(rng.sample(range(participants), max(1, participants // 50)))
    orders = []
    while len(orders) < size:
        if orders and rng.random() < 0.05:
            copied = rng.choice(orders)
            orders.append(
                Order(
                    f"o{len(orders)}",
                    f"p{rng.randrange(participants)}",
                    copied.side,
                    copied.price,
                    copied.quantity,
                    copied.time,
                )
            )
            continue
        person = rng.randrange(participants)
        side = rng.choice(("buy", "sell")) if person in both_sides else ("sell" if person % 2 else "buy")
        centre = 19.0 if side == "buy" else 15.0
        price_sen = 10 * round(min(max(rng.gauss(centre, 3.5), 8.0), 30.0) * 10)
        orders.append(
            Order(
                f"o{len(orders)}",
                f"p{person}",
                side,
                price_sen,
                100 * rng.randint(1, 100),
                GATE_START_MS + 1000 * rng.randrange(1800),
            )
        )
    return orders


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def run_objective(orders, objective, seed):
    size = len(orders)
    row = {"orders": size, "objective": objective}
    if objective == "maxmin" and size > MAXMIN_LIMIT:
        row["fast"] = f"skipped above {MAXMIN_LIMIT} orders (worst-off orders priced against all counter-orders)"
        return row
    solution, seconds = timed(solve, orders, objective, seed)
    proposal = solution.proposal()
    verify_times = []
    for _ in range(3):
        verified, verify_seconds = timed(verify, orders, seed, objective, proposal)
        verify_times.append(verify_seconds)
    _, tie_key_seconds = timed(verified.tie_key)  # what finalise adds per proposal when proposals tie
    row.update(
        {
            "fast_seconds": round(seconds, 4),
            "value": value_in_display_units(objective, solution.value),
            "certified_optimal": verified.optimal,
            "volume_kwh": solution.volume / WH_PER_KWH,
            "surplus_yen": solution.surplus / MILLISEN_PER_YEN,
            "verify_seconds": round(statistics.median(verify_times), 4),
            "tie_key_seconds": round(tie_key_seconds, 4),
            "trades": len(solution.trades),
        }
    )
    if objective == "maxmin":
        row["lp_bound"] = solution.bound  # yen/kWh, what the rounded trades approach
    if size <= MODEL_LIMIT[objective]:
        model, model_seconds = timed(solve, orders, objective, seed, method="model")
        row["model_seconds"] = round(model_seconds, 4)
        row["model_value"] = value_in_display_units(objective, model.value)
        row["model_bound"] = model.bound
        same = model.value == solution.value if objective != "maxmin" else abs(model.bound - solution.bound) <= 1e-6
        row["fast_equals_model"] = same
    else:
        row["model_seconds"] = f"skipped above {MODEL_LIMIT[objective]} orders (variables per pair: minutes)"
    return row


def run(sizes, out):
    started = time.perf_counter()
    rows, baselines = [], []
    print(HEADER)
    for size in sizes:
        orders = random_gate(size, seed=size)
        seed = size.to_bytes(4, "big")
        by_id = {o.id: o for o in orders}
        cda, cda_seconds = timed(continuous_double_auction, orders)
        baselines.append(
            {
                "orders": size,
                "cda_seconds": round(cda_seconds, 4),
                "cda_volume_kwh": traded_volume(cda) / WH_PER_KWH,
                "cda_surplus_yen": total_surplus(by_id, cda) / MILLISEN_PER_YEN,
            }
        )
        for objective in OBJECTIVES:
            row = run_objective(orders, objective, seed)
            rows.append(row)
            print_row(row, baselines[-1])
    summary = targets(rows)
    for line in summary:
        print(line)
    print(f"benchmark took {time.perf_counter() - started:.0f} s (load average {os.getloadavg()[0]:.1f})")
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "results": rows,
        "continuous_double_auction": baselines,
        "targets": summary,
    }
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2))
        print(f"written {out}")


HEADER = (
    f"{'orders':>7} {'objective':<8} {'fast s':>8} {'model s':>8} {'verify ms':>9} {'tie ms':>6} {'optimal':>7} "
    f"{'volume kWh':>11} {'(CDA)':>10} {'surplus yen':>12} {'(CDA)':>12}"
)


def print_row(row, baseline):
    if "fast_seconds" not in row:
        print(f"{row['orders']:>7} {row['objective']:<8} {row['fast']}")
        return
    model = row["model_seconds"]
    model_text = f"{model:>8.3f}" if isinstance(model, float) else f"{'skipped':>8}"
    print(
        f"{row['orders']:>7} {row['objective']:<8} {row['fast_seconds']:>8.3f} {model_text} "
        f"{row['verify_seconds'] * 1000:>9.1f} {row['tie_key_seconds'] * 1000:>6.1f} {row['certified_optimal']!s:>7} "
        f"{row['volume_kwh']:>11.1f} {baseline['cda_volume_kwh']:>10.1f} "
        f"{row['surplus_yen']:>12.2f} {baseline['cda_surplus_yen']:>12.2f}"
        + (f"  fast = model: {row['fast_equals_model']}" if "fast_equals_model" in row else "")
    )


def targets(rows):
    lines = ["", "targets at 10,000 orders:"]
    for row in rows:
        if row["orders"] != 10_000 or "fast_seconds" not in row:
            continue
        goal = TARGETS[row["objective"]]
        lines.append(
            f"  {row['objective']:<8} solve {row['fast_seconds']:.3f} s (target < {goal} s): "
            f"{'met' if row['fast_seconds'] < goal else 'MISSED'}; verify {row['verify_seconds'] * 1000:.1f}"
            f" ms (target < 100 ms): {'met' if row['verify_seconds'] < VERIFY_TARGET else 'MISSED'}"
        )
    return lines if len(lines) > 2 else []


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="100,1000,10000,100000", help="comma-separated gate sizes in orders (default: %(default)s)"
    )
    parser.add_argument("--out", default="bench-results/solver.json", help="JSON file to write (default: %(default)s)")
    arguments = parser.parse_args()
    run([int(size) for size in arguments.sizes.split(",")], arguments.out)


if __name__ == "__main__":
    main()
