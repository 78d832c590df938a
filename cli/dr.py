"""`gridledger dr …`: DR commands, declarations, meter readings, aggregates, the TSO's BC/AS comparison,
settlement, and a whole simulated run, on the running network as one of its identities (clients.dr does the work).

Every command takes `--as` (an organisation, "TSO", or a smart meter, "meter:C1"), `--run-dir` (the network's) and
`--json`. Queries run on the caller's own peer, the one that holds its groups' private data; transactions that
carry private data are endorsed by that peer alone. Times are JST minutes, YYYY-MM-DDTHH:MM; energy is whole Wh.
A failure prints one line, "error: …", and exits 1.
"""

import json

import click

from cli.common import emit, json_option, ledger_command, reported, run_dir_option, sessions_of, table
from clients.contract import Refused
from clients.dr import Reading, uniform_declaration
from consortium.units import kwh, wh_from_kwh, yen
from network.connections import AS_DB_NAME, Sessions
from network.crypto import MeterOperator
from sim.aggregation_system import AggregationSystem


def _aggregation_system(sessions: Sessions, path: str | None, **options) -> AggregationSystem:
    return AggregationSystem(path or sessions.as_db_path, sessions.topology, **options)


def _kwh(wh: int | None) -> str:
    return kwh(wh, none="-")


as_db_option = click.option(
    "--as-db",
    type=click.Path(dir_okay=False),
    help=f"The aggregation system's store [default: <run-dir>/{AS_DB_NAME}].",
)


@click.group()
def dr():
    """Demand response: commands, declarations, readings, aggregates, comparison, settlement."""


# Commands.


@dr.group()
def command():
    """DR commands (the TSO issues them; everyone reads them)."""


def command_window_options(function):
    """The options every command issue takes: its id, window, kW and target ACs (`gridledger dr units issue`
    too)."""
    for option in reversed(
        [
            click.option("--id", "command_id", required=True, help="Command id, e.g. 1."),
            click.option("--start", required=True, help="First minute, JST: YYYY-MM-DDTHH:MM."),
            click.option("--end", required=True, help="Last minute, JST, included."),
            click.option("--kw", "requested_kw", type=int, required=True, help="Requested reduction, kW."),
            click.option("--target", "targets", multiple=True, required=True, help="A target AC (repeat for several)."),
        ]
    ):
        function = option(function)
    return function


def command_fields(command_id, start, end, requested_kw, targets, price_per_kwh, granularity, baseline_minutes) -> dict:
    """The command a `… issue` sends, from the options both issue commands share."""
    return {
        "id": command_id,
        "start": start,
        "end": end,
        "requested_kw": requested_kw,
        "target_acs": list(targets),
        "price_per_kwh": price_per_kwh,
        "granularity_minutes": granularity,
        "baseline_minutes": baseline_minutes,
    }


@command.command("issue")
@ledger_command
@command_window_options
@click.option(
    "--price",
    "price_per_kwh",
    type=int,
    required=True,
    help="Reward per kWh in hundredths of a yen (2500 = 25.00 yen/kWh).",
)
@click.option("--granularity", type=int, default=1, show_default=True, help="Slot length, minutes.")
@click.option(
    "--baseline-minutes",
    type=int,
    default=30,
    show_default=True,
    help="Minutes before the start whose readings are accepted (the mean-before baseline).",
)
@click.option(
    "--declare-by", help="Declarations are due before this minute, JST, at the latest the start [default: the start]."
)
@click.option(
    "--readings-due",
    help="Readings are due before this minute, JST, and settlement comes from then on [default: the end + the "
    "topology's dr.readings_due_minutes].",
)
def command_issue(
    who,
    run_dir,
    as_json,
    command_id,
    start,
    end,
    requested_kw,
    targets,
    price_per_kwh,
    granularity,
    baseline_minutes,
    declare_by,
    readings_due,
):
    """Issue a DR command for a window ahead (TSO only): the ledger refuses one whose start, or declare-by, has
    begun."""
    deadlines = {"declare_by": declare_by, "readings_due": readings_due}
    fields = command_fields(command_id, start, end, requested_kw, targets, price_per_kwh, granularity, baseline_minutes)
    record = sessions_of(run_dir, who)(who).dr.issue(
        {**fields, **{name: value for name, value in deadlines.items() if value is not None}}
    )
    emit(
        as_json,
        record,
        [
            f"command {record['id']} issued: {record['start']} to {record['end']} JST, "
            f"{record['requested_kw']} kW from {', '.join(record['target_acs'])}; declarations before "
            f"{record['declare_by']}, readings before {record['readings_due']} JST"
        ],
    )


