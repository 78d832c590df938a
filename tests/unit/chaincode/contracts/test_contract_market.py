"""The market contract on the in-memory world: gates in time, sealed orders by identity, their reveals and the
seed's contributions checked against their commitments, closing with the seed, verified proposals, the best one
finalised with trades, positions and clearing prices; bad input changes nothing."""

import json
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from chaincode.contracts.market import gate_label
from chaincode.contracts.market_seed import book_digest, gate_seed, order_commitment, seed_commitment
from chaincode.shim.memory import MVCC_READ_CONFLICT
from chaincode.shim.testing import make_identity
from consortium import topology as topology_file
from solver import Certificate, Proposal, ProposalRejected, Trade, verify
from solver.fairness import rank_key
from solver.matching import solve
from solver.orders import order_from_ledger

TOPOLOGY = topology_file.load()
USERS = {org: make_identity(f"{org}MSP", f"User1@{org.lower()}") for org in TOPOLOGY.org_names}
METER_C1 = make_identity("TSOMSP", "meter-C1", {"role": "meter", "consumer": "C1"})
MATCHERS = ("RA1", "RA2", "RA3")
CONTENT = ("participant", "side", "price_sen_per_kwh", "quantity_wh", "salt")

# 10:00 JST, the start of a default (30-minute) gate; orders are revealed for 120 s after 10:30, contributions
# for 120 s after that at most. close() reveals everything at once: the gate closes 3 s after its end, and takes
# proposals for 120 s.
T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
GATE = "2026-11-23T10:00:00"
END = T0 + timedelta(minutes=30)
REVEAL_DEADLINE = END + timedelta(seconds=120)
SEED_DEADLINE = END + timedelta(seconds=240)
CLOSED = END + timedelta(seconds=3)
DEADLINE = CLOSED + timedelta(seconds=120)


class MarketLedger:
    """The market contract's ledger and what its participants keep to themselves: the salts of their sealed
    orders and the matchers' secrets, drawn from a seeded generator so that every run is the same."""

    def __init__(self, ledger, draw=None):
        self.ledger = ledger
        self.draw = draw or random.Random(0)
        self.held: dict[str, dict] = {}  # gate -> order id -> (identity, order, salt)
        self.secrets: dict[str, dict] = {}  # gate -> org -> secret

    def __getattr__(self, name):
        return getattr(self.ledger, name)

    def token(self, size: int) -> str:
        return self.draw.randbytes(size).hex()

    def place(self, identity, orders, when=None) -> dict:
        """Seals and places orders as the market client does; returns the contract's answer."""
        contents = [{k: v for k, v in o.items() if k != "ref"} if isinstance(o, dict) else o for o in orders]
        salts = [self.token(16) for _ in orders]
        sealed = [
            {
                "commitment": order_commitment(c, salt),
                **({"ref": o["ref"]} if isinstance(o, dict) and "ref" in o else {}),
            }
            for o, c, salt in zip(orders, contents, salts, strict=True)
        ]
        placed = self.ledger.ok(identity, "place_orders", sealed, when=when)
        for record, content, salt in zip(placed["orders"], contents, salts, strict=True):
            self.held.setdefault(placed["gate"], {})[record["id"]] = (identity, content, salt)
        return placed

    def commit_seeds(self, gate=GATE, when=T0, matchers=MATCHERS) -> None:
        for org in matchers:
            secret = self.secrets.setdefault(gate, {})[org] = self.token(32)
            self.ledger.ok(USERS[org], "commit_seed", gate, seed_commitment(gate, org, secret), when=when)

    def reveal_orders(self, gate=GATE, when=None, skip=()) -> None:
        """Every placer reveals its orders of the gate (but those in `skip`), one batch per identity."""
        batches: dict = {}
        for order_id, (identity, content, salt) in self.held.get(gate, {}).items():
            if order_id not in skip:
                batches.setdefault(identity, []).append({"id": order_id, "order": content, "salt": salt})
        for identity, reveals in batches.items():
            self.ledger.ok(identity, "reveal_orders", gate, reveals, when=when)

    def reveal_seeds(self, gate=GATE, when=None, skip=()) -> None:
        for org, secret in self.secrets.get(gate, {}).items():
            if org not in skip:
                self.ledger.ok(USERS[org], "reveal_seed", gate, secret, when=when)

    def close(self, gate=GATE, end=END, by="RA1") -> dict:
        """Reveals every order and contribution, then closes the gate 3 s after `end`."""
        self.reveal_orders(gate, when=at(end, 1))
        self.reveal_seeds(gate, when=at(end, 2))
        return self.ledger.ok(USERS[by], "close_gate", gate, when=at(end, 3))


@pytest.fixture
def ledger(new_ledger):
    return MarketLedger(new_ledger("market", now=T0))


def at(moment, seconds=0):
    return moment + timedelta(seconds=seconds)


def order(participant, side, price, quantity):
    return {"participant": participant, "side": side, "price": price, "quantity": quantity}


def place_book(ledger):
    """C1 (RA1) sells 3 kWh at 20 yen; C2 (RA2) buys 2 kWh at 26 yen; C3 (RA3) buys 2 kWh at 24 yen; the matchers
    commit to their contributions."""
    ledger.commit_seeds(when=at(T0, 1))
    ledger.place(USERS["RA1"], [order("C1", "sell", 20, 3)], when=at(T0, 10))
    ledger.place(USERS["RA2"], [order("C2", "buy", 26, 2)], when=at(T0, 20))
    ledger.place(USERS["RA3"], [order("C3", "buy", 24, 2)], when=at(T0, 30))


