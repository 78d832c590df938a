"""`gridledger openadr serve|ven-certificate|status`: a commanding organisation's OpenADR 2.0b VTN on the running
network (openadr.vtn does the work), an RA's VEN certificate, and what the VTN has recorded."""

import asyncio
import json
import logging
import signal
from pathlib import Path

import click

from cli.common import reported, run_dir_option
from clients.contract import Refused


@click.group()
def openadr():
    """OpenADR 2.0b: DR commands as events for the RAs' VENs, their opt-ins and telemetry."""


def _network(run_dir: str):
    from network.bringup import Network, NetworkError

    if not (Path(run_dir) / "network.json").exists():
        raise NetworkError(f"no network in {run_dir}: start one with `gridledger network up --run-dir {run_dir}`")
    return Network(run_dir)


@openadr.command()
@run_dir_option
@click.option("--org", required=True, metavar="ORG", help="Whose VTN: TSO (every RA) or an AC (its own RAs).")
@click.option("--port", type=click.IntRange(1, 32767), help="Default: the organisation's VTN port from the topology.")
@click.option("--poll-seconds", type=click.FloatRange(0.5, 3600), default=2.0, show_default=True)
@click.option(
    "--report-seconds",
    type=click.IntRange(1, 3600),
    default=60,
    show_default=True,
    help="How often VENs are asked to send their telemetry.",
)
@reported
def serve(run_dir, org, port, poll_seconds, report_seconds):
    """Serve ORG's VTN on the topology's host until interrupted (Ctrl-C or SIGTERM)."""
    from openadr.mapping import served_ras
    from openadr.vtn import Vtn

    topology = _network(run_dir).topology
    if org not in topology.org_names:
        raise Refused(f"--org must be one of {', '.join(topology.org_names)}, got {org!r}")
    try:
        ras = served_ras(topology, org)
    except ValueError as error:
        raise Refused(str(error)) from None

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    async def run() -> None:
        vtn = Vtn(run_dir, org, port=port, poll_seconds=poll_seconds, report_seconds=report_seconds)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, stopping.set)
        await vtn.start()
        click.echo(f"openadr: {org}'s VTN at {vtn.url} for the VENs of {', '.join(ra.name for ra in ras)}")
        click.echo(f"openadr: VENs check it with {vtn.material / 'vtn.crt'}'s CA; stop with Ctrl-C")
        try:
            await stopping.wait()
        finally:
            await vtn.stop()
            click.echo("openadr: stopped")

    try:
        asyncio.run(run())
    except OSError as error:
        raise Refused(f"{org}'s VTN could not listen: {error} (choose another port with --port)") from None


@openadr.command("ven-certificate")
@run_dir_option
@click.option("--org", required=True, metavar="RA", help="The RA whose VEN it is (issued by that RA's TLS CA).")
@reported
def ven_certificate(run_dir, org):
    """Issue a client certificate for an RA's VEN and print where it and the VTNs' CAs are."""
    from openadr.certificates import issue_ven_certificate

    network = _network(run_dir)
    if org not in network.topology.org_names:
        raise Refused(f"--org must be one of {', '.join(network.topology.org_names)}, got {org!r}")
    folder = issue_ven_certificate(network.layout, network.topology, Path(run_dir), org)
    click.echo(f"openadr: {org}'s VEN: certificate {folder / 'ven.crt'}, key {folder / 'ven.key'}")
    click.echo(f"openadr: the VTNs' CAs: {folder / 'vtn-ca.pem'}; register with ven_name {org}")


@openadr.command()
@run_dir_option
@click.option("--org", required=True, metavar="ORG", help="Whose VTN.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reported
def status(run_dir, org, as_json):
    """The VENs ORG's VTN registered and their answers to each command."""
    from openadr.certificates import vtn_dir
    from openadr.store import VtnStore

    _network(run_dir)
    path = vtn_dir(Path(run_dir), org) / "vtn.sqlite"
    if not path.exists():
        raise Refused(f"{org}'s VTN has not run on this network")
    store = VtnStore(path)
    try:
        vens = [{k: v[k] for k in ("ven_id", "ra", "ven_name")} for v in store.vens()]
        data = {"vens": vens, "opts": store.opts()}
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for ven in data["vens"]:
        click.echo(f"VEN {ven['ven_id']}: {ven['ra']}")
    for opt in data["opts"]:
        click.echo(f"command {opt['command']}: {opt['ra']} {opt['opt_type']} ({opt['status']})")
