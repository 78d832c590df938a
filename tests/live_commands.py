"""DR commands dated from now, for the suites that drive the real network, and waits for their moments.

The endorsers hold each DR step to real time, by the transaction's timestamp (itself within the topology's
tolerance of their clocks): a command only for a window that has not started, declarations before its
`declare_by`, a reading once its minute has ended and before the command's `readings_due`, settlement after that.
So a test issues its command for a window a little ahead, declares at once, and waits for the minutes it needs.

    command = live_command("t1", minutes=2, baseline_minutes=3)   # window from the next minute ≥ 20 s ahead
    wait_until_ended(command["end"])                                # every window minute may now be posted
    wait_until_begun(command["readings_due"])                       # and now it may be settled
"""

import time
from datetime import UTC, datetime, timedelta

from consortium.units import EPOCH, minute_index, minute_label
from tests.seed_examples import dr_command

LEAD_SECONDS = 20  # time to issue the command and declare before the window starts
MARGIN_SECONDS = 1.0  # past a minute's boundary, so that no endorser's clock is still before it


def now_minute(now: datetime | None = None) -> int:
    """The minute index of `now` (default: this machine's clock)."""
    return ((now or datetime.now(UTC)) - EPOCH) // timedelta(minutes=1)


def window_start(lead_seconds: float = LEAD_SECONDS, now: datetime | None = None) -> int:
    """The first minute that begins at least `lead_seconds` from now."""
    moment = (now or datetime.now(UTC)) + timedelta(seconds=lead_seconds)
    return now_minute(moment) + 1


def live_command(
    command_id: str,
    minutes: int = 5,
    baseline_minutes: int = 3,
    due_minutes: int = 1,
    lead_seconds: float = LEAD_SECONDS,
    **fields,
) -> dict:
    """A command (tests.seed_examples.dr_command) whose window of `minutes` starts at least `lead_seconds` from now
    and whose readings are due `due_minutes` after its end; `fields` add or replace the rest."""
    first = window_start(lead_seconds)
    last = first + minutes - 1
    return dr_command(
        command_id,
        minute_label(first),
        minute_label(last),
        requested_kw=600,
        baseline_minutes=baseline_minutes,
        readings_due=minute_label(last + 1 + due_minutes),
        **fields,
    )


def moment_of(label: str) -> datetime:
    """The beginning of a JST minute label, as a UTC time."""
    return EPOCH + timedelta(minutes=minute_index(label))


def wait_until_begun(label: str, margin: float = MARGIN_SECONDS) -> None:
    """Sleeps until minute `label` has begun (plus `margin` seconds)."""
    delay = (moment_of(label) - datetime.now(UTC)).total_seconds() + margin
    if delay > 0:
        time.sleep(delay)


def wait_until_ended(label: str, margin: float = MARGIN_SECONDS) -> None:
    """Sleeps until minute `label` has ended: its reading may be posted."""
    wait_until_begun(minute_label(minute_index(label) + 1), margin)
