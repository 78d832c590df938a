"""Matching solver benchmark: the fast path against the Pyomo model on the same seeded gates, verification time,
and the same measurements on one core (taskset -c 0, a consumer's trading terminal); prints a table, writes JSON.

    .venv/bin/python tests/bench/bench_solver.py [--sizes 1000,10000,100000] [--out bench-results/solver.json]

Two kinds of book (issue 13): "1/prosumer", one order per prosumer (the usual P2P gate), and "n/3", n/3 prosumers
with three orders each (a price ladder on one side). Asks 8-20 yen/kWh, bids 10-24 yen/kWh in 0.1-yen steps,
0.1-10 kWh in 0.1-kWh steps, arrival within a 30-minute gate. Every proposal is verified; "verify" is the median
of three runs of the chaincode's verifier. Times are CPU seconds of this process (wall clock beside them). The Pyomo model builds a variable per compatible pair (O(n^2)) and is
run only up to MODEL_LIMIT orders, said so in the output; its value is compared with the fast path's.

The one-core run re-executes this script under `taskset -c 0` (where taskset exists) on the sizes up to
ONE_CORE_LIMIT and reports the ratio one core / all cores per measurement. The machine may be shared: the load
average is printed beside the figures and written to the JSON.
"""

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from consortium import OBJECTIVES
from consortium.units import MILLISEN_PER_YEN, WH_PER_KWH
from solver.matching import solve
from solver.orders import Order
from solver.proposals import value_in_display_units
from solver.verify import verify

MODEL_LIMIT = 300  # orders (--model-limit); the model's O(n^2) pairs take minutes to build at a few thousand
ONE_CORE_LIMIT = 100_000
ONE_CORE_TIMEOUT_S = 600
BOOKS = ("1/prosumer", "n/3")
# (orders, objective) -> (solve s, verify s): the targets; maxmin at 100,000 orders is only reported.
TARGETS = {
    (10_000, "volume"): (0.1, 0.05),
    (10_000, "welfare"): (0.1, 0.05),
    (10_000, "maxmin"): (10.0, 0.05),
    (100_000, "volume"): (0.5, 0.2),
    (100_000, "welfare"): (0.5, 0.2),
    (100_000, "maxmin"): (None, 0.2),
}
GATE_START_MS = 1_767_193_200_000  # 2026-01-01 00:00 JST


def random_gate(size: int, seed: int, orders_per_prosumer: int) -> list[Order]:
    rng = random.Random(seed)
    orders = []
    for number in range(size):
        prosumer = number // orders_per_prosumer
        side = "sell" if prosumer % 2 else "buy"  # a prosumer either has energy to spare in a gate or needs some
        low, high = (80, 200) if side == "sell" else (100, 240)
        orders.append(
            Order(
                f"o{number}",
                f"p{prosumer}",
                side,
                10 * rng.randint(low, high),
                100 * rng.randint(1, 100),
                GATE_START_MS + 1000 * rng.randrange(1800),
            )
        )
    return orders


def book_of(kind: str, size: int) -> list[Order]:
    return random_gate(size, size, 1 if kind == "1/prosumer" else 3)


def timed(function, *args, **kwargs):
    """The result, wall seconds and this process's CPU seconds (on a shared machine the CPU time is the figure
    that does not grow with other people's load; on an idle one the two agree: the solver is single-threaded)."""
    started, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started, time.process_time() - cpu


def measure(kind: str, size: int, objective: str, model_limit: int) -> dict:
    orders = book_of(kind, size)
    seed = size.to_bytes(4, "big")
    solution, wall, seconds = timed(solve, orders, objective, seed)
    proposal = solution.proposal()
    verify_times, verify_walls = [], []
    for _ in range(3):
        verified, verify_wall, verify_seconds = timed(verify, orders, seed, objective, proposal)
        verify_times.append(verify_seconds)
        verify_walls.append(verify_wall)
    row = {
        "book": kind,
        "orders": size,
        "objective": objective,
        "fast_seconds": round(seconds, 4),
        "fast_wall_seconds": round(wall, 4),
        "verify_seconds": round(statistics.median(verify_times), 4),
        "verify_wall_seconds": round(statistics.median(verify_walls), 4),
        "value": value_in_display_units(objective, solution.value),
        "certified_optimal": verified.optimal,
        "volume_kwh": solution.volume / WH_PER_KWH,
        "surplus_yen": solution.surplus / MILLISEN_PER_YEN,
        "trades": len(solution.trades),
    }
    if model_limit <= 0:
        return row
    if size <= model_limit:
        model, _, model_seconds = timed(solve, orders, objective, seed, method="model")
        row["model_seconds"] = round(model_seconds, 4)
        row["model_value"] = value_in_display_units(objective, model.value)
        row["fast_equals_model"] = model.value == solution.value
    else:
        row["model_seconds"] = f"skipped above {model_limit} orders (a variable per compatible pair: minutes)"
    return row


def run_all(sizes, model_limit: int, quiet: bool = False) -> list[dict]:
    rows = []
    for size in sizes:
        for kind in BOOKS:
            for objective in OBJECTIVES:
                row = measure(kind, size, objective, model_limit)
                rows.append(row)
                if not quiet:
                    print_row(row)
    return rows


