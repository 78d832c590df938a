"""Live updates: a Server-Sent Events stream fed by the chaincode's events, opened as the signed-in account.

    GET /events?topics=dr,market&command=1      text/event-stream; each message {"event", "command"|"gate"}

The stream reads chaincode events through the account's own gateway, so it sees what the ledger delivers to that
account, and passes on only the event's name and the command or gate it concerns (never its payload): a page
that hears of a change fetches its own region again, as the account, and the ledger decides what it shows.
ReadingsPosted and Settled are passed on only to accounts that may see the RA's figures.

Bounded: a stream ends after EVENT_STREAM_SECONDS (a timer closes it) and the browser reconnects, resuming after
the last event it received (Last-Event-ID = "block:transaction"); at most MAX_EVENT_STREAMS are open at once.
"""

import json
import threading

from flask import Blueprint, Response, abort, current_app, g, request, stream_with_context

from web.auth import login_required
from web.ledger import LedgerUnavailable

bp = Blueprint("events", __name__)

TOPICS = {
    "CommandIssued": "dr",
    "Declared": "dr",
    "ReadingsPosted": "dr",
    "Settled": "dr",
    "OrdersPlaced": "market",
    "OrderCancelled": "market",
    "GateClosed": "market",
    "ProposalAccepted": "market",
    "GateFinalised": "market",
    "MarketConfigured": "market",
}
_slots_lock = threading.Lock()


def _slots(app) -> threading.BoundedSemaphore:
    with _slots_lock:
        slots = app.extensions.get("gridledger-event-slots")
        if slots is None:
            slots = app.extensions["gridledger-event-slots"] = threading.BoundedSemaphore(
                app.config["MAX_EVENT_STREAMS"]
            )
        return slots


def notice(event, account, visible: list[str]) -> dict | None:
    """What an account is told of a chaincode event: its name and the command or gate, or None (nothing)."""
    topic = TOPICS.get(event.event_name)
    if topic is None:
        return None
    try:
        payload = json.loads(event.payload) if event.payload else {}
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    told = {"event": event.event_name, "topic": topic}
    if topic == "dr":
        command = payload.get("command") or payload.get("id")
        if event.event_name == "ReadingsPosted":
            ra = payload.get("ra")
            if ra not in visible and not (account.role == "consumer" and ra == account.org):
                return None
        if event.event_name == "Settled" and account.role == "consumer":
            return None
        told["command"] = command
    else:
        told["gate"] = payload.get("gate") or payload.get("id")
    return told


def _resume_point(last_event_id: str) -> tuple[int | None, str | None]:
    block, _, tx_id = (last_event_id or "").partition(":")
    if block.isdigit() and tx_id and len(tx_id) <= 128:
        return int(block), tx_id
    return None, None


@bp.route("/events")
@login_required
def stream():
    app = current_app._get_current_object()
    topics = {t for t in request.args.get("topics", "dr,market").split(",") if t in ("dr", "market")}
    command = request.args.get("command")
    gate = request.args.get("gate")
    slots = _slots(app)
    if not slots.acquire(blocking=False):
        abort(503, description="Too many live pages are open; this page will try again shortly.")
    account, visible = g.user, list(g.visible)
    backend = app.extensions["gridledger"]
    start_block, after_tx = _resume_point(request.headers.get("Last-Event-ID", ""))
    try:
        events = backend.session(account).dr.events(start_block=start_block, after_transaction_id=after_tx)
    except Exception as error:  # the gateway refused or is down: the browser retries later
        slots.release()
        raise LedgerUnavailable(str(error)) from error
    timer = threading.Timer(app.config["EVENT_STREAM_SECONDS"], events.close)
    timer.daemon = True
    ended = threading.Event()

    def end() -> None:
        """Idempotent: runs when the stream finishes, or when the response is closed before it started."""
        if not ended.is_set():
            ended.set()
            timer.cancel()
            events.close()
            slots.release()

    def generate():
        try:
            timer.start()
            yield "retry: 2000\n: live updates from the ledger\n\n"
            for event in events:
                told = notice(event, account, visible)
                if told is None or told["topic"] not in topics:
                    continue
                if command and told.get("command") not in (None, command):
                    continue
                if gate and told.get("gate") not in (None, gate):
                    continue
                yield f"id: {event.block_number}:{event.transaction_id}\ndata: {json.dumps(told)}\n\n"
        except Exception:  # the stream broke (peer gone, cancelled): the browser reconnects
            return
        finally:
            end()

    response = Response(
        stream_with_context(generate()),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
    response.call_on_close(end)
    return response
