"""The market client: orders (sent again safely when an answer is lost), gates, books, proposals, trades, clearing
prices, positions, the operator's configuration, and a finalised gate's report against the continuous double
auction. It is what solver.service.MatchingService talks to (evaluate, submit with all_peers, events).

The ledger keeps prices in sen/kWh, quantities in Wh and money in millisen.
"""

import json

from clients.contract import ContractClient
from gateway.errors import GatewayError
from solver.cda import continuous_double_auction
from solver.orders import order_from_ledger
from solver.proposals import total_surplus, traded_volume

# The unit a gate's objective value is shown in (solver.proposals.value_in_display_units).
VALUE_UNITS = {"volume": "kWh", "welfare": "yen", "maxmin": "yen/kWh"}


class MarketClient(ContractClient):
    """The market contract as one organisation (or one smart meter) uses it."""

    contract_name = "market"

    def config(self) -> dict:
        """The configuration in force and the gate open now (current_gate, current_gate_end_ms)."""
        return self.evaluate("get_config")

    def configure(self, settings: dict) -> dict:
        """Sets gate_seconds, proposal_seconds and the default objective from the next second on (the operator)."""
        return self.submit("configure", json.dumps(settings))

    def set_objective(self, gate: str, objective: str) -> dict:
        return self.submit("set_gate_objective", gate, objective)

    def place_orders(self, orders: list[dict], resend: bool = False) -> dict | None:
        """Places orders into the gate open now; returns the contract's answer ({"gate", "orders"}).

        `resend` (every order carries a "ref"): if the answer is lost (a timeout, a peer restarting), the batch is
        sent again; its refs make the contract refuse a copy of a batch that did commit ("already placed"), so no
        order is placed twice, and then the answer is None."""
        attempts = 2 if resend else 1
        for attempt in range(1, attempts + 1):
            try:
                return self.submit("place_orders", json.dumps(orders))
            except GatewayError as error:
                if error.refused and attempt > 1 and "already placed" in str(error):
                    return None
                if error.refused or attempt == attempts:
                    raise
        return None

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
