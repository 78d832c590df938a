"""Which minutes of a live command (tests/live_commands.py) have ended, so that their readings may be posted now.

A command issued for a window a little ahead also accepts readings for its `baseline_minutes` before the window:
those that have already ended may be posted at once, with no wait. A suite that needs readings on the ledger but not
in the window (an attack, a leak marker, a load) posts those; one that needs the window's own waits for each minute.

    command = live_command("t1", minutes=1, baseline_minutes=5)
    ended_baseline(command, 3)     # its first three baseline minutes, all ended (the two latest may not be)
    window_labels(command)         # the window's minutes, to post as each ends (live_commands.wait_until_ended)
"""

from datetime import UTC, datetime, timedelta

from live_commands import MARGIN_SECONDS, now_minute

from consortium.units import minute_index, minute_label


def window_labels(command: dict) -> list[str]:
    """The command's window, minute by minute."""
    return [minute_label(m) for m in range(minute_index(command["start"]), minute_index(command["end"]) + 1)]


def baseline_labels(command: dict) -> list[str]:
    """The command's baseline minutes, the `baseline_minutes` before its window."""
    first = minute_index(command["start"])
    return [minute_label(m) for m in range(first - command["baseline_minutes"], first)]


def ended_baseline(command: dict, count: int | None = None, now: datetime | None = None) -> list[str]:
    """The command's baseline minutes that have ended (by this machine's clock, less MARGIN_SECONDS, so that no
    endorser's clock is still inside one): all of them, or the first `count`, which must all have ended."""
    running = now_minute((now or datetime.now(UTC)) - timedelta(seconds=MARGIN_SECONDS))  # minutes before it ended
    ended = [label for label in baseline_labels(command) if minute_index(label) < running]
    if count is None:
        return ended
    if len(ended) < count:
        raise ValueError(
            f"command {command['id']} has {len(ended)} ended baseline minutes, not {count}: give it more "
            f"baseline_minutes (the latest one or two are still running when the window starts a minute ahead)"
        )
    return ended[:count]
