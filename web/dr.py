"""Demand-response pages: commands, the RA declaration form, the TSO's comparison of results (seed figure 6),
each AC's and RA's own aggregates and performance, settlement and rewards, a consumer's own readings.

Every figure is read from the ledger as the signed-in account (g.ledger). Loaders abort 404 for what the account
may not see, without saying whether it exists; the ledger refuses such reads too.
"""

import json
from datetime import UTC, datetime, timedelta

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from clients.contract import Refused
from clients.dr import comparison_of, slot_count
from consortium.units import EPOCH, WH_PER_KWH, kwh, minute_index
from web import comparison
from web.auth import login_required, roles_required
from web.charts import Series, line_chart
from web.forms import command_form, declaration_form
from web.ledger import evaluate_or_404, submit_and_flash
from web.pages import wants_fragment
from web.units import baseline_method_text

bp = Blueprint("dr", __name__, url_prefix="/dr")

PAGE_ROWS = 300  # comparison rows per page; the CSV and JSON carry every row that matches the filters


# Loaders: each aborts 404 for what the account may not see.


def list_commands() -> list[dict]:
    """Every DR command (public), newest start first."""
    return sorted(g.ledger.evaluate("dr", "list_commands"), key=lambda c: (c["start"], c["id"]), reverse=True)


def get_command(command_id: str) -> dict:
    return evaluate_or_404("dr", "get_command", command_id, missing=f"There is no command {command_id!r}.")


def require_visible(org: str) -> None:
    if org not in g.visible:
        abort(404, description=f"There is nothing called {org!r} for you to see here.")


def get_aggregates(command_id: str, org: str = "") -> dict:
    if org:
        require_visible(org)
    missing = f"There are no figures of command {command_id!r} for you to see."
    return evaluate_or_404("dr", "get_aggregates", command_id, org, missing=missing)


def get_declaration(command_id: str, ra: str) -> dict:
    require_visible(ra)
    missing = f"There is no declaration of {ra} for command {command_id!r} for you to see."
    return evaluate_or_404("dr", "get_declaration", command_id, ra, missing=missing)


def get_settlement(command_id: str) -> dict:
    missing = f"There is no settlement of command {command_id!r} for you to see."
    return evaluate_or_404("dr", "get_settlement", command_id, missing=missing)


def get_readings(command_id: str, consumer: str) -> dict:
    missing = f"There are no readings of {consumer!r} for you to see."
    return evaluate_or_404("dr", "get_readings", consumer, command_id, missing=missing)


def now() -> datetime:
    """The time the ledger's endorsers go by: the system clock (app config CLOCK replaces it, for a test ledger on a
    clock of its own)."""
    clock = current_app.config.get("CLOCK")
    return clock() if clock else datetime.now(UTC)


def has_begun(label: str) -> bool:
    """Whether JST minute `label` has begun: a command's declare_by has passed, its readings_due has come."""
    return now() >= EPOCH + timedelta(minutes=minute_index(label))


# Commands.


@bp.route("/")
@login_required
def commands():
    return render_template("dr/commands.html", commands=list_commands(), fragment=wants_fragment())


@bp.route("/commands.json")
@login_required
def commands_json():
    return jsonify(list_commands())


@bp.route("/commands/new", methods=("GET", "POST"))
@roles_required("tso", what="issue DR commands")
def issue():
    acs = [o.name for o in current_app.extensions["gridledger"].topology.organisations if o.role == "ac"]
    errors, values = {}, request.form
    if request.method == "POST":
        command, errors = command_form(request.form, acs)
        if command:
            try:
                record, tx_id = g.ledger.submit("dr", "issue_command", _json(command))
            except Refused as refused:
                errors["form"] = refused.message
            else:
                flash(f"Command {record['id']} issued in transaction {tx_id}.", "committed")
                return redirect(url_for("dr.command", command_id=record["id"]))
    return render_template(
        "dr/issue.html",
        errors=errors,
        values=values,
        acs=acs,
        readings_due_minutes=current_app.extensions["gridledger"].topology.dr_readings_due_minutes,
    ), 400 if errors else 200


@bp.route("/commands/<command_id>")
@login_required
def command(command_id):
    record = get_command(command_id)
    declarations = g.ledger.evaluate("dr", "list_declarations", command_id)
    declared = {d["ra"] for d in declarations}
    can_declare = (
        g.user.role == "ra"
        and g.user.org not in declared
        and current_app.extensions["gridledger"].topology.organisation(g.user.org).parent in record["target_acs"]
    )
    return render_template(
        "dr/command.html",
        command=record,
        declarations=declarations,
        can_declare=can_declare and not has_begun(record["declare_by"]),
        slots=slot_count(record),
        fragment=wants_fragment(),
    )


