"""`gridledger audit`: an organisation checks the ledger its peer keeps against the chain and the other nodes
(network/audit.py says what is checked); a problem found exits 2."""

import json
from pathlib import Path

import click

from cli.common import json_option, reported, run_dir_option
from clients.contract import Refused
from network.audit import audit_ledger
from network.bringup import Network, NetworkError

AUDIT_MISMATCH = 2


@click.command()
@click.option("--as", "who", required=True, metavar="ORG", help="The organisation auditing (its User1).")
@click.option("--peer", "peer_org", metavar="ORG", help="Whose peer's ledger to audit [default: your own].")
@click.option("--no-compare", is_flag=True, help="Do not compare the newest block with the other nodes'.")
@run_dir_option
@json_option
@reported
def audit(who, peer_org, no_compare, run_dir, as_json):
    """Verify the block hash chain and the private data your organisation holds against the blocks' hashes."""
    if not (Path(run_dir) / "network.json").exists():
        raise NetworkError(f"no network in {run_dir}: start one with `gridledger network up --run-dir {run_dir}`")
    network = Network(run_dir)
    names = network.topology.org_names
    if who not in names or (peer_org and peer_org not in names):
        raise Refused(f"--as and --peer must be one of {', '.join(names)}")
    report = audit_ledger(network, who, peer_org, compare=not no_compare)
    lines = [
        f"audit of {report.peer} as {report.org}: {report.blocks} blocks, {report.transactions} "
        f"transactions ({report.valid_transactions} valid), {report.private_write_sets} private write "
        f"sets, {report.private_values_checked} private values checked"
        + (f", {report.private_values_unchecked} unchecked" if report.private_values_unchecked else "")
        + f" in {report.seconds:.1f} s"
    ]
    if report.nodes_compared:
        lines.append("newest block compared with " + ", ".join(report.nodes_compared))
    lines += (
        [f"PROBLEM: {p}" for p in report.problems]
        if report.problems
        else ["the hash chain holds and every private value checked matches its block's hash"]
    )
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else "\n".join(lines))
    if report.problems:
        raise SystemExit(AUDIT_MISMATCH)
