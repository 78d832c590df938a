"""When each step of a DR command may happen, judged by the transaction's timestamp: the same on every endorser, and
within the topology's tolerance of each endorser's own clock (common.action refuses it otherwise), so real time.

    issue_command   before the window starts, and before the command's declare_by
    declare         before declare_by (by default the window's start): nobody declares knowing the readings
    post_readings   each reading once its minute has ended (a meter reports what it measured, never ahead), and
                    the batch before readings_due (by default the topology's dr.readings_due_minutes after the end)
    settle          at or after readings_due, once no reading can change any more

A minute label names a minute's beginning: "declarations are due before 00:00" means the last moment is 23:59:59.
Each refusal names the moments in JST and what is due when. `command` is a chaincode.contracts.dr_inputs.Command
(which uses this module to check its readings' minutes, hence not imported here).
"""

from datetime import datetime, timedelta

from chaincode.contracts.common import Refusal, jst_moment
from consortium.units import EPOCH, minute_label


def begins(minute: int) -> datetime:
    """The moment a minute (index) begins."""
    return EPOCH + timedelta(minutes=minute)


def transaction_time(ctx) -> datetime:
    """The transaction's timestamp; every DR step is judged by it."""
    stamp = ctx.stub.get_tx_timestamp()
    if stamp is None:
        raise Refusal("the proposal carries no timestamp, and DR steps are judged by it")
    return stamp


def check_issuable(command, at: datetime) -> None:
    """A command is for a window still ahead, with its declarations due in the future."""
    if at >= begins(command.first):
        raise Refusal(
            f"command {command.id}'s window starts {command.start} (JST), and it is {jst_moment(at)}: "
            f"a command is issued before its window starts"
        )
    if at >= begins(command.declare_by):
        raise Refusal(
            f"command {command.id}'s declarations would be due before {minute_label(command.declare_by)} (JST), "
            f"already past at {jst_moment(at)}: give a later declare_by"
        )


def check_declarable(command, at: datetime) -> None:
    if at >= begins(command.declare_by):
        raise Refusal(
            f"declarations for command {command.id} were due before {minute_label(command.declare_by)} (JST); "
            f"it is {jst_moment(at)}"
        )


def check_readings_open(command, at: datetime) -> None:
    if at >= begins(command.readings_due):
        raise Refusal(
            f"readings for command {command.id} were due before {minute_label(command.readings_due)} (JST); "
            f"it is {jst_moment(at)}"
        )


def check_minute_ended(where: str, minute: int, at: datetime) -> None:
    """A reading is posted once its minute has ended: never for the minute running or one ahead."""
    if at < begins(minute + 1):
        raise Refusal(
            f"{where}: minute {minute_label(minute)} (JST) has not ended at {jst_moment(at)}; its reading may be "
            f"posted from {minute_label(minute + 1)}"
        )


def check_settleable(command, at: datetime) -> None:
    if at < begins(command.readings_due):
        raise Refusal(
            f"command {command.id}'s readings are due until {minute_label(command.readings_due)} (JST); "
            f"settle it from then on (it is {jst_moment(at)})"
        )
