"""`gridledger market …`: solve an order book from a file without any ledger; and on the running network (through
clients.market): sealed orders and their reveals, gates, books, proposals, trades, clearing prices, positions, the
operator's configuration, the matching services and market agents, simulated trading rounds and a watch on the
finalised gates.

Each command's process loads the keys of one organisation only, the one holding `--as`'s key
(`Sessions(run_dir, org=…)`): `market serve --as RA1` RA1's, `market trade --as RA2` RA2's. `market simulate` alone
plays every organisation in one process (development and tests); `gridledger demo` runs `serve`, `trade` and
`watch` as a process per organisation instead.

An order is sealed by the client: the salts wait in the run directory (market/<org>/sealed) until the gate ends,
when the organisation's agent (`market serve`) reveals them, or `market reveal` does.

Every ledger command takes `--as` (TSO, AC1, RA1, … or meter:C1), `--run-dir` and `--json`, and prints prices in
yen/kWh, quantities in kWh and money in yen; the ledger keeps sen/kWh, Wh and millisen. A failure prints one line,
"error: …", and exits 1.
"""

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

import click

from cli.common import (
    emit,
    fail,
    json_option,
    ledger_command,
    reported,
    run_dir_option,
    sessions_of,
    table,
    who_option,
)
from clients.contract import Refused
from clients.market import VALUE_UNITS, MarketClient
from clients.market_agent import sealed_orders_of
from consortium import OBJECTIVES
from consortium.units import SEN_PER_YEN, WH_PER_KWH, kwh, money, yen
from gateway.errors import GatewayError
from network.connections import Sessions
from solver.fairness import InvalidSeed, seed_from_hex
from solver.matching import METHODS, solve
from solver.orders import InvalidOrders, load_orders
from solver.proposals import value_in_display_units

objective_choice = click.Choice(OBJECTIVES)


def _kwh(wh: int | None) -> str:
    return kwh(wh, none="-")


def _yen(sen: int | None) -> str:
    return yen(sen, none="-")


def _client(run_dir: str, who: str) -> MarketClient:
    """`who`'s market client, keeping its sealed orders where its organisation's agent reveals them."""
    sessions = sessions_of(run_dir, who)
    client = sessions(who).market
    client.sealed = sealed_orders_of(sessions.run_dir, client.org.name)
    return client


@click.group()
def market():
    """P2P trading: optimal matching of a gate's buy and sell orders."""


# Solving a book from a file.


@market.command("solve")
@click.option(
    "--input",
    "input_path",
    required=True,
    metavar="FILE",
    help='Order book: {"orders": [{"id", "participant", "side", "price", "quantity", "time"}]}, '
    "price in yen/kWh, quantity in kWh, time in Unix ms or ISO 8601.",
)
@click.option(
    "--objective",
    required=True,
    type=objective_choice,
    help="volume: most kWh traded; welfare: most total surplus; maxmin: raise the worst-off participant.",
)
@click.option(
    "--seed",
    "seed_hex",
    metavar="HEX",
    help="The gate's seed (hex) ranking equivalent orders; default: SHA-256 of the order book.",
)
@click.option(
    "--method",
    type=click.Choice(METHODS),
    default="fast",
    show_default=True,
    help="fast: the fast path; model: the Pyomo model (small gates).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def solve_command(input_path, objective, seed_hex, method, as_json):
    """Match the orders in FILE for an objective and print the trades."""
    try:
        with open(input_path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        fail(f"cannot read {input_path}: {error.strerror}")
    except UnicodeDecodeError:
        fail(f"{input_path} is not UTF-8 text")
    try:
        orders = load_orders(text)
        seed = seed_from_hex(seed_hex) if seed_hex is not None else None
    except (InvalidOrders, InvalidSeed) as error:
        fail(f"{input_path}: {error}" if isinstance(error, InvalidOrders) else str(error))
    try:
        solution = solve(orders, objective, seed, method=method)
    except RuntimeError as error:  # the solver failed: not the user's input, but still no stack trace
        fail(str(error))

    value = value_in_display_units(objective, solution.value)
    trades = [
        {"sell": t.sell, "buy": t.buy, "quantity": t.quantity / WH_PER_KWH, "price": t.price / SEN_PER_YEN}
        for t in solution.trades
    ]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "objective": objective,
                    "value": value,
                    "unit": VALUE_UNITS[objective],
                    "certified_optimal": solution.certificate is not None,
                    "seed": solution.seed.hex(),
                    "trades": trades,
                    "seconds": round(solution.seconds, 6),
                },
                indent=2,
            )
        )
        return
    proof = "certified optimal" if solution.certificate is not None else "rounded LP optimum, no certificate"
    click.echo(f"objective  {objective}")
    click.echo(f"value      {value:g} {VALUE_UNITS[objective]} ({proof})")
    click.echo(
        f"trades     {len(trades)}, {solution.volume / WH_PER_KWH:g} kWh, "
        f"surplus {solution.surplus / (SEN_PER_YEN * WH_PER_KWH):g} yen"
    )
    click.echo(f"seed       {solution.seed.hex()}")
    if trades:
        width_s = max(4, *(len(t["sell"]) for t in trades))
        width_b = max(3, *(len(t["buy"]) for t in trades))
        click.echo("")
        click.echo(f"{'sell':<{width_s}}  {'buy':<{width_b}}  {'kWh':>10}  {'yen/kWh':>8}")
        for t in trades:
            click.echo(f"{t['sell']:<{width_s}}  {t['buy']:<{width_b}}  {t['quantity']:>10.3f}  {t['price']:>8.2f}")
    click.echo(f"\nsolved in {solution.seconds:.3f} s")


