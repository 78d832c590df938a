"""`gridledger demo`: the whole system on the running network until interrupted — every matcher's service,
simulated prosumers bidding each gate, and the web pages (the DR scenario runs before it: see `make demo`). Each
finalised gate is printed: orders, every matcher's proposal value, the winner, volume, surplus and the continuous
double auction's surplus on the same book."""

import logging
import threading

import click

from cli.common import reported, run_dir_option
from consortium import OBJECTIVES


@click.command()
@run_dir_option
@click.option("--port", type=click.IntRange(1, 65535), default=8050, show_default=True, envvar="GRIDLEDGER_WEB_PORT")
@click.option("--gate-seconds", type=click.IntRange(10, 86400), default=60, show_default=True)
@click.option("--proposal-seconds", type=click.IntRange(2, 3600), default=15, show_default=True)
@click.option("--objective", type=click.Choice(OBJECTIVES), default="welfare", show_default=True)
@click.option("--traders", "trader_count", type=click.IntRange(2, 30000), default=60, show_default=True)
@click.pass_context
@reported
def demo(context, run_dir, port, gate_seconds, proposal_seconds, objective, trader_count):
    """Run trading rounds with every matcher and serve the web pages, until Ctrl-C."""
    from cli.market import gate_report_lines
    from cli.web import serve
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
    try:
        context.invoke(serve, run_dir=run_dir, host="127.0.0.1", port=port)
    finally:
        stop.set()
        for thread in [rounds, *matchers]:
            thread.join(timeout=10)