def solved(ledger, objective="welfare"):
    book = ledger.ok(USERS["RA1"], "get_book", GATE, when=at(CLOSED, 1))
    orders = [order_from_ledger(o) for o in book["orders"]]
    return orders, solve(orders, objective, bytes.fromhex(book["gate"]["seed"])).proposal()


def test_orders_go_into_the_gate_of_their_time_sealed_and_are_revealed_in_exact_units(ledger):
    placed = ledger.place(
        USERS["RA1"], [order("C1", "sell", 20.5, 1.25), order("C4", "buy", 30, 0.001)], when=at(T0, 59)
    )
    assert placed["gate"] == GATE
    first, second = placed["orders"]
    assert set(first) == {"id", "gate", "time_ms", "placed_by", "commitment"}
    assert (first["placed_by"], first["time_ms"]) == ("RA1", int(at(T0, 59).timestamp() * 1000))
    later = ledger.place(USERS["RA1"], [order("C1", "sell", 20, 1)], when=END)
    assert later["gate"] == "2026-11-23T10:30:00"
    ledger.reveal_orders(when=at(END, 1))
    book = {o["id"]: o for o in ledger.ok(USERS["AC2"], "get_book", GATE, when=at(END, 2))["orders"]}
    assert (book[first["id"]]["price_sen_per_kwh"], book[first["id"]]["quantity_wh"]) == (2050, 1250)
    assert book[second["id"]]["quantity_wh"] == 1


def test_the_open_book_and_the_ledger_hold_nothing_but_commitments(ledger):
    ledger.commit_seeds()
    ledger.place(USERS["RA1"], [order("C1", "sell", 27.13, 1.357)], when=at(T0, 10))
    ledger.place(METER_C1, [order("C1", "buy", 31.19, 2.468)], when=at(T0, 20))
    for reader in ("RA2", "RA3", "AC1", "TSO", "RA1"):
        book = ledger.ok(USERS[reader], "get_book", GATE, when=at(T0, 30))
        assert (book["gate"]["status"], book["gate"]["orders"], book["gate"]["revealed"]) == ("open", 2, 0)
        assert all(not set(CONTENT) & set(o) for o in book["orders"]), book["orders"]
    public = json.dumps({key: value.decode() for key, value in ledger.world.public_state().items()})
    # As JSON values (":1357"): bare digits would turn up by chance in the random hex of commitments and ids.
    for secret in ("27.13", ":1357", ":2713", "31.19", ":2468", ":3119", '"participant"'):
        assert secret not in public
    assert not any(s in public for s in ledger.secrets[GATE].values())


def test_who_may_place_and_reveal_orders_for_whom(ledger):
    assert "not by TSO" in ledger.refused(USERS["TSO"], "place_orders", [{"commitment": "a" * 64}])
    assert "not by AC1" in ledger.refused(USERS["AC1"], "place_orders", [{"commitment": "a" * 64}])
    mine = ledger.place(USERS["RA1"], [order("C1", "sell", 20, 1)], when=at(T0, 1))["orders"][0]["id"]
    not_mine = ledger.place(USERS["RA1"], [order("C2", "sell", 20, 1)], when=at(T0, 1))["orders"][0]["id"]
    nobody = ledger.place(USERS["RA1"], [order("NOBODY", "sell", 20, 1)], when=at(T0, 1))["orders"][0]["id"]
    metered = ledger.place(METER_C1, [order("C1", "buy", 20, 1)], when=at(T0, 2))["orders"][0]["id"]
    for_another = ledger.place(METER_C1, [order("C4", "buy", 20, 1)], when=at(T0, 2))["orders"][0]["id"]
    held = ledger.held[GATE]

    def reveal(identity, order_id):
        _, content, salt = held[order_id]
        return ledger.call(
            identity, "reveal_orders", GATE, [{"id": order_id, "order": content, "salt": salt}], when=END
        )

    assert "C2 is not a consumer of RA1" in reveal(USERS["RA1"], not_mine).message
    assert "NOBODY is not a consumer of RA1" in reveal(USERS["RA1"], nobody).message
    assert "this meter trades only for C1, not C4" in reveal(USERS["RA1"], for_another).message
    # Only the placer's organisation reveals (knowing the salt is not enough); a meter reveals only its own.
    assert "no sealed order" in reveal(USERS["RA2"], mine).message
    assert "no sealed order" in reveal(METER_C1, mine).message
    assert reveal(METER_C1, metered).ok
    assert reveal(USERS["RA1"], mine).ok
    closed = ledger.ok(USERS["RA1"], "close_gate", GATE, when=REVEAL_DEADLINE)
    assert (closed["orders"], closed["dropped"]) == (2, 3)


def test_consumers_registered_by_an_ra_trade_through_it(ledger):
    stub = ledger.world.new_stub(
        ["dr:register_consumers"],
        identity=USERS["RA2"],
        timestamp=T0,
        transient={"consumers": json.dumps(["H-17"]).encode()},
    )
    assert ledger.chaincode.invoke(stub).ok and ledger.world.commit(stub) == "VALID"
    ledger.place(USERS["RA2"], [order("H-17", "sell", 20, 1)])
    ledger.reveal_orders(when=END)
    assert [o["participant"] for o in ledger.ok(USERS["RA1"], "get_book", GATE, when=END)["orders"]] == ["H-17"]


