"""`gridledger dr …`: DR commands, declarations, meter readings, aggregates, the TSO's BC/AS comparison,
settlement, and a whole simulated run, on the running network as one of its identities.

Every command takes `--as` (an organisation, "TSO", or a smart meter, "meter:C1"), `--run-dir` (the network's) and
`--json`. Queries run on the caller's own peer, the one that holds its groups' private data; transactions that
carry private data are endorsed by that peer alone. Times are JST minutes, YYYY-MM-DDTHH:MM; energy is whole Wh.
A failure prints one line, "error: …", and exits 1.
"""

import functools
import json
import sqlite3
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click

from cli.network import run_dir_option
from consortium.units import JST, minute_index, minute_label
from gateway.errors import EndorseError, GatewayError
from network.bringup import Network, NetworkError

CHAINCODE = "gridledger"
AS_DB_NAME = "aggregation-system.sqlite"


class DrCommandError(Exception):
    """Something the user asked for cannot be done; the message says why."""


class DrSession:
    """One identity's use of the dr contract: an organisation's User1, or a meter ("meter:C1")."""

    def __init__(self, network: Network, who: str):
        topology = network.topology
        if who.startswith("meter:"):
            consumer = who.split(":", 1)[1]
            try:
                org = topology.consumer_owner(consumer).name
            except KeyError:
                raise DrCommandError(
                    f"no meter identity for {consumer!r}: meters exist for the topology's consumers only"
                ) from None
            user = who
        elif who in topology.org_names:
            org, user = who, "User1"
        else:
            raise DrCommandError(
                f"--as must be one of {', '.join(topology.org_names)} or meter:<consumer>, got {who!r}"
            )
        from network.connections import connect_as  # needs Fabric's generated protobufs: loaded when used

        self.who = who
        self.org = topology.organisation(org)
        self.all_msp_ids = [o.msp_id for o in topology.organisations]
        self.gateway = connect_as(network, org, user)
        self.channel = self.gateway.get_network(topology.channel)
        self.contracts = {name: self.channel.get_contract(CHAINCODE, name) for name in ("dr", "market")}
        self.contract = self.contracts["dr"]

    def evaluate(self, name: str, *args: str, contract: str = "dr"):
        return json.loads(self.contracts[contract].evaluate(name, *args, endorsing_organizations=[self.org.msp_id]))

    def submit(
        self,
        name: str,
        *args: str,
        transient: dict | None = None,
        private: bool = False,
        contract: str = "dr",
        endorsers: list[str] | None = None,
    ):
        """`private`: the transaction writes only the caller's groups, so its own peer alone endorses it and no
        other organisation receives the transient data. `endorsers`: these MSP ids' peers endorse. Otherwise
        Fabric chooses (public writes need a majority)."""
        if private:
            endorsers = [self.org.msp_id]
        return json.loads(
            self.contracts[contract].submit(name, *args, transient=transient, endorsing_organizations=endorsers)
        )


class Sessions:
    """The network of a run directory and one session per identity, opened on first use."""

    def __init__(self, run_dir: str):
        root = Path(run_dir)
        if not (root / "network.json").exists():
            raise DrCommandError(f"no network in {root}: start one with `gridledger network up --run-dir {root}`")
        self.run_dir = root
        self.network = Network(root)
        self.topology = self.network.topology
        self._open: dict[str, DrSession] = {}

    def __call__(self, who: str) -> DrSession:
        if who not in self._open:
            self._open[who] = DrSession(self.network, who)
        return self._open[who]

    def aggregation_system(self, path: str | None, **options):
        from sim.aggregation_system import AggregationSystem

        return AggregationSystem(path or self.run_dir / AS_DB_NAME, self.topology, **options)


def register_consumers(session: DrSession, ra: str, consumers: list[str]) -> None:
    """Registers with `ra` those of `consumers` it does not know yet (the simulators' synthetic consumers)."""
    known = set(session.evaluate("list_consumers").get(ra, []))
    new = [c for c in consumers if c not in known]
    for chunk in range(0, len(new), 5000):
        session.submit(
            "register_consumers", transient={"consumers": json.dumps(new[chunk : chunk + 5000])}, private=True
        )


