"""`gridledger market …` on the running network: orders, gates, books, proposals, trades, clearing prices,
positions, the operator's configuration, the matching services, and simulated trading rounds.

(`gridledger market solve` matches a book from a file without any ledger: solver/commands.py.) Every ledger
command takes `--as` (TSO, AC1, RA1, … or meter:C1), `--run-dir` and `--json`, and prints prices in yen/kWh,
quantities in kWh and money in yen; the ledger keeps sen/kWh, Wh and millisen. A failure prints one line,
"error: …", and exits 1.
"""

import json
import logging
import threading
import time
from decimal import Decimal
from pathlib import Path

import click

from cli.dr import (
    CHAINCODE,
    DrCommandError,
    Sessions,
    _common,
    _emit,
    _kwh,
    _reported,
    _table,
    register_consumers,
)
from cli.network import run_dir_option
from cli.solve import market
from consortium.units import MILLISEN_PER_YEN, SEN_PER_YEN
from gateway.errors import EndorseError, GatewayError

__all__ = ["market", "MarketClient"]


class MarketClient:
    """The market contract as one identity sees it: what solver.service.MatchingService talks to."""

    def __init__(self, session):
        self.session = session

    def evaluate(self, name: str, *args: str):
        return self.session.evaluate(name, *args, contract="market")

    def submit(self, name: str, *args: str, all_peers: bool = False):
        """all_peers: every organisation's peer endorses (so every peer verifies); if one cannot, the
        endorsement policy's majority decides instead."""
        if not all_peers:
            return self.session.submit(name, *args, contract="market")
        try:
            return self.session.submit(name, *args, contract="market", endorsers=self.session.all_msp_ids)
        except EndorseError as error:
            if error.refused:  # the contract refused: every peer would
                raise
            return self.session.submit(name, *args, contract="market")

    def events(self):
        return self.session.channel.get_chaincode_events(CHAINCODE)


def _yen(sen: int | None) -> str:
    return "-" if sen is None else f"{Decimal(sen) / SEN_PER_YEN:.2f}"


def _money(millisen: int) -> str:
    return f"{Decimal(millisen) / MILLISEN_PER_YEN:.2f}"


def _client(run_dir: str, who: str) -> MarketClient:
    return MarketClient(Sessions(run_dir)(who))


def _current_gate(client: MarketClient, gate: str | None) -> str:
    return gate or client.evaluate("get_config")["current_gate"]


@market.command("order")
@_common
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
    """Place an order (or a file of orders) into the gate open now."""
    if input_path:
        if any((participant, side, price, quantity)):
            raise DrCommandError("give either --input or --participant/--side/--price/--quantity, not both")
        orders = json.loads(Path(input_path).read_text(encoding="utf-8"))
    else:
        missing = [
            flag
            for flag, value in (
                ("--participant", participant),
                ("--side", side),
                ("--price", price),
                ("--quantity", quantity),
            )
            if value is None
        ]
        if missing:
            raise DrCommandError(f"missing {', '.join(missing)} (or --input FILE)")
        orders = [{"participant": participant, "side": side, "price": price, "quantity": quantity}]
    result = _client(run_dir, who).submit("place_orders", json.dumps(orders))
    lines = [f"gate {result['gate']}: {len(result['orders'])} order(s) placed"]
    lines += [
        f"  {o['id']}  {o['participant']}  {o['side']}  {_kwh(o['quantity_wh'])} kWh at "
        f"{_yen(o['price_sen_per_kwh'])} yen/kWh"
        for o in result["orders"]
    ]
    _emit(as_json, result, lines)


@market.command("cancel")
@_common
@click.option("--gate", required=True)
@click.option("--order", "order_id", required=True)
def cancel_command(who, run_dir, as_json, gate, order_id):
    """Withdraw one of your orders while its gate is open."""
    result = _client(run_dir, who).submit("cancel_order", gate, order_id)
    _emit(as_json, result, [f"order {order_id} of gate {gate} cancelled"])


@market.command("gates")
@_common
@click.option("--limit", type=click.IntRange(1, 500), default=10, show_default=True)
def gates_command(who, run_dir, as_json, limit):
    """The gate open now and the latest closed gates, newest first."""
    gates = _client(run_dir, who).evaluate("list_gates", str(limit))
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
    _emit(as_json, gates, _table(rows))


