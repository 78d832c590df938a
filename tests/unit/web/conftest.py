"""The web's unit-test fixtures over a fresh embedded ledger (on a clock the tests set) and the aggregation system's store beside it (helpers
and seed figure 6: web_pages.py):

    backend, app, client     the test harness: one app holding every identity, for tests of what each account sees
    server_app("RA1")        RA1's own server, as `gridledger web serve --org RA1` makes it: RA1's identities only
    server_client("RA1")     a test client of it
"""

import pytest
from meter_keys import OPERATOR_AUTHORITY
from seed_examples import ISSUED
from web_pages import HOLDER, IDENTITIES, TOPOLOGY, USERS

from chaincode.server import build_chaincode
from gateway.embedded import EmbeddedLedger
from web import create_app
from web.backend import EmbeddedBackend

COLLECTIONS = {
    name: {TOPOLOGY.organisation(m).msp_id for m in members} for name, members in TOPOLOGY.collections().items()
}


@pytest.fixture
def ledger():
    """On a clock the tests move (web_pages.at): seed figure 6's ISSUED until told otherwise."""
    chaincode = build_chaincode()
    chaincode.contracts["dr"].meter_authority = OPERATOR_AUTHORITY  # checks what the RAs relay
    ledger = EmbeddedLedger(chaincode, COLLECTIONS, clock=lambda: ISSUED)
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
def app(backend, ledger):
    return create_app(
        {
            "TESTING": True,
            "BACKEND": backend,
            "USERS": USERS,
            "SECRET_KEY": "test secret",
            "EVENT_STREAM_SECONDS": 1.0,
            "CLOCK": lambda: ledger.clock(),  # the pages go by the ledger's time
        }
    )


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def server_app(ledger, as_db):
    """server_app(org): org's server over the shared ledger, given only the identities org holds (one per org)."""
    apps, backends = {}, []

    def app_of(org: str):
        if org not in apps:
            held = {name: identity for name, identity in IDENTITIES.items() if HOLDER[name] == org}
            backend = EmbeddedBackend(ledger, TOPOLOGY, held, as_db, org=org)
            backends.append(backend)
            apps[org] = create_app(
                {
                    "TESTING": True,
                    "BACKEND": backend,
                    "USERS": {name: USERS[name] for name in held},
                    "SECRET_KEY": f"{org}'s own secret",
                    "EVENT_STREAM_SECONDS": 1.0,
                    "CLOCK": lambda: ledger.clock(),
                }
            )
        return apps[org]

    yield app_of
    for backend in backends:
        backend.close()


@pytest.fixture
def server_client(server_app):
    """server_client(org): a test client of org's server (a new one, with its own cookies, each call)."""
    return lambda org: server_app(org).test_client()