@pytest.mark.parametrize(
    "bad, message",
    [
        (order("C1", "sell", -1, 1), "price must be between 0 and 1000"),
        (order("C1", "sell", 1000.01, 1), "price must be between"),
        (order("C1", "sell", 20.001, 1), "multiple of 0.01"),
        (order("C1", "sell", 20, 0), "quantity must be more than 0"),
        (order("C1", "sell", 20, 10001), "at most 10000"),
        (order("C1", "sell", 20, 0.0001), "multiple of 0.001"),
        (order("C1", "hold", 20, 1), 'side must be "buy" or "sell"'),
        (order("C1", "sell", "cheap", 1), "price must be a number"),
        ({"participant": "C1", "side": "sell", "price": 20}, "missing quantity"),
        ({**order("C1", "sell", 20, 1), "limit": True}, "unknown fields limit"),
        ("C1 sells", "must be an object"),
    ],
)
def test_a_bad_revealed_order_refuses_its_whole_batch_and_nothing_changes(ledger, bad, message):
    ledger.place(USERS["RA1"], [order("C1", "sell", 20, 1), bad])
    reveals = [{"id": i, "order": content, "salt": salt} for i, (_, content, salt) in ledger.held[GATE].items()]
    assert message in ledger.refused(USERS["RA1"], "reveal_orders", GATE, reveals, when=END)


@pytest.mark.parametrize(
    "bad, message",
    [
        (order("C1", "sell", 20, 1), "orders are sealed: send their commitments"),
        ({"commitment": "A" * 64}, "commitment must be a SHA-256 hex digest"),
        ({"commitment": "a" * 63}, "commitment must be a SHA-256 hex digest"),
        ({"commitment": "a" * 64, "ref": "a b"}, "ref must be"),
        ("sealed", "must be an object"),
    ],
)
def test_bad_sealed_orders_are_refused_whole_batch(ledger, bad, message):
    assert message in ledger.refused(USERS["RA1"], "place_orders", [{"commitment": "b" * 64}, bad])


def test_batch_size_and_malformed_json_are_refused(ledger):
    assert "1 to 1000 orders" in ledger.refused(USERS["RA1"], "place_orders", [])
    assert "1 to 1000 orders" in ledger.refused(USERS["RA1"], "place_orders", [{"commitment": "a" * 64}] * 1001)
    assert "must be a JSON array" in ledger.refused(USERS["RA1"], "place_orders", "[{")
    assert "1 to 1000 reveals" in ledger.refused(USERS["RA1"], "reveal_orders", GATE, [], when=END)


def test_cancel_only_own_orders_while_open(ledger):
    placed = ledger.place(USERS["RA1"], [order("C1", "sell", 20, 1), order("C4", "sell", 21, 1)])
    first, second = (o["id"] for o in placed["orders"])
    assert "no order" in ledger.refused(USERS["RA2"], "cancel_order", GATE, first)
    ledger.ok(USERS["RA1"], "cancel_order", GATE, first, when=at(T0, 5))
    assert [o["id"] for o in ledger.ok(USERS["RA1"], "get_book", GATE)["orders"]] == [second]
    assert "has ended" in ledger.refused(USERS["RA1"], "cancel_order", GATE, second, when=END)


# Sealed orders: commit before the end, reveal after, checked against the commitment (issue 13).


def reveal_of(ledger, order_id, **changes):
    _, content, salt = ledger.held[GATE][order_id]
    reveal = {"id": order_id, "order": content, "salt": salt}
    for name, value in changes.items():
        reveal[name] = {**content, **value} if name == "order" else value
    return [reveal]


def test_an_order_is_revealed_only_after_the_end_once_as_committed_and_in_time(ledger):
    order_id = ledger.place(USERS["RA1"], [order("C1", "sell", 20, 1)], when=at(T0, 1))["orders"][0]["id"]
    honest = reveal_of(ledger, order_id)
    assert "stay sealed until then" in ledger.refused(USERS["RA1"], "reveal_orders", GATE, honest, when=at(END, -1))
    wrong_price = reveal_of(ledger, order_id, order={"price": 19})
    assert "does not match its commitment" in ledger.refused(USERS["RA1"], "reveal_orders", GATE, wrong_price, when=END)
    wrong_salt = reveal_of(ledger, order_id, salt="00" * 16)
    assert "does not match its commitment" in ledger.refused(USERS["RA1"], "reveal_orders", GATE, wrong_salt, when=END)
    short_salt = reveal_of(ledger, order_id, salt="00" * 8)
    assert "salt must be 16 to 64 bytes" in ledger.refused(USERS["RA1"], "reveal_orders", GATE, short_salt, when=END)
    assert "revealed twice" in ledger.refused(USERS["RA1"], "reveal_orders", GATE, honest * 2, when=END)
    assert "took reveals until 2026-11-23T10:32:00+09:00" in ledger.refused(
        USERS["RA1"], "reveal_orders", GATE, honest, when=REVEAL_DEADLINE
    )
    ledger.ok(USERS["RA1"], "reveal_orders", GATE, honest, when=at(END, 1))
    assert "already revealed" in ledger.refused(USERS["RA1"], "reveal_orders", GATE, honest, when=at(END, 2))
    (revealed,) = ledger.ok(USERS["RA3"], "get_book", GATE, when=at(END, 2))["orders"]
    assert revealed["commitment"] == order_commitment(revealed and honest[0]["order"], revealed["salt"])