@market.command("book")
@_common
@click.option("--gate", help="Gate id, JST YYYY-MM-DDTHH:MM:SS [default: the one open now].")
def book_command(who, run_dir, as_json, gate):
    """A gate's order book."""
    client = _client(run_dir, who)
    book = client.evaluate("get_book", _current_gate(client, gate))
    rows = [("order", "participant", "side", "kWh", "yen/kWh")]
    rows += [
        (o["id"], o["participant"], o["side"], _kwh(o["quantity_wh"]), _yen(o["price_sen_per_kwh"]))
        for o in book["orders"]
    ]
    g = book["gate"]
    lines = [f"gate {g['id']} ({g['status']}, {g['objective']}), {g['start']} to {g['end']}"]
    _emit(as_json, book, lines + (_table(rows) if book["orders"] else ["no orders"]))


@market.command("proposals")
@_common
@click.option("--gate", required=True)
def proposals_command(who, run_dir, as_json, gate):
    """The verified proposals of each matcher for a gate, and which one won."""
    client = _client(run_dir, who)
    proposals = client.evaluate("list_proposals", gate)
    winner = (client.evaluate("get_gate", gate).get("winner") or {}).get("org")
    rows = [("matcher", "objective", "value", "kWh", "surplus yen", "trades", "optimal", "chosen")]
    rows += [
        (
            p["org"],
            p["objective"],
            p["value_display"],
            _kwh(p["volume_wh"]),
            _money(p["surplus_millisen"]),
            p["trades"],
            "proven" if p["optimal"] else "-",
            "*" if p["org"] == winner else "",
        )
        for p in proposals
    ]
    _emit(
        as_json,
        {"gate": gate, "winner": winner, "proposals": proposals},
        _table(rows) if proposals else [f"no proposals for gate {gate}"],
    )


@market.command("trades")
@_common
@click.option("--gate", required=True)
def trades_command(who, run_dir, as_json, gate):
    """The trades a gate was finalised with."""
    result = _client(run_dir, who).evaluate("get_trades", gate)
    rows = [("seller", "buyer", "kWh", "yen/kWh")]
    rows += [(t["seller"], t["buyer"], _kwh(t["quantity_wh"]), _yen(t["price_sen_per_kwh"])) for t in result["trades"]]
    winner = result.get("winner") or {}
    lines = [
        f"gate {gate}: "
        + (f"{winner['org']}'s proposal, {winner['objective']} {winner['value_display']}" if winner else "no proposal")
    ]
    _emit(as_json, result, lines + (_table(rows) if result["trades"] else []))


@market.command("prices")
@_common
@click.option("--limit", type=click.IntRange(1, 500), default=48, show_default=True)
def prices_command(who, run_dir, as_json, limit):
    """Clearing prices of the latest gates that traded, oldest first (what bidders adjust to)."""
    prices = _client(run_dir, who).evaluate("get_prices", str(limit))
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
    _emit(as_json, prices, _table(rows) if prices else ["no gate has traded yet"])


@market.command("positions")
@_common
@click.option("--participant", required=True)
def positions_command(who, run_dir, as_json, participant):
    """A participant's energy and money per gate (its RA, its AC, the TSO, or its own meter)."""
    result = _client(run_dir, who).evaluate("get_positions", participant)
    totals = result["totals"]
    _emit(
        as_json,
        result,
        [
            f"{participant} ({result['ra']}): bought {_kwh(totals['bought_wh'])} kWh for {_money(totals['paid_millisen'])} "
            f"yen, sold {_kwh(totals['sold_wh'])} kWh for {_money(totals['received_millisen'])} yen, net "
            f"{_money(totals['net_millisen'])} yen over {len(result['gates'])} gate(s)"
        ],
    )


@market.command("configure")
@_common
@click.option("--gate-seconds", type=int)
@click.option("--proposal-seconds", type=int)
@click.option("--objective", type=click.Choice(["volume", "welfare", "maxmin"]))
def configure_command(who, run_dir, as_json, gate_seconds, proposal_seconds, objective):
    """Set the gate length, proposal window and default objective from the next second on (the operator)."""
    config = {
        k: v
        for k, v in (("gate_seconds", gate_seconds), ("proposal_seconds", proposal_seconds), ("objective", objective))
        if v is not None
    }
    if not config:
        raise DrCommandError("give at least one of --gate-seconds, --proposal-seconds, --objective")
    result = _client(run_dir, who).submit("configure", json.dumps(config))
    _emit(
        as_json,
        result,
        [
            f"from {result['since']}: gates of {result['gate_seconds']} s, proposals for "
            f"{result['proposal_seconds']} s, objective {result['objective']}"
        ],
    )