# Orders.


@market.command("order")
@ledger_command
@click.option("--participant", help="The consumer the order is for (one of the RA's, or the meter's own).")
@click.option("--side", type=click.Choice(["buy", "sell"]))
@click.option("--price", help="Limit price, yen/kWh (at most 2 decimals).")
@click.option("--quantity", help="kWh (at most 3 decimals).")
@click.option(
    "--input",
    "input_path",
    type=click.Path(dir_okay=False),
    help='Many orders from a file: [{"participant", "side", "price", "quantity"}].',
)
def order_command(who, run_dir, as_json, participant, side, price, quantity, input_path):
    """Place an order (or a file of orders), sealed, into the gate open now; it is revealed after the gate's end."""
    given = {"--participant": participant, "--side": side, "--price": price, "--quantity": quantity}
    if input_path:
        if any(given.values()):
            raise Refused("give either --input or --participant/--side/--price/--quantity, not both")
        orders = json.loads(Path(input_path).read_text(encoding="utf-8"))
    else:
        missing = [flag for flag, value in given.items() if value is None]
        if missing:
            raise Refused(f"missing {', '.join(missing)} (or --input FILE)")
        orders = [{"participant": participant, "side": side, "price": price, "quantity": quantity}]
    result = _client(run_dir, who).place_orders(orders)
    lines = [
        f"gate {result['gate']}: {len(result['orders'])} order(s) placed, sealed until the gate ends (the ledger "
        "holds only their commitments; your organisation's agent or `market reveal` reveals them)"
    ]
    lines += [
        f"  {o['id']}  {o['participant']}  {o['side']}  {_kwh(o['quantity_wh'])} kWh at "
        f"{_yen(o['price_sen_per_kwh'])} yen/kWh"
        for o in result["orders"]
    ]
    emit(as_json, result, lines)


@market.command("reveal")
@ledger_command
@click.option("--gate", required=True)
def reveal_command(who, run_dir, as_json, gate):
    """Reveal your sealed orders of an ended gate (what your organisation's agent does by itself)."""
    result = _client(run_dir, who).reveal_orders(gate)
    lines = [f"gate {gate}: {len(result['revealed'])} order(s) revealed"]
    lines += [f"  {order_id} not revealed: {reason}" for order_id, reason in result["refused"].items()]
    emit(as_json, result, lines)


@market.command("cancel")
@ledger_command
@click.option("--gate", required=True)
@click.option("--order", "order_id", required=True)
def cancel_command(who, run_dir, as_json, gate, order_id):
    """Withdraw one of your orders while its gate is open."""
    result = _client(run_dir, who).cancel(gate, order_id)
    emit(as_json, result, [f"order {order_id} of gate {gate} cancelled"])


# Gates and what they traded.


@market.command("gates")
@ledger_command
@click.option("--limit", type=click.IntRange(1, 500), default=10, show_default=True)
def gates_command(who, run_dir, as_json, limit):
    """The gate open now and the latest closed gates, newest first."""
    gates = _client(run_dir, who).gates(limit)
    rows = [("gate (JST)", "status", "objective", "orders", "winner", "kWh traded", "avg yen/kWh")]
    for g in gates:
        clearing = g.get("clearing") or {}
        rows.append(
            (
                g["id"],
                g["status"],
                g["objective"],
                g.get("orders", "-"),
                (g.get("winner") or {}).get("org", "-"),
                _kwh(clearing["volume_wh"]) if clearing else "-",
                _yen(clearing.get("average_price_sen_per_kwh")),
            )
        )
    emit(as_json, gates, table(rows))


