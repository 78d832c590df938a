"""`gridledger audit`: an organisation checks what its own peer keeps (its state database, its blocks and their
signatures) against the chain and the other nodes (network/audit.py says what is checked). Anything that differs
or could not be checked is printed and exits 2."""

from pathlib import Path

import click

from cli.common import emit, json_option, reported, run_dir_option
from clients.contract import Refused
from network.audit import audit_ledger
from network.bringup import Network, NetworkError

AUDIT_FAILED = 2


@click.command()
@click.option(
    "--as", "who", required=True, metavar="ORG", help="The organisation auditing its own peer (as its User1)."
)
@run_dir_option
@json_option
@reported
def audit(who, run_dir, as_json):
    """Check every key your peer holds, public and private, and every block's and transaction's signatures against
    the chain and the policies; compare the newest block with every other node's."""
    if not (Path(run_dir) / "network.json").exists():
        raise NetworkError(f"no network in {run_dir}: start one with `gridledger network up --run-dir {run_dir}`")
    network = Network(run_dir)
    names = network.topology.org_names
    if who not in names:
        raise Refused(f"--as must be one of {', '.join(names)}")
    report = audit_ledger(network, who)
    lines = [
        f"audit of {report.peer} as {report.org} in {report.seconds:.1f} s: {report.blocks} blocks, "
        f"{report.transactions} transactions ({report.valid_transactions} valid), {report.signatures_checked} "
        f"signatures checked, {report.range_queries_checked} range queries rechecked "
        f"({report.range_queries_summarised} of them Merkle summaries)",
        f"state at block {report.savepoint}: {report.public_keys_checked} public keys, {report.private_values_checked} "
        f"private values and {report.private_hashes_checked} private-data hashes checked against the chain",
    ]
    if report.nodes_compared:
        lines.append("newest block compared with " + ", ".join(report.nodes_compared))
    lines += (
        [f"PROBLEM: {p}" for p in report.problems]
        if report.problems
        else ["every key, block and signature checked holds"]
    )
    emit(as_json, report.as_dict(), lines)
    if report.problems:
        raise SystemExit(AUDIT_FAILED)
