"""The web's unit-test fixtures: the app over a fresh embedded ledger with an identity per sign-in name, its test
client, and the aggregation system's store beside it (helpers and seed figure 6: web_pages.py)."""

import pytest
from web_pages import IDENTITIES, TOPOLOGY, USERS

from chaincode.server import build_chaincode
from gateway.embedded import EmbeddedLedger
from web import create_app
from web.backend import EmbeddedBackend

COLLECTIONS = {
    name: {TOPOLOGY.organisation(m).msp_id for m in members} for name, members in TOPOLOGY.collections().items()
}


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