@command.command("list")
@ledger_command
def command_list(who, run_dir, as_json):
    """List the DR commands."""
    commands = sessions_of(run_dir, who)(who).dr.commands()
    rows = [("id", "start (JST)", "end (JST)", "declare by", "readings due", "kW", "targets", "price/kWh", "slot min")]
    rows += [
        (
            c["id"],
            c["start"],
            c["end"],
            c["declare_by"],
            c["readings_due"],
            c["requested_kw"],
            ",".join(c["target_acs"]),
            yen(c["price_per_kwh"]),
            c["granularity_minutes"],
        )
        for c in commands
    ]
    emit(as_json, commands, table(rows))


# Declarations.


@dr.command()
@ledger_command
@click.option("--command", "command_id", required=True)
@click.option(
    "--file",
    "declaration_file",
    type=click.File(),
    help="Declaration JSON: {baseline_method, consumers: "
    "{id: {expected_wh: [per slot], baseline_wh: [per slot, 'declared' only]}}}.",
)
@click.option("--consumer", "consumers", multiple=True, help="A consumer to declare (repeat); with --expected-wh.")
@click.option("--expected-wh", type=int, help="Expected reduction per slot and consumer, Wh.")
@click.option("--baseline-wh", type=int, help="Declared baseline per slot and consumer, Wh (method 'declared').")
@click.option(
    "--method",
    type=click.Choice(["mean-before", "declared"]),
    default=None,
    help="Baseline method (default: declared when --baseline-wh is given, else mean-before).",
)
def declare(who, run_dir, as_json, command_id, declaration_file, consumers, expected_wh, baseline_wh, method):
    """Declare which of your consumers answer a command (RA only), before its declare-by: the detail stays in your
    group, a summary (consumers, total expected Wh) is published on the channel."""
    client = sessions_of(run_dir, who)(who).dr
    if declaration_file:
        if consumers:
            raise Refused("give either --file or --consumer, not both")
        declaration = json.load(declaration_file)
    else:
        if not consumers or expected_wh is None:
            raise Refused("give --file, or --consumer (one or more) with --expected-wh")
        if method is not None and (method == "declared") != (baseline_wh is not None):
            raise Refused("--baseline-wh goes with --method declared, and only with it")
        declaration = uniform_declaration(client.command(command_id), list(consumers), expected_wh, baseline_wh)
    summary, _ = client.declare(command_id, declaration)
    emit(
        as_json,
        summary,
        [
            f"{summary['ra']} declared {summary['consumers']} consumer(s) for command "
            f"{summary['command']}, {_kwh(summary['expected_wh'])} kWh expected in total"
        ],
    )


# Readings.


@dr.group()
def readings():
    """Smart-meter readings (private to the consumer's group)."""