@market.command("book")
@ledger_command
@click.option("--gate", help="Gate id, JST YYYY-MM-DDTHH:MM:SS [default: the one open now].")
def book_command(who, run_dir, as_json, gate):
    """A gate's order book: while it is open, sealed orders (their commitments); revealed ones after its end."""
    book = _client(run_dir, who).book(gate)
    rows = [("order", "participant", "side", "kWh", "yen/kWh")]
    rows += [
        (o["id"], o["participant"], o["side"], _kwh(o["quantity_wh"]), _yen(o["price_sen_per_kwh"]))
        if "participant" in o
        else (o["id"], f"sealed {o['commitment'][:12]}…", "-", "-", "-")
        for o in book["orders"]
    ]
    g = book["gate"]
    lines = [f"gate {g['id']} ({g['status']}, {g['objective']}), {g['start']} to {g['end']}"]
    if g.get("seed"):
        lines.append(f"seed {g['seed'][:16]}… from {', '.join(c['org'] for c in g['contributions']) or 'the book'}")
    emit(as_json, book, lines + (table(rows) if book["orders"] else ["no orders"]))


@market.command("proposals")
@ledger_command
@click.option("--gate", required=True)
def proposals_command(who, run_dir, as_json, gate):
    """The verified proposals of each matcher for a gate, and which one won."""
    client = _client(run_dir, who)
    proposals = client.proposals(gate)
    winner = (client.gate(gate).get("winner") or {}).get("org")
    rows = [("matcher", "objective", "value", "kWh", "surplus yen", "trades", "optimal", "chosen")]
    rows += [
        (
            p["org"],
            p["objective"],
            p["value_display"],
            _kwh(p["volume_wh"]),
            money(p["surplus_millisen"]),
            p["trades"],
            "proven" if p["optimal"] else "-",
            "*" if p["org"] == winner else "",
        )
        for p in proposals
    ]
    emit(
        as_json,
        {"gate": gate, "winner": winner, "proposals": proposals},
        table(rows) if proposals else [f"no proposals for gate {gate}"],
    )


@market.command("trades")
@ledger_command
@click.option("--gate", required=True)
def trades_command(who, run_dir, as_json, gate):
    """The trades a gate was finalised with."""
    result = _client(run_dir, who).trades(gate)
    rows = [("seller", "buyer", "kWh", "yen/kWh")]
    rows += [(t["seller"], t["buyer"], _kwh(t["quantity_wh"]), _yen(t["price_sen_per_kwh"])) for t in result["trades"]]
    winner = result.get("winner") or {}
    lines = [
        f"gate {gate}: "
        + (f"{winner['org']}'s proposal, {winner['objective']} {winner['value_display']}" if winner else "no proposal")
    ]
    emit(as_json, result, lines + (table(rows) if result["trades"] else []))


@market.command("prices")
@ledger_command
@click.option("--limit", type=click.IntRange(1, 500), default=48, show_default=True)
def prices_command(who, run_dir, as_json, limit):
    """Clearing prices of the latest gates that traded, oldest first (what bidders adjust to)."""
    prices = _client(run_dir, who).prices(limit)
    rows = [("gate (JST)", "objective", "kWh", "avg yen/kWh", "low", "high", "trades")]
    rows += [
        (
            p["gate"],
            p["objective"],
            _kwh(p["volume_wh"]),
            _yen(p["average_price_sen_per_kwh"]),
            _yen(p["low_sen_per_kwh"]),
            _yen(p["high_sen_per_kwh"]),
            p["trades"],
        )
        for p in prices
    ]
    emit(as_json, prices, table(rows) if prices else ["no gate has traded yet"])


@market.command("positions")
@ledger_command
@click.option("--participant", required=True)
def positions_command(who, run_dir, as_json, participant):
    """A participant's energy and money per gate (its RA, its AC, the TSO, or its own meter)."""
    result = _client(run_dir, who).positions(participant)
    totals = result["totals"]
    emit(
        as_json,
        result,
        [
            f"{participant} ({result['ra']}): bought {_kwh(totals['bought_wh'])} kWh for {money(totals['paid_millisen'])} "
            f"yen, sold {_kwh(totals['sold_wh'])} kWh for {money(totals['received_millisen'])} yen, net "
            f"{money(totals['net_millisen'])} yen over {len(result['gates'])} gate(s)"
        ],
    )


# The operator's settings.


