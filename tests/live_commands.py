"""DR commands dated from now, for the suites that drive the real network, and waits for their moments.

The endorsers hold each DR step to real time, by the transaction's timestamp (itself within the topology's
tolerance of their clocks): a command only for a window that has not started, declarations before its
`declare_by`, a reading once its minute has ended and before the command's `readings_due`, settlement after that.
So a test issues its command for a window a little ahead, declares at once, and waits for the minutes it needs.

    command = live_command("t1", minutes=2, baseline_minutes=3)   # window from the next minute ≥ 20 s ahead
    wait_until_ended(command["end"])                                # every window minute may now be posted
    wait_until_begun(command["readings_due"])                       # and now it may be settled

    figure = live_figure_6()                  # seed figure 6 at a live window: .command, .window, .before
    past_baseline_minutes(figure.command)     # its baseline minutes already over, to post at once
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from seed_examples import BEFORE, WINDOW, dr_command, shifted

from consortium.units import EPOCH, minute_index, minute_label

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


@dataclass(frozen=True)
class LiveFigure6:
    """Seed figure 6 moved to a live window: its command, and WINDOW and BEFORE (tests.seed_examples) shifted."""

    command: dict
    window: list[str]
    before: list[str]


def live_figure_6(
    command_id: str = "1", baseline_minutes: int = 3, due_minutes: int = 1, lead_seconds: float = LEAD_SECONDS, **fields
) -> LiveFigure6:
    """Figure 6's command (five minutes, 600 kW, both ACs) for the window live_command() gives."""
    command = live_command(command_id, len(WINDOW), baseline_minutes, due_minutes, lead_seconds, **fields)
    return LiveFigure6(command, shifted(WINDOW, command["start"]), shifted(BEFORE, command["start"]))


def past_baseline_minutes(command: dict, now: datetime | None = None) -> list[str]:
    """The command's baseline minutes that have ended by `now` (default: this machine's clock): their readings may
    be posted at once. With the window at least LEAD_SECONDS ahead, all but its last two always have."""
    first = minute_index(command["start"])
    current = now_minute(now)
    return [minute_label(m) for m in range(first - command["baseline_minutes"], min(first, current))]


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