@bp.route("/commands/<command_id>/declarations/<ra>")
@login_required
def declaration(command_id, ra):
    record = get_command(command_id)
    found = get_declaration(command_id, ra)
    return render_template("dr/declaration.html", command=record, declaration=found)


@bp.route("/commands/<command_id>/declarations/<ra>.json")
@login_required
def declaration_json(command_id, ra):
    return jsonify(get_declaration(command_id, ra))


# The RA's declaration form.


@bp.route("/declare", methods=("GET", "POST"))
@roles_required("ra", what="declare consumers for a DR command")
def declare():
    topology = current_app.extensions["gridledger"].topology
    ac = topology.organisation(g.user.org).parent
    open_commands = [c for c in list_commands() if ac in c["target_acs"]]
    own = g.ledger.evaluate("dr", "list_consumers").get(g.user.org, [])
    chosen_id = request.values.get("command", "")
    chosen = next((c for c in open_commands if c["id"] == chosen_id), None)
    errors = {}
    if request.method == "POST":
        declared = chosen is not None and any(
            d["ra"] == g.user.org for d in g.ledger.evaluate("dr", "list_declarations", chosen["id"])
        )
        declaration_value, errors = declaration_form(request.form, chosen, own, declared)
        if chosen_id and chosen is None:
            errors["command"] = f"Command {chosen_id[:64]!r} does not exist or does not target {ac}."
        if declaration_value and not errors:
            try:
                summary, tx_ids = g.ledger.declare(chosen["id"], declaration_value)
            except Refused as refused:
                errors["form"] = refused.message
            else:
                flash(
                    f"Declaration for command {summary['command']} committed: {summary['consumers']} consumer(s), "
                    f"{kwh(summary['expected_wh'], grouped=True)} kWh expected. Transaction {tx_ids[0]} (detail, private) "
                    f"and {tx_ids[1]} (summary, public).",
                    "committed",
                )
                return redirect(url_for("dr.command", command_id=summary["command"]))
    return render_template(
        "dr/declare.html",
        commands=open_commands,
        chosen=chosen,
        consumers=own,
        errors=errors,
        form=request.form,
        slots=slot_count(chosen) if chosen else None,
        ac=ac,
        product_baseline=baseline_method_text(chosen, topology) if chosen else None,
    ), 400 if errors else 200


# The comparison of results.


def _comparison_data():
    """Rows for the comparison screen from the query string: command, org, date, mismatches."""
    commands_ = list_commands()
    command_id = request.args.get("command") or (commands_[0]["id"] if commands_ else "")
    if not command_id:
        return None
    record = get_command(command_id)
    org = request.args.get("org", "")
    if org:
        require_visible(org)
    bc = get_aggregates(command_id)
    orgs = [a["org"] for a in bc["aggregates"]]
    with comparison.aggregation_system(current_app.extensions["gridledger"].as_db_path) as system:
        rows = comparison_of(bc, system).rows
    dates = sorted({r.date for r in rows})
    date = request.args.get("date", "")
    if date and date not in dates:
        abort(404, description=f"Command {command_id} has no minutes on {date[:10]!r}.")
    shown = comparison.filtered(rows, org, date, request.args.get("mismatches") == "1")
    return {
        "commands": commands_,
        "command": record,
        "org": org,
        "date": date,
        "dates": dates,
        "orgs": orgs,
        "rows": rows,
        "shown": shown,
        "as_available": system is not None,
        "mismatches_only": request.args.get("mismatches") == "1",
    }


