"""An organisation's part in sealed trading, gate after gate: a matcher commits to its share of each gate's seed
while the gate is open and reveals it once the orders are revealed; every trading organisation reveals the orders
it sealed as soon as their gate ends (chaincode.contracts.market, "A gate's life").

Each runs beside the matching service (sim.market_rounds.start_matchers, `gridledger market serve`). It follows
the gates that list_gates shows; every step is idempotent on the ledger (a second commitment or reveal is refused
and taken as done), so a restarted agent picks up where the ledger stands. A matcher's secret for a gate is
HMAC-SHA256(its contribution key, gate id): nothing to remember per gate, the same after a restart, and
unpredictable to anyone without the key, which stays in the organisation's own run directory.
"""

import hashlib
import hmac
import logging
import os
import secrets
import threading
from pathlib import Path

from chaincode.contracts.market_seed import SECRET_BYTES, seed_commitment
from clients.market import MarketClient, SealedOrders
from gateway.errors import CommitError, GatewayError

LOG = logging.getLogger("gridledger.market-agent")
MARKET_DIR = "market"
# Refusals after which a step is over for the gate: it was done already, or it is too late.
COMMIT_SETTLED = ("already committed", "has ended")
REVEAL_SETTLED = (
    "already revealed",
    "has not committed",
    "took contributions until",
)  # in a run directory: market/<org>/seed.key and market/<org>/sealed/


def _market_dir(run_dir: Path, org: str) -> Path:
    """run/market/<org>, readable by its owner only."""
    directory = Path(run_dir) / MARKET_DIR / org
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    return directory


def sealed_orders_of(run_dir: Path, org: str) -> SealedOrders:
    """The sealed orders an organisation's processes share in a run directory (its users' and its meters')."""
    return SealedOrders(_market_dir(run_dir, org) / "sealed")


def contribution_key(run_dir: Path, org: str) -> bytes:
    """The organisation's contribution key in the run directory, created (readable by its owner only) on first use."""
    path = _market_dir(run_dir, org) / "seed.key"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(SECRET_BYTES))
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


class MarketAgent:
    """One organisation's loop: run() until stop is set. `contributes`: the organisation is a matcher."""

    def __init__(self, market: MarketClient, contributes: bool, key: bytes, poll_seconds: float = 0.5):
        self.market = market
        self.org = market.org.name
        self.contributes = contributes
        self.key = key
        self.poll_seconds = poll_seconds
        self.committed: set[str] = set()  # gates this agent has committed for (or that refused it)
        self.contributed: set[str] = set()  # gates whose contribution it has revealed (or that refused it)
        self.revealed: dict[str, list[str]] = {}  # gate -> the order ids it revealed

    def secret_for(self, gate: str) -> str:
        return hmac.new(self.key, gate.encode(), hashlib.sha256).hexdigest()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.step()
            except Exception as error:  # the ledger was unreachable or busy: log it and keep following
                LOG.warning("%s: %s", self.org, error)
                stop.wait(1.0)
            stop.wait(self.poll_seconds)

    def step(self) -> None:
        """One pass over the gates not closed yet: commit, reveal the orders, reveal the contribution."""
        for gate in self.market.gates(5):
            gate_id, status = gate["id"], gate["status"]
            if status == "open" and self.contributes and gate_id not in self.committed:
                commitment = seed_commitment(gate_id, self.org, self.secret_for(gate_id))
                self._once(self.committed, gate_id, COMMIT_SETTLED, self.market.commit_seed, gate_id, commitment)
            elif status == "revealing":
                result = self.market.reveal_orders(gate_id)
                if result["revealed"] or result["refused"]:
                    self.revealed.setdefault(gate_id, []).extend(result["revealed"])
                    for order_id, reason in result["refused"].items():
                        LOG.warning("%s: order %s of gate %s not revealed: %s", self.org, order_id, gate_id, reason)
            elif status == "drawing" and self.contributes and gate_id not in self.contributed:
                secret = self.secret_for(gate_id)
                self._once(self.contributed, gate_id, REVEAL_SETTLED, self.market.reveal_seed, gate_id, secret)

    def _once(self, done: set[str], gate_id: str, settled: tuple[str, ...], call, *args) -> None:
        """call(*args), and the gate marked done when it succeeds or the contract's refusal says nothing is left to
        do (`settled`); any other refusal is tried again at the next pass (a peer a block behind)."""
        try:
            call(*args)
        except CommitError as error:  # ordered beside a transaction it conflicted with: again at the next pass
            LOG.info("%s: %s", self.org, error)
            return
        except GatewayError as error:
            if not (error.refused and any(reason in str(error) for reason in settled)):
                raise
            LOG.info("%s: %s", self.org, error)
        done.add(gate_id)