def test_unrevealed_orders_are_dropped_and_the_gate_closes_only_when_the_reveals_are_in_or_due(ledger):
    ledger.commit_seeds(when=at(T0, 1))
    kept = ledger.place(USERS["RA1"], [order("C1", "sell", 20, 1)], when=at(T0, 2))["orders"][0]["id"]
    dropped = ledger.place(USERS["RA2"], [order("C2", "buy", 25, 1)], when=at(T0, 3))["orders"][0]["id"]
    assert "open until" in ledger.refused(USERS["RA1"], "close_gate", GATE, when=at(END, -1))
    assert ledger.ok(USERS["TSO"], "get_gate", GATE, when=END)["status"] == "revealing"
    ledger.reveal_orders(when=at(END, 1), skip={dropped})
    assert "is revealing until 2026-11-23T10:32:00+09:00" in ledger.refused(
        USERS["RA1"], "close_gate", GATE, when=at(END, 2)
    )
    # The seed's contributions wait until every order is revealed or due.
    assert "contributions come after" in ledger.refused(
        USERS["RA2"], "reveal_seed", GATE, ledger.secrets[GATE]["RA2"], when=at(END, 2)
    )
    assert ledger.ok(USERS["TSO"], "get_gate", GATE, when=REVEAL_DEADLINE)["status"] == "drawing"
    ledger.reveal_seeds(when=REVEAL_DEADLINE)
    closed = ledger.ok(USERS["RA3"], "close_gate", GATE, when=at(REVEAL_DEADLINE, 1))
    assert (closed["orders"], closed["sealed"], closed["dropped"], closed["withheld"]) == (1, 2, 1, [])
    assert [o["id"] for o in ledger.ok(USERS["TSO"], "get_book", GATE, when=at(REVEAL_DEADLINE, 1))["orders"]] == [kept]
    assert "already closed" in ledger.refused(USERS["RA2"], "close_gate", GATE, when=at(REVEAL_DEADLINE, 2))
    # A client that backdates its timestamp into the closed gate is refused.
    assert "has closed" in ledger.refused(USERS["RA1"], "place_orders", [{"commitment": "a" * 64}], when=at(END, -5))


def test_the_seed_is_the_hash_of_the_revealed_book_and_contributions_every_peer_can_recompute(ledger):
    place_book(ledger)
    closed = ledger.close()
    assert (closed["status"], closed["orders"], closed["seed_fallback"]) == ("proposing", 3, False)
    # Anyone recomputes it from what the ledger shows after the close: the book and each revealed secret, which
    # opens its commitment.
    book = ledger.ok(USERS["AC2"], "get_book", GATE, when=at(CLOSED, 1))["orders"]
    shown = {c["org"]: c["secret"] for c in closed["contributions"]}
    assert shown == ledger.secrets[GATE]
    for c in closed["contributions"]:
        assert c["commitment"] == seed_commitment(GATE, c["org"], c["secret"])
    assert closed["seed"] == gate_seed(GATE, book_digest(book), list(shown.items())).hex()
    for o in book:
        content = {"participant": o["participant"], "side": o["side"]}
        assert o["commitment"] == order_commitment({**content, **_as_placed(ledger, o["id"])}, o["salt"])


def _as_placed(ledger, order_id):
    _, content, _ = ledger.held[GATE][order_id]
    return {"price": content["price"], "quantity": content["quantity"]}


def test_seed_contributions_are_committed_while_open_once_and_revealed_as_committed(ledger):
    secret = "11" * 32
    commitment = seed_commitment(GATE, "RA1", secret)
    assert "only the matchers" in ledger.refused(USERS["TSO"], "commit_seed", GATE, commitment)
    assert "a meter may only" in ledger.refused(METER_C1, "commit_seed", GATE, commitment)
    assert "SHA-256 hex digest" in ledger.refused(USERS["RA1"], "commit_seed", GATE, secret[:40])
    ledger.ok(USERS["RA1"], "commit_seed", GATE, commitment, when=at(T0, 1))
    assert "already committed" in ledger.refused(
        USERS["RA1"], "commit_seed", GATE, seed_commitment(GATE, "RA1", "22" * 32), when=at(T0, 2)
    )
    assert "has ended" in ledger.refused(
        USERS["RA2"], "commit_seed", GATE, seed_commitment(GATE, "RA2", secret), when=END
    )
    ledger.place(USERS["RA3"], [order("C3", "buy", 24, 2)], when=at(T0, 3))
    assert "is open until" in ledger.refused(USERS["RA1"], "reveal_seed", GATE, secret, when=at(END, -1))
    ledger.reveal_orders(when=END)
    assert "has not committed" in ledger.refused(USERS["RA2"], "reveal_seed", GATE, secret, when=at(END, 1))
    assert "does not match RA1's commitment" in ledger.refused(
        USERS["RA1"], "reveal_seed", GATE, "22" * 32, when=at(END, 1)
    )
    # A commitment names its matcher and gate: another matcher's secret, or one for another gate, does not open it.
    assert "does not match" in ledger.refused(USERS["RA1"], "reveal_seed", GATE, "11" * 31 + "12", when=at(END, 1))
    assert "secret must be 32 bytes" in ledger.refused(USERS["RA1"], "reveal_seed", GATE, "11" * 16, when=at(END, 1))
    assert "took contributions until 2026-11-23T10:34:00+09:00" in ledger.refused(
        USERS["RA1"], "reveal_seed", GATE, secret, when=SEED_DEADLINE
    )
    ledger.ok(USERS["RA1"], "reveal_seed", GATE, secret, when=at(END, 1))
    assert "already revealed" in ledger.refused(USERS["RA1"], "reveal_seed", GATE, secret, when=at(END, 2))
    closed = ledger.ok(USERS["RA2"], "close_gate", GATE, when=at(END, 2))  # every contribution is in: at once
    assert [c["org"] for c in closed["contributions"]] == ["RA1"]


