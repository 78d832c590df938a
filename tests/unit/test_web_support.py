"""Shared by the web's unit tests (no tests here): the app over the embedded ledger with an identity per sign-in
name, seed figure 6 on the ledger and in the aggregation system, and helpers to sign in and post forms."""

import json
import re

import pytest
from werkzeug.security import generate_password_hash

from chaincode.server import build_chaincode
from chaincode.shim.testing import make_identity
from consortium import topology as topology_file
from gateway.embedded import EmbeddedLedger
from sim.aggregation_system import AggregationSystem
from sim.meters import Reading
from web import create_app
from web.backend import EmbeddedBackend, accounts_for
from web.ledger import LedgerSession

TOPOLOGY = topology_file.load()
COLLECTIONS = {
    name: {TOPOLOGY.organisation(m).msp_id for m in members} for name, members in TOPOLOGY.collections().items()
}
ACCOUNTS = accounts_for(TOPOLOGY)
IDENTITIES = {
    name: make_identity(TOPOLOGY.organisation(a.org).msp_id, f"meter-{name}", {"role": "meter", "consumer": name})
    if a.role == "consumer"
    else make_identity(TOPOLOGY.organisation(a.org).msp_id, f"User1@{name.lower()}")
    for name, a in ACCOUNTS.items()
}
PASSWORD = "a long test password"
# A cheap hash: the tests sign in hundreds of times.
USERS = {name: generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000") for name in ACCOUNTS}

# Seed figure 6: command 1, 2021-01-14 00:00-00:04 JST; AC(1) sums 4, 3, 5, 10, 2 kWh per minute.
FIGURE_6 = {
    "id": "1",
    "start": "2021-01-14T00:00",
    "end": "2021-01-14T00:04",
    "requested_kw": 600,
    "target_acs": ["AC1", "AC2"],
    "price_per_kwh": 2500,
    "baseline_minutes": 3,
}
WINDOW = [f"2021-01-14T00:0{m}" for m in range(5)]
C1_WH = [1000, 2000, 2000, 6000, 1000]
C2_WH = [3000, 1000, 3000, 4000, 1000]
C3_WH = [500, 500, 700, 700, 900]
AC1_KWH = ["4.000", "3.000", "5.000", "10.000", "2.000"]


@pytest.fixture
def ledger():
    ledger = EmbeddedLedger(build_chaincode(), COLLECTIONS)
    yield ledger
    ledger.close()


@pytest.fixture
def as_db(tmp_path):
    return tmp_path / "aggregation-system.sqlite"


@pytest.fixture
def backend(ledger, as_db):
    backend = EmbeddedBackend(ledger, TOPOLOGY, IDENTITIES, as_db)
    yield backend
    backend.close()


@pytest.fixture
def app(backend):
    return create_app(
        {"TESTING": True, "BACKEND": backend, "USERS": USERS, "SECRET_KEY": "test secret", "EVENT_STREAM_SECONDS": 1.0}
    )


@pytest.fixture
def client(app):
    return app.test_client()


def as_account(backend, name: str) -> LedgerSession:
    return LedgerSession(backend, backend.accounts[name])


def token(client) -> str:
    """The session's CSRF token (a page is fetched first so the session has one)."""
    with client.session_transaction() as session:
        if "csrf" in session:
            return session["csrf"]
    page = client.get("/auth/login")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def sign_in(client, name: str, password: str = PASSWORD):
    response = client.post("/auth/login", data={"name": name, "password": password, "csrf_token": token(client)})
    assert response.status_code == 302, response.text
    return client


def post(client, path: str, data: dict | None = None, **options):
    return client.post(path, data={**(data or {}), "csrf_token": token(client)}, **options)


def issue_figure_6(backend, **changes) -> dict:
    record, _ = as_account(backend, "TSO").submit("dr", "issue_command", json.dumps({**FIGURE_6, **changes}))
    return record


def declare(backend, ra: str, consumers: list[str], command: str = "1", slots: int = 5, expected: int = 100):
    as_account(backend, ra).declare(
        command,
        {"baseline_method": "mean-before", "consumers": {c: {"expected_wh": [expected] * slots} for c in consumers}},
    )


def post_figure_6_readings(backend, as_db, command: str = "1") -> None:
    """C1 (RA1), C2 (RA2), C3 (RA3) over the window, to the ledger and the aggregation system alike."""
    system = AggregationSystem(as_db, TOPOLOGY)
    for ra, consumer, values in (("RA1", "C1", C1_WH), ("RA2", "C2", C2_WH), ("RA3", "C3", C3_WH)):
        readings = [Reading(ra, consumer, minute, wh) for minute, wh in zip(WINDOW, values)]
        as_account(backend, ra).submit(
            "dr",
            "post_readings",
            command,
            transient={"readings": json.dumps([r.as_json() for r in readings])},
            private=True,
        )
        system.receive(command, readings)
    system.close()


def figure_6(backend, as_db, ra1_declares: bool = True) -> None:
    """The whole of seed figure 6 on the ledger and in the AS (RA1's declaration too, unless told not to)."""
    issue_figure_6(backend)
    if ra1_declares:
        declare(backend, "RA1", ["C1"])
    declare(backend, "RA2", ["C2"])
    declare(backend, "RA3", ["C3"])
    if ra1_declares:
        post_figure_6_readings(backend, as_db)
