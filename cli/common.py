"""What the commands share: the --run-dir, --as and --json options, the error convention, JSON and table output.

The error convention: a failure prints one line, "error: …", on stderr and exits 1 (an audit that finds a problem
exits 2; click's own usage errors keep click's form and exit 2).
"""

import functools
import json
import sqlite3
import sys

import click

from clients.contract import Refused
from gateway.errors import GatewayError
from network.bringup import DEFAULT_RUN_ROOT, NetworkError
from network.connections import Sessions, holder_of

run_dir_option = click.option(
    "--run-dir",
    type=click.Path(file_okay=False),
    default=str(DEFAULT_RUN_ROOT),
    envvar="GRIDLEDGER_RUN_DIR",
    show_default=True,
    help="Where the network keeps crypto, ledgers, logs and pid files.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
who_option = click.option(
    "--as",
    "who",
    required=True,
    metavar="ORG|meter:CONSUMER",
    help="Who acts: TSO, AC1, RA1, … or a smart meter, meter:C1.",
)


def fail(message: str, code: int = 1):
    """Prints "error: <message>" on stderr and exits with `code`."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def reported(command):
    """Turns the errors a user can cause into the one-line "error: …" and exit status 1."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (Refused, GatewayError, NetworkError, sqlite3.Error, OSError, ValueError) as error:
            message = str(error)
        except KeyError as error:
            message = str(error.args[0]) if error.args else "not found"
        fail(" ".join(message.split()))

    return run


def ledger_command(command):
    """A command on the running network as one of its identities: --as, --run-dir, --json, errors reported."""
    return who_option(run_dir_option(json_option(reported(command))))


def emit(as_json: bool, data, lines: list[str]) -> None:
    """`data` as JSON with --json, else the lines for people."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False) if as_json else "\n".join(lines))


def table(rows: list[tuple]) -> list[str]:
    """Rows (the first a header) as lines of left-aligned columns two spaces apart."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def sessions_of(run_dir: str, who: str) -> Sessions:
    """The sessions of the organisation holding `who`'s key (network.identities.holder_of): a command run `--as WHO`
    loads that organisation's keys and no other's."""
    return Sessions(run_dir, org=holder_of(Sessions(run_dir).network, who))