def test_a_matcher_withholding_its_contribution_loses_its_orders_and_is_named(ledger):
    place_book(ledger)
    ledger.reveal_orders(when=at(END, 1))
    ledger.reveal_seeds(when=at(END, 2), skip={"RA3"})
    assert "is drawing until 2026-11-23T10:34:00+09:00" in ledger.refused(
        USERS["RA1"], "close_gate", GATE, when=at(END, 3)
    )
    closed = ledger.ok(USERS["RA1"], "close_gate", GATE, when=SEED_DEADLINE)
    assert (closed["withheld"], closed["excluded"], closed["orders"]) == (["RA3"], 1, 2)
    assert [c["org"] for c in closed["contributions"]] == ["RA1", "RA2"]
    book = ledger.ok(USERS["TSO"], "get_book", GATE, when=at(SEED_DEADLINE, 1))["orders"]
    assert {o["placed_by"] for o in book} == {"RA1", "RA2"}
    withheld_alone = [(org, s) for org, s in ledger.secrets[GATE].items() if org != "RA3"]
    assert closed["seed"] == gate_seed(GATE, book_digest(book), withheld_alone).hex()


def test_with_no_contribution_the_seed_falls_back_to_the_revealed_book(ledger):
    ledger.place(USERS["RA1"], [order("C1", "sell", 20, 1)], when=at(T0, 1))
    ledger.reveal_orders(when=END)
    closed = ledger.ok(USERS["RA1"], "close_gate", GATE, when=at(END, 1))
    assert (closed["seed_fallback"], closed["contributions"]) == (True, [])
    book = ledger.ok(USERS["TSO"], "get_book", GATE, when=at(END, 1))["orders"]
    assert closed["seed"] == gate_seed(GATE, book_digest(book), []).hex()


def test_an_order_endorsed_before_the_close_but_committed_after_it_is_invalidated(ledger):
    late = ledger.world.new_stub(
        ["market:place_orders", json.dumps([{"commitment": "a" * 64}])], identity=USERS["RA1"], timestamp=at(END, -1)
    )
    assert ledger.chaincode.invoke(late).ok
    ledger.ok(USERS["RA2"], "close_gate", GATE, when=END)
    assert ledger.world.commit(late) == MVCC_READ_CONFLICT


def test_a_reveal_endorsed_before_the_close_but_committed_after_it_is_invalidated(ledger):
    order_id = ledger.place(USERS["RA1"], [order("C1", "sell", 20, 1)], when=at(T0, 1))["orders"][0]["id"]
    late = ledger.world.new_stub(
        ["market:reveal_orders", GATE, json.dumps(reveal_of(ledger, order_id))],
        identity=USERS["RA1"],
        timestamp=at(REVEAL_DEADLINE, -1),
    )
    assert ledger.chaincode.invoke(late).ok
    ledger.ok(USERS["RA2"], "close_gate", GATE, when=REVEAL_DEADLINE)
    assert ledger.world.commit(late) == MVCC_READ_CONFLICT


def test_backdated_commitments_and_reveals_cannot_cross_a_reveal_that_has_committed(ledger):
    """Timestamps are the client's: the phases are held by markers the reveals write, not by the clock alone."""
    ledger.commit_seeds(when=at(T0, 1))
    first = ledger.place(USERS["RA1"], [order("C1", "sell", 20, 1)], when=at(T0, 2))["orders"][0]["id"]
    second = ledger.place(USERS["RA2"], [order("C2", "buy", 25, 1)], when=at(T0, 3))["orders"][0]["id"]
    endorsed_before = ledger.world.new_stub(
        ["market:place_orders", json.dumps([{"commitment": "c" * 64}])], identity=USERS["RA3"], timestamp=at(END, -1)
    )
    assert ledger.chaincode.invoke(endorsed_before).ok
    ledger.reveal_orders(when=at(END, 1), skip={second})
    assert ledger.world.commit(endorsed_before) == MVCC_READ_CONFLICT
    # Having read C1's order, RA3 backdates a commitment, a contribution or a cancellation into the open gate.
    backdated = at(END, -1)
    assert "its reveals have begun" in ledger.refused(
        USERS["RA3"], "place_orders", [{"commitment": "d" * 64}], when=backdated
    )
    assert "its reveals have begun" in ledger.refused(USERS["RA2"], "cancel_order", GATE, second, when=backdated)
    assert "its reveals have begun" in ledger.refused(
        USERS["RA3"], "commit_seed", GATE, seed_commitment(GATE, "RA3", "33" * 32), when=backdated
    )
    # Once a secret is revealed, RA2 cannot reveal its order after all, backdated or not.
    ledger.reveal_seeds(when=REVEAL_DEADLINE, skip={"RA2", "RA3"})
    assert "contributions are being revealed" in ledger.refused(
        USERS["RA2"], "reveal_orders", GATE, reveal_of(ledger, second), when=at(END, 2)
    )
    assert first in [o["id"] for o in ledger.ok(USERS["TSO"], "get_book", GATE, when=REVEAL_DEADLINE)["orders"]]


def test_an_empty_gate_is_final_when_it_closes(ledger):
    closed = ledger.ok(USERS["RA1"], "close_gate", GATE, when=END)
    assert (closed["status"], closed["orders"], closed["winner"]) == ("finalised", 0, None)


