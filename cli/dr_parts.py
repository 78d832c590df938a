"""`gridledger dr demo`: the live DR run of `dr simulate`, each organisation's part a process of its own holding
only that organisation's keys (sim.dr_parts does the work):

- the TSO's command (`dr demo-command --as TSO`): issues it, waits for the readings, prints the comparison and,
  once the readings are due, the settlement, as `dr simulate` prints them;
- the meter operator's meters (`dr demo-meters --as TSO`; the TSO holds the simulated meters' keys): each minute's
  readings, signed by their meters as it ends, spooled to each RA's outbox (<run>/meters/outbox/<RA>/);
- each RA (`dr demo-relay --as RA1`, …): registers and declares its consumers, relays its outbox's signed batches
  to the ledger and to the aggregation system (which misrecords --discrepancy-rate of them).

This process holds no keys: it plans the command (its id, window and fleet, which every part derives the same),
starts the parts, prints their output behind their labels (cli.demo.Children), and ends when they have all
ended; one that fails stops the others (exit 1). Ctrl-C or SIGTERM stops them all."""

import signal
import threading
import time
from pathlib import Path

import click

from cli.common import fail, reported, run_dir_option
from cli.demo import Children, Part
from cli.dr import agreement_line, discrepancy_option, lead_seconds_option, readings_due_option, settlement_lines
from cli.market import stop_event

plan_options = [
    click.option("--consumers", "consumer_count", type=click.IntRange(1, 30000), default=60, show_default=True),
    click.option("--minutes", type=click.IntRange(1, 1440), default=3, show_default=True, help="Window length."),
    click.option("--baseline-minutes", type=click.IntRange(1, 240), default=15, show_default=True),
    readings_due_option,
    click.option("--price", "price_per_kwh", type=int, default=2500, show_default=True, help="Hundredths of a yen."),
    click.option("--seed", type=int, default=0, show_default=True, help="Seed of the load model."),
]


def with_plan(function):
    for option in reversed(plan_options):
        function = option(function)
    return function


def part_options(function):
    """A part's options: whose keys it holds, the run directory, the command the parent planned, the plan."""
    function = with_plan(function)
    function = click.option("--command", "command_id", required=True)(function)
    function = click.option("--start", required=True, help="The window's first minute, JST.")(function)
    function = click.option("--as", "who", required=True, metavar="ORG")(function)
    return run_dir_option(function)


def _planned(
    run_dir, command_id, start, consumer_count, minutes, baseline_minutes, readings_due_minutes, price_per_kwh, seed
):
    """(the run's fleet, the command the TSO issues): derived the same in every part from the plan."""
    from network.bringup import Network
    from sim.dr_parts import planned_command
    from sim.meters import MeterFleet

    topology = Network(run_dir).topology
    fleet = MeterFleet.for_topology(topology, consumer_count, seed)
    command = planned_command(
        topology, fleet, command_id, start, minutes, baseline_minutes, price_per_kwh, readings_due_minutes
    )
    return fleet, command


def _say(line: str) -> None:
    click.echo(line)


@click.command("demo-command", hidden=True)
@part_options
@reported
def demo_command(run_dir, who, start, command_id, **plan):
    """The TSO's part: issue the planned command, print its comparison and, once the readings are due, settle it."""
    from network.connections import Sessions
    from sim.aggregation_system import AggregationSystem
    from sim.dr_parts import settle_when_due

    sessions = Sessions(run_dir, org=who)
    fleet, command = _planned(run_dir, command_id, start, **plan)
    issued = sessions("TSO").dr.issue(command)
    _say(
        f"command {issued['id']} issued: {issued['start']} to {issued['end']} JST; declarations before "
        f"{issued['declare_by']}, readings before {issued['readings_due']} JST"
    )
    system = AggregationSystem(sessions.as_db_path, sessions.topology)
    result = settle_when_due(sessions, system, fleet, issued, log=_say)
    ras = sorted(fleet.by_ra())
    lines = [
        f"command {issued['id']}: {issued['start']} to {issued['end']} JST, "
        f"{result['consumers']} consumers of {', '.join(ras)}",
        f"{result['readings']} readings",
        f"comparison as {who}: " + agreement_line(result["mismatches"]),
        *settlement_lines(result["settlement"]),
    ]
    for line in lines:
        _say(line)