@readings.command("post")
@ledger_command
@click.option("--command", "command_id", required=True)
@click.option("--file", "readings_file", type=click.File(), help="JSON list of {consumer, minute, wh}.")
@click.option("--consumer", help="One reading: its consumer …")
@click.option("--minute", help="… its JST minute …")
@click.option("--wh", type=int, help="… and its Wh,")
@click.option("--kwh", "kwh_text", help="… or its kWh (at most three decimals).")
@click.option(
    "--batch-size", type=click.IntRange(1, 5000), default=1000, show_default=True, help="Readings per transaction."
)
@as_db_option
@click.option("--no-as", is_flag=True, help="Do not send the readings to the aggregation system too.")
def readings_post(
    who, run_dir, as_json, command_id, readings_file, consumer, minute, wh, kwh_text, batch_size, as_db, no_as
):
    """Post readings to the ledger as an RA (batched) or a meter (its own only), each once its minute has ended and
    before the command's readings-due, and send the same data to the aggregation system once the ledger has
    accepted them."""
    sessions = sessions_of(run_dir, who)
    session = sessions(who)
    if not who.startswith("meter:"):
        # An RA relays what its consumers' meters signed; here the simulated meters of the run directory sign.
        session.dr.meters = MeterOperator(sessions.network.layout)
    if readings_file:
        if consumer or minute or wh is not None or kwh_text:
            raise Refused("give either --file or one reading (--consumer, --minute, --wh/--kwh), not both")
        entries = json.load(readings_file)
        if not isinstance(entries, list):
            raise Refused("the readings file must hold a JSON list of {consumer, minute, wh}")
    elif consumer and minute and (wh is None) != (kwh_text is None):
        entries = [{"consumer": consumer, "minute": minute, "wh": wh if wh is not None else _wh_of(kwh_text)}]
    else:
        raise Refused("give --file, or --consumer, --minute and one of --wh or --kwh")
    try:
        batch = [Reading(session.org.name, e["consumer"], e["minute"], e["wh"]) for e in entries]
    except (TypeError, KeyError) as missing:
        raise Refused(f"every reading needs consumer, minute and wh ({missing})") from None
    system = None if no_as else _aggregation_system(sessions, as_db)
    summaries = []
    for start in range(0, len(batch), batch_size):
        part = batch[start : start + batch_size]
        summaries.append(session.dr.post_readings(command_id, part))
        if system:
            system.receive(command_id, part)
    posted = sum(s["readings"] for s in summaries)
    emit(
        as_json,
        {"command": command_id, "posted": posted, "transactions": summaries},
        [f"{posted} reading(s) posted for command {command_id} in {len(summaries)} transaction(s)"],
    )


def _wh_of(kwh_text: str) -> int:
    try:
        return wh_from_kwh(kwh_text)
    except ValueError as error:
        raise Refused(f"--kwh {error}") from None


# Aggregates and the comparison.


@dr.command()
@ledger_command
@click.option("--command", "command_id", required=True)
@click.option("--org", default="", help="One AC or RA (default: every one you may see).")
def aggregates(who, run_dir, as_json, command_id, org):
    """BC aggregates per AC and RA and minute, as the ledger computes them."""
    result = sessions_of(run_dir, who)(who).dr.aggregates(command_id, org)
    rows = [("org", "minute (JST)", "kWh", "readings")]
    rows += [(a["org"], m["minute"], _kwh(m["wh"]), m["readings"]) for a in result["aggregates"] for m in a["minutes"]]
    emit(as_json, result, table(rows))


@dr.command()
@ledger_command
@click.option("--command", "command_id", required=True)
@as_db_option
def compare(who, run_dir, as_json, command_id, as_db):
    """Per AC and RA and minute: the BC aggregate beside the AS aggregate, and whether they match."""
    sessions = sessions_of(run_dir, who)
    comparison = sessions(who).dr.compare(command_id, _aggregation_system(sessions, as_db))
    rows = [("org", "command", "date", "minute", "BC kWh", "AS kWh", "")]
    rows += [
        (r.org, r.command, r.date, r.time, _kwh(r.bc_wh), _kwh(r.as_wh), "" if r.match else "MISMATCH")
        for r in comparison.rows
    ]
    emit(as_json, comparison.as_json(), [*table(rows), agreement_line(comparison.mismatches)])


def agreement_line(mismatches: int) -> str:
    return f"{mismatches} mismatch(es)" if mismatches else "BC and AS agree on every minute"


# Settlement.


@dr.command()
@ledger_command
@click.option("--command", "command_id", required=True)
@click.option("--show", is_flag=True, help="Only show the figures you may see (any organisation).")
def settle(who, run_dir, as_json, command_id, show):
    """Settle a command once its readings are due (TSO): performance per slot and reward per RA and AC, frozen on
    the ledger."""
    client = sessions_of(run_dir, who)(who).dr
    if not show:
        client.settle(command_id)
    result = client.settlement(command_id)
    emit(as_json, result, settlement_lines(result))


def settlement_lines(result: dict) -> list[str]:
    rows = [("org", "baseline kWh", "actual kWh", "delivered kWh", "expected kWh", "shortfall kWh", "reward yen")]
    for figure in result["figures"] + ([result["total"]] if "total" in result else []):
        rows.append(
            (
                figure["org"],
                _kwh(figure["baseline_wh"]),
                _kwh(figure["actual_wh"]),
                _kwh(figure["delivered_wh"]),
                _kwh(figure["expected_wh"]),
                _kwh(figure["shortfall_wh"]),
                yen(figure["reward_hundredth_yen"]),
            )
        )
    state = "settled" if result["settled"] else "not settled yet (figures so far)"
    return [f"command {result['command']}: {state}", *table(rows)]