def test_proposals_are_verified_and_the_best_is_finalised(ledger):
    place_book(ledger)
    ledger.close()
    orders, best = solved(ledger)
    # C1 sells 2 kWh to C2 (surplus 6 yen/kWh) and 1 kWh to C3 (4 yen/kWh): 16 yen, in millisen.
    assert best.value == 600 * 2000 + 400 * 1000
    summary = ledger.ok(USERS["RA1"], "propose", GATE, best.to_json(), when=at(END, 5))
    assert (summary["org"], summary["value"], summary["optimal"]) == ("RA1", str(best.value), True)
    assert summary["value_display"] == 16.0

    # Nothing traded is not optimal here, and without a certificate nothing is accepted (see the attacks below).
    worse = Proposal("welfare", best.trades[:0], 0)
    with pytest.raises(ProposalRejected, match="must carry a certificate"):
        verify(orders, bytes.fromhex(ledger.ok(USERS["RA1"], "get_gate", GATE)["seed"]), "welfare", worse)
    assert "must carry a certificate" in ledger.refused(USERS["RA3"], "propose", GATE, worse.to_json(), when=at(END, 6))
    ledger.ok(USERS["RA3"], "propose", GATE, best.to_json(), when=at(END, 6))
    assert "already proposed" in ledger.refused(USERS["RA1"], "propose", GATE, best.to_json(), when=at(END, 7))
    assert "only the matchers" in ledger.refused(USERS["TSO"], "propose", GATE, best.to_json(), when=at(END, 7))
    lying = {**best.to_json(), "value": str(best.value + 1)}
    assert "claims welfare" in ledger.refused(USERS["RA2"], "propose", GATE, lying, when=at(END, 7))
    assert "malformed proposal" in ledger.refused(USERS["RA2"], "propose", GATE, {"trades": 3}, when=at(END, 7))
    assert "takes proposals until" in ledger.refused(USERS["RA2"], "propose", GATE, best.to_json(), when=DEADLINE)
    assert [p["org"] for p in ledger.ok(USERS["AC1"], "list_proposals", GATE, when=at(END, 8))] == ["RA1", "RA3"]

    assert "takes proposals until" in ledger.refused(USERS["TSO"], "finalise", GATE, when=at(DEADLINE, -1))
    final = ledger.ok(USERS["TSO"], "finalise", GATE, when=DEADLINE)
    assert (final["status"], final["winner"]["org"], final["proposals"]) == ("finalised", "RA1", 2)
    assert final["clearing"] == {
        "gate": GATE,
        "start": "2026-11-23T10:00:00+09:00",
        "start_ms": int(T0.timestamp() * 1000),
        "objective": "welfare",
        "volume_wh": 3000,
        "average_price_sen_per_kwh": 2267,
        "low_sen_per_kwh": 2200,
        "high_sen_per_kwh": 2300,
        "trades": 2,
    }
    trades = ledger.ok(USERS["RA2"], "get_trades", GATE, when=at(DEADLINE, 1))["trades"]
    assert sorted((t["seller"], t["buyer"], t["quantity_wh"], t["price_sen_per_kwh"]) for t in trades) == [
        ("C1", "C2", 2000, 2300),
        ("C1", "C3", 1000, 2200),
    ]
    assert ledger.ok(USERS["RA3"], "get_prices", when=at(DEADLINE, 1)) == [final["clearing"]]
    assert "already finalised" in ledger.refused(USERS["RA1"], "finalise", GATE, when=at(DEADLINE, 2))
    c2 = ledger.ok(USERS["RA2"], "get_positions", "C2", when=at(DEADLINE, 1))
    assert c2["totals"] == {
        "bought_wh": 2000,
        "sold_wh": 0,
        "paid_millisen": 2000 * 2300,
        "received_millisen": 0,
        "net_millisen": -2000 * 2300,
    }


def test_equal_proposals_tie_break_on_the_outcome_whatever_the_arrival_order(ledger):
    place_book(ledger)
    ledger.close()
    _, best = solved(ledger)
    ledger.ok(USERS["RA3"], "propose", GATE, best.to_json(), when=at(END, 5))
    ledger.ok(USERS["RA2"], "propose", GATE, best.to_json(), when=at(END, 6))
    final = ledger.ok(USERS["TSO"], "finalise", GATE, when=DEADLINE)
    assert final["winner"]["org"] == "RA2"  # the same outcome: the first by key, whoever arrived first


def test_no_proposal_finalises_without_trades(ledger):
    place_book(ledger)
    ledger.close()
    final = ledger.ok(USERS["RA1"], "finalise", GATE, when=DEADLINE)
    assert (final["winner"], final["clearing"], final["proposals"]) == (None, None, 0)
    assert ledger.ok(USERS["RA1"], "get_trades", GATE, when=DEADLINE)["trades"] == []


def test_positions_are_visible_to_the_group_of_the_participant_only(ledger):
    allowed = {"TSO", "AC1", "RA1"}
    for org in TOPOLOGY.org_names:
        response = ledger.call(USERS[org], "get_positions", "C1", commit=False)
        assert response.ok == (org in allowed), (org, response.message)
    assert ledger.call(METER_C1, "get_positions", "C1", commit=False).ok
    assert not ledger.call(METER_C1, "get_positions", "C4", commit=False).ok


