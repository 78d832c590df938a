"""CSRF protection: every state-changing request must carry the session's token, and come from this site.

Forms put `{{ csrf_field() }}` in; scripts send the token in the X-CSRF-Token header. A request without it, with
a wrong one, or from another origin is refused with 400 and a message saying what to do, before any view runs.
"""

import hmac
import secrets
from urllib.parse import urlsplit

from flask import abort, request, session
from markupsafe import Markup, escape

SESSION_KEY = "csrf"
FORM_FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def csrf_token() -> str:
    if SESSION_KEY not in session:
        session[SESSION_KEY] = secrets.token_urlsafe(32)
    return session[SESSION_KEY]


def csrf_field() -> Markup:
    return Markup(f'<input type="hidden" name="{FORM_FIELD}" value="{escape(csrf_token())}">')


def new_token() -> None:
    """A fresh token (at sign-in), so one picked up before signing in is worth nothing after."""
    session[SESSION_KEY] = secrets.token_urlsafe(32)


def check_request() -> None:
    if request.method not in UNSAFE_METHODS:
        return
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        parts = urlsplit(origin)
        if (parts.scheme, parts.netloc) != (request.scheme, request.host):
            abort(
                400, description=f"This request came from another site ({origin}) and was refused; nothing was changed."
            )
    expected = session.get(SESSION_KEY)
    sent = request.form.get(FORM_FIELD) or request.headers.get(HEADER)
    if not expected or not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        abort(
            400,
            description="This form has expired or did not come from this site, so it was refused and "
            "nothing was changed. Reload the page and try again.",
        )


def init_app(app) -> None:
    app.before_request(check_request)
    app.jinja_env.globals["csrf_field"] = csrf_field
    app.jinja_env.globals["csrf_token"] = csrf_token