@market.command("objective")
@_common
@click.option("--gate", required=True)
@click.option("--objective", required=True, type=click.Choice(["volume", "welfare", "maxmin"]))
def objective_command(who, run_dir, as_json, gate, objective):
    """Set the objective of one gate that has not ended (the operator)."""
    result = _client(run_dir, who).submit("set_gate_objective", gate, objective)
    _emit(as_json, result, [f"gate {gate} will be matched for {objective}"])


def start_matchers(sessions: Sessions, matchers: list[str], stop: threading.Event, poll_seconds: float = 2.0):
    """A MatchingService per matcher, each in a thread of its own; returns (services, threads)."""
    from solver.service import MatchingService

    services = [
        MatchingService(org, MarketClient(sessions(org)), rank=rank, poll_seconds=poll_seconds)
        for rank, org in enumerate(matchers)
    ]
    threads = [threading.Thread(target=s.run, args=(stop,), name=f"matcher-{s.org}", daemon=True) for s in services]
    for thread in threads:
        thread.start()
    return services, threads


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
@_reported
def serve_command(matchers, run_dir, seconds):
    """Run matching services: close ended gates, solve and propose, finalise."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    sessions = Sessions(run_dir)
    chosen = list(matchers) or list(sessions.topology.market.matchers)
    unknown = [m for m in chosen if m not in sessions.topology.market.matchers]
    if unknown:
        raise DrCommandError(f"not matchers of the topology: {', '.join(unknown)}")
    stop = threading.Event()
    _, threads = start_matchers(sessions, chosen, stop)
    click.echo(f"matching services running for {', '.join(chosen)}; Ctrl-C stops them")
    try:
        stop.wait(seconds)
    except KeyboardInterrupt:
        pass
    stop.set()
    for thread in threads:
        thread.join(timeout=10)


def _consumers(sessions: Sessions, count: int) -> list[tuple[str, str]]:
    """`count` consumers as (id, RA): the topology's, then synthetic ones registered with their RAs if needed
    (the same ids as `gridledger dr simulate` uses)."""
    from sim.meters import MeterFleet

    fleet = MeterFleet.for_topology(sessions.topology, count)
    for ra, consumers in fleet.by_ra().items():
        register_consumers(sessions(ra), ra, [c.id for c in consumers])
    return [(c.id, c.ra) for c in fleet.consumers]


def run_rounds(sessions: Sessions, traders, gates: int, log=lambda line: None, stop: threading.Event | None = None):
    """Place each gate's orders as it opens, for `gates` gates; returns the gate ids. Traders adjust to the
    latest clearing price they can see (B8)."""
    stop = stop or threading.Event()
    viewer = MarketClient(sessions("TSO"))
    placed: list[str] = []
    seen_final: set[str] = set()
    index = 0
    while len(placed) < gates and not stop.is_set():
        config = viewer.evaluate("get_config")
        gate = config["current_gate"]
        end = config["current_gate_end_ms"] / 1000
        if gate in placed or end - time.time() < min(2.0, config["gate_seconds"] / 2):
            stop.wait(max(0.1, end - time.time() + 0.05))  # too late for this gate: wait for the next
            continue
        for gate_record in viewer.evaluate("list_gates", "10"):
            if gate_record["status"] == "finalised" and gate_record["id"] not in seen_final:
                seen_final.add(gate_record["id"])
                clearing = gate_record.get("clearing")
                traded = set()
                if clearing:
                    for t in viewer.evaluate("get_trades", gate_record["id"])["trades"]:
                        traded.update((t["seller"], t["buyer"]))
                traders.observe(traded, clearing["average_price_sen_per_kwh"] / SEN_PER_YEN if clearing else None)
        by_ra = traders.orders_for_gate(index)
        count = 0
        for ra, orders in by_ra.items():
            client = MarketClient(sessions(ra))
            refs = [{**o, "ref": f"{gate[11:].replace(':', '')}-{o['participant']}"} for o in orders]
            for chunk in range(0, len(refs), 1000):
                _place_once(client, refs[chunk : chunk + 1000], ra, gate, log)
                count += len(refs[chunk : chunk + 1000])
        log(f"gate {gate}: {count} orders from {len(by_ra)} RAs")
        placed.append(gate)
        index += 1
        stop.wait(max(0.0, end - time.time() + 0.05))
    return placed


def _place_once(client: MarketClient, orders: list, ra: str, gate: str, log) -> None:
    """Places a batch; if the answer is lost (timeout, peer restart), sends it again: its refs make the contract
    refuse a copy that did commit ("already placed"), so no order is placed twice."""
    for attempt in (1, 2):
        try:
            result = client.submit("place_orders", json.dumps(orders))
        except GatewayError as error:
            if error.refused and "already placed" in str(error) and attempt == 2:
                return
            if error.refused or attempt == 2:
                raise
            continue
        if result["gate"] != gate:
            log(f"  note: {ra}'s orders landed in gate {result['gate']} (the clock moved on)")
        return


@market.command("simulate")
@run_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--gates", type=click.IntRange(1, 1000), default=3, show_default=True)
@click.option("--gate-seconds", type=click.IntRange(3, 86400), default=10, show_default=True)
@click.option("--proposal-seconds", type=click.IntRange(2, 3600), default=5, show_default=True)
@click.option("--objective", type=click.Choice(["volume", "welfare", "maxmin"]), default="welfare", show_default=True)
@click.option("--traders", "trader_count", type=click.IntRange(2, 30000), default=30, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@_reported
def simulate_command(run_dir, as_json, gates, gate_seconds, proposal_seconds, objective, trader_count, seed):
    """Trading rounds on the network: the operator configures the gates, every matcher's service runs, simulated
    prosumers bid each gate; then each gate's proposals, winner and clearing price against the continuous
    double auction on the same book."""
    from sim.traders import TraderFleet

    began = time.monotonic()
    sessions = Sessions(run_dir)
    topology = sessions.topology
    tso = MarketClient(sessions(topology.market.operator))
    tso.submit(
        "configure",
        json.dumps({"gate_seconds": gate_seconds, "proposal_seconds": proposal_seconds, "objective": objective}),
    )
    traders = TraderFleet.for_consumers(_consumers(sessions, trader_count), seed)
    stop = threading.Event()
    services, threads = start_matchers(sessions, list(topology.market.matchers), stop, poll_seconds=1.0)
    try:
        placed = run_rounds(sessions, traders, gates, log=lambda line: None if as_json else click.echo(line))
        deadline = time.time() + gate_seconds + proposal_seconds + 60
        while time.time() < deadline:
            statuses = [tso.evaluate("get_gate", g)["status"] for g in placed]
            if all(s == "finalised" for s in statuses):
                break
            time.sleep(0.5)
        else:
            raise DrCommandError(f"gates not finalised in time: {dict(zip(placed, statuses))}")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    report = [gate_report(tso, gate) for gate in placed]
    result = {
        "gates": report,
        "traders": trader_count,
        "objective": objective,
        "seconds": round(time.monotonic() - began, 1),
        "solve_seconds": {s.org: s.record.solve_seconds for s in services},
    }
    lines = []
    for g in report:
        values = ", ".join(f"{p['org']} {p['value_display']}" for p in g["proposals"])
        lines.append(
            f"gate {g['gate']}: {g['orders']} orders, {len(g['proposals'])} proposals ({values}), "
            f"winner {g['winner'] or '-'}"
        )
        if g["clearing"]:
            c = g["clearing"]
            lines.append(
                f"  traded {_kwh(c['volume_wh'])} kWh at {_yen(c['average_price_sen_per_kwh'])} yen/kWh "
                f"(low {_yen(c['low_sen_per_kwh'])}, high {_yen(c['high_sen_per_kwh'])}); surplus "
                f"{_money(g['surplus_millisen'])} yen vs {_money(g['cda_surplus_millisen'])} yen by the "
                f"continuous double auction, volume {_kwh(g['cda_volume_wh'])} kWh by CDA"
            )
    _emit(as_json, result, lines)


def gate_report(client: MarketClient, gate: str) -> dict:
    """A finalised gate's proposals, winner and totals, against the continuous double auction on its book."""
    from solver.cda import continuous_double_auction
    from solver.orders import order_from_ledger
    from solver.proposals import total_surplus, traded_volume

    record = client.evaluate("get_gate", gate)
    book = client.evaluate("get_book", gate)["orders"]
    orders = [order_from_ledger(o) for o in book]
    by_id = {o.id: o for o in orders}
    cda = continuous_double_auction(orders)
    trades = client.evaluate("get_trades", gate)["trades"] if record["status"] == "finalised" else []
    winner = record.get("winner") or {}
    return {
        "gate": gate,
        "status": record["status"],
        "objective": record["objective"],
        "orders": len(orders),
        "proposals": client.evaluate("list_proposals", gate),
        "winner": winner.get("org"),
        "clearing": record.get("clearing"),
        "trades": len(trades),
        "surplus_millisen": sum((by_id[t["buy"]].price - by_id[t["sell"]].price) * t["quantity_wh"] for t in trades),
        "volume_wh": sum(t["quantity_wh"] for t in trades),
        "cda_surplus_millisen": total_surplus(by_id, cda),
        "cda_volume_wh": traded_volume(cda),
    }
