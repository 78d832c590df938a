"""The DR run split by custody (sim.dr_parts) on the embedded ledger, on a clock the test moves: the meters spool
signed batches to each RA's outbox, each RA relays its own (holding no meter key: the signatures are the meters'),
the TSO compares and settles; a batch altered in the outbox is refused by the endorsers' meter check."""

import json
from datetime import datetime

import pytest
from embedded_dr import TOPOLOGY, SimulatedTime, embedded_dr
from seed_examples import SEED_METERS

from consortium.units import JST
from gateway.errors import EndorseError
from sim.aggregation_system import AggregationSystem
from sim.dr_parts import (
    DONE_FILE,
    declare_for,
    outbox_of,
    planned_command,
    relay_live,
    settle_when_due,
    sign_live,
)
from sim.meters import MeterFleet


def spooled_run(tmp_path):
    clock = SimulatedTime(datetime(2021, 1, 14, 17, 58, 50, tzinfo=JST))
    _, sessions = embedded_dr(clock)
    fleet = MeterFleet.for_topology(TOPOLOGY, 3)  # the topology's consumers, whose meters SEED_METERS holds
    issued = sessions("TSO").dr.issue(planned_command(TOPOLOGY, fleet, "split", "2021-01-14T18:00", 2, 2, 2500, 1))
    for ra in fleet.by_ra():
        declare_for(sessions, ra, fleet, "split")
    batches = sign_live(SEED_METERS, fleet, issued, tmp_path, clock=clock, sleep=clock.sleep)
    return clock, sessions, fleet, issued, batches


def test_the_parts_spool_relay_and_settle_with_no_meter_key_at_the_ras(tmp_path):
    clock, sessions, fleet, issued, batches = spooled_run(tmp_path)
    ras = sorted(fleet.by_ra())
    for ra in ras:
        outbox = outbox_of(tmp_path, ra, "split")
        assert (outbox / DONE_FILE).exists() and not list(outbox.glob(".*"))  # nothing half-written
        assert sessions(ra).dr.meters is None  # the RA's client holds no meters
    assert batches == 4 * len(ras)  # at 17:58:50 no minute is over: each of 17:58 to 18:01 as it ends
    system = AggregationSystem(tmp_path / "as.sqlite", TOPOLOGY)
    posted = {ra: relay_live(sessions, ra, "split", system, tmp_path) for ra in ras}
    assert posted == {ra: 4 for ra in ras}  # one consumer each, 2 baseline + 2 window minutes
    assert all(not list(outbox_of(tmp_path, ra, "split").glob("*.json")) for ra in ras)
    result = settle_when_due(sessions, system, fleet, issued, clock=clock, sleep=clock.sleep)
    assert result["mismatches"] == 0
    assert result["settlement"]["settled"]
    assert {f["org"] for f in result["settlement"]["figures"]} >= set(ras)


def test_a_batch_altered_in_the_outbox_is_refused(tmp_path):
    _, sessions, fleet, _, _ = spooled_run(tmp_path)
    ra = sorted(fleet.by_ra())[0]
    first = sorted(outbox_of(tmp_path, ra, "split").glob("*.json"))[0]
    batch = json.loads(first.read_text())
    batch["readings"][0]["wh"] += 1  # the RA (or anyone at its outbox) raises one reading
    first.write_text(json.dumps(batch))
    system = AggregationSystem(tmp_path / "as.sqlite", TOPOLOGY)
    with pytest.raises(
        EndorseError, match=r"meter signature over C\d+.s readings does not verify: they are not what the meter signed"
    ):
        relay_live(sessions, ra, "split", system, tmp_path)
    assert system.readings("split", batch["readings"][0]["consumer"]) == {}  # nothing given to the AS either
