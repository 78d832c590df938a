"""`gridledger dr history …` and `gridledger dr units …`: 30-minute meter history, commands that name a product,
基準値計画 forecasts and the settlement per 30-minute unit by Japan's rules (clients.dr_units does the work).

As the other `dr` commands: `--as` (an organisation, or a meter "meter:C1"), `--run-dir`, `--json`; days are JST
YYYY-MM-DD, minutes JST YYYY-MM-DDTHH:MM, energy whole Wh, money sen. A failure prints one line, "error: …".
"""

import json
from datetime import datetime

import click

from cli.common import emit, json_option, ledger_command, reported, run_dir_option, sessions_of, table
from cli.dr import command_fields, command_window_options
from clients.contract import Refused
from clients.dr_units import UnitsClient
from consortium.units import JST, kwh, yen
from network.connections import Sessions
from network.crypto import MeterOperator


def _client(sessions: Sessions, who: str) -> UnitsClient:
    """`who`'s units client; an RA's relays what its consumers' meters sign (the run directory's simulated meters)."""
    meters = None if who.startswith("meter:") else MeterOperator(sessions.network.layout)
    return UnitsClient.of(sessions(who), sessions.topology, meters)


@click.group()
def history():
    """30-minute smart-meter history (what kWh-type baselines are computed from)."""


@history.command("simulate")
@run_dir_option
@json_option
@click.option("--consumers", "consumer_count", type=click.IntRange(1, 100_000), default=6, show_default=True)
@click.option("--days", type=click.IntRange(1, 62), default=35, show_default=True, help="Days of history.")
@click.option("--before", help="The day after the last day posted, JST YYYY-MM-DD [default: today].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-days", type=click.IntRange(1, 5000), default=700, show_default=True)
@click.option("--workers", type=click.IntRange(1, 32), default=4, show_default=True)
@reported
def history_simulate(run_dir, as_json, consumer_count, days, before, seed, batch_days, workers):
    """Post the simulated consumers' history through their RAs, each day signed by the consumer's meter (the
    consumers are those of `gridledger dr simulate` with the same --seed; new ones are registered first)."""
    from sim.history import fleet_history, post_history
    from sim.meters import MeterFleet

    sessions = Sessions(run_dir)
    fleet = MeterFleet.for_topology(sessions.topology, consumer_count, seed)
    for ra, consumers in fleet.by_ra().items():
        sessions(ra).dr.register_consumers([c.id for c in consumers])
    last = datetime.fromisoformat(before).date() if before else datetime.now(JST).date()
    clients = {ra: _client(sessions, ra) for ra in fleet.by_ra()}
    result = post_history(clients.__getitem__, fleet_history(fleet, last, days), batch_days, workers)
    lines = [
        f"{result['days']} consumer-days of {len(fleet.consumers)} consumers in {result['transactions']} "
        f"transactions, {result['seconds']:.1f} s ({result['days_per_second']} days/s)"
    ]
    emit(as_json, result, lines)


@history.command("show")
@ledger_command
@click.option("--consumer", required=True)
@click.option("--from", "first_day", required=True, help="First day, JST YYYY-MM-DD.")
@click.option("--to", "last_day", required=True, help="Last day, included.")
def history_show(who, run_dir, as_json, consumer, first_day, last_day):
    """A consumer's 30-minute history, as the caller may see it."""
    shown = _client(sessions_of(run_dir, who), who).history(consumer, first_day, last_day)
    rows = [("day", "kWh", "peak slot Wh")]
    rows += [(d["day"], kwh(sum(d["wh"])), max(d["wh"])) for d in shown["days"]]
    emit(as_json, shown, [f"{consumer} of {shown['ra']}: {len(shown['days'])} days", *table(rows)])


@click.group()
def units():
    """Commands that name a product, 基準値計画 forecasts, and settlement per 30-minute unit."""


@units.command("issue")
@ledger_command
@command_window_options
@click.option("--price", "price_per_kwh", type=int, default=0, show_default=True, help="Sen per kWh (kWh-type).")
@click.option("--product", "name", required=True, help="kwh-dr, secondary-1, tertiary-1 or tertiary-2.")
@click.option("--contracted", multiple=True, help="A balancing product's ΔkW per AC: AC1=50000 (W; repeat).")
@click.option("--baseline", type=click.Choice(["measured", "forecast"]), help="A balancing product's baseline.")
@click.option("--granularity", type=int, default=1, show_default=True)
@click.option("--baseline-minutes", type=int, default=240, show_default=True, help="Readings accepted before.")
def units_issue(
    who,
    run_dir,
    as_json,
    command_id,
    start,
    end,
    requested_kw,
    targets,
    price_per_kwh,
    name,
    contracted,
    baseline,
    granularity,
    baseline_minutes,
):
    """Issue a command that names its product (TSO only); the topology's `settlement:` gives what it leaves out."""
    product: dict = {"name": name}
    if contracted:
        try:
            product["contracted_w"] = {ac: int(w) for ac, w in (pair.split("=", 1) for pair in contracted)}
        except ValueError:
            raise Refused("--contracted takes AC=W, e.g. AC1=50000") from None
    if baseline:
        product["baseline"] = baseline
    fields = command_fields(command_id, start, end, requested_kw, targets, price_per_kwh, granularity, baseline_minutes)
    command = {**fields, "product": product}
    record = sessions_of(run_dir, who)(who).dr.issue(command)
    emit(as_json, record, [f"command {record['id']} issued: {record['start']} to {record['end']} JST, {name}"])


