"""The market client: sealed orders (sent again safely when an answer is lost) and their reveals, seed
contributions, gates, books, proposals, trades, clearing prices, positions, the operator's configuration, and a
finalised gate's report against the continuous double auction. It is what solver.service.MatchingService talks to
(evaluate, submit with all_peers, events), and clients.market_agent.MarketAgent.

An order is sealed here: a random salt, the commitment chaincode.contracts.market_seed.order_commitment(order,
salt) is all that is sent while the gate is open, and the order and its salt wait in `sealed` (SealedOrders, in
memory or in a directory the organisation's processes share) until the gate ends and they are revealed.

The ledger keeps prices in sen/kWh, quantities in Wh and money in millisen.
"""

import hashlib
import json
import os
import secrets
import threading
import time
from pathlib import Path

from chaincode.contracts.common import Refusal
from chaincode.contracts.market import order_fields
from chaincode.contracts.market_seed import SALT_BYTES, order_commitment
from clients.contract import ContractClient, Refused
from gateway.errors import GatewayError
from solver.cda import continuous_double_auction
from solver.orders import order_from_ledger
from solver.proposals import total_surplus, traded_volume

# The unit a gate's objective value is shown in (solver.proposals.value_in_display_units).
VALUE_UNITS = {"volume": "kWh", "welfare": "yen", "maxmin": "yen/kWh"}
REVEALS_PER_TRANSACTION = 1000
# A salt kept this long unrevealed belongs to an order whose gate is long over (its answer was lost, or it was
# dropped): it is forgotten.
KEEP_SEALED_MS = 24 * 3600 * 1000


class SealedOrders:
    """The salts of one organisation's (or meter's) sealed orders until they are revealed: in memory, or in a
    directory shared by the processes that place orders for it (CLI, web) and the agent that reveals them.

    Each batch is one JSON file, written whole and renamed into place, so a reader never sees half of one."""

    def __init__(self, directory: Path | None = None):
        self.directory = directory
        self._batches: dict[str, list[dict]] = {}
        self._lock = threading.Lock()
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def add(self, entries: list[dict]) -> None:
        """Keeps [{"commitment", "order", "salt", "sealed_ms"}]."""
        name = hashlib.sha256("".join(e["commitment"] for e in entries).encode()).hexdigest()[:32]
        with self._lock:
            self._write(name, entries)

    def held(self) -> dict[str, dict]:
        """commitment -> {"commitment", "order", "salt", "sealed_ms"} of every order still sealed."""
        with self._lock:
            return {e["commitment"]: e for entries in self._read().values() for e in entries}

    def forget(self, commitments: set[str], before_ms: int | None = None) -> None:
        """Drops the given orders, and any sealed before `before_ms`."""
        with self._lock:
            for name, entries in self._read().items():
                kept = [
                    e
                    for e in entries
                    if e["commitment"] not in commitments and (before_ms is None or e["sealed_ms"] >= before_ms)
                ]
                if len(kept) != len(entries):
                    self._write(name, kept)

    def _read(self) -> dict[str, list[dict]]:
        if self.directory is None:
            return dict(self._batches)
        batches = {}
        for path in sorted(self.directory.glob("*.json")):
            try:
                batches[path.stem] = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:  # forgotten by another process meanwhile
                continue
        return batches

    def _write(self, name: str, entries: list[dict]) -> None:
        if self.directory is None:
            if entries:
                self._batches[name] = entries
            else:
                self._batches.pop(name, None)
            return
        path = self.directory / f"{name}.json"
        if not entries:
            path.unlink(missing_ok=True)
            return
        partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(entries, handle)
        os.replace(partial, path)


