"""Market pages: sealed order entry and its reveal, each gate's order book, the proposals of the matching
organisations with their objective values, the chosen block and its trades, clearing prices over time, positions,
the operator's settings.

While a gate is open its book is commitments and counts: an order is sealed by the account's market client, and on
the real network its salt waits in the run directory, where the organisation's agent reveals it after the gate's
end (an account may also reveal its own by hand). After the close the book is public (every matcher must solve
it); positions are visible to the participant's RA, its AC, the TSO and the consumer itself, as the market
contract rules. The ledger stores sen/kWh, Wh and millisen; pages show yen/kWh, kWh and yen.
"""

import json
from decimal import Decimal, InvalidOperation

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for

from clients.contract import Refused
from clients.market import VALUE_UNITS, MarketClient
from clients.market_agent import sealed_orders_of
from consortium import OBJECTIVES
from consortium.units import SEN_PER_YEN, WH_PER_KWH, yen
from gateway.errors import CommitError, GatewayError
from solver.orders import MAX_PRICE_YEN, MAX_QUANTITY_KWH
from web.auth import login_required, roles_required
from web.charts import Series, line_chart
from web.ledger import LedgerUnavailable, evaluate_or_404, submit_and_flash
from web.pages import wants_fragment

bp = Blueprint("market", __name__, url_prefix="/market")

OBJECTIVE_TITLES = {
    "volume": "maximise the volume traded",
    "welfare": "maximise total surplus",
    "maxmin": "raise the worst-off participant's profit",
}


# Loaders.


def get_book(gate: str) -> dict:
    return evaluate_or_404("market", "get_book", gate, missing=f"There is no gate {gate[:40]!r}.")


def get_positions(participant: str) -> dict:
    missing = f"There are no positions of {participant[:40]!r} for you to see."
    if g.user.role == "consumer" and participant != g.user.consumer:
        abort(404, description=missing)
    return evaluate_or_404("market", "get_positions", participant, missing=missing)


def own_participants() -> list[str]:
    """Who the account may place orders for: a consumer itself, an RA its consumers."""
    if g.user.role == "consumer":
        return [g.user.consumer]
    if g.user.role == "ra":
        return g.ledger.evaluate("dr", "list_consumers").get(g.user.org, [])
    return []


def visible_participants() -> list[str]:
    if g.user.role == "consumer":
        return [g.user.consumer]
    return sorted(c for consumers in g.ledger.evaluate("dr", "list_consumers").values() for c in consumers)


def price_chart(prices: list[dict]):
    def point(p, field):
        return p["start"][11:16], p[field] / SEN_PER_YEN

    return line_chart(
        [
            Series("average", [point(p, "average_price_sen_per_kwh") for p in prices], "bc"),
            Series("low", [point(p, "low_sen_per_kwh") for p in prices], "low"),
            Series("high", [point(p, "high_sen_per_kwh") for p in prices], "high"),
        ],
        unit="yen/kWh",
        title="Clearing prices per gate",
    )


def order_form(form, participants: list[str]) -> tuple[dict | None, dict[str, str]]:
    errors = {}
    participant = form.get("participant", "")
    if participant not in participants:
        errors["participant"] = (
            "Choose who the order is for." if not participant else f"You may not place orders for {participant[:40]!r}."
        )
    side = form.get("side", "")
    if side not in ("buy", "sell"):
        errors["side"] = "Choose buy or sell."
    values = {}
    for field, unit, places, low_open, high in (
        ("price", "yen/kWh", 2, False, MAX_PRICE_YEN),
        ("quantity", "kWh", 3, True, MAX_QUANTITY_KWH),
    ):
        text = form.get(field, "").strip()
        try:
            number = Decimal(text)
            if not number.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            errors[field] = f"Enter the {field} in {unit}, e.g. {'24.50' if field == 'price' else '1.5'}."
            continue
        if (number <= 0 if low_open else number < 0) or number > high:
            errors[field] = (
                f"The {field} must be {'more than' if low_open else 'at least'} 0 and at most {high:,} {unit}."
            )
        elif number != number.quantize(Decimal(1).scaleb(-places)):
            errors[field] = f"Use at most {places} decimals for the {field} ({unit})."
        else:
            values[field] = str(number)
    if errors:
        return None, errors
    return {"participant": participant, "side": side, **values}, errors


