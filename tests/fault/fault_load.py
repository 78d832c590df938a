"""A steady load of meter readings on the real network, and the checks that follow a fault: every write
acknowledged to a client is on every live peer, nothing is committed twice.

Each RA has a worker relaying batches (a few of its consumers × a few minutes, each consumer's readings signed by its
meter) as that RA, endorsed by the RA's peer and its AC's, one batch at a time. The endorsers hold DR to real time,
so the readings are of the command's baseline minutes (its window starts a minute ahead): 240 ended minutes of
enough consumers for the load never to run out, posted with no wait. A batch that fails is tried again, the same
batch: the contract refuses a reading it already holds ("duplicate reading … already recorded"), so a retry of a
batch whose first attempt did commit (its acknowledgement lost in the fault) is recognised, never posted twice —
(command, consumer, minute) is the submission key. The commit-status wait is short (6 s), so a transaction lost
with a killed orderer is tried again soon rather than waited on for Fabric's default minute. Every attempt is
recorded: acknowledged (the client saw VALID), committed without an acknowledgement (found by a retry), or
unresolved when the load stopped.

run_fault runs one fault under that load (load, kill, down, restart, recovered, load) and records its figures; the
orderer faults of test_faults.py (Raft) and test_bft.py (SmartBFT) share orderer_killed_and_brought_back.
"""

import itertools
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field

from live_commands import live_command, past_baseline_minutes
from waiting import eventually

from clients.dr import Reading, meter_signatures
from consortium.policies import private_endorsers
from consortium.units import minute_index, minute_label
from gateway.errors import GatewayError

# `make chaos` sets GRIDLEDGER_CHAOS=1: the long version of each fault.
LONG = os.environ.get("GRIDLEDGER_CHAOS") == "1"
MINUTES_PER_BATCH = 5
BASELINE_MINUTES = 240  # the most a command accepts before its window
LOAD_SECONDS = 1000.0 if LONG else 300.0  # the most load one SteadyLoad runs, all its starts together
BATCHES_PER_SECOND = 6  # per RA: above what one transaction at a time commits, so the readings never run out
READINGS_DUE_MINUTES = 60  # after the window: the load must be over by then
WARM = 20.0 if LONG else 2.0  # load before the fault
DOWN = 30.0 if LONG else 4.0  # how long the killed node stays down
AFTER = 20.0 if LONG else 2.0  # load after recovery
RECOVERY_LIMIT = 120.0
LEAD_SECONDS = 60  # to issue the command, register and declare every RA's consumers before the window starts


@dataclass
class Batch:
    ra: str
    readings: list[dict]
    signatures: dict  # transient "meter_signatures": signed once, so a retry sends the very same batch
    state: str = "pending"  # pending | acked | committed-unacked | unresolved
    tx_id: str | None = None
    acked_at: float | None = None
    attempts: int = 0


@dataclass
class Worker:
    ra: str
    endorsers: list[str]  # MSP ids: the RA's peer and its AC's, as its collection's endorsement policy requires
    units: list[tuple[list[str], list[int]]]  # (consumers, minutes) of each batch to post, in order
    batches: list[Batch] = field(default_factory=list)
    errors: list[tuple[float, str]] = field(default_factory=list)
    next_unit: int = 0