def _reported(command):
    """Turns the errors a user can cause into one line on stderr and exit status 1."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (DrCommandError, GatewayError, NetworkError, sqlite3.Error, OSError, ValueError) as error:
            message = str(error)
        except KeyError as error:
            message = str(error.args[0]) if error.args else "not found"
        click.echo("error: " + " ".join(message.split()), err=True)
        sys.exit(1)

    return run


def _common(command):
    """--as, --run-dir and --json, and error reporting."""
    command = _reported(command)
    command = click.option("--json", "as_json", is_flag=True, help="Print JSON.")(command)
    command = run_dir_option(command)
    return click.option(
        "--as",
        "who",
        required=True,
        metavar="ORG|meter:CONSUMER",
        help="Who acts: TSO, AC1, RA1, … or a smart meter, meter:C1.",
    )(command)


def _emit(as_json: bool, data, lines: list[str]) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False) if as_json else "\n".join(lines))


def _kwh(wh: int | None) -> str:
    return "-" if wh is None else f"{Decimal(wh) / 1000:.3f}"


def _table(rows: list[tuple]) -> list[str]:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


@click.group()
def dr():
    """Demand response: commands, declarations, readings, aggregates, comparison, settlement."""


# Commands.


@dr.group()
def command():
    """DR commands (the TSO issues them; everyone reads them)."""


@command.command("issue")
@_common
@click.option("--id", "command_id", required=True, help="Command id, e.g. 1.")
@click.option("--start", required=True, help="First minute, JST: YYYY-MM-DDTHH:MM.")
@click.option("--end", required=True, help="Last minute, JST, included.")
@click.option("--kw", "requested_kw", type=int, required=True, help="Requested reduction, kW.")
@click.option("--target", "targets", multiple=True, required=True, help="A target AC (repeat for several).")
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
def command_issue(
    who, run_dir, as_json, command_id, start, end, requested_kw, targets, price_per_kwh, granularity, baseline_minutes
):
    """Issue a DR command (TSO only)."""
    record = Sessions(run_dir)(who).submit(
        "issue_command",
        json.dumps(
            {
                "id": command_id,
                "start": start,
                "end": end,
                "requested_kw": requested_kw,
                "target_acs": list(targets),
                "price_per_kwh": price_per_kwh,
                "granularity_minutes": granularity,
                "baseline_minutes": baseline_minutes,
            }
        ),
    )
    _emit(
        as_json,
        record,
        [
            f"command {record['id']} issued: {record['start']} to {record['end']} JST, "
            f"{record['requested_kw']} kW from {', '.join(record['target_acs'])}"
        ],
    )


@command.command("list")
@_common
def command_list(who, run_dir, as_json):
    """List the DR commands."""
    commands = Sessions(run_dir)(who).evaluate("list_commands")
    rows = [("id", "start (JST)", "end (JST)", "kW", "targets", "price/kWh", "slot min")]
    rows += [
        (
            c["id"],
            c["start"],
            c["end"],
            c["requested_kw"],
            ",".join(c["target_acs"]),
            f"{Decimal(c['price_per_kwh']) / 100:.2f}",
            c["granularity_minutes"],
        )
        for c in commands
    ]
    _emit(as_json, commands, _table(rows))


# Declarations.


@dr.command()
@_common
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
    """Declare which of your consumers answer a command (RA only): the detail stays in your group, a summary
    (consumers, total expected Wh) is published on the channel."""
    session = Sessions(run_dir)(who)
    if declaration_file:
        if consumers:
            raise DrCommandError("give either --file or --consumer, not both")
        declaration = json.load(declaration_file)
    else:
        if not consumers or expected_wh is None:
            raise DrCommandError("give --file, or --consumer (one or more) with --expected-wh")
        method = method or ("declared" if baseline_wh is not None else "mean-before")
        if (method == "declared") != (baseline_wh is not None):
            raise DrCommandError("--baseline-wh goes with --method declared, and only with it")
        command_record = session.evaluate("get_command", command_id)
        slots = (minute_index(command_record["end"]) - minute_index(command_record["start"]) + 1) // command_record[
            "granularity_minutes"
        ]
        entry = {"expected_wh": [expected_wh] * slots}
        if baseline_wh is not None:
            entry["baseline_wh"] = [baseline_wh] * slots
        declaration = {"baseline_method": method, "consumers": {c: entry for c in consumers}}
    summary = _declare(session, command_id, declaration)
    _emit(
        as_json,
        summary,
        [
            f"{summary['ra']} declared {summary['consumers']} consumer(s) for command "
            f"{summary['command']}, {_kwh(summary['expected_wh'])} kWh expected in total"
        ],
    )


def _declare(session: DrSession, command_id: str, declaration: dict, seconds: float = 20.0) -> dict:
    """Declares privately, then publishes the summary. The publication's endorsers (a majority of the peers)
    each check the private summary's hash, so each must have committed the declaration first: a peer a moment
    behind says "has not declared", and the publication is tried again, for a bounded time."""
    summary = session.submit("declare", command_id, transient={"declaration": json.dumps(declaration)}, private=True)
    deadline = time.monotonic() + seconds
    while True:
        try:
            return session.submit("publish_declaration", command_id, json.dumps(summary))
        except EndorseError as error:
            if "has not declared" not in str(error) or time.monotonic() > deadline:
                raise
        time.sleep(0.3)


# Readings.


@dr.group()
def readings():
    """Smart-meter readings (private to the consumer's group)."""


@readings.command("post")
@_common
@click.option("--command", "command_id", required=True)
@click.option("--file", "readings_file", type=click.File(), help="JSON list of {consumer, minute, wh}.")
@click.option("--consumer", help="One reading: its consumer …")
@click.option("--minute", help="… its JST minute …")
@click.option("--wh", type=int, help="… and its Wh,")
@click.option("--kwh", help="… or its kWh (at most three decimals).")
@click.option(
    "--batch-size", type=click.IntRange(1, 5000), default=1000, show_default=True, help="Readings per transaction."
)
@click.option(
    "--as-db",
    type=click.Path(dir_okay=False),
    help=f"The aggregation system's store [default: <run-dir>/{AS_DB_NAME}].",
)
@click.option("--no-as", is_flag=True, help="Do not send the readings to the aggregation system too.")
def readings_post(
    who, run_dir, as_json, command_id, readings_file, consumer, minute, wh, kwh, batch_size, as_db, no_as
):
    """Post readings to the ledger as an RA (batched) or a meter (its own only), and send the same data to the
    aggregation system once the ledger has accepted them."""
    from sim.meters import Reading, post_readings

    sessions = Sessions(run_dir)
    session = sessions(who)
    if readings_file:
        if consumer or minute or wh is not None or kwh:
            raise DrCommandError("give either --file or one reading (--consumer, --minute, --wh/--kwh), not both")
        entries = json.load(readings_file)
        if not isinstance(entries, list):
            raise DrCommandError("the readings file must hold a JSON list of {consumer, minute, wh}")
    elif consumer and minute and (wh is None) != (kwh is None):
        entries = [{"consumer": consumer, "minute": minute, "wh": wh if wh is not None else _wh_of(kwh)}]
    else:
        raise DrCommandError("give --file, or --consumer, --minute and one of --wh or --kwh")
    try:
        batch = [Reading(session.org.name, e["consumer"], e["minute"], e["wh"]) for e in entries]
    except (TypeError, KeyError) as missing:
        raise DrCommandError(f"every reading needs consumer, minute and wh ({missing})") from None
    system = None if no_as else sessions.aggregation_system(as_db)
    summaries = []
    for start in range(0, len(batch), batch_size):
        part = batch[start : start + batch_size]
        summaries.append(post_readings(session.contract, session.org.msp_id, command_id, part))
        if system:
            system.receive(command_id, part)
    posted = sum(s["readings"] for s in summaries)
    _emit(
        as_json,
        {"command": command_id, "posted": posted, "transactions": summaries},
        [f"{posted} reading(s) posted for command {command_id} in {len(summaries)} transaction(s)"],
    )


def _wh_of(kwh: str) -> int:
    try:
        wh = Decimal(kwh) * 1000
    except InvalidOperation:
        raise DrCommandError(f"--kwh must be a number, got {kwh!r}") from None
    if wh != wh.to_integral_value():
        raise DrCommandError(f"--kwh must be whole Wh (at most three decimals), got {kwh}")
    return int(wh)


# Aggregates and the comparison.


@dr.command()
@_common
@click.option("--command", "command_id", required=True)
@click.option("--org", default="", help="One AC or RA (default: every one you may see).")
def aggregates(who, run_dir, as_json, command_id, org):
    """BC aggregates per AC and RA and minute, as the ledger computes them."""
    result = Sessions(run_dir)(who).evaluate("get_aggregates", command_id, org)
    rows = [("org", "minute (JST)", "kWh", "readings")]
    rows += [(a["org"], m["minute"], _kwh(m["wh"]), m["readings"]) for a in result["aggregates"] for m in a["minutes"]]
    _emit(as_json, result, _table(rows))


@dr.command()
@_common
@click.option("--command", "command_id", required=True)
@click.option(
    "--as-db",
    type=click.Path(dir_okay=False),
    help=f"The aggregation system's store [default: <run-dir>/{AS_DB_NAME}].",
)
def compare(who, run_dir, as_json, command_id, as_db):
    """Per AC and RA and minute: the BC aggregate beside the AS aggregate, and whether they match."""
    sessions = Sessions(run_dir)
    result = _comparison(sessions(who), sessions.aggregation_system(as_db), command_id)
    rows = [("org", "command", "date", "minute", "BC kWh", "AS kWh", "")]
    rows += [
        (
            r["org"],
            r["command"],
            r["minute"][:10],
            r["minute"][11:],
            _kwh(r["bc_wh"]),
            _kwh(r["as_wh"]),
            "" if r["match"] else "MISMATCH",
        )
        for r in result["rows"]
    ]
    summary = f"{result['mismatches']} mismatch(es)" if result["mismatches"] else "BC and AS agree on every minute"
    _emit(as_json, result, _table(rows) + [summary])


def _comparison(session: DrSession, system, command_id: str) -> dict:
    bc = session.evaluate("get_aggregates", command_id)
    rows = []
    for aggregate in bc["aggregates"]:
        as_figures = system.aggregates(command_id, aggregate["org"])
        for minute in aggregate["minutes"]:
            as_wh = as_figures.get(minute["minute"])
            rows.append(
                {
                    "org": aggregate["org"],
                    "level": aggregate["level"],
                    "command": command_id,
                    "minute": minute["minute"],
                    "bc_wh": minute["wh"],
                    "as_wh": as_wh,
                    "match": as_wh == minute["wh"] or (as_wh is None and minute["readings"] == 0),
                }
            )
    return {"command": command_id, "unit": "Wh", "rows": rows, "mismatches": sum(not row["match"] for row in rows)}


# Settlement.


@dr.command()
@_common
@click.option("--command", "command_id", required=True)
@click.option("--show", is_flag=True, help="Only show the figures you may see (any organisation).")
def settle(who, run_dir, as_json, command_id, show):
    """Settle an ended command (TSO): performance per slot and reward per RA and AC, frozen on the ledger."""
    session = Sessions(run_dir)(who)
    if not show:
        session.submit("settle", command_id, private=True)
    result = session.evaluate("get_settlement", command_id)
    _emit(as_json, result, _settlement_lines(result))


def _settlement_lines(result: dict) -> list[str]:
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
                f"{Decimal(figure['reward_hundredth_yen']) / 100:.2f}",
            )
        )
    state = "settled" if result["settled"] else "not settled yet (figures so far)"
    return [f"command {result['command']}: {state}"] + _table(rows)


