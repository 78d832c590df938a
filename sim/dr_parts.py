"""A live DR run split by custody, each organisation's part in a process of its own (what `gridledger dr demo`
starts): the TSO issues the command and settles it, the meter operator's meters sign each minute's readings as it
ends and hand them to each consumer's RA through a spool directory, each RA registers and declares its consumers
and relays the signed batches to the ledger and to the aggregation system. The single-process run is
sim.dr_run.simulate_dr; this one uses the same fleet, readings, batches and live timing (sim.meters).

The spool: <run>/meters/outbox/<RA>/<command>/, one JSON file per signed batch, named in posting order, written to a
temporary name and renamed (a reader never sees half a file); DONE_FILE once the last minute's are written.
"""

import base64
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clients.contract import eventually
from clients.dr import Meter, MeterSource, Reading, meter_signatures
from consortium.topology import Topology
from consortium.units import minute_index, minute_label
from sim.aggregation_system import AggregationSystem
from sim.meters import Clock, MeterFleet, batches, minute_begins, post_live, system_clock, wait_until

DONE_FILE = "done"
POLL_SECONDS = 0.5


def outbox_of(run_dir: str | Path, ra: str, command_id: str) -> Path:
    """Where the meters spool `ra`'s consumers' signed readings of a command."""
    return Path(run_dir) / "meters" / "outbox" / ra / command_id


def planned_command(
    topology: Topology,
    fleet: MeterFleet,
    command_id: str,
    start: str,
    minutes: int,
    baseline_minutes: int,
    price_per_kwh: int,
    readings_due_minutes: int,
) -> dict:
    """The command the TSO issues (the fields sim.dr_run.simulate_dr issues), known to every part beforehand."""
    last = minute_index(start) + minutes - 1
    return {
        "id": command_id,
        "start": start,
        "end": minute_label(last),
        "requested_kw": max(1, int(sum(c.base_kw * c.response for c in fleet.consumers))),
        "target_acs": sorted({topology.organisation(c.ra).parent for c in fleet.consumers}),
        "price_per_kwh": price_per_kwh,
        "baseline_minutes": baseline_minutes,
        "readings_due": minute_label(last + 1 + readings_due_minutes),
    }


def sign_live(
    meters: MeterSource,
    fleet: MeterFleet,
    command: dict,
    run_dir: str | Path,
    batch_size: int = 500,
    clock: Clock = system_clock,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] | None = None,
) -> int:
    """The meter operator's part: each minute's readings once it has ended (the baseline's at once), in batches
    of whole consumer-hours signed by their meters, spooled to each RA's outbox; returns the batches written."""
    written = {"batches": 0}
    for ra in fleet.by_ra():
        outbox_of(run_dir, ra, command["id"]).mkdir(parents=True, exist_ok=True)

    def spool_round(readings: list[Reading]) -> None:
        for ra, batch in batches(readings, batch_size):
            written["batches"] += 1
            signed = {
                "command": command["id"],
                "readings": [r.as_json() for r in batch],
                "meter_signatures": meter_signatures(command["id"], batch, meters),
            }
            _write_atomically(
                outbox_of(run_dir, ra, command["id"]) / f"{written['batches']:06d}.json", json.dumps(signed)
            )

    post_live(fleet.readings_for(command), spool_round, clock, sleep, log)
    for ra in fleet.by_ra():
        _write_atomically(outbox_of(run_dir, ra, command["id"]) / DONE_FILE, "")
    return written["batches"]


def declare_for(sessions, ra: str, fleet: MeterFleet, command_id: str) -> None:
    """An RA's registration and declaration of its consumers of the fleet, once its peer has the command."""
    consumers = fleet.by_ra()[ra]
    dr = sessions(ra).dr
    command = dr.wait_for_command(command_id, seconds=120)
    dr.register_consumers([c.id for c in consumers])
    dr.declare(command_id, fleet.declaration(command, consumers))


