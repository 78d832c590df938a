"""What the web's unit tests share besides their fixtures (conftest.py): an identity per sign-in name, seed
figure 6 on the ledger and in the aggregation system, and helpers to sign in and post forms."""

import json
import re
from datetime import datetime

from seed_examples import COMMAND, ENDED, ISSUED, READINGS, SEED_METERS, WINDOW
from werkzeug.security import generate_password_hash

from chaincode.shim.testing import make_identity
from clients.dr import Reading, meter_signatures
from consortium import topology as topology_file
from sim.aggregation_system import AggregationSystem
from web.backend import accounts_for
from web.ledger import LedgerSession

TOPOLOGY = topology_file.load()
ACCOUNTS = accounts_for(TOPOLOGY)
IDENTITIES = {
    name: make_identity(TOPOLOGY.meter_operator_msp_id, f"meter-{name}", {"role": "meter", "consumer": name})
    if a.role == "consumer"
    else make_identity(TOPOLOGY.organisation(a.org).msp_id, f"User1@{name.lower()}")
    for name, a in ACCOUNTS.items()
}
# Who holds each identity's key, as the crypto lays it out (network.identities): the organisation whose MSP issued
# it (an organisation its own User1; a consumer's meter, the meter operator TSO). A server gets only these.
HOLDER = {
    name: next(o.name for o in TOPOLOGY.organisations if o.msp_id == identity.msp_id)
    for name, identity in IDENTITIES.items()
}
PASSWORD = "a long test password"
# A cheap hash: the tests sign in hundreds of times.
USERS = {name: generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000") for name in ACCOUNTS}


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


def at(backend, moment: datetime) -> None:
    """Moves the embedded ledger's clock (the time its clients stamp their proposals with) to `moment`."""
    backend.ledger.clock = lambda: moment


def issue_figure_6(backend, **changes) -> dict:
    record, _ = as_account(backend, "TSO").submit("dr", "issue_command", json.dumps({**COMMAND, **changes}))
    return record


def declare(backend, ra: str, consumers: list[str], command: str = "1", slots: int = 5, expected: int = 100):
    as_account(backend, ra).declare(
        command,
        {"baseline_method": "mean-before", "consumers": {c: {"expected_wh": [expected] * slots} for c in consumers}},
    )


def post_figure_6_readings(backend, as_db, command: str = "1") -> None:
    """C1 (RA1), C2 (RA2), C3 (RA3) over the window, to the ledger and the aggregation system alike."""
    system = AggregationSystem(as_db, TOPOLOGY)
    for consumer, (ra, values) in READINGS.items():
        readings = [Reading(ra, consumer, minute, wh) for minute, wh in zip(WINDOW, values, strict=True)]
        as_account(backend, ra).submit(
            "dr",
            "post_readings",
            command,
            transient={
                "readings": json.dumps([r.as_json() for r in readings]),
                "meter_signatures": json.dumps(meter_signatures(command, readings, SEED_METERS)),
            },
            private=True,
        )
        system.receive(command, readings)
    system.close()


def figure_6(backend, as_db, ra1_declares: bool = True) -> None:
    """The whole of seed figure 6 on the ledger and in the AS (RA1's declaration too, unless told not to), each
    step at its moment: issued and declared at ISSUED, the readings posted at ENDED, where the clock is left."""
    at(backend, ISSUED)
    issue_figure_6(backend)
    if ra1_declares:
        declare(backend, "RA1", ["C1"])
    declare(backend, "RA2", ["C2"])
    declare(backend, "RA3", ["C3"])
    at(backend, ENDED)
    if ra1_declares:
        post_figure_6_readings(backend, as_db)
