"""Settlement pages by Japan's rules: per command and organisation, baseline against actual per 30-minute unit as a
chart, the units' figures, the assessments of a balancing product, each consumer's baseline and how it was set, and
the same as CSV and JSON (chaincode.contracts.dr_units computes them; clients.dr_units reads them).

Every figure is read from the ledger as the signed-in account, on its own peer, so each organisation sees its own:
the TSO everything, an AC its own and its RAs' (and their consumers'), an RA its own and its consumers' without the
sen (see the contract). A command or organisation the account may not see is a 404 that does not say whether it
exists.
"""

import csv
import io

from flask import Blueprint, Response, abort, flash, g, jsonify, redirect, render_template, request, url_for

from chaincode.contracts.balancing import PRODUCTS
from chaincode.contracts.products import resolved
from clients.dr_units import UnitsClient
from consortium.topology import Topology
from gateway.errors import GatewayError
from web.auth import roles_required
from web.charts import Series, line_chart
from web.ledger import LedgerUnavailable, evaluate_or_404
from web.pages import wants_fragment

bp = Blueprint("units", __name__, url_prefix="/dr/units")

CSV_FIELDS = (
    "level",
    "org",
    "parent",
    "unit",
    "complete",
    "baseline_wh",
    "actual_wh",
    "delivered_wh",
    "contracted_wh",
    "shortfall_wh",
    "rewarded_wh",
    "reward_sen",
    "penalty_sen",
    "amount_sen",
)
WHAT = "see settlements"


def baseline_method_text(command: dict, topology: Topology) -> str | None:
    """How a command's product sets each consumer's baseline, for people (the RA declaration form shows it instead
    of asking for a method); None for a command without a product."""
    if not command.get("product"):
        return None
    product = resolved(command["product"], topology.settlement)
    if product.baseline == "history":
        text = (
            "High 4 of 5 on weekdays, High 2 of 3 on weekends and holidays, from your consumers' 30-minute history "
            "(ERAB guideline)"
        )
        if product.same_day is None:
            return text + ", without same-day adjustment"
        cap = "uncapped" if product.same_day.cap_percent is None else f"capped at ±{product.same_day.cap_percent} %"
        return (
            f"{text}, with the same-day adjustment from {product.same_day.starts_before_minutes} to "
            f"{product.same_day.ends_before_minutes} minutes before the window ({cap})"
        )
    label = PRODUCTS[product.name].label
    if product.baseline == "measured":
        return f"{label}: measured just before the window (直前計測型, the mean of {product.measure_minutes} minutes)"
    return (
        f"{label}: your 基準値計画 (事前予測型), submitted at least {product.gate_closure_minutes} minutes before the "
        "first unit and locked"
    )


def units_client() -> UnitsClient:
    """The signed-in account's units client, on its own session (opened once per identity)."""
    backend = g.ledger.backend
    return UnitsClient.of(backend.session(g.ledger.account), backend.topology)


def get_unit_settlement(command_id: str) -> dict:
    """The command's figures as the account may see them; 404 when the ledger refuses (no such command, no
    product, not the account's to see), LedgerUnavailable when it does not answer."""
    try:
        return units_client().unit_settlement(command_id)
    except GatewayError as error:
        if error.refused or str(error).startswith("failed to "):
            abort(404, description=f"There is no settlement by unit of command {command_id!r} for you to see.")
        raise LedgerUnavailable(str(error)) from error


def levels(result: dict) -> list[dict]:
    """Every figure of the answer, top down: the TSO's total, ACs, RAs, consumers."""
    return ([result["tso"]] if result["tso"] else []) + result["acs"] + result["ras"] + result["consumers"]


def chosen_figure(result: dict, org: str | None) -> dict | None:
    figures = levels(result)
    if org is None:
        return figures[0] if figures else None
    for figure in figures:
        if figure["org"] == org:
            return figure
    abort(404, description=f"There is nothing called {org!r} for you to see here.")


@bp.route("/")
@roles_required("tso", "ac", "ra", what=WHAT)
def commands():
    """The commands that name a product, newest first."""
    found = g.ledger.evaluate("dr", "list_commands")
    shown = sorted((c for c in found if c.get("product")), key=lambda c: (c["start"], c["id"]), reverse=True)
    return render_template("units/commands.html", commands=shown)


@bp.route("/commands/<command_id>")
@roles_required("tso", "ac", "ra", what=WHAT)
def settlement(command_id):
    command = evaluate_or_404("dr", "get_command", command_id, missing=f"There is no command {command_id!r}.")
    result = get_unit_settlement(command_id)
    figure = chosen_figure(result, request.args.get("org"))
    chart = None
    if figure is not None:
        chart = line_chart(
            [
                Series("baseline", [(u["unit"], u["baseline_wh"] / 1000) for u in figure["units"]], "bc"),
                Series("actual", [(u["unit"], u["actual_wh"] / 1000) for u in figure["units"]], "as"),
            ],
            unit="kWh",
            title=f"Baseline and actual per 30-minute unit, {figure['org']}",
            x_format=lambda label: label[11:],
        )
    return render_template(
        "units/settlement.html",
        command=command,
        result=result,
        figure=figure,
        figures=levels(result),
        chart=chart,
        fragment=wants_fragment(),
    )


@bp.route("/commands/<command_id>/statement", methods=("POST",))
@roles_required("tso", "ac", what="record settlement statements")
def record_statement(command_id):
    """Records an AC's statement of a settled command (an AC its own, the TSO any AC's), endorsed by the AC's peer and
    the TSO's, and delivers each of its RAs' share to that RA; the page says in which transaction, or the ledger's
    reason it did not."""
    topology = g.ledger.backend.topology
    ac = g.user.org if g.user.role == "ac" else request.form.get("ac", "")
    if ac not in {org.name for org in topology.organisations if org.role == "ac"}:
        flash(f"Not recorded: there is no AC called {ac!r}.", "error")
    else:
        client = units_client()
        try:
            if request.form.get("deliver_only"):
                done = f"{ac}'s statement of command {command_id} was recorded before"
            else:
                summary = client.record_statement(command_id, ac)
                done = f"{ac}'s statement of command {command_id} recorded in transaction {summary['transaction']}"
            delivered = client.deliver_shares(command_id, ac)
        except GatewayError as error:
            if not (error.refused or str(error).startswith("failed to ")):
                raise LedgerUnavailable(str(error)) from error
            flash(f"Not recorded: {error}", "error")
        else:
            flash(f"{done}; shares delivered to {', '.join(d['ra'] for d in delivered) or 'none'}.", "committed")
    return redirect(url_for("units.settlement", command_id=command_id))


@bp.route("/commands/<command_id>.json")
@roles_required("tso", "ac", "ra", what=WHAT)
def settlement_json(command_id):
    return jsonify(get_unit_settlement(command_id))


@bp.route("/commands/<command_id>.csv")
@roles_required("tso", "ac", "ra", what=WHAT)
def settlement_csv(command_id):
    result = get_unit_settlement(command_id)
    return Response(
        to_csv(result),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="settlement-{command_id}.csv"',
            "Cache-Control": "no-store",
        },
    )


def to_csv(result: dict) -> str:
    """One row per organisation and unit, then its total (unit "total", with the sen); empty where not shown."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for figure in levels(result):
        common = {"level": figure["level"], "org": figure["org"], "parent": figure["parent"]}
        for unit in figure["units"]:
            writer.writerow({**common, **unit})
        totals = {field: figure.get(field) for field in CSV_FIELDS[5:]}
        writer.writerow({**common, "unit": "total", **totals})
    return out.getvalue()