class MarketClient(ContractClient):
    """The market contract as one organisation (or one smart meter) uses it."""

    contract_name = "market"
    sealed: SealedOrders  # where this client keeps the salts of its sealed orders (in memory unless given)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sealed = SealedOrders()

    def config(self) -> dict:
        """The configuration in force and the gate open now (current_gate, current_gate_end_ms)."""
        return self.evaluate("get_config")

    def configure(self, settings: dict) -> dict:
        """Sets gate_seconds, proposal_seconds, reveal_seconds and the default objective from the next second on
        (the operator)."""
        return self.submit("configure", json.dumps(settings))

    def set_objective(self, gate: str, objective: str) -> dict:
        return self.submit("set_gate_objective", gate, objective)

    def place_orders(self, orders: list[dict], resend: bool = False) -> dict | None:
        """Seals orders [{"participant", "side", "price", "quantity", "ref" (optional)}] and places them into the
        gate open now; returns {"gate", "orders", "tx_id"}: the contract's sealed records, each with the order's
        own fields (sen/kWh, Wh) added for the caller, who alone knows them until the gate ends.

        Each order is checked first (Refused says what is wrong, nothing is sent). `resend` (every order carries a
        "ref"): if the answer is lost (a timeout, a peer restarting), the same commitments are sent again; the
        refs make the contract refuse a copy of a batch that did commit ("already placed"), so no order is placed
        twice, and then the answer is None. The salts are kept before anything is sent, so a batch that committed
        without an answer is still revealed."""
        entries, sealed, fields = self.seal(orders)
        attempts = 2 if resend else 1
        for attempt in range(1, attempts + 1):
            try:
                result, tx_id = self.transact("place_orders", json.dumps(sealed))
            except GatewayError as error:
                if error.refused and attempt > 1 and "already placed" in str(error):
                    return None
                if error.refused:
                    self.sealed.forget({e["commitment"] for e in entries})
                if error.refused or attempt == attempts:
                    raise
            else:
                result["orders"] = [{**record, **f} for record, f in zip(result["orders"], fields, strict=True)]
                result["tx_id"] = tx_id
                return result
        return None

    def seal(self, orders: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
        """Checks and seals orders as place_orders sends them, keeping each order and its salt in `sealed`
        before anything is sent; returns (kept entries, what place_orders takes: {"commitment", "ref"?}, each
        order's fields in sen/kWh and Wh). Refused says what is wrong with an order, and nothing is kept."""
        entries, sealed, fields = [], [], []
        for position, order in enumerate(orders):
            content = {k: v for k, v in order.items() if k != "ref"} if isinstance(order, dict) else order
            try:
                fields.append(order_fields(f"order {position}", content))
            except Refusal as problem:
                raise Refused(f"failed to place orders: {problem}") from None
            salt = secrets.token_hex(SALT_BYTES)
            commitment = order_commitment(content, salt)
            entries.append({"commitment": commitment, "order": content, "salt": salt, "sealed_ms": _now_ms()})
            sealed.append({"commitment": commitment, **({"ref": order["ref"]} if "ref" in order else {})})
        self.sealed.add(entries)
        return entries, sealed, fields

    def reveal_orders(self, gate: str) -> dict:
        """Reveals every order of `gate` whose salt this client holds; returns {"revealed": [ids], "refused":
        {id: reason}}. A batch the contract refuses is revealed order by order, so that one order the contract
        will not take (a participant that is no longer the RA's) costs only itself."""
        held = self.sealed.held()
        if not held:
            return {"gate": gate, "revealed": [], "refused": {}}
        book = self.evaluate("get_book", gate)["orders"]
        reveals = [
            {"id": o["id"], "order": held[o["commitment"]]["order"], "salt": held[o["commitment"]]["salt"]}
            for o in book
            if "participant" not in o and o["commitment"] in held
        ]
        revealed: list[str] = []
        refused: dict[str, str] = {}
        for start in range(0, len(reveals), REVEALS_PER_TRANSACTION):
            batch = reveals[start : start + REVEALS_PER_TRANSACTION]
            if not self._reveal(gate, batch, revealed, refused) and len(batch) > 1:
                for reveal in batch:
                    self._reveal(gate, [reveal], revealed, refused)
        by_id = {o["id"]: o["commitment"] for o in book}
        self.sealed.forget({by_id[i] for i in [*revealed, *refused]}, before_ms=_now_ms() - KEEP_SEALED_MS)
        return {"gate": gate, "revealed": revealed, "refused": refused}

    def _reveal(self, gate: str, batch: list[dict], revealed: list[str], refused: dict[str, str]) -> bool:
        """Reveals one batch; False if the contract refused it (a single order's reason goes to `refused`)."""
        try:
            revealed += self.submit("reveal_orders", gate, json.dumps(batch))["revealed"]
        except GatewayError as error:
            if not error.refused:
                raise
            if len(batch) == 1:
                refused[batch[0]["id"]] = str(error)
            return False
        return True

    def commit_seed(self, gate: str, commitment: str) -> dict:
        """A matcher's commitment to its contribution to a gate's seed (market_seed.seed_commitment)."""
        return self.submit("commit_seed", gate, commitment)

    def reveal_seed(self, gate: str, secret: str) -> dict:
        return self.submit("reveal_seed", gate, secret)

    def cancel(self, gate: str, order_id: str) -> dict:
        return self.submit("cancel_order", gate, order_id)

    def gates(self, limit: int = 10) -> list[dict]:
        """The gate open now and the latest closed gates, newest first."""
        return self.evaluate("list_gates", str(limit))

    def gate(self, gate: str) -> dict:
        return self.evaluate("get_gate", gate)

    def book(self, gate: str | None = None) -> dict:
        """A gate's order book (default: the gate open now)."""
        return self.evaluate("get_book", gate or self.config()["current_gate"])

    def proposals(self, gate: str) -> list[dict]:
        return self.evaluate("list_proposals", gate)

    def trades(self, gate: str) -> dict:
        return self.evaluate("get_trades", gate)

    def prices(self, limit: int = 48) -> list[dict]:
        """Clearing prices of the latest gates that traded, oldest first."""
        return self.evaluate("get_prices", str(limit))

    def positions(self, participant: str) -> dict:
        return self.evaluate("get_positions", participant)

    def report(self, gate: str) -> dict:
        """A gate's proposals, winner and totals, against the continuous double auction on its book."""
        record = self.gate(gate)
        orders = [order_from_ledger(o) for o in self.book(gate)["orders"]]
        by_id = {o.id: o for o in orders}
        cda = continuous_double_auction(orders)
        trades = self.trades(gate)["trades"] if record["status"] == "finalised" else []
        winner = record.get("winner") or {}
        return {
            "gate": gate,
            "status": record["status"],
            "objective": record["objective"],
            "orders": len(orders),
            "proposals": self.proposals(gate),
            "winner": winner.get("org"),
            "clearing": record.get("clearing"),
            "trades": len(trades),
            "surplus_millisen": sum(
                (by_id[t["buy"]].price - by_id[t["sell"]].price) * t["quantity_wh"] for t in trades
            ),
            "volume_wh": sum(t["quantity_wh"] for t in trades),
            "cda_surplus_millisen": total_surplus(by_id, cda),
            "cda_volume_wh": traded_volume(cda),
        }


def _now_ms() -> int:
    return int(time.time() * 1000)