@units.command("forecast")
@ledger_command
@click.option("--id", "command_id", required=True)
@click.option("--file", "plan_file", type=click.File(), required=True, help="JSON {consumer: [Wh per unit]}.")
def units_forecast(who, run_dir, as_json, command_id, plan_file):
    """Submit an RA's 基準値計画 for a command with a forecast baseline; it is locked once written."""
    plan = json.load(plan_file)
    if not isinstance(plan, dict):
        raise Refused("the plan file must hold a JSON object {consumer: [Wh per 30-minute unit]}")
    summary = _client(sessions_of(run_dir, who), who).submit_forecast(command_id, plan)
    emit(
        as_json, summary, [f"基準値計画 of {summary['ra']} for command {command_id}: {summary['consumers']} consumers"]
    )


@units.command("show")
@ledger_command
@click.option("--id", "command_id", required=True)
def units_show(who, run_dir, as_json, command_id):
    """The command's settlement per 30-minute unit, as the caller may see it."""
    result = _client(sessions_of(run_dir, who), who).unit_settlement(command_id)
    emit(as_json, result, settlement_lines(result))


@units.command("record")
@ledger_command
@click.option("--id", "command_id", required=True)
@click.option("--ac", help="The AC whose statement to record [default: the caller's own, for an AC].")
def units_record(who, run_dir, as_json, command_id, ac):
    """Record an AC's statement of a settled command: what the TSO pays it, endorsed by the AC's peer and the
    TSO's (the AC or the TSO records it, once); then deliver each of its RAs' share to that RA."""
    client = _client(sessions_of(run_dir, who), who)
    summary = client.record_statement(command_id, ac)
    delivered = client.deliver_shares(command_id, summary["ac"])
    lines = [f"statement of {summary['ac']} for command {command_id} recorded by {summary['recorded_by']}"]
    lines += [f"share delivered to {d['ra']}" for d in delivered]
    emit(as_json, {**summary, "shares_delivered": [d["ra"] for d in delivered]}, lines)


@units.command("statement")
@ledger_command
@click.option("--id", "command_id", required=True)
@click.option("--ac", help="The AC whose statement to show [default: the caller's own, for an AC].")
def units_statement(who, run_dir, as_json, command_id, ac):
    """An AC's recorded statement of a command (to that AC and the TSO)."""
    statement = _client(sessions_of(run_dir, who), who).statement(command_id, ac)
    figure = statement["ac_figure"]
    lines = [
        f"statement of {statement['ac']} for command {statement['command']}, recorded {statement['recorded_at']} "
        f"by {statement['recorded_by']}: reward {_yen(figure['reward_sen'])}, penalty {_yen(figure['penalty_sen'])}, "
        f"amount {_yen(figure['amount_sen'])}",
        *table(
            [("ra", "delivered kWh", "reward", "penalty", "amount")]
            + [
                (r["org"], kwh(r["delivered_wh"]), _yen(r["reward_sen"]), _yen(r["penalty_sen"]), _yen(r["amount_sen"]))
                for r in statement["ras"]
            ]
        ),
        f"{statement['consumers']} consumers, their figures' SHA-256 {statement['consumers_digest']}",
    ]
    emit(as_json, statement, lines)


def settlement_lines(result: dict) -> list[str]:
    product = result["product"]
    lines = [
        f"command {result['command']}: {product['name']} ({product['baseline']} baseline), "
        f"{'settled' if result['settled'] else 'not settled yet'}"
    ]
    levels = ([result["tso"]] if result["tso"] else []) + result["acs"] + result["ras"]
    rows = [("org", "unit", "baseline kWh", "actual kWh", "delivered kWh", "contracted kWh", "reward", "penalty")]
    for figure in levels:
        for unit in figure["units"]:
            rows.append(
                (
                    figure["org"],
                    unit["unit"],
                    kwh(unit["baseline_wh"]),
                    kwh(unit["actual_wh"]),
                    kwh(unit["delivered_wh"]),
                    kwh(unit["contracted_wh"]),
                    "",
                    "",
                )
            )
        rows.append(
            (
                figure["org"],
                "total",
                "",
                "",
                kwh(figure["delivered_wh"]),
                "",
                _yen(figure["reward_sen"]),
                _yen(figure["penalty_sen"]),
            )
        )
    lines += table(rows)
    for ac in result["acs"]:
        statement = ac.get("statement")
        if statement is None:
            lines.append(f"{ac['org']}'s statement: not recorded")
        else:
            agrees = "matches these figures" if statement["matches"] else "DOES NOT match these figures"
            shares = ", ".join(statement["shares_delivered"]) or "none"
            lines.append(
                f"{ac['org']}'s statement: recorded {statement['recorded_at']} by {statement['recorded_by']}, {agrees}; "
                f"shares delivered to {shares}"
            )
    if result["money"] != "sen":
        lines.append(f"money: {result['money']}")
    if result.get("share"):
        share = result["share"]
        lines.append(f"share of {share['ac']}'s statement delivered {share['delivered_at']} by {share['delivered_by']}")
    return lines


def _yen(sen: int | None) -> str:
    return yen(sen, none="-")
