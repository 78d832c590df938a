"""`gridledger demo`: the whole system on the running network until interrupted — every matcher's service,
simulated prosumers bidding each gate, and one web server per organisation, each a process holding only that
organisation's keys, on its port from the topology (the DR scenario runs before it: see `make demo`). Each
finalised gate is printed: orders, every matcher's proposal value, the winner, volume, surplus and the continuous
double auction's surplus on the same book."""

import logging
import signal
import threading
from pathlib import Path

import click

from cli.common import reported, run_dir_option
from consortium import OBJECTIVES


@click.command()
@run_dir_option
@click.option("--gate-seconds", type=click.IntRange(10, 86400), default=60, show_default=True)
@click.option("--proposal-seconds", type=click.IntRange(2, 3600), default=15, show_default=True)
@click.option("--objective", type=click.Choice(OBJECTIVES), default="welfare", show_default=True)
@click.option("--traders", "trader_count", type=click.IntRange(2, 30000), default=60, show_default=True)
@reported
def demo(run_dir, gate_seconds, proposal_seconds, objective, trader_count):
    """Run trading rounds with every matcher and each organisation's web server, until Ctrl-C."""
    from cli.market import gate_report_lines
    from network.connections import Sessions
    from sim.market_rounds import run_rounds, start_matchers, traders_for

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    sessions = Sessions(run_dir)
    market = sessions.topology.market
    sessions(market.operator).market.configure(
        {"gate_seconds": gate_seconds, "proposal_seconds": proposal_seconds, "objective": objective}
    )
    click.echo(
        f"demo: gates of {gate_seconds} s, {objective}; {trader_count} prosumers bid through their RAs; "
        f"matchers {', '.join(market.matchers)} propose"
    )
    traders = traders_for(sessions, trader_count)
    stop = threading.Event()
    _, matchers = start_matchers(sessions, list(market.matchers), stop)

    def print_gate(report: dict) -> None:
        for line in gate_report_lines(report):
            click.echo(f"market: {line}")

    def trade():
        while not stop.is_set():
            try:
                run_rounds(
                    sessions,
                    traders,
                    10**9,
                    log=lambda line: click.echo(f"market: {line}"),
                    stop=stop,
                    on_finalised=print_gate,
                )
            except Exception as error:  # the network is busy or restarting: keep the demo alive
                click.echo(f"market: {error}; retrying", err=True)
                stop.wait(5)

    rounds = threading.Thread(target=trade, name="traders", daemon=True)
    rounds.start()
    started: list = []  # filled as each starts, so an interrupted start still stops what it started
    try:
        start_web_servers(run_dir, sessions.topology, started)
        click.echo("demo: Ctrl-C stops the trading and the web servers")
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        while not stop.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        for process in started:
            process.stop()
        for thread in [rounds, *matchers]:
            thread.join(timeout=10)


def start_web_servers(run_dir: str, topology, started: list) -> None:
    """Starts each organisation's web server as a process of its own (`gridledger web serve --org ORG
    --detach`), prints each address and its sign-ins, and adds each process it started to `started`."""
    from cli.web import process_name, server_accounts, sign_in_lines, start_detached
    from network.processes import ManagedProcess
    from web.backend import web_port

    for org in topology.org_names:
        process = ManagedProcess(Path(run_dir).resolve(), process_name(org))
        running = process.pid() is not None
        _, accounts = server_accounts(run_dir, org)
        if not running:
            started.append(process)
        address = start_detached(run_dir, org, "127.0.0.1", web_port(topology, org), accounts)
        click.echo(f"web: {org}'s server at {address} (log {process.log_file}); sign in as one of")
        click.echo("\n".join(sign_in_lines(run_dir, org, accounts)))
