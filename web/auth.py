"""Sign-in and sign-out: one account per session, the ledger identity it acts as, and the views' guards."""

import functools
import hashlib

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from werkzeug.security import check_password_hash, generate_password_hash

from web import csrf
from web.backend import visible_orgs
from web.ledger import LedgerSession

bp = Blueprint("auth", __name__, url_prefix="/auth")

# A hash to check against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("no account has this password")


def _hash_fingerprint(password_hash: str) -> str:
    """Ties a session to the password it was opened with: resetting the password ends the session."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


@bp.route("/login", methods=("GET", "POST"))
def login():
    backend = current_app.extensions["gridledger"]
    errors = {}
    name = ""
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        password = request.form.get("password", "")
        if not name:
            errors["name"] = "Enter the name you sign in with, e.g. TSO, RA1 or C1."
        if not password:
            errors["password"] = "Enter your password."
        if not errors:
            password_hash = current_app.config["USERS"].get(name) if name in backend.accounts else None
            valid = check_password_hash(password_hash or _DUMMY_HASH, password)
            if not (password_hash and valid):
                errors["form"] = "Unknown name or wrong password."
        if not errors:
            session.clear()
            session["user"] = name
            session["key"] = _hash_fingerprint(current_app.config["USERS"][name])
            csrf.new_token()
            target = request.args.get("next", "")
            # Only paths of this site: never an open redirect.
            if not target.startswith("/") or target.startswith("//"):
                target = url_for("index")
            return redirect(target)
    return render_template(
        "auth/login.html", errors=errors, name=name, names=list(backend.accounts)
    ), 400 if errors else 200


@bp.route("/logout", methods=("POST",))
def logout():
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("auth.login"))


@bp.before_app_request
def load_signed_in_account():
    """g.user is the signed-in Account (or None), g.ledger its LedgerSession, g.visible its visible ACs/RAs."""
    g.user = g.ledger = None
    g.visible = []
    name = session.get("user")
    if name is None:
        return
    backend = current_app.extensions["gridledger"]
    account = backend.accounts.get(name)
    password_hash = current_app.config["USERS"].get(name)
    if account is None or password_hash is None or session.get("key") != _hash_fingerprint(password_hash):
        session.clear()
        return
    g.user = account
    g.ledger = LedgerSession(backend, account)
    g.visible = visible_orgs(backend.topology, account)


def login_required(view):
    @functools.wraps(view)
    def wrapped(**kwargs):
        if g.user is None:
            if request.accept_mimetypes.best == "application/json" or request.path.endswith((".json", ".csv")):
                abort(401)
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(**kwargs)

    return wrapped


def roles_required(*roles: str, what: str):
    """Only accounts of `roles` may use the view; others get 403 saying who may (`what`: "declare")."""

    def decorator(view):
        @functools.wraps(view)
        @login_required
        def wrapped(**kwargs):
            if g.user.role not in roles:
                names = {
                    "tso": "the TSO",
                    "ac": "aggregation coordinators",
                    "ra": "resource aggregators",
                    "consumer": "consumers",
                }
                abort(
                    403,
                    description=f"Only {' and '.join(names[r] for r in roles)} may {what}; you are signed "
                    f"in as {g.user.name}.",
                )
            return view(**kwargs)

        return wrapped

    return decorator
