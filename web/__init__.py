"""The gridledger web: Flask pages over the DR and market clients for the TSO, ACs, RAs and consumers (create_app).

    app = create_app({"ORG": "RA1"})      # RA1's server on the network of GRIDLEDGER_RUN_DIR (or run/): RA1's keys
                                          # only, its sign-ins in <run>/web/RA1 (web/users.py)
    app = create_app({"TESTING": True, "BACKEND": EmbeddedBackend(...), "USERS": {...}, "SECRET_KEY": "…"})

A server is one organisation's (web/backend.py): it signs only as the identities that organisation holds, so the
TSO's dashboard and an RA's form are different servers, each with its own session cookie and signing key.

Defaults, then the instance folder's config.py (unless testing), then blueprints: auth, dr, market, and the live
event stream. Every page and JSON endpoint reads the ledger as the signed-in account; see web/backend.py.
"""

import os
from pathlib import Path
from urllib.parse import urlencode

from flask import Flask, g, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

DEFAULT_RUN_DIR = Path(__file__).resolve().parent.parent / "run"


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        RUN_DIR=os.environ.get("GRIDLEDGER_RUN_DIR", str(DEFAULT_RUN_DIR)),
        ORG=os.environ.get("GRIDLEDGER_WEB_ORG"),  # whose server this is
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="gridledger_session",
        EVENT_STREAM_SECONDS=25.0,  # an event stream ends after this; the browser reconnects and resumes
        MAX_EVENT_STREAMS=32,  # streams open at once; each holds a server thread
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
    )
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)

    from web.backend import FabricBackend

    backend = app.config.get("BACKEND")
    if backend is None:
        if not app.config["ORG"]:
            raise ValueError("a web server is one organisation's: name it (ORG, or `gridledger web serve --org`)")
        backend = FabricBackend(app.config["RUN_DIR"], app.config["ORG"])
    app.config["ORG"] = org = backend.org
    app.extensions["gridledger"] = backend
    if org and (test_config or {}).get("SESSION_COOKIE_NAME") is None:
        # Browsers share cookies between ports of a host: each organisation's server needs a cookie of its own.
        app.config["SESSION_COOKIE_NAME"] = f"gridledger_{org.lower()}"
    if "USERS" not in app.config:
        from web.users import UsersFile, ensure_users

        ensure_users(app.config["RUN_DIR"], org, list(backend.accounts))
        app.config["USERS"] = UsersFile(app.config["RUN_DIR"], org)
    if not app.config.get("SECRET_KEY"):
        from web.users import secret_key

        app.config["SECRET_KEY"] = secret_key(app.config["RUN_DIR"], org)

    from web import auth, csrf, dr, events, market, pages, units

    csrf.init_app(app)
    pages.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(dr.bp)
    app.register_blueprint(market.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(units.bp)  # settlement per 30-minute unit (web/units.py)

    @app.route("/")
    @auth.login_required
    def index():
        """Each account's home: the TSO's comparison, an AC's or RA's commands, a consumer's market."""
        if g.user.role == "tso":
            return redirect(url_for("dr.compare"))
        if g.user.role == "consumer":
            return redirect(url_for("market.index"))
        return redirect(url_for("dr.commands"))

    @app.context_processor
    def server_org():
        return {"server_org": org}

    @app.template_global()
    def live_src() -> str:
        """This page's URL asking for its live region only (what live.js fetches again on a ledger event)."""
        args = request.args.to_dict(flat=False)
        args["fragment"] = ["1"]
        return f"{request.path}?{urlencode(args, doseq=True)}"

    @app.after_request
    def no_shared_caching(response):
        # Pages differ per account: no proxy or browser cache may hand one account's page to another.
        if not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
            response.headers["Vary"] = "Cookie"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"
        )
        return response

    @app.errorhandler(HTTPException)
    def http_error(error):
        wants_json = request.path.endswith(".json") or request.accept_mimetypes.best == "application/json"
        if wants_json or request.path.startswith("/events"):
            return jsonify({"error": error.name, "message": error.description}), error.code
        return render_template("error.html", error=error), error.code

    from clients.contract import Refused
    from web.ledger import LedgerUnavailable

    @app.errorhandler(LedgerUnavailable)
    def ledger_unavailable(error):
        if "no contract named" in str(error):
            message = (
                "This part of the consortium's chaincode is not deployed on the network yet; redeploy it "
                "with `gridledger network up`."
            )
        else:
            message = f"The ledger did not answer: {error}. Try again in a moment."
        if request.path.endswith(".json"):
            return jsonify({"error": "Service Unavailable", "message": message}), 503
        return render_template("error.html", error=None, title="The ledger is not answering", message=message), 503

    @app.errorhandler(Refused)
    def ledger_refused(error):
        # A refusal no view expected (the views turn the expected ones into 404s or form errors).
        if request.path.endswith(".json"):
            return jsonify({"error": "Refused", "message": error.message}), 400
        return render_template(
            "error.html", error=None, title="Refused by the ledger", message=f"The ledger refused: {error.message}"
        ), 400

    return app
