"""A whole simulated DR run on the network: the TSO's command, every RA's declaration, the meters' readings to the
ledger and to the aggregation system, the comparison as one organisation sees it, and the settlement; what
`gridledger dr simulate` runs.

    result, ras = simulate_dr(sessions, system, consumer_count=1000, minutes=1440)

`sessions(who)` is an identity's session (network.connections.Sessions): `.dr` its DR client.
"""

import time
from datetime import datetime, timedelta

from clients.contract import eventually
from consortium.units import JST, minute_index, minute_label
from sim.aggregation_system import AggregationSystem
from sim.meters import MeterFleet, batches, post_all


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
) -> tuple[dict, list[str]]:
    """Runs the sequence with `consumer_count` simulated consumers (sim.meters.MeterFleet with `seed`); returns
    the run's figures (command, readings, posting rate, `viewer`'s comparison and settlement) and the RAs taking
    part. `start` (a JST minute) defaults to a window that ended just now, so that it can be settled; with
    `per_meter` the topology's own consumers post under their meters' identities, the others through their RAs."""
    began = time.monotonic()
    topology = sessions.topology
    if start is None:
        now = datetime.now(JST).replace(second=0, microsecond=0)
        start = (now - timedelta(minutes=minutes + 1)).strftime("%Y-%m-%dT%H:%M")
    first = minute_index(start)
    fleet = MeterFleet.for_topology(topology, consumer_count, seed)
    by_ra = fleet.by_ra()
    acs = sorted({topology.organisation(ra).parent for ra in by_ra})
    command = sessions("TSO").dr.issue(
        {
            "id": command_id or f"sim-{int(time.time())}",
            "start": start,
            "end": minute_label(first + minutes - 1),
            "requested_kw": max(1, int(sum(c.base_kw * c.response for c in fleet.consumers))),
            "target_acs": acs,
            "price_per_kwh": price_per_kwh,
            "baseline_minutes": baseline_minutes,
        }
    )
    command_id = command["id"]
    for ra, consumers in by_ra.items():
        dr = sessions(ra).dr
        dr.wait_for_command(command_id)
        dr.register_consumers([c.id for c in consumers])
        dr.declare(command_id, fleet.declaration(command, consumers))
    all_readings = fleet.readings_for(command)
    metered = {c for org in topology.organisations for c in org.consumers} if per_meter else set()
    groups = [group for _, group in batches((r for r in all_readings if r.consumer not in metered), batch_size)]
    for consumer in sorted(metered & {c.id for c in fleet.consumers}):
        groups.append([r for r in all_readings if r.consumer == consumer])

    def poster_for(reading):
        return sessions(f"meter:{reading.consumer}" if reading.consumer in metered else reading.ra).dr

    posting_began = time.monotonic()
    summaries = post_all(
        poster_for, command_id, groups, workers, on_posted=lambda group, _: system.receive(command_id, group)
    )
    posting_seconds = time.monotonic() - posting_began
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
    sessions("TSO").dr.settle(command_id)
    eventually(lambda: seen.settlement(command_id)["settled"], f"the settlement reaching {viewer}'s peer")
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
