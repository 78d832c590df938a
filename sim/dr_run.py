"""A whole simulated DR run on the network, live: the TSO's command for a window a little ahead, every RA's
declaration before it starts, the meters' readings to the ledger and to the aggregation system as each minute ends,
the comparison as one organisation sees it, and the settlement once the readings are due; what
`gridledger dr simulate` runs.

    result, ras = simulate_dr(sessions, system, consumer_count=1000, minutes=3)

`sessions(who)` is an identity's session (network.connections.Sessions): `.dr` its DR client.

The endorsers hold every step to real time (chaincode.contracts.dr_time), so the run takes as long as its window:
the window starts at the first minute at least `lead_seconds` ahead (time to issue and declare); the baseline
minutes, already over, are posted at once, each window minute once it has ended (sim.meters.post_live); the readings
are due `readings_due_minutes` after the window's end (1 here, not the topology's 30, so that a demo need not wait
half an hour), and the TSO settles then. A 3-minute window takes 4.5 to 5.5 minutes in all.
"""

import time
from collections.abc import Callable
from datetime import timedelta

from clients.contract import eventually
from consortium.units import EPOCH, minute_index, minute_label
from sim.aggregation_system import AggregationSystem
from sim.meters import Clock, MeterFleet, batches, minute_begins, post_all, post_live, system_clock, wait_until

LEAD_SECONDS = 20  # from now to the window's start, at least: time to issue the command and declare
READINGS_DUE_MINUTES = 1


def live_window_start(lead_seconds: float = LEAD_SECONDS, clock: Clock = system_clock) -> str:
    """The JST label of the first minute that begins at least `lead_seconds` from now."""
    ahead = clock() + timedelta(seconds=lead_seconds)
    return minute_label((ahead - EPOCH) // timedelta(minutes=1) + 1)


def simulate_dr(
    sessions,
    system: AggregationSystem,
    viewer: str = "TSO",
    consumer_count: int = 6,
    command_id: str | None = None,
    start: str | None = None,
    minutes: int = 15,
    baseline_minutes: int = 15,
    price_per_kwh: int = 2500,
    seed: int = 0,
    batch_size: int = 500,
    workers: int = 4,
    per_meter: bool = False,
    lead_seconds: float = LEAD_SECONDS,
    readings_due_minutes: int = READINGS_DUE_MINUTES,
    clock: Clock = system_clock,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] | None = None,
) -> tuple[dict, list[str]]:
    """Runs the sequence with `consumer_count` simulated consumers (sim.meters.MeterFleet with `seed`); returns
    the run's figures (command, readings, time spent posting and the rate while posting, `viewer`'s comparison and
    settlement) and the RAs taking part. `start` (a JST minute still ahead) defaults to the first minute at least
    `lead_seconds` ahead; with `per_meter` the topology's own consumers post under their meters' identities, the
    others through their RAs. `clock` and `sleep` are the run's time (a test ledger's, in unit tests); `log` hears
    what the run is waiting for."""
    began = time.monotonic()
    say = log or (lambda line: None)
    topology = sessions.topology
    start = start or live_window_start(lead_seconds, clock)
    first = minute_index(start)
    last = first + minutes - 1
    fleet = MeterFleet.for_topology(topology, consumer_count, seed)
    by_ra = fleet.by_ra()
    acs = sorted({topology.organisation(ra).parent for ra in by_ra})
    command = sessions("TSO").dr.issue(
        {
            "id": command_id or f"sim-{int(time.time())}",
            "start": start,
            "end": minute_label(last),
            "requested_kw": max(1, int(sum(c.base_kw * c.response for c in fleet.consumers))),
            "target_acs": acs,
            "price_per_kwh": price_per_kwh,
            "baseline_minutes": baseline_minutes,
            "readings_due": minute_label(last + 1 + readings_due_minutes),
        }
    )
    command_id = command["id"]
    say(
        f"command {command_id} issued: {command['start']} to {command['end']} JST; declarations before "
        f"{command['declare_by']}, readings before {command['readings_due']} JST"
    )
    for ra, consumers in by_ra.items():
        dr = sessions(ra).dr
        dr.wait_for_command(command_id)
        dr.register_consumers([c.id for c in consumers])
        dr.declare(command_id, fleet.declaration(command, consumers))
    say(f"{', '.join(sorted(by_ra))} declared {len(fleet.consumers)} consumers")
    all_readings = fleet.readings_for(command)
    metered = {c for org in topology.organisations for c in org.consumers} if per_meter else set()

    def poster_for(reading):
        return sessions(f"meter:{reading.consumer}" if reading.consumer in metered else reading.ra).dr

    summaries: list[dict] = []
    posting = {"seconds": 0.0}

    def post_round(readings):
        groups = [group for _, group in batches((r for r in readings if r.consumer not in metered), batch_size)]
        for consumer in sorted(metered & {r.consumer for r in readings}):
            groups.append([r for r in readings if r.consumer == consumer])
        round_began = time.monotonic()
        summaries.extend(
            post_all(
                poster_for, command_id, groups, workers, on_posted=lambda group, _: system.receive(command_id, group)
            )
        )
        posting["seconds"] += time.monotonic() - round_began

    post_live(all_readings, post_round, clock, sleep, say)
    seen = sessions(viewer).dr
    in_window: dict[str, int] = {}
    for reading in all_readings:
        if reading.minute >= command["start"]:
            in_window[reading.ra] = in_window.get(reading.ra, 0) + 1
    eventually(
        lambda: all(
            sum(m["readings"] for m in a["minutes"]) == in_window.get(a["org"], 0)
            for a in seen.aggregates(command_id)["aggregates"]
            if a["level"] == "ra"
        ),
        f"every reading reaching {viewer}'s peer",
    )
    comparison = seen.compare(command_id, system)
    say(f"waiting until the readings are due ({command['readings_due']} JST) to settle")
    wait_until(minute_begins(command["readings_due"]), clock, sleep)
    sessions("TSO").dr.settle(command_id)
    eventually(lambda: seen.settlement(command_id)["settled"], f"the settlement reaching {viewer}'s peer")
    posting_seconds = posting["seconds"]
    result = {
        "command": command,
        "consumers": len(fleet.consumers),
        "readings": len(all_readings),
        "transactions": len(summaries),
        "posting_seconds": round(posting_seconds, 2),
        "readings_per_second": round(len(all_readings) / posting_seconds, 1) if posting_seconds else None,
        "mismatches": comparison.mismatches,
        "comparison": comparison.as_json(),
        "settlement": seen.settlement(command_id),
        "seconds": round(time.monotonic() - began, 2),
    }
    return result, sorted(by_ra)