# The whole sequence.


def _eventually(check, what: str, seconds: float = 30.0) -> None:
    """Another organisation's peer commits a block a moment after the submitter's: retry a read until it sees it."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except GatewayError:
            pass
        if time.monotonic() > deadline:
            raise DrCommandError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(0.3)


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
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--consumers", "consumer_count", type=click.IntRange(1, 30000), default=6, show_default=True)
@click.option("--command", "command_id", help="Command id [default: sim-<unix time>].")
@click.option("--start", help="First minute, JST [default: ended just now, so it can be settled].")
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
@click.option(
    "--discrepancy-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of readings the aggregation system records wrong.",
)
@click.option("--as-db", type=click.Path(dir_okay=False), help=f"[default: <run-dir>/{AS_DB_NAME}]")
@_reported
def simulate(
    who,
    run_dir,
    as_json,
    consumer_count,
    command_id,
    start,
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
    """Run the whole DR sequence with N simulated consumers: command, declarations, meter readings to the ledger
    and the aggregation system, comparison, settlement."""
    from sim.meters import MeterFleet, batches, post_all

    began = time.monotonic()
    sessions = Sessions(run_dir)
    topology = sessions.topology
    if start is None:
        now = datetime.now(JST).replace(second=0, microsecond=0)
        start = (now - timedelta(minutes=minutes + 1)).strftime("%Y-%m-%dT%H:%M")
    first = minute_index(start)
    fleet = MeterFleet.for_topology(topology, consumer_count, seed)
    by_ra = fleet.by_ra()
    acs = sorted({topology.organisation(ra).parent for ra in by_ra})
    command_record = sessions("TSO").submit(
        "issue_command",
        json.dumps(
            {
                "id": command_id or f"sim-{int(time.time())}",
                "start": start,
                "end": minute_label(first + minutes - 1),
                "requested_kw": max(1, int(sum(c.base_kw * c.response for c in fleet.consumers))),
                "target_acs": acs,
                "price_per_kwh": price_per_kwh,
                "baseline_minutes": baseline_minutes,
            }
        ),
    )
    command_id = command_record["id"]
    for ra, consumers in by_ra.items():
        session = sessions(ra)
        _eventually(lambda: session.evaluate("get_command", command_id), f"command {command_id} reaching {ra}'s peer")
        register_consumers(session, ra, [c.id for c in consumers])
        _declare(session, command_id, fleet.declaration(command_record, consumers))
    system = sessions.aggregation_system(as_db, discrepancy_rate=discrepancy_rate, seed=seed)
    all_readings = fleet.readings_for(command_record)
    metered = {c for org in topology.organisations for c in org.consumers} if per_meter else set()
    groups = [group for _, group in batches((r for r in all_readings if r.consumer not in metered), batch_size)]
    for consumer in sorted(metered & {c.id for c in fleet.consumers}):
        groups.append([r for r in all_readings if r.consumer == consumer])

    def poster_for(reading):
        session = sessions(f"meter:{reading.consumer}" if reading.consumer in metered else reading.ra)
        return session.contract, session.org.msp_id

    posting_began = time.monotonic()
    summaries = post_all(
        poster_for, command_id, groups, workers, on_posted=lambda group, _: system.receive(command_id, group)
    )
    posting_seconds = time.monotonic() - posting_began
    viewer = sessions(who)
    in_window = {}
    for reading in all_readings:
        if reading.minute >= command_record["start"]:
            in_window[reading.ra] = in_window.get(reading.ra, 0) + 1
    _eventually(
        lambda: all(
            sum(m["readings"] for m in a["minutes"]) == in_window.get(a["org"], 0)
            for a in viewer.evaluate("get_aggregates", command_id)["aggregates"]
            if a["level"] == "ra"
        ),
        f"every reading reaching {who}'s peer",
    )
    comparison = _comparison(viewer, system, command_id)
    sessions("TSO").submit("settle", command_id, private=True)
    _eventually(
        lambda: viewer.evaluate("get_settlement", command_id)["settled"], f"the settlement reaching {who}'s peer"
    )
    settlement = viewer.evaluate("get_settlement", command_id)
    result = {
        "command": command_record,
        "consumers": len(fleet.consumers),
        "readings": len(all_readings),
        "transactions": len(summaries),
        "posting_seconds": round(posting_seconds, 2),
        "readings_per_second": round(len(all_readings) / posting_seconds, 1) if posting_seconds else None,
        "mismatches": comparison["mismatches"],
        "comparison": comparison,
        "settlement": settlement,
        "seconds": round(time.monotonic() - began, 2),
    }
    lines = [
        f"command {command_id}: {command_record['start']} to {command_record['end']} JST, "
        f"{len(fleet.consumers)} consumers of {', '.join(sorted(by_ra))}",
        f"{len(all_readings)} readings in {len(summaries)} transactions, {posting_seconds:.1f} s "
        f"({result['readings_per_second']} readings/s)",
        f"comparison as {who}: "
        + (
            f"{comparison['mismatches']} mismatch(es)"
            if comparison["mismatches"]
            else "BC and AS agree on every minute"
        ),
    ]
    _emit(as_json, result, lines + _settlement_lines(settlement))