class SteadyLoad:
    """Meter readings from every RA, as fast as one transaction at a time per RA allows, until stopped."""

    def __init__(
        self, network, consumers_per_ra: int = 4, commit_status_timeout: float = 6.0, seconds: float = LOAD_SECONDS
    ):
        """Batches of `consumers_per_ra` consumers × MINUTES_PER_BATCH minutes, enough for `seconds` of load."""
        from network.connections import connect_as, open_session
        from network.crypto import MeterOperator

        self.network = network
        self.meters = MeterOperator(network.layout)  # the meter operator's simulated meters sign what the RAs relay
        topology = network.topology
        self.command = f"fault-{uuid.uuid4().hex[:8]}"
        record = live_command(
            self.command,
            minutes=1,
            baseline_minutes=BASELINE_MINUTES,
            due_minutes=READINGS_DUE_MINUTES,
            lead_seconds=LEAD_SECONDS,
            target_acs=[o.name for o in topology.organisations if o.role == "ac"],
            price_per_kwh=100,
        )
        tso = open_session(network, "TSO")
        tso.dr.submit("issue_command", json.dumps(record))
        ended = [minute_index(label) for label in past_baseline_minutes(record)]
        blocks = [list(block) for _, block in itertools.groupby(ended, key=lambda m: m // MINUTES_PER_BATCH)]
        groups = -(-int(seconds * BATCHES_PER_SECOND) // len(blocks))  # per RA, each posting every block
        self.workers: list[Worker] = []
        self._contracts = {}
        for ra in (o for o in topology.organisations if o.role == "ra"):
            session = open_session(network, ra.name)
            eventually(lambda: session.dr.evaluate("get_command", self.command))
            consumers = [f"{ra.name}-F{self.command[-8:]}-{n}" for n in range(groups * consumers_per_ra)]
            session.dr.submit("register_consumers", transient={"consumers": json.dumps(consumers)}, private=True)
            session.dr.declare(
                self.command,
                {"baseline_method": "mean-before", "consumers": {c: {"expected_wh": [1]} for c in consumers}},
                seconds=60,
            )
            session.gateway.close()
            writers = private_endorsers(topology, ra.name)[0]
            units = [
                (consumers[g : g + consumers_per_ra], block)
                for g in range(0, len(consumers), consumers_per_ra)
                for block in blocks
            ]
            self.workers.append(Worker(ra.name, [topology.organisation(o).msp_id for o in writers], units))
            gateway = connect_as(network, ra.name, commit_status_timeout=commit_status_timeout)
            self._contracts[ra.name] = (gateway, gateway.get_network(topology.channel).get_contract("gridledger", "dr"))
        tso.gateway.close()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # Running.

    def start(self) -> None:
        self._stop.clear()
        self._threads = [threading.Thread(target=self._run, args=(w,), daemon=True) for w in self.workers]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 90.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        for worker in self.workers:
            for batch in worker.batches:
                if batch.state == "pending":
                    batch.state = "unresolved"

    def close(self) -> None:
        for gateway, _ in self._contracts.values():
            gateway.close()

    def _next_batch(self, worker: Worker) -> Batch | None:
        if worker.next_unit >= len(worker.units):
            return None
        consumers, minutes = worker.units[worker.next_unit]
        worker.next_unit += 1
        readings = [{"consumer": c, "minute": minute_label(m), "wh": _wh(c, m)} for m in minutes for c in consumers]
        signed = [Reading(worker.ra, r["consumer"], r["minute"], r["wh"]) for r in readings]
        batch = Batch(worker.ra, readings, meter_signatures(self.command, signed, self.meters))
        worker.batches.append(batch)
        return batch

    def _run(self, worker: Worker) -> None:
        _, contract = self._contracts[worker.ra]
        batch = None
        while not self._stop.is_set():
            if batch is None or batch.state != "pending":
                batch = self._next_batch(worker)
                if batch is None:
                    return
            batch.attempts += 1
            proposal = contract.new_proposal(
                "post_readings",
                self.command,
                transient={"readings": json.dumps(batch.readings), "meter_signatures": json.dumps(batch.signatures)},
                endorsing_organizations=worker.endorsers,
            )
            try:
                submitted = proposal.endorse().submit()
                status = submitted.status()
                if status.successful:
                    batch.state, batch.tx_id, batch.acked_at = "acked", status.transaction_id, time.monotonic()
                    continue
                worker.errors.append((time.monotonic(), f"commit {status.code}"))
            except GatewayError as error:
                message = str(error)
                if "duplicate reading" in message and "already recorded" in message:
                    batch.state = "committed-unacked"  # an earlier attempt committed; its acknowledgement was lost
                    continue
                worker.errors.append((time.monotonic(), f"{type(error).__name__}: {' '.join(message.split())[:160]}"))
            self._stop.wait(0.3)

    # Figures.

    def acked(self, since: float = 0.0, until: float = float("inf"), ra: str | None = None) -> list[Batch]:
        return [
            b
            for w in self.workers
            for b in w.batches
            if b.state == "acked" and since <= b.acked_at < until and (ra is None or b.ra == ra)
        ]

    def readings_per_second(self, since: float, until: float) -> float:
        seconds = max(until - since, 1e-9)
        return round(sum(len(b.readings) for b in self.acked(since, until)) / seconds, 1)

    def longest_stall(self, since: float, until: float, ra: str | None = None) -> float:
        """The longest time without an acknowledgement (of `ra`, or of anyone) between since and until."""
        times = sorted([since] + [b.acked_at for b in self.acked(since, until, ra)] + [until])
        return round(max(b - a for a, b in itertools.pairwise(times)), 2)

    def first_ack_after(self, moment: float, ra: str | None = None) -> float | None:
        times = [b.acked_at for b in self.acked(moment, ra=ra)]
        return min(times) if times else None

    def errors_between(self, since: float, until: float) -> int:
        return sum(1 for w in self.workers for t, _ in w.errors if since <= t < until)


def _wh(consumer: str, minute: int) -> int:
    """A reading that names its consumer and minute, so a misplaced one cannot pass for another."""
    return (sum(consumer.encode()) * 7 + minute) % 90_000 + 1


def verify(network, load: SteadyLoad, live_peers: list[str] | None = None, seconds: float = 60.0) -> dict:
    """After a fault: on every live peer, every acknowledged transaction is VALID (once), and on every member peer of
    each RA's collection every acknowledged reading is there with its value, and nothing is counted twice: the readings
    of the load's VALID post_readings transactions (their ReadingsPosted events, in that peer's blocks) are exactly
    the distinct readings the peer holds. (Not its aggregates: they count the window's minutes only, and the load's
    readings are of the baseline before it.)
    Waits (bounded) for peers that are catching up. Returns {"lost", "duplicates", "checked_peers", ...}."""
    from gateway import grpc_channel_for
    from gateway.blocks import fetch_blocks
    from network.connections import connect_as

    topology = network.topology
    live_peers = live_peers or [p.name for p in topology.peers]
    acked = {b.tx_id: b for b in load.acked()}
    known = [b for w in load.workers for b in w.batches if b.state in ("acked", "committed-unacked")]
    deadline = time.monotonic() + seconds
    result = {
        "acked_batches": len(acked),
        "acked_readings": sum(len(b.readings) for b in acked.values()),
        "committed_unacked_batches": sum(b.state == "committed-unacked" for b in known),
        "unresolved_batches": sum(b.state == "unresolved" for w in load.workers for b in w.batches),
    }
    with connect_as(network, "TSO") as gateway:
        # Transactions: every acknowledged one VALID on every live peer, none VALID twice.
        missing_tx, twice = {}, {}
        posted: dict[str, dict[str, int]] = {}  # peer → RA → readings in the load's VALID post_readings transactions
        for peer in [p for p in topology.peers if p.name in live_peers]:
            channel = grpc_channel_for(peer.address, network.layout.node_dir(peer) / "tls" / "ca.crt")
            while True:
                valid: dict[str, int] = {}
                posted[peer.name] = {}
                for block in fetch_blocks(gateway, topology.channel, channel=channel):
                    for tx in block.transactions:
                        if tx.valid:
                            valid[tx.tx_id] = valid.get(tx.tx_id, 0) + 1
                            if tx.event_name == "ReadingsPosted":
                                summary = json.loads(tx.event_payload)
                                if summary["command"] == load.command:
                                    ra_posted = posted[peer.name]
                                    ra_posted[summary["ra"]] = ra_posted.get(summary["ra"], 0) + summary["readings"]
                missing = [t for t in acked if t not in valid]
                if not missing or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            missing_tx[peer.name] = len(missing)
            twice[peer.name] = sum(1 for count in valid.values() if count > 1)
        # Readings: on each member peer of the RA's collection, as the TSO (a member of every RA collection).
        contract = gateway.get_network(topology.channel).get_contract("gridledger", "dr")
        lost_readings, duplicate_readings = {}, {}
        for worker in load.workers:
            expected = {
                (r["consumer"], r["minute"]): r["wh"] for b in acked.values() if b.ra == worker.ra for r in b.readings
            }
            for member in topology.collections()[topology.readings_collection_for(worker.ra)]:
                peer = topology.peer_of(member)
                if peer.name not in live_peers:
                    continue
                msp = [topology.organisation(member).msp_id]
                tried = sorted({r["consumer"] for b in worker.batches for r in b.readings})
                while True:
                    present = {}
                    for consumer in tried:
                        shown = json.loads(
                            contract.evaluate("get_readings", consumer, load.command, endorsing_organizations=msp)
                        )
                        present.update({(consumer, r["minute"]): r["wh"] for r in shown["readings"]})
                    lost = [k for k, wh in expected.items() if present.get(k) != wh]
                    if not lost or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                counted = posted[peer.name].get(worker.ra, 0)
                lost_readings[f"{worker.ra}@{peer.name}"] = len(lost)
                duplicate_readings[f"{worker.ra}@{peer.name}"] = counted - len(present)
    result.update(
        missing_transactions=missing_tx,
        transactions_valid_twice=twice,
        lost_by_peer=lost_readings,
        duplicates_by_peer=duplicate_readings,
        checked_peers=live_peers,
        lost=sum(lost_readings.values()) + sum(missing_tx.values()),
        duplicates=sum(duplicate_readings.values()) + sum(twice.values()),
    )
    return result


def height(network, node) -> int | None:
    try:
        admin = network.orderer_admin(node) if node.kind == "orderer" else network.peer_admin(node)
        return admin.height(network.topology.channel)
    except Exception:
        return None


def wait_caught_up(network, node, others, deadline) -> None:
    """Until `node`'s channel height reaches the highest of `others` (as read just before)."""
    while time.monotonic() < deadline:
        target = max(h for h in (height(network, other) for other in others) if h is not None)
        mine = height(network, node)
        if mine is not None and mine >= target:
            return
        time.sleep(0.3)
    raise AssertionError(f"{node.name} did not catch up within {RECOVERY_LIMIT:.0f} s")


def node_killed_and_restarted(network, node):
    """(kill, restart) of one orderer or peer process: SIGKILL, then started again from its ledger."""
    return (
        lambda: network.process(node).kill(),
        lambda: network._start([node], lambda line: None, time.monotonic() + 60),
    )


def run_fault(network, load, figures, name, kill, restart, recovered, live_peers=None, down=DOWN):
    """Load, then kill(); `down` seconds; restart(); recovered(restarted_at) returns when the service is back;
    AFTER seconds more load; then the checks. Records the figures."""
    load.start()
    try:
        began = time.monotonic()
        time.sleep(WARM)
        killed_at = time.monotonic()
        kill()
        time.sleep(down)
        restarted_at = time.monotonic()
        restart()
        recovered_at = recovered(restarted_at, restarted_at + RECOVERY_LIMIT)
        time.sleep(AFTER)
    finally:
        load.stop()
    checks = verify(network, load, live_peers)
    row = {
        "fault": name,
        "load_before_wps": load.readings_per_second(began, killed_at),
        "load_during_wps": load.readings_per_second(killed_at, recovered_at),
        "acked_readings": checks["acked_readings"],
        "lost": checks["lost"],
        "duplicates": checks["duplicates"],
        "recovery_seconds": round(recovered_at - restarted_at, 2),
        "longest_stall_seconds": load.longest_stall(killed_at, recovered_at),
        "client_errors": load.errors_between(killed_at, recovered_at),
        "down_seconds": down,
        "first_ack_after_kill_seconds": _since(load.first_ack_after(killed_at), killed_at),
        "acked_while_down": len(load.acked(killed_at, restarted_at)),
        "details": checks,
    }
    figures.append(row)
    print(row)
    assert checks["lost"] == 0, checks
    assert checks["duplicates"] == 0, checks
    return row


def orderer_killed_and_brought_back(network, load, figures, victim, name: str, down: float) -> dict:
    """run_fault with orderer `victim` killed and restarted; recovered once it has caught up with the others."""
    others = [o for o in network.topology.orderers if o.name != victim.name]

    def recovered(restarted_at, deadline):
        wait_caught_up(network, victim, others, deadline)
        return time.monotonic()

    return run_fault(network, load, figures, name, *node_killed_and_restarted(network, victim), recovered, down=down)


def _since(moment, start):
    return None if moment is None else round(moment - start, 2)
