"""The DR command of the load benchmarks (bench_dr.py, caliper/run.py): the endorsers hold DR to real time (a reading
only once its minute has ended), so a load of meter readings with no wait is of a command's baseline. Its window
starts a little ahead and its baseline starts on the hour, at most 240 minutes before it: the whole clock hours
before the window's own hour (three, or four when the window starts on the hour) are the readings to post.

    command = load_command("bench", lead_seconds=60)
    hours = baseline_hours(command)     # first minute of each whole hour, e.g. 22:00, 23:00, 00:00
    wait_for_baseline(command)          # until the last of them has ended (at the latest when the window starts)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for live_commands, as pytest has it

from live_commands import live_command, past_baseline_minutes, wait_until_begun

from consortium.units import minute_index, minute_label

__all__ = ["baseline_hours", "day_command", "load_command", "past_baseline_minutes", "wait_for_baseline"]

MAX_BASELINE_MINUTES = 240  # the most a command accepts (chaincode.contracts.dr_inputs)


def load_command(command_id: str, lead_seconds: float, **fields) -> dict:
    """A command of one hour in one slot, its window starting at least `lead_seconds` ahead, its readings due an
    hour after it, its baseline from the first hour's beginning within 240 minutes before the window."""
    command = live_command(
        command_id,
        minutes=60,
        baseline_minutes=MAX_BASELINE_MINUTES,
        due_minutes=60,
        lead_seconds=lead_seconds,
        granularity_minutes=60,
        **fields,
    )
    first = minute_index(command["start"])
    baseline_start = -(-(first - MAX_BASELINE_MINUTES) // 60) * 60
    return {**command, "baseline_minutes": first - baseline_start}


def day_command(command_id: str, lead_seconds: float, **fields) -> dict:
    """A command of a day in hourly slots, starting at least `lead_seconds` ahead, with the most baseline minutes:
    the dashboards' day of minutes, and 240 minutes of readings that can be posted once they have ended."""
    return live_command(
        command_id,
        minutes=1440,
        baseline_minutes=MAX_BASELINE_MINUTES,
        due_minutes=60,
        lead_seconds=lead_seconds,
        granularity_minutes=60,
        **fields,
    )


def baseline_hours(command: dict) -> list[int]:
    """The first minute of each whole clock hour of the command's baseline."""
    first = minute_index(command["start"])
    return list(range(first - command["baseline_minutes"], first - first % 60 - 59, 60))


def wait_for_baseline(command: dict) -> None:
    """Sleeps until the last whole hour of the baseline has ended (at the latest, the window's start)."""
    wait_until_begun(minute_label(baseline_hours(command)[-1] + 60))