# The whole sequence (and its per-organisation run, cli/dr_parts.py).

lead_seconds_option = click.option(
    "--lead-seconds",
    type=click.FloatRange(5, 3600),
    default=20,
    show_default=True,
    help="Time to issue and declare before the window starts.",
)
readings_due_option = click.option(
    "--readings-due-minutes",
    type=click.IntRange(1, 1440),
    default=1,
    show_default=True,
    help="Readings are due this long after the window's end; then the TSO settles.",
)
discrepancy_option = click.option(
    "--discrepancy-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of readings the aggregation system records wrong.",
)


@dr.command()
@click.option(
    "--as",
    "who",
    default="TSO",
    show_default=True,
    metavar="ORG",
    help="Whose comparison and settlement view to print (the run acts as each organisation in turn).",
)
@run_dir_option
@json_option
@click.option("--consumers", "consumer_count", type=click.IntRange(1, 30000), default=6, show_default=True)
@click.option("--command", "command_id", help="Command id [default: sim-<unix time>].")
@click.option(
    "--start", help="First minute, JST, still ahead [default: the first minute at least --lead-seconds ahead]."
)
@lead_seconds_option
@readings_due_option
@click.option("--minutes", type=click.IntRange(1, 1440), default=15, show_default=True, help="Window length.")
@click.option("--baseline-minutes", type=click.IntRange(1, 240), default=15, show_default=True)
@click.option(
    "--price", "price_per_kwh", type=int, default=2500, show_default=True, help="Hundredths of a yen per kWh."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the load model.")
@click.option("--batch-size", type=click.IntRange(1, 5000), default=500, show_default=True)
@click.option(
    "--workers", type=click.IntRange(1, 64), default=4, show_default=True, help="Transactions in flight at once."
)
@click.option("--per-meter", is_flag=True, help="The topology's consumers post under their meters' identities.")
@discrepancy_option
@click.option("--as-db", type=click.Path(dir_okay=False), help=f"[default: <run-dir>/{AS_DB_NAME}]")
@reported
def simulate(
    who,
    run_dir,
    as_json,
    consumer_count,
    command_id,
    start,
    lead_seconds,
    readings_due_minutes,
    minutes,
    baseline_minutes,
    price_per_kwh,
    seed,
    batch_size,
    workers,
    per_meter,
    discrepancy_rate,
    as_db,
):
    """Run the whole DR sequence live with N simulated consumers: a command for a window just ahead, declarations,
    meter readings to the ledger and the aggregation system as each minute ends, comparison, settlement once the
    readings are due. It takes as long as the window plus the wait for readings due; progress goes to stderr."""
    from sim.dr_run import simulate_dr

    sessions = Sessions(run_dir)
    meters = MeterOperator(sessions.network.layout)  # the simulated consumers' meters sign what their RAs relay
    for org in sessions.topology.organisations:
        if org.role == "ra":
            sessions(org.name).dr.meters = meters
    system = _aggregation_system(sessions, as_db, discrepancy_rate=discrepancy_rate, seed=seed)
    result, ras = simulate_dr(
        sessions,
        system,
        viewer=who,
        consumer_count=consumer_count,
        command_id=command_id,
        start=start,
        lead_seconds=lead_seconds,
        readings_due_minutes=readings_due_minutes,
        log=lambda line: click.echo(line, err=True),
        minutes=minutes,
        baseline_minutes=baseline_minutes,
        price_per_kwh=price_per_kwh,
        seed=seed,
        batch_size=batch_size,
        workers=workers,
        per_meter=per_meter,
    )
    record = result["command"]
    lines = [
        f"command {record['id']}: {record['start']} to {record['end']} JST, "
        f"{result['consumers']} consumers of {', '.join(ras)}",
        f"{result['readings']} readings in {result['transactions']} transactions, {result['posting_seconds']:.1f} s "
        f"({result['readings_per_second']} readings/s)",
        f"comparison as {who}: " + agreement_line(result["mismatches"]),
    ]
    emit(as_json, result, lines + settlement_lines(result["settlement"]))
