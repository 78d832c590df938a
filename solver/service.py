"""A matching organisation's service: it follows the market's gates, closes them when they end, solves each
closed book for the gate's objective with the gate's seed, proposes the matching, and finalises the gate when
its proposal window is over (B3, B4).

Each matcher (topology `market.matchers`) runs one. Chaincode events (GateClosed) wake it the moment a gate
closes; a poll of the open gates every `poll_seconds` catches anything an event stream missed, so a service
that was stopped resumes where the ledger stands. Every step is idempotent on the ledger: a gate closes once,
a matcher proposes once per gate (the contract refuses a second), a gate is finalised once, so several
services racing for the same step are harmless (the losers' transactions are refused or fail MVCC).

Proposals ask every organisation's peer to endorse, so that every peer runs the verifier on them; if a peer is
unreachable the service falls back to the endorsement policy's majority.

The service talks to the ledger through a `market` object with evaluate(name, *args) and submit(name, *args,
all_peers=False), and events(), so it runs against Fabric or the embedded ledger (cli/market.py's MarketClient
over either backend; the tests' EmbeddedMarket). It imports only the pure solver and the standard library.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field

from solver.matching import solve
from solver.orders import order_from_ledger

LOG = logging.getLogger("gridledger.matching")
GATE_CLOSED = "GateClosed"
# Matchers step in one after another, this far apart, so that usually one closes or finalises a gate.
STAGGER_SECONDS = 0.7


@dataclass
class ServiceRecord:
    """What one service did, for the simulation's report and the tests."""

    proposed: dict = field(default_factory=dict)  # gate -> proposal summary
    refused: dict = field(default_factory=dict)  # gate -> the contract's reason
    closed: list = field(default_factory=list)
    finalised: list = field(default_factory=list)
    solve_seconds: dict = field(default_factory=dict)


class MatchingService:
    """One matcher's loop; run() until stop is set."""

    def __init__(
        self, org: str, market, rank: int = 0, method: str = "fast", poll_seconds: float = 2.0, clock=time.time
    ):
        self.org = org
        self.market = market
        self.rank = rank  # this matcher's position among the matchers: its stagger
        self.method = method
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.record = ServiceRecord()
        self._closed_gates: queue.Queue = queue.Queue()
        self._done: set[str] = set()  # gates this service has proposed for (or that refused it)

    def run(self, stop: threading.Event) -> ServiceRecord:
        listener = threading.Thread(target=self._listen, args=(stop,), name=f"{self.org}-events", daemon=True)
        listener.start()
        next_poll = 0.0
        while not stop.is_set():
            try:
                gate = self._closed_gates.get(timeout=0.2)
            except queue.Empty:
                gate = None
            try:
                if gate is not None:
                    self._propose(gate)
                if time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + self.poll_seconds
                    self.step()
            except Exception as error:  # the ledger was unreachable or busy: log it and keep following
                LOG.warning("%s: %s", self.org, error)
                stop.wait(1.0)
        return self.record

    def step(self) -> None:
        """One pass over the gates the ledger lists: close what has ended, propose, finalise what is due."""
        now_ms = int(self.clock() * 1000)
        grace_ms = int(self.rank * STAGGER_SECONDS * 1000)
        for gate in self.market.evaluate("list_gates", "10"):
            if gate["status"] == "closing" and now_ms >= gate["end_ms"] + grace_ms:
                self._attempt("close_gate", gate["id"], self.record.closed)
            elif gate["status"] == "proposing":
                if gate["id"] not in self._done and now_ms < gate["deadline_ms"]:
                    self._propose(gate)
                elif now_ms >= gate["deadline_ms"] + grace_ms:
                    self._attempt("finalise", gate["id"], self.record.finalised)

    def _listen(self, stop: threading.Event) -> None:
        current: dict = {}

        def close_on_stop():  # one closer for every stream this listener opens, not one per reconnection
            stop.wait()
            if "events" in current:
                current["events"].close()

        threading.Thread(target=close_on_stop, name=f"{self.org}-events-closer", daemon=True).start()
        while not stop.is_set():
            try:
                with self.market.events() as events:
                    current["events"] = events
                    if stop.is_set():  # stopped while connecting: the closer may have missed this stream
                        break
                    for event in events:
                        if event.event_name == GATE_CLOSED:
                            gate = json.loads(event.payload)
                            if gate["status"] == "proposing":
                                self._closed_gates.put(gate)
            except Exception as error:  # the peer went away: the poll covers the gap; reconnect shortly
                LOG.info("%s: event stream ended (%s); reconnecting", self.org, error)
                stop.wait(2.0)

    def _propose(self, gate: dict) -> None:
        gate_id = gate["id"]
        if gate_id in self._done:
            return
        if int(self.clock() * 1000) >= gate["deadline_ms"]:
            return
        book = self.market.evaluate("get_book", gate_id)
        orders = [order_from_ledger(o) for o in book["orders"]]
        solution = solve(orders, gate["objective"], bytes.fromhex(gate["seed"]), method=self.method)
        self.record.solve_seconds[gate_id] = solution.seconds
        try:
            summary = self.market.submit("propose", gate_id, json.dumps(solution.proposal().to_json()), all_peers=True)
        except Exception as error:
            reason = str(error)
            if "already proposed" in reason:
                self._done.add(gate_id)
                return
            if "is not closed yet" in reason:  # some peer has not committed the close yet: the poll retries
                return
            if "failed to propose" in reason:  # the contract refused it: say why, do not retry
                self._done.add(gate_id)
                self.record.refused[gate_id] = reason
                LOG.warning("%s: proposal for %s refused: %s", self.org, gate_id, reason)
                return
            raise
        self._done.add(gate_id)
        self.record.proposed[gate_id] = summary
        LOG.info(
            "%s: proposed %s for gate %s (%s %s, %.3f s to solve)",
            self.org,
            len(solution.trades),
            gate_id,
            gate["objective"],
            summary["value_display"],
            solution.seconds,
        )

    def _attempt(self, function: str, gate_id: str, done: list) -> None:
        try:
            self.market.submit(function, gate_id)
        except Exception as error:  # another matcher did it first (refused, or MVCC conflict): nothing to do
            LOG.debug("%s: %s %s: %s", self.org, function, gate_id, error)
            return
        done.append(gate_id)