def test_the_operator_configures_gates_from_the_next_second_and_objectives_per_gate(ledger):
    config = {"gate_seconds": 5, "proposal_seconds": 3, "objective": "volume"}
    assert "only the market operator TSO" in ledger.refused(USERS["RA1"], "configure", config)
    assert "gate_seconds must be a whole number" in ledger.refused(
        USERS["TSO"], "configure", {**config, "gate_seconds": 0}
    )
    assert "objective must be one of" in ledger.refused(USERS["TSO"], "configure", {**config, "objective": "most"})
    ledger.place(USERS["RA1"], [order("C1", "sell", 20, 1)], when=at(T0, 1))
    segment = ledger.ok(USERS["TSO"], "configure", config, when=at(T0, 100.4))
    assert segment["since"] == "2026-11-23T10:01:41"
    # The 10:00 gate was cut at 10:01:41; gates of 5 s follow.
    cut = ledger.ok(USERS["RA1"], "get_gate", GATE, when=at(T0, 102))
    assert (cut["end"], cut["status"]) == ("2026-11-23T10:01:41+09:00", "revealing")
    # Its reveals keep the old segment's windows (120 s); the new segment's are its proposal window, 3 s.
    assert cut["reveal_deadline"] == "2026-11-23T10:03:41+09:00"
    assert ledger.place(USERS["RA1"], [order("C1", "sell", 20, 1)], when=at(T0, 107))["gate"] == "2026-11-23T10:01:46"
    assert "no gate starts at 2026-11-23T10:01:42" in ledger.refused(
        USERS["RA1"], "close_gate", "2026-11-23T10:01:42", when=at(T0, 200)
    )
    ledger.ok(USERS["TSO"], "set_gate_objective", "2026-11-23T10:01:51", "maxmin", when=at(T0, 108))
    assert "already ended" in ledger.refused(
        USERS["TSO"], "set_gate_objective", "2026-11-23T10:01:46", "maxmin", when=at(T0, 112)
    )
    assert ledger.ok(USERS["RA1"], "close_gate", "2026-11-23T10:01:51", when=at(T0, 116))["objective"] == "maxmin"
    config_now = ledger.ok(USERS["AC1"], "get_config", when=at(T0, 116))
    assert (config_now["gate_seconds"], config_now["current_gate"]) == (5, "2026-11-23T10:01:56")
    gates = ledger.ok(USERS["AC1"], "list_gates", 5, when=at(T0, 116))
    # Open and not yet closed gates first (those with orders, however old), then closed ones.
    assert [(g["id"], g["status"]) for g in gates] == [
        ("2026-11-23T10:01:56", "open"),
        ("2026-11-23T10:01:46", "closing"),
        (GATE, "revealing"),
        ("2026-11-23T10:01:51", "finalised"),
    ]
    assert "reveal_seconds must be a whole number" in ledger.refused(
        USERS["TSO"], "configure", {**config, "reveal_seconds": 0}
    )
    assert ledger.ok(USERS["TSO"], "configure", {"reveal_seconds": 7}, when=at(T0, 120))["reveal_seconds"] == 7


def test_gate_ids_are_checked(ledger):
    assert "JST time" in ledger.refused(USERS["RA1"], "close_gate", "tomorrow", when=END)
    assert gate_label(int(T0.timestamp() * 1000)) == GATE


def test_maxmin_gates_verify_their_prices(ledger):
    ledger.ok(USERS["TSO"], "set_gate_objective", GATE, "maxmin")
    place_book(ledger)
    ledger.close()
    _, best = solved(ledger, "maxmin")
    summary = ledger.ok(USERS["RA2"], "propose", GATE, best.to_json(), when=at(END, 5))
    assert (
        summary["objective"] == "maxmin" and summary["optimal"]
    )  # proven since maxmin became welfare-optimal at one price (issue 13)
    final = ledger.ok(USERS["RA1"], "finalise", GATE, when=DEADLINE)
    assert final["winner"]["digest"] == best.digest()


def test_a_gate_nobody_closed_in_time_stays_listed_and_gets_its_whole_window_when_closed_late(ledger):
    place_book(ledger)
    ledger.reveal_orders(when=at(END, 1))
    ledger.reveal_seeds(when=at(END, 2))
    later = at(END, 3 * 1800 + 7)
    listed = ledger.ok(USERS["AC1"], "list_gates", 3, when=later)
    assert [(g["id"], g["status"]) for g in listed][-1] == (GATE, "closing")
    closed = ledger.ok(USERS["RA1"], "close_gate", GATE, when=later)
    assert closed["proposal_deadline"] == (later + timedelta(seconds=120)).astimezone(
        timezone(timedelta(hours=9))
    ).isoformat(timespec="seconds")
    assert GATE not in [
        g["id"] for g in ledger.ok(USERS["AC1"], "list_gates", 3, when=later) if g["status"] != "proposing"
    ]


def test_orders_with_a_ref_can_be_sent_again_safely(ledger):
    batch = [{**order("C1", "sell", 20, 1), "ref": "g7-C1"}, {**order("C4", "buy", 25, 1), "ref": "g7-C4"}]
    placed = ledger.place(USERS["RA1"], batch, when=at(T0, 1))
    assert [o["id"] for o in placed["orders"]] == ["RA1.g7-C1", "RA1.g7-C4"]
    again = [
        {"commitment": o["commitment"], "ref": ref} for o, ref in zip(placed["orders"], ["g7-C1", "g7-C4"], strict=True)
    ]
    assert "'g7-C1' is already placed" in ledger.refused(USERS["RA1"], "place_orders", again, when=at(T0, 2))
    meter = ledger.place(METER_C1, [{**order("C1", "buy", 20, 1), "ref": "g7-C1"}], when=at(T0, 3))
    assert meter["orders"][0]["id"] == "RA1.C1.g7-C1"
    twice = [{"commitment": "a" * 64, "ref": "x"}, {"commitment": "b" * 64, "ref": "x"}]
    assert "already placed" in ledger.refused(USERS["RA1"], "place_orders", twice)


# Proposals nobody can steer (issue 13): attacks of a dishonest matcher, refused at endorsement or gaining nothing.


def place_tie(ledger):
    """C1 (RA1) and C2 (RA2) each sell 1 kWh at 20 yen, at different times (so not equivalent); C3 (RA3) buys 1 kWh
    at 26 yen. Selling from either is optimal: 6 yen of surplus, at the midpoint 23 yen."""
    ledger.commit_seeds(when=at(T0, 1))
    ledger.place(USERS["RA1"], [{**order("C1", "sell", 20, 1), "ref": "a"}], when=at(T0, 10))
    ledger.place(USERS["RA2"], [{**order("C2", "sell", 20, 1), "ref": "b"}], when=at(T0, 20))
    ledger.place(USERS["RA3"], [{**order("C3", "buy", 26, 1), "ref": "c"}], when=at(T0, 30))
    return bytes.fromhex(ledger.close()["seed"])