@market.command("configure")
@ledger_command
@click.option("--gate-seconds", type=int)
@click.option("--proposal-seconds", type=int)
@click.option("--reveal-seconds", type=int, help="Each reveal phase's length [default: the proposal window's].")
@click.option("--objective", type=objective_choice)
def configure_command(who, run_dir, as_json, gate_seconds, proposal_seconds, reveal_seconds, objective):
    """Set the gate length, proposal and reveal windows and default objective from the next second on (the
    operator)."""
    given = {
        "gate_seconds": gate_seconds,
        "proposal_seconds": proposal_seconds,
        "reveal_seconds": reveal_seconds,
        "objective": objective,
    }
    settings = {k: v for k, v in given.items() if v is not None}
    if not settings:
        raise Refused("give at least one of --gate-seconds, --proposal-seconds, --reveal-seconds, --objective")
    result = _client(run_dir, who).configure(settings)
    emit(
        as_json,
        result,
        [
            f"from {result['since']}: gates of {result['gate_seconds']} s, reveals for up to 2 x "
            f"{result['reveal_seconds']} s, proposals for {result['proposal_seconds']} s, objective "
            f"{result['objective']}"
        ],
    )


@market.command("objective")
@ledger_command
@click.option("--gate", required=True)
@click.option("--objective", required=True, type=objective_choice)
def objective_command(who, run_dir, as_json, gate, objective):
    """Set the objective of one gate that has not ended (the operator)."""
    result = _client(run_dir, who).set_objective(gate, objective)
    emit(as_json, result, [f"gate {gate} will be matched for {objective}"])


# Matching services and simulated rounds.


# Set by `gridledger demo` for its processes: a part whose parent is gone (killed outright) stops too.
STOP_WITH_PARENT = "GRIDLEDGER_STOP_WITH_PARENT"


