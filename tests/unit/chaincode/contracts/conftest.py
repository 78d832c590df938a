"""What the contract tests share: `new_ledger`, the gridledger chaincode on an in-memory world with the
consortium's collections, driven the way a peer runs transactions and checked the way Fabric would check them."""

import json
from datetime import datetime

import pytest

from chaincode.server import build_chaincode
from chaincode.shim import MemoryWorld, Response
from consortium import topology as topology_file

TOPOLOGY = topology_file.load()
COLLECTIONS = {
    name: {TOPOLOGY.organisation(m).msp_id for m in members} for name, members in TOPOLOGY.collections().items()
}


class Ledger:
    """One world and the chaincode. Functions name a transaction of `contract` unless told another; each runs at
    `when`, by default `now` (None: the moment it is sent)."""

    def __init__(self, contract: str, now: datetime | None):
        self.world = MemoryWorld(COLLECTIONS)
        self.chaincode = build_chaincode()
        self.contract = contract
        self.now = now

    def call(
        self, identity, function, *args, transient=None, peer=None, when=None, commit=True, contract=None
    ) -> Response:
        """Runs a transaction; commits it (unless told not to) when the chaincode answers OK. Arguments that are not
        strings travel as JSON, transient strings as UTF-8."""
        stub = self.world.new_stub(
            [f"{contract or self.contract}:{function}", *(a if isinstance(a, str) else json.dumps(a) for a in args)],
            identity=identity,
            peer_msp_id=peer,
            timestamp=when or self.now,
            transient={k: v.encode() if isinstance(v, str) else v for k, v in (transient or {}).items()},
        )
        response = self.chaincode.invoke(stub)
        if commit and response.ok:
            # A peer refuses writes from a transaction that ran a range query on private data; MemoryWorld does not.
            assert not (stub.writes and any(r.collection for r in stub.range_reads)), (
                f"{function} writes after a private range query: Fabric would refuse it"
            )
            assert self.world.commit(stub) == "VALID"
        return response

    def ok(self, identity, function, *args, **options):
        """The transaction's answer, decoded; it must succeed."""
        response = self.call(identity, function, *args, **options)
        assert response.ok, response.message
        return json.loads(response.payload) if response.payload else None

    def refused(self, identity, function, *args, **options) -> str:
        """The refusal's message; the transaction must fail with a "failed to …" and change nothing."""
        before = self.snapshot()
        response = self.call(identity, function, *args, **options)
        assert not response.ok, f"{function} was accepted"
        assert self.snapshot() == before, "a refused transaction changed the ledger"
        assert response.message.startswith("failed to"), response.message
        return response.message

    def snapshot(self):
        return self.world.public_state(), {name: self.world.private_state(name) for name in COLLECTIONS}


@pytest.fixture
def new_ledger():
    """new_ledger("dr") or new_ledger("market", now=T0): a fresh Ledger for one test."""

    def make(contract: str, now: datetime | None = None) -> Ledger:
        return Ledger(contract, now)

    return make
