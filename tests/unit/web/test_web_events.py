"""Live updates: the event stream reads chaincode events as the signed-in account, tells only the event's name
and its command or gate, passes readings events only to those who may see the RA's figures, ends by itself, and
resumes after the last event the browser received."""

import json
import threading
import time
from types import SimpleNamespace

import pytest
from seed_examples import ENDED
from web_pages import ACCOUNTS, at, declare, issue_figure_6, post_figure_6_readings, sign_in

from web.events import notice


def event(name, payload):
    return SimpleNamespace(event_name=name, payload=json.dumps(payload).encode(), block_number=3, transaction_id="ab")


@pytest.mark.parametrize(
    "name, visible, told",
    [
        ("TSO", ["AC1", "RA1", "RA2", "AC2", "RA3"], True),
        ("AC1", ["AC1", "RA1", "RA2"], True),
        ("RA1", ["RA1"], True),
        ("C1", [], True),
        ("RA2", ["RA2"], False),
        ("AC2", ["AC2", "RA3"], False),
        ("C2", [], False),
    ],
)
def test_readings_events_reach_only_those_who_may_see_the_ra(name, visible, told):
    posted = event(
        "ReadingsPosted", {"command": "1", "ra": "RA1", "readings": 5, "first_minute": "x", "last_minute": "y"}
    )
    result = notice(posted, ACCOUNTS[name], visible)
    assert (result == {"event": "ReadingsPosted", "topic": "dr", "command": "1"}) if told else result is None


def test_a_notice_carries_no_payload():
    told = notice(
        event("GateFinalised", {"id": "2026-11-23T10:00:00", "winner": {"org": "RA1"}, "seed": "ff"}),
        ACCOUNTS["C1"],
        [],
    )
    assert told == {"event": "GateFinalised", "topic": "market", "gate": "2026-11-23T10:00:00"}
    assert notice(event("SomethingElse", {}), ACCOUNTS["TSO"], []) is None
    assert notice(SimpleNamespace(event_name="Declared", payload=b"not json"), ACCOUNTS["TSO"], [])["command"] is None


def read_stream(client, url, action, headers=None):
    """The body of the event stream at `url` while `action` runs in another thread (the stream ends by itself)."""
    worker = threading.Thread(target=lambda: (time.sleep(0.2), action()))
    worker.start()
    body = client.get(url, headers=headers or {}).get_data(as_text=True)
    worker.join()
    return body


def messages(body):
    return [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]


def test_the_stream_tells_of_a_new_command_and_ends_by_itself(client, backend):
    sign_in(client, "AC1")
    began = time.monotonic()
    body = read_stream(client, "/events?topics=dr", lambda: issue_figure_6(backend))
    assert time.monotonic() - began < 5
    assert body.startswith("retry: 2000")
    assert messages(body) == [{"event": "CommandIssued", "topic": "dr", "command": "1"}]
    assert "\nid: " in body


def test_ra2s_stream_hears_nothing_of_ra1s_readings(client, backend, as_db):
    issue_figure_6(backend)
    for ra, consumer in (("RA1", "C1"), ("RA2", "C2"), ("RA3", "C3")):
        declare(backend, ra, [consumer])
    at(backend, ENDED)
    sign_in(client, "RA2")
    body = read_stream(client, "/events?topics=dr&command=1", lambda: post_figure_6_readings(backend, as_db))
    told = messages(body)
    assert told == [{"event": "ReadingsPosted", "topic": "dr", "command": "1"}]  # its own batch only


def test_the_stream_resumes_after_the_last_event_received(client, backend):
    sign_in(client, "TSO")
    first = read_stream(client, "/events?topics=dr", lambda: issue_figure_6(backend))
    last_id = [line[4:] for line in first.splitlines() if line.startswith("id: ")][-1]
    issue_figure_6(backend, id="2")  # while the browser was away
    again = read_stream(client, "/events?topics=dr", lambda: None, headers={"Last-Event-ID": last_id})
    assert messages(again) == [{"event": "CommandIssued", "topic": "dr", "command": "2"}]


def test_streams_are_bounded(app, client):
    app.config["MAX_EVENT_STREAMS"] = 0
    app.extensions.pop("gridledger-event-slots", None)
    sign_in(client, "TSO")
    response = client.get("/events")
    assert response.status_code == 503 and "Too many live pages" in response.get_json()["message"]


def test_the_stream_needs_sign_in(client):
    assert client.get("/events").status_code == 302