def sale_from(seller, quantity=1000):
    """The welfare proposal selling the tied book's 1 kWh from seller to C3; C3's dual (600 sen/kWh) proves it."""
    return Proposal(
        "welfare", (Trade(seller, "RA3.c", quantity, 2300),), 600 * quantity, Certificate({}, {"RA3.c": 600})
    )


def test_a_split_an_uncertified_or_an_empty_proposal_is_refused_at_endorsement(ledger):
    place_tie(ledger)
    honest = sale_from("RA1.a").to_json()
    split = {
        **honest,
        "trades": [{**honest["trades"][0], "quantity_wh": 1}, {**honest["trades"][0], "quantity_wh": 999}],
    }
    assert "trade 1 repeats the pair (RA1.a, RA3.c) of trade 0: one trade per pair" in ledger.refused(
        USERS["RA2"], "propose", GATE, split, when=at(END, 5)
    )
    uncertified = {k: v for k, v in honest.items() if k != "certificate"}
    assert "must carry the LP-dual certificate" in ledger.refused(
        USERS["RA2"], "propose", GATE, uncertified, when=at(END, 5)
    )
    empty = Proposal("welfare", (), 0).to_json()
    assert "must carry a certificate proving that nothing can trade" in ledger.refused(
        USERS["RA2"], "propose", GATE, empty, when=at(END, 5)
    )
    zero_proof = {**empty, "certificate": {"sells": {}, "buys": {}}}
    assert "does not cover sell" in ledger.refused(USERS["RA2"], "propose", GATE, zero_proof, when=at(END, 5))
    assert ledger.ok(USERS["RA2"], "propose", GATE, honest, when=at(END, 6))["optimal"]


def test_an_empty_proposal_is_accepted_and_wins_only_where_it_is_provably_optimal(ledger):
    # The only bid is below the only ask: nothing can trade, and all-zero duals prove it.
    ledger.place(USERS["RA1"], [order("C1", "sell", 30, 1)], when=at(T0, 10))
    ledger.place(USERS["RA2"], [order("C2", "buy", 26, 1)], when=at(T0, 20))
    ledger.close()
    _, best = solved(ledger)
    assert best.trades == () and best.certificate is not None
    assert ledger.ok(USERS["RA3"], "propose", GATE, best.to_json(), when=at(END, 5))["optimal"]
    final = ledger.ok(USERS["TSO"], "finalise", GATE, when=DEADLINE)
    assert (final["winner"]["org"], final["winner"]["value"], final["clearing"]) == ("RA3", "0", None)


def tie_winner(new_ledger, proposals):
    """The seller whose sale a fresh gate finalises when the matchers propose (org, seller) in the given order."""
    ledger = MarketLedger(new_ledger("market", now=T0))
    place_tie(ledger)
    for second, (org, seller) in enumerate(proposals):
        ledger.ok(USERS[org], "propose", GATE, sale_from(seller).to_json(), when=at(END, 5 + second))
    ledger.ok(USERS["TSO"], "finalise", GATE, when=DEADLINE)
    (trade,) = ledger.ok(USERS["TSO"], "get_trades", GATE, when=at(DEADLINE, 1))["trades"]
    return trade["sell"]


def test_equal_value_proposals_finalise_the_same_winner_whatever_the_arrival_order(ledger, new_ledger):
    seed = place_tie(ledger)
    # The rule by hand: C3 is filled either way; the seller ranked higher under the seed (smaller SHA-256) wins.
    expected = min(("RA1.a", "RA2.b"), key=lambda order_id: rank_key(seed, order_id))
    arrivals = [
        [("RA1", "RA1.a"), ("RA2", "RA2.b")],
        [("RA2", "RA2.b"), ("RA1", "RA1.a")],
        [("RA1", "RA2.b"), ("RA2", "RA1.a")],
        [("RA3", "RA1.a"), ("RA1", "RA2.b"), ("RA2", "RA1.a")],
    ]
    assert {tie_winner(new_ledger, proposals) for proposals in arrivals} == {expected}


def test_a_matcher_grinding_its_proposal_does_not_change_the_winner(ledger):
    seed = place_tie(ledger)
    honest_seller = min(("RA1.a", "RA2.b"), key=lambda order_id: rank_key(seed, order_id))
    ground_seller = "RA2.b" if honest_seller == "RA1.a" else "RA1.a"
    ledger.ok(USERS["RA3"], "propose", GATE, sale_from(honest_seller).to_json(), when=at(END, 5))
    # The grinder tries other spellings of its outcome: split trades are refused; zero duals spelled out, JSON keys
    # in another order are accepted (one proposal per matcher) but compare the same.
    ground = sale_from(ground_seller).to_json()
    for first in (1, 250, 999):
        trade = ground["trades"][0]
        split = [{**trade, "quantity_wh": first}, {**trade, "quantity_wh": 1000 - first}]
        assert "one trade per pair" in ledger.refused(
            USERS["RA1"], "propose", GATE, {**ground, "trades": split}, when=at(END, 6)
        )
    spelled = {**ground, "certificate": {"sells": {"RA1.a": 0, "RA2.b": 0}, "buys": {"RA3.c": 600}}}
    ledger.ok(USERS["RA1"], "propose", GATE, dict(reversed(list(spelled.items()))), when=at(END, 6))
    ledger.ok(USERS["RA2"], "propose", GATE, ground, when=at(END, 7))
    final = ledger.ok(USERS["TSO"], "finalise", GATE, when=DEADLINE)
    assert final["winner"]["org"] == "RA3"
    assert [t["sell"] for t in ledger.ok(USERS["TSO"], "get_trades", GATE, when=at(DEADLINE, 1))["trades"]] == [
        honest_seller
    ]