def stop_event() -> threading.Event:
    """An event set by SIGTERM or Ctrl-C (and, under STOP_WITH_PARENT, by the parent process ending): how a
    long-running command is told to finish its step and exit 0."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if os.environ.get(STOP_WITH_PARENT):
        parent = os.getppid()

        def orphaned() -> None:
            while not stop.wait(1.0):
                if os.getppid() != parent:
                    stop.set()

        threading.Thread(target=orphaned, name="parent-watch", daemon=True).start()
    return stop


def _wait(stop: threading.Event, seconds: float | None) -> None:
    """Until `stop` is set or `seconds` have passed (None: no limit), in waits short enough to handle signals."""
    deadline = None if seconds is None else time.monotonic() + seconds
    while not stop.is_set():
        left = 1.0 if deadline is None else deadline - time.monotonic()
        if left <= 0:
            return
        stop.wait(min(1.0, left))


@market.command("serve")
@click.option(
    "--as",
    "matchers",
    multiple=True,
    metavar="ORG",
    help="A matcher to run (repeat) [default: every matcher of the topology].",
)
@run_dir_option
@click.option("--seconds", type=float, help="Stop after this long [default: until interrupted].")
@reported
def serve_command(matchers, run_dir, seconds):
    """Run matching services and market agents: commit to and reveal seed contributions, reveal the
    organisation's sealed orders, close gates, solve and propose, finalise. Each matcher signs through sessions
    of its own organisation's keys; `--as RA1` alone makes a process holding RA1's keys only."""
    from sim.market_rounds import start_matchers

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    topology = Sessions(run_dir).topology
    chosen = list(matchers) or list(topology.market.matchers)
    unknown = [m for m in chosen if m not in topology.market.matchers]
    if unknown:
        raise Refused(f"not matchers of the topology: {', '.join(unknown)}")
    stop = stop_event()
    threads = []
    for org in chosen:
        threads += start_matchers(Sessions(run_dir, org=org), [org], stop)[1]
    click.echo(f"matching services running for {', '.join(chosen)}; Ctrl-C stops them")
    _wait(stop, seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)


def traders_option(help_text: str):
    """`--traders`, the simulated prosumers: `gridledger demo` passes its own on to `market trade`, so both take
    the same."""
    return click.option(
        "--traders", "trader_count", type=click.IntRange(2, 30000), default=60, show_default=True, help=help_text
    )


@market.command("trade")
@who_option
@run_dir_option
@traders_option(
    "Prosumers of the whole simulated fleet (the DR simulation's ids, spread over the RAs); this RA trades for its "
    "share."
)
@click.option("--gates", type=click.IntRange(1, 10**6), help="Stop after this many gates [default: until interrupted].")
@click.option("--seed", type=int, default=0, show_default=True)
@reported
def trade_command(who, run_dir, trader_count, gates, seed):
    """Simulated prosumers of one RA bidding each gate through it with sealed orders, as that RA alone: the process
    holds the RA's keys only and reads the gates and clearing prices (public) with its own session. The RA's agent
    (`market serve --as RA`) reveals the orders after each gate."""
    from sim.market_rounds import trade

    sessions = sessions_of(run_dir, who)
    ras = [org.name for org in sessions.topology.organisations if org.role == "ra"]
    if who not in ras:
        raise Refused(f"--as must be an RA, one of {', '.join(ras)}: its consumers are the prosumers, got {who!r}")
    stop = stop_event()
    placed = trade(sessions, who, trader_count, gates or 10**9, seed, log=click.echo, stop=stop)
    click.echo(f"{who}: orders placed in {len(placed)} gate(s)")


@market.command("watch")
@who_option
@run_dir_option
@click.option(
    "--since-ms",
    type=click.IntRange(0),
    help="Report the gates that ended after this moment, Unix ms [default: when the watch starts].",
)
@click.option("--seconds", type=float, help="Stop after this long [default: until interrupted].")
@click.option("--poll-seconds", type=click.FloatRange(0.2, 60), default=1.0, show_default=True)
@reported
def watch_command(who, run_dir, since_ms, seconds, poll_seconds):
    """Print the report of each gate as it is finalised: its orders, every matcher's proposal value, the winner,
    volume, prices and surplus against the continuous double auction on the same book."""
    since_ms = time.time_ns() // 1_000_000 if since_ms is None else since_ms
    market = sessions_of(run_dir, who)(who).market
    stop = stop_event()
    deadline = None if seconds is None else time.monotonic() + seconds
    reported_gates: set[str] = set()
    while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
        try:
            for gate in reversed(market.gates(10)):
                if gate["status"] == "finalised" and gate["end_ms"] > since_ms and gate["id"] not in reported_gates:
                    click.echo("\n".join(gate_report_lines(market.report(gate["id"]))))
                    reported_gates.add(gate["id"])
        except GatewayError as error:  # the network is busy or restarting: keep watching
            click.echo(f"{' '.join(str(error).split())}; retrying", err=True)
        stop.wait(poll_seconds)


@market.command("simulate")
@run_dir_option
@json_option
@click.option("--gates", type=click.IntRange(1, 1000), default=3, show_default=True)
@click.option("--gate-seconds", type=click.IntRange(3, 86400), default=10, show_default=True)
@click.option("--proposal-seconds", type=click.IntRange(2, 3600), default=5, show_default=True)
@click.option("--objective", type=objective_choice, default="welfare", show_default=True)
@click.option("--traders", "trader_count", type=click.IntRange(2, 30000), default=30, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@reported
def simulate_command(run_dir, as_json, gates, gate_seconds, proposal_seconds, objective, trader_count, seed):
    """Trading rounds on the network in this one process, which plays every organisation (development and tests;
    `gridledger demo` runs a process per organisation): the operator configures the gates, every matcher's
    service runs, simulated prosumers bid each gate; then each gate's proposals, winner and clearing price against
    the continuous double auction on the same book."""
    from sim.market_rounds import simulate_market

    result = simulate_market(
        Sessions(run_dir),
        gates=gates,
        gate_seconds=gate_seconds,
        proposal_seconds=proposal_seconds,
        objective=objective,
        trader_count=trader_count,
        seed=seed,
        log=lambda line: None if as_json else click.echo(line),
    )
    emit(as_json, result, [line for g in result["gates"] for line in gate_report_lines(g)])


def gate_report_lines(g: dict) -> list[str]:
    """A finalised gate's report (MarketClient.report) for people: orders, each matcher's proposal value, the
    winner, then volume, prices and surplus against the continuous double auction on the same book."""
    values = ", ".join(f"{p['org']} {p['value_display']}" for p in g["proposals"])
    lines = [
        f"gate {g['gate']}: {g['orders']} orders, {len(g['proposals'])} proposals ({values}), "
        f"winner {g['winner'] or '-'}"
    ]
    if g["clearing"]:
        c = g["clearing"]
        lines.append(
            f"  traded {_kwh(c['volume_wh'])} kWh at {_yen(c['average_price_sen_per_kwh'])} yen/kWh "
            f"(low {_yen(c['low_sen_per_kwh'])}, high {_yen(c['high_sen_per_kwh'])}); surplus "
            f"{money(g['surplus_millisen'])} yen vs {money(g['cda_surplus_millisen'])} yen by the "
            f"continuous double auction, volume {_kwh(g['cda_volume_wh'])} kWh by CDA"
        )
    return lines