@bp.route("/compare")
@roles_required("tso", "ac", "ra", what="compare BC and AS aggregates")
def compare():
    data = _comparison_data()
    if data is None:
        return render_template("dr/compare.html", empty=True, fragment=wants_fragment())
    shown = data["shown"]
    pages = max(1, -(-len(shown) // PAGE_ROWS))
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and 1 <= int(page) <= pages else 1
    chart_org = data["org"] or (data["orgs"][0] if data["orgs"] else "")
    chart_rows = [r for r in data["rows"] if r.org == chart_org and (not data["date"] or r.date == data["date"])]
    chart = line_chart(
        [
            Series("BC", [(r.time, r.bc_wh / WH_PER_KWH) for r in chart_rows], "bc"),
            Series("AS", [(r.time, None if r.as_wh is None else r.as_wh / WH_PER_KWH) for r in chart_rows], "as"),
        ],
        unit="kWh",
        marks=[i for i, r in enumerate(chart_rows) if not r.match],
        title=f"BC and AS aggregates of {chart_org}, command {data['command']['id']}",
    )
    query = {
        k: v
        for k, v in (
            ("command", data["command"]["id"]),
            ("org", data["org"]),
            ("date", data["date"]),
            ("mismatches", "1" if data["mismatches_only"] else ""),
        )
        if v
    }
    return render_template(
        "dr/compare.html",
        empty=False,
        **data,
        summaries=comparison.summaries(data["rows"]),
        page_rows=shown[(page - 1) * PAGE_ROWS : page * PAGE_ROWS],
        page=page,
        pages=pages,
        chart=chart,
        chart_org=chart_org,
        query=query,
        fragment=wants_fragment(),
    )


@bp.route("/compare.csv")
@roles_required("tso", "ac", "ra", what="compare BC and AS aggregates")
def compare_csv():
    data = _comparison_data()
    rows = data["shown"] if data else []
    name = f"comparison-{data['command']['id']}.csv" if data else "comparison.csv"
    return Response(
        comparison.to_csv(rows),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


@bp.route("/compare.json")
@roles_required("tso", "ac", "ra", what="compare BC and AS aggregates")
def compare_json():
    data = _comparison_data()
    if data is None:
        return jsonify({"command": None, "rows": [], "mismatches": 0})
    return jsonify(
        {
            "command": data["command"]["id"],
            "unit": "Wh",
            "rows": comparison.to_json(data["shown"]),
            "mismatches": sum(not r.match for r in data["shown"]),
        }
    )


# An AC's or RA's own figures.


def _org_data(command_id: str, org: str) -> dict:
    require_visible(org)
    record = get_command(command_id)
    aggregates = get_aggregates(command_id, org)["aggregates"][0]
    figure = next((f for f in get_settlement(command_id)["figures"] if f["org"] == org), None)
    return {"command": record, "org": org, "aggregate": aggregates, "figure": figure}


@bp.route("/commands/<command_id>/orgs/<org>")
@login_required
def org_view(command_id, org):
    data = _org_data(command_id, org)
    minutes = data["aggregate"]["minutes"]
    with comparison.aggregation_system(current_app.extensions["gridledger"].as_db_path) as system:
        theirs = system.aggregates(command_id, org) if system is not None else None
    series = [Series("BC", [(m["minute"][11:], m["wh"] / WH_PER_KWH) for m in minutes], "bc")]
    if theirs is not None:
        series.append(
            Series(
                "AS",
                [
                    (m["minute"][11:], theirs[m["minute"]] / WH_PER_KWH if m["minute"] in theirs else None)
                    for m in minutes
                ],
                "as",
            )
        )
    chart = line_chart(series, unit="kWh", title=f"Aggregate of {org}, command {command_id}")
    consumers = []
    if g.user.role != "consumer":
        visible_consumers = g.ledger.evaluate("dr", "list_consumers")
        topology = current_app.extensions["gridledger"].topology
        consumers = [
            c
            for ra, cs in visible_consumers.items()
            if ra == org or topology.organisation(ra).parent == org
            for c in cs
        ]
    return render_template("dr/org.html", **data, chart=chart, consumers=consumers, fragment=wants_fragment())


@bp.route("/commands/<command_id>/orgs/<org>.json")
@login_required
def org_json(command_id, org):
    data = _org_data(command_id, org)
    return jsonify(
        {
            "command": command_id,
            "org": org,
            "unit": "Wh",
            "minutes": data["aggregate"]["minutes"],
            "performance": data["figure"],
        }
    )


# Settlement and rewards.


@bp.route("/commands/<command_id>/settlement")
@roles_required("tso", "ac", "ra", what="see settlements")
def settlement(command_id):
    record = get_command(command_id)
    view = get_settlement(command_id)
    return render_template(
        "dr/settlement.html",
        command=record,
        settlement=view,
        readings_due=has_begun(record["readings_due"]),
        fragment=wants_fragment(),
    )


@bp.route("/commands/<command_id>/settlement.json")
@roles_required("tso", "ac", "ra", what="see settlements")
def settlement_json(command_id):
    get_command(command_id)
    return jsonify(get_settlement(command_id))


@bp.route("/commands/<command_id>/settle", methods=("POST",))
@roles_required("tso", what="settle DR commands")
def settle(command_id):
    get_command(command_id)
    submit_and_flash("dr", "settle", command_id, done=f"Command {command_id} settled", failed="Not settled")
    return redirect(url_for("dr.settlement", command_id=command_id))


# A consumer's readings.


@bp.route("/commands/<command_id>/readings/<consumer>")
@login_required
def readings(command_id, consumer):
    if g.user.role == "consumer" and consumer != g.user.consumer:
        abort(404, description=f"There are no readings of {consumer!r} for you to see.")
    record = get_command(command_id)
    found = get_readings(command_id, consumer)
    chart = line_chart(
        [Series("reading", [(r["minute"][11:], r["wh"] / WH_PER_KWH) for r in found["readings"]], "bc")],
        unit="kWh",
        title=f"Readings of {consumer}",
    )
    return render_template("dr/readings.html", command=record, readings=found, chart=chart, fragment=wants_fragment())


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"))