def market_client() -> MarketClient:
    """The account's market client, keeping its sealed orders where its organisation's agent reveals them (on the
    real network: the backend's run directory; the embedded ledger's keep them in memory)."""
    client = g.ledger.client("market")
    run_dir = getattr(current_app.extensions["gridledger"].sessions, "run_dir", None)
    if run_dir is not None and client.sealed.directory is None:
        client.sealed = sealed_orders_of(run_dir, client.org.name)
    return client


def sealing(call, *args):
    """call(*args) of the market client, its failures as web.ledger reports them: Refused (the chaincode's
    "failed to …", or a transaction that did not commit) or LedgerUnavailable."""
    try:
        return call(*args)
    except GatewayError as error:
        message = str(error)
        if message.startswith("failed to ") or isinstance(error, CommitError):
            raise Refused(message, getattr(error, "tx_id", None)) from error
        raise LedgerUnavailable(message) from error


# Pages.


def _render_index(errors: dict | None = None, form=None, status: int = 200):
    config = g.ledger.evaluate("market", "get_config")
    gates = g.ledger.evaluate("market", "list_gates", "20")
    prices = g.ledger.evaluate("market", "get_prices", "48")
    return render_template(
        "market/index.html",
        config=config,
        gates=gates,
        prices=prices,
        chart=price_chart(prices),
        participants=own_participants(),
        positions=visible_participants(),
        objectives=OBJECTIVES,
        objective_titles=OBJECTIVE_TITLES,
        errors=errors or {},
        form=form or {},
        fragment=wants_fragment(),
    ), status


@bp.route("/")
@login_required
def index():
    return _render_index()


@bp.route("/orders", methods=("POST",))
@roles_required("ra", "consumer", what="place orders")
def place_order():
    participants = own_participants()
    order, errors = order_form(request.form, participants)
    if order:
        try:
            placed = sealing(market_client().place_orders, [order])
        except Refused as refused:
            errors["form"] = refused.message
        else:
            record = placed["orders"][0]
            flash(
                f"Order {record['id']} ({record['side']} {Decimal(record['quantity_wh']) / WH_PER_KWH:g} kWh at "
                f"{yen(record['price_sen_per_kwh'], grouped=True)} yen/kWh for {record['participant']}) placed in gate "
                f"{placed['gate']}, sealed until the gate ends, transaction {placed['tx_id']}.",
                "committed",
            )
            return redirect(url_for("market.gate", gate=placed["gate"]))
    return _render_index(errors, request.form, 400)


def _gate_data(gate: str) -> dict:
    book = get_book(gate)
    proposals = g.ledger.evaluate("market", "list_proposals", gate)
    record = book["gate"]
    trades = g.ledger.evaluate("market", "get_trades", gate) if record["status"] == "finalised" else None
    orders = book["orders"]
    sealed = [o for o in orders if "side" not in o]
    sells = sorted((o for o in orders if o.get("side") == "sell"), key=lambda o: (o["price_sen_per_kwh"], o["time_ms"]))
    buys = sorted((o for o in orders if o.get("side") == "buy"), key=lambda o: (-o["price_sen_per_kwh"], o["time_ms"]))
    return {
        "gate": record,
        "sealed": sealed,
        "sells": sells,
        "buys": buys,
        "orders": orders,
        "proposals": proposals,
        "trades": trades,
    }


