"""`gridledger network up|down|status`: the network's command-line face."""

import json
import sys

import click

from cli.common import fail, json_option, run_dir_option
from network.bringup import Network, NetworkError, status_json, status_table
from network.chaincode import DeployError
from network.fabric import FabricUnavailable
from network.nodes import NodeCommandError
from network.processes import PortInUse


@click.group()
def network():
    """Bring the Fabric network up and down, and see how it is."""


@network.command()
@run_dir_option
def up(run_dir):
    """Start (or complete) the network of network/topology.yaml, join the channel, and return once a transaction
    has been ordered and committed."""
    try:
        statuses = Network(run_dir).up()
    except (FabricUnavailable, NetworkError, PortInUse, DeployError, NodeCommandError) as error:
        fail(str(error))
    click.echo(status_table(statuses))


@network.command()
@run_dir_option
@click.option("--clean", is_flag=True, help="Also remove crypto material, ledgers and logs.")
def down(run_dir, clean):
    """Stop exactly the processes this run directory started."""
    try:
        stopped = Network(run_dir).down(clean=clean)
    except NetworkError as error:
        fail(str(error))
    click.echo(f"network: {stopped} process(es) stopped")


@network.command()
@run_dir_option
@json_option
def status(run_dir, as_json):
    """Each node: pid, health, channel height."""
    try:
        statuses = Network(run_dir).status()
    except (FabricUnavailable, NetworkError) as error:
        fail(str(error))
    click.echo(json.dumps(status_json(statuses), indent=2) if as_json else status_table(statuses))
    if not all(s.healthy for s in statuses):
        sys.exit(3)