def relay_live(
    sessions,
    ra: str,
    command_id: str,
    system: AggregationSystem,
    run_dir: str | Path,
    stopped: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] | None = None,
) -> int:
    """An RA's relay: posts each signed batch of its outbox as it appears (and gives it to the aggregation system),
    until the meters are done; returns the readings posted."""
    say = log or (lambda line: None)
    dr = sessions(ra).dr
    outbox = outbox_of(run_dir, ra, command_id)
    posted = 0
    while not stopped():
        done = (outbox / DONE_FILE).exists()  # before listing: a batch written before it is listed below
        spooled = sorted(outbox.glob("*.json")) if outbox.is_dir() else []
        for path in spooled:
            batch = SignedBatch.load(path, ra)
            if batch.command != command_id:
                raise ValueError(f"{path} is a batch of command {batch.command}, not {command_id}")
            dr.meters = batch
            dr.post_readings(command_id, batch.readings, resume=True)
            system.receive(command_id, batch.readings)
            path.unlink()
            posted += len(batch.readings)
            say(f"{ra} relayed {len(batch.readings)} signed readings ({path.name})")
        if done and not spooled:
            return posted
        time.sleep(POLL_SECONDS)
    return posted


def settle_when_due(
    sessions,
    system: AggregationSystem,
    fleet: MeterFleet,
    command: dict,
    clock: Clock = system_clock,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] | None = None,
) -> dict:
    """The TSO's part once its command is issued: once the window has ended and every RA's readings reached its
    peer, the comparison; once the readings are due, the settlement. Returns the run's figures."""
    say = log or (lambda line: None)
    command_id = command["id"]
    in_window: dict[str, int] = {}
    for reading in fleet.readings_for(command):
        if reading.minute >= command["start"]:
            in_window[reading.ra] = in_window.get(reading.ra, 0) + 1
    say(f"waiting for the window to end ({command['end']} JST) and its readings to reach the TSO's peer")
    wait_until(minute_begins(minute_label(minute_index(command["end"]) + 1)), clock, sleep)
    dr = sessions("TSO").dr
    eventually(
        lambda: (
            all(
                sum(m["readings"] for m in a["minutes"]) == in_window.get(a["org"], 0)
                for a in dr.aggregates(command_id)["aggregates"]
                if a["level"] == "ra"
            )
            and {a["org"] for a in dr.aggregates(command_id)["aggregates"] if a["level"] == "ra"} >= set(in_window)
        ),
        "every RA's readings reaching the TSO's peer",
        seconds=120,
    )
    comparison = dr.compare(command_id, system)
    say(f"waiting until the readings are due ({command['readings_due']} JST) to settle")
    wait_until(minute_begins(command["readings_due"]), clock, sleep)
    dr.settle(command_id)
    settlement = eventually(lambda: (s := dr.settlement(command_id))["settled"] and s, "the settlement")
    return {
        "command": command,
        "consumers": len(fleet.consumers),
        "readings": len(fleet.readings_for(command)),
        "mismatches": comparison.mismatches,
        "comparison": comparison.as_json(),
        "settlement": settlement,
    }


@dataclass(frozen=True)
class SignedBatch:
    """A spooled batch: its readings and what their meters signed over them; as a MeterSource it gives the RA's
    client those signatures to relay (the RA holds no meter key; the endorsers verify each signature)."""

    command: str
    readings: list[Reading]
    signatures: dict[str, dict]

    @classmethod
    def load(cls, path: Path, ra: str) -> "SignedBatch":
        """The batch spooled at `path`, in the outbox of `ra` (whose consumers' readings it holds)."""
        spooled = json.loads(path.read_text())
        readings = [Reading(ra, r["consumer"], r["minute"], r["wh"]) for r in spooled["readings"]]
        return cls(spooled["command"], readings, spooled["meter_signatures"])

    def meter(self, consumer: str) -> Meter:
        entry = self.signatures[consumer]
        return Meter(consumer, entry["certificate"].encode(), _Signed(base64.b64decode(entry["signature"])))


@dataclass(frozen=True)
class _Signed:
    """A signature already made by a meter, given back as its signer's answer."""

    signature: bytes

    def sign(self, message: bytes) -> bytes:
        return self.signature


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)