@bp.route("/gates/<gate>")
@login_required
def gate(gate):
    data = _gate_data(gate)
    return render_template(
        "market/gate.html",
        **data,
        value_units=VALUE_UNITS,
        objective_titles=OBJECTIVE_TITLES,
        fragment=wants_fragment(),
    )


@bp.route("/gates/<gate>.json")
@login_required
def gate_json(gate):
    return jsonify(_gate_data(gate))


@bp.route("/gates.json")
@login_required
def gates_json():
    return jsonify(g.ledger.evaluate("market", "list_gates", "20"))


@bp.route("/prices.json")
@login_required
def prices_json():
    return jsonify(g.ledger.evaluate("market", "get_prices", "48"))


@bp.route("/gates/<gate>/orders/<order_id>/cancel", methods=("POST",))
@roles_required("ra", "consumer", what="cancel orders")
def cancel_order(gate, order_id):
    submit_and_flash(
        "market", "cancel_order", gate, order_id, done=f"Order {order_id} cancelled", failed="Not cancelled"
    )
    return redirect(url_for("market.gate", gate=gate))


@bp.route("/gates/<gate>/reveal", methods=("POST",))
@roles_required("ra", "consumer", what="reveal orders")
def reveal_orders(gate):
    """Reveals the account's sealed orders of an ended gate: normally its organisation's agent's work."""
    try:
        result = sealing(market_client().reveal_orders, gate)
    except Refused as refused:
        flash(f"Not revealed: {refused.message}", "error")
    else:
        flash(f"{len(result['revealed'])} of your orders revealed.", "committed")
        for order_id, reason in result["refused"].items():
            flash(f"Order {order_id} not revealed: {reason}", "error")
    return redirect(url_for("market.gate", gate=gate))


@bp.route("/gates/<gate>/<step>", methods=("POST",))
@roles_required("tso", "ac", "ra", what="close or finalise gates")
def gate_step(gate, step):
    """Closing and finalising are normally the matching services' work; an organisation may do it by hand."""
    if step not in ("close", "finalise"):
        abort(404)
    submit_and_flash(
        "market",
        "close_gate" if step == "close" else "finalise",
        gate,
        done=f"Gate {gate} {'closed' if step == 'close' else 'finalised'}",
        failed="Not done",
    )
    return redirect(url_for("market.gate", gate=gate))


@bp.route("/positions")
@login_required
def positions_lookup():
    participant = request.args.get("participant", "")
    if not participant:
        return redirect(url_for("market.index"))
    return redirect(url_for("market.positions", participant=participant))


@bp.route("/positions/<participant>")
@login_required
def positions(participant):
    return render_template("market/positions.html", positions=get_positions(participant), fragment=wants_fragment())


@bp.route("/positions/<participant>.json")
@login_required
def positions_json(participant):
    return jsonify(get_positions(participant))


@bp.route("/config", methods=("POST",))
@roles_required("tso", what="configure the market")
def configure():
    errors = {}
    config = {}
    for field, high in (("gate_seconds", 86_400), ("proposal_seconds", 3600)):
        text = request.form.get(field, "").strip()
        if not text.isdigit() or not 1 <= int(text) <= high:
            errors[field] = f"Give a whole number of seconds from 1 to {high:,}, got {text[:20]!r}."
        else:
            config[field] = int(text)
    objective = request.form.get("objective", "")
    if objective not in OBJECTIVES:
        errors["objective"] = f"Choose one of {', '.join(OBJECTIVES)}."
    config["objective"] = objective
    if not errors:
        try:
            segment, tx_id = g.ledger.submit("market", "configure", json.dumps(config))
        except Refused as refused:
            errors["form"] = refused.message
        else:
            flash(
                f"Market configured from {segment['since']}: gates of {segment['gate_seconds']} s, objective "
                f"{segment['objective']}; transaction {tx_id}.",
                "committed",
            )
            return redirect(url_for("market.index"))
    return _render_index({f"config-{k}": v for k, v in errors.items()}, request.form, 400)