def one_core(sizes) -> list[dict] | str:
    """The same measurements in a child pinned to CPU 0; its rows, or why there are none."""
    if shutil.which("taskset") is None:
        return "skipped: taskset not found"
    small = [size for size in sizes if size <= ONE_CORE_LIMIT]
    command = ["taskset", "-c", "0", sys.executable, __file__, "--one-core-child", "--sizes", ",".join(map(str, small))]
    try:
        child = subprocess.run(command, capture_output=True, text=True, timeout=ONE_CORE_TIMEOUT_S, check=True)
    except subprocess.TimeoutExpired:
        return f"skipped: the one-core run exceeded {ONE_CORE_TIMEOUT_S} s"
    except subprocess.CalledProcessError as error:
        return f"failed: {error.stderr.strip().splitlines()[-1] if error.stderr.strip() else error}"
    return json.loads(child.stdout)


HEADER = (
    f"{'book':<10} {'orders':>7} {'objective':<8} {'fast s':>8} {'(wall)':>8} {'verify ms':>9} {'(wall)':>8} "
    f"{'optimal':>7} {'model s':>8} "
    f"{'= model':>7} {'value':>12} {'volume kWh':>11} {'surplus yen':>12}"
)


def print_row(row):
    model = row.get("model_seconds")
    model_text = f"{model:>8.3f}" if isinstance(model, float) else f"{'skipped':>8}"
    same = row.get("fast_equals_model")
    print(
        f"{row['book']:<10} {row['orders']:>7} {row['objective']:<8} {row['fast_seconds']:>8.3f} "
        f"{row['fast_wall_seconds']:>8.3f} {row['verify_seconds'] * 1000:>9.1f} {row['verify_wall_seconds'] * 1000:>8.1f} "
        f"{row['certified_optimal']!s:>7} {model_text} "
        f"{'' if same is None else str(same):>7} {row['value']:>12.3f} {row['volume_kwh']:>11.1f} "
        f"{row['surplus_yen']:>12.2f}",
        flush=True,
    )


def with_ratios(rows, single) -> list[str]:
    """Lines comparing the one-core rows with the all-core ones, and the ratios written into rows."""
    if isinstance(single, str):
        return [f"one core: {single}"]
    lines = ["", "one core (taskset -c 0) / all cores:"]
    by_key = {(r["book"], r["orders"], r["objective"]): r for r in single}
    for row in rows:
        other = by_key.get((row["book"], row["orders"], row["objective"]))
        if other is None:
            continue
        row["one_core_fast_seconds"] = other["fast_seconds"]
        row["one_core_verify_seconds"] = other["verify_seconds"]
        ratio = other["fast_seconds"] / row["fast_seconds"] if row["fast_seconds"] else float("nan")
        verify_ratio = other["verify_seconds"] / row["verify_seconds"] if row["verify_seconds"] else float("nan")
        row["one_core_ratio"] = round(ratio, 2)
        lines.append(
            f"  {row['book']:<10} {row['orders']:>7} {row['objective']:<8} solve {other['fast_seconds']:.3f} s "
            f"(x{ratio:.2f}), verify {other['verify_seconds'] * 1000:.1f} ms (x{verify_ratio:.2f})"
        )
    return lines


def targets(rows) -> list[str]:
    lines = ["", "targets (issue 13):"]
    for row in rows:
        goal = TARGETS.get((row["orders"], row["objective"]))
        if goal is None:
            continue
        solve_goal, verify_goal = goal
        solve_text = (
            f"solve {row['fast_seconds']:.3f} s (report)"
            if solve_goal is None
            else f"solve {row['fast_seconds']:.3f} s (< {solve_goal} s: "
            f"{'met' if row['fast_seconds'] < solve_goal else 'MISSED'})"
        )
        lines.append(
            f"  {row['book']:<10} {row['orders']:>7} {row['objective']:<8} {solve_text}; verify "
            f"{row['verify_seconds'] * 1000:.1f} ms (< {verify_goal * 1000:.0f} ms: "
            f"{'met' if row['verify_seconds'] < verify_goal else 'MISSED'})"
        )
    return lines


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="1000,10000,100000", help="comma-separated gate sizes (default: %(default)s)"
    )
    parser.add_argument("--out", default="bench-results/solver.json", help="JSON file to write (default: %(default)s)")
    parser.add_argument("--no-one-core", action="store_true", help="skip the taskset -c 0 run")
    parser.add_argument(
        "--model-limit",
        type=int,
        default=MODEL_LIMIT,
        help="largest gate the Pyomo model runs on (default: %(default)s)",
    )
    parser.add_argument("--one-core-child", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    sizes = [int(size) for size in arguments.sizes.split(",")]
    if arguments.one_core_child:
        print(json.dumps(run_all(sizes, model_limit=0, quiet=True)))
        return
    started = time.perf_counter()
    load_before = load()
    print(f"load average before: {load_before} ({os.cpu_count()} CPUs)", flush=True)
    print(HEADER, flush=True)
    rows = run_all(sizes, model_limit=arguments.model_limit)
    single = "skipped (--no-one-core)" if arguments.no_one_core else one_core(sizes)
    lines = with_ratios(rows, single) + targets(rows)
    for line in lines:
        print(line)
    load_after = load()
    print(f"benchmark took {time.perf_counter() - started:.0f} s; load average after: {load_after}")
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "load_average": {"before": load_before, "after": load_after},
        "results": rows,
        "one_core": single if isinstance(single, str) else "taskset -c 0",
        "summary": lines,
    }
    if arguments.out:
        Path(arguments.out).parent.mkdir(parents=True, exist_ok=True)
        Path(arguments.out).write_text(json.dumps(result, indent=2))
        print(f"written {arguments.out}")


if __name__ == "__main__":
    main()