@click.command("demo-meters", hidden=True)
@part_options
@click.option("--batch-size", type=click.IntRange(1, 5000), default=500, show_default=True)
@reported
def demo_meters(run_dir, who, start, command_id, batch_size, **plan):
    """The meter operator's part: sign each minute's readings as it ends and spool them to each RA."""
    from network.connections import Sessions
    from network.crypto import MeterOperator
    from sim.dr_parts import sign_live

    sessions = Sessions(run_dir, org=who)
    if who != sessions.topology.meter_operator:
        fail(f"{who} is not the meter operator ({sessions.topology.meter_operator} is)")
    fleet, command = _planned(run_dir, command_id, start, **plan)
    written = sign_live(MeterOperator(sessions.network.layout), fleet, command, run_dir, batch_size, log=_say)
    _say(f"{written} signed batches spooled for {', '.join(sorted(fleet.by_ra()))}")


@click.command("demo-relay", hidden=True)
@part_options
@discrepancy_option
@reported
def demo_relay(run_dir, who, start, command_id, discrepancy_rate, **plan):
    """An RA's part: declare its consumers, relay its meters' signed batches to the ledger and the AS."""
    from network.connections import Sessions
    from sim.aggregation_system import AggregationSystem
    from sim.dr_parts import declare_for, relay_live

    sessions = Sessions(run_dir, org=who)
    fleet, _ = _planned(run_dir, command_id, start, **plan)
    if who not in fleet.by_ra():
        fail(f"{who} has no consumers in this run")
    ras = sorted(fleet.by_ra())
    system = AggregationSystem(
        sessions.as_db_path, sessions.topology, discrepancy_rate=discrepancy_rate, seed=plan["seed"] + ras.index(who)
    )
    stop = stop_event()
    declare_for(sessions, who, fleet, command_id)
    _say(f"{who} declared {len(fleet.by_ra()[who])} consumers for {command_id}")
    posted = relay_live(sessions, who, command_id, system, run_dir, stopped=stop.is_set, log=_say)
    _say(f"{who} relayed {posted} readings")


@click.command("demo")
@run_dir_option
@with_plan
@lead_seconds_option
@discrepancy_option
@reported
def demo(run_dir, lead_seconds, discrepancy_rate, **plan):
    """Run `dr simulate`'s live DR sequence with a process per organisation's part (the TSO's command, its meters,
    each RA's relay); ends once the TSO has settled."""
    from network.bringup import Network, NetworkError
    from sim.dr_run import live_window_start
    from sim.meters import MeterFleet

    if not (Path(run_dir) / "network.json").exists():
        raise NetworkError(f"no network in {run_dir}: start one with `gridledger network up --run-dir {run_dir}`")
    topology = Network(run_dir).topology  # public: who the organisations are
    ras = sorted(MeterFleet.for_topology(topology, plan["consumer_count"], plan["seed"]).by_ra())
    command_id = f"sim-{int(time.time())}"
    start = live_window_start(lead_seconds)
    common = (
        *("--run-dir", str(Path(run_dir).resolve()), "--command", command_id, "--start", start),
        *("--consumers", str(plan["consumer_count"]), "--minutes", str(plan["minutes"])),
        *("--baseline-minutes", str(plan["baseline_minutes"])),
        *("--readings-due-minutes", str(plan["readings_due_minutes"])),
        *("--price", str(plan["price_per_kwh"]), "--seed", str(plan["seed"])),
    )
    operator, meter_operator = "TSO", topology.meter_operator
    parts = [
        Part(operator, "command", ("dr", "demo-command", "--as", operator, *common)),
        Part(meter_operator, "meters", ("dr", "demo-meters", "--as", meter_operator, *common)),
        *(
            Part(ra, "relay", ("dr", "demo-relay", "--as", ra, *common, "--discrepancy-rate", str(discrepancy_rate)))
            for ra in ras
        ),
    ]
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    children = Children(max(len(p.label) for p in parts))
    click.echo(f"dr demo: command {command_id} from {start} JST; a process per organisation's part:")
    failed: list[tuple[Part, int]] = []
    try:
        for part in parts:
            process = children.start(part)
            click.echo(f"  {part.label:<{children.width}}  pid {process.pid}  gridledger {' '.join(part.args)}")
        while not stop.wait(1):
            ended = children.dead()
            failed = [(p, code) for p, code in ended if code != 0]
            if failed or len(ended) == len(parts):
                break
    finally:
        stop.set()
        children.stop()
    if failed:
        fail("the DR demo stopped: " + ", ".join(f"{p.label} (exit {code})" for p, code in failed) + " failed")
    if len(children.dead()) < len(parts) or any(code != 0 for _, code in children.dead()):
        fail("the DR demo was stopped before its parts ended")
    click.echo(f"dr demo: command {command_id} settled")
