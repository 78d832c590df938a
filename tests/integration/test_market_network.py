"""The market on the real network, through the gateway as its users: sealed orders by identity, revealed after the
gate's end and checked against their commitments, a seed drawn from the matchers' commit-reveal, proposals
verified by every peer (a wrong, a split or an uncertified one refused), the best finalised; then matching
services and agents of RA1-RA3 running whole gates by themselves, sealing, revealing and drawing the seed, and
finalising the optimum: the result of an independent solve of the same book with the seed every peer recomputes."""

import json
import threading
import time

import pytest
from waiting import eventually

from chaincode.contracts.market_seed import book_digest, gate_seed, seed_commitment
from clients.contract import Refused
from clients.market import MarketClient
from gateway.errors import EndorseError, GatewayError
from network.connections import Sessions
from sim.market_rounds import start_matchers
from solver import Proposal, ProposalRejected, verify
from solver.matching import solve
from solver.orders import order_from_ledger

MATCHERS = ("RA1", "RA2", "RA3")
SEALED = {"id", "gate", "time_ms", "placed_by", "placed_by_meter", "commitment"}


@pytest.fixture(scope="module")
def sessions(fabric_network):
    return Sessions(str(fabric_network.root))


def market(sessions, who) -> MarketClient:
    return sessions(who).market


def orders_of(book):
    return [order_from_ledger(o) for o in book["orders"]]


def configure(sessions, gate_seconds, proposal_seconds, objective="welfare"):
    market(sessions, "TSO").configure(
        {"gate_seconds": gate_seconds, "proposal_seconds": proposal_seconds, "objective": objective}
    )


def wait_for_fresh_gate(client, seconds_left):
    """The id of the gate open now, once at least `seconds_left` of it remain."""
    while True:
        config = client.evaluate("get_config")
        if config["current_gate_end_ms"] / 1000 - time.time() >= seconds_left:
            return config["current_gate"], config["current_gate_end_ms"] / 1000
        time.sleep(0.2)


def sleep_until(moment_ms):
    time.sleep(max(0.0, moment_ms / 1000 - time.time() + 0.2))


def test_a_gate_by_hand_refuses_a_wrong_proposal_and_finalises_the_best(sessions):
    configure(sessions, gate_seconds=10, proposal_seconds=8)
    ra1, ra2, ra3 = (market(sessions, org) for org in MATCHERS)
    gate, _ = wait_for_fresh_gate(ra1, 8)
    secrets = {org: f"{index + 1:02x}" * 32 for index, org in enumerate(MATCHERS)}
    for org, secret in secrets.items():
        market(sessions, org).commit_seed(gate, seed_commitment(gate, org, secret))
    placed = ra1.place_orders([{"participant": "C1", "side": "sell", "price": 20, "quantity": 3}])
    assert placed["gate"] == gate
    ra2.place_orders([{"participant": "C2", "side": "buy", "price": 26, "quantity": 2}])
    meter = sessions("meter:C3").market
    meter.place_orders([{"participant": "C3", "side": "buy", "price": 24, "quantity": 2}])
    # Checked before sealing: nothing is sent. Whose consumer an order is for is checked at its reveal.
    with pytest.raises(Refused, match=r"multiple of 0\.01"):
        ra1.place_orders([{"participant": "C4", "side": "buy", "price": 24.001, "quantity": 2}])
    stray = ra1.place_orders([{"participant": "C2", "side": "buy", "price": 24, "quantity": 2}])["orders"][0]["id"]
    open_book = market(sessions, "RA2").evaluate("get_book", gate)
    assert open_book["gate"]["status"] == "open" and open_book["gate"]["orders"] == 4
    assert all(set(o) <= SEALED for o in open_book["orders"]), open_book["orders"]

    with pytest.raises(EndorseError, match="stay sealed until then"):
        ra1.submit("reveal_orders", gate, json.dumps([{"id": stray, "order": {}, "salt": "00" * 16}]))
    sleep_until(open_book["gate"]["end_ms"])
    revealed = ra1.reveal_orders(gate)
    assert "C2 is not a consumer of RA1" in revealed["refused"][stray] and len(revealed["revealed"]) == 1
    ra2.reveal_orders(gate)
    meter.reveal_orders(gate)
    # The stray order is never revealed: the contributions wait for its reveal deadline.
    with pytest.raises(EndorseError, match="contributions come after"):
        ra1.reveal_seed(gate, secrets["RA1"])
    sleep_until(open_book["gate"]["reveal_ms"])
    with pytest.raises(EndorseError, match="does not match RA1's commitment"):
        ra1.reveal_seed(gate, "ff" * 32)
    for org, secret in secrets.items():
        eventually(lambda o=org, s=secret: market(sessions, o).reveal_seed(gate, s), f"{org}'s reveal", 10)
    closed = eventually(lambda: ra3.submit("close_gate", gate), "the gate closed", 10)
    assert (closed["orders"], closed["dropped"], closed["status"]) == (3, 1, "proposing")
    book = eventually(lambda: market(sessions, "AC2").evaluate("get_book", gate), "the book at AC2")
    orders = orders_of(book)
    seed = bytes.fromhex(book["gate"]["seed"])
    assert seed == gate_seed(gate, book_digest(book["orders"]), list(secrets.items()))
    best = solve(orders, "welfare", seed).proposal()
    assert best.value == 600 * 2000 + 400 * 1000

    lying = {**best.to_json(), "value": str(best.value + 1)}
    with pytest.raises(EndorseError, match="claims welfare"):
        ra2.submit("propose", gate, json.dumps(lying), all_peers=True)
    accepted = eventually(
        lambda: ra1.submit("propose", gate, json.dumps(best.to_json()), all_peers=True), "the proposal accepted", 10
    )
    assert accepted["optimal"] and accepted["value"] == str(best.value)
    # Nothing traded is not optimal here: without a certificate proving it, every peer refuses it; a matcher
    # splitting a trade (to vary the proposal's bytes) is refused too.
    empty = Proposal("welfare", (), 0)
    with pytest.raises(ProposalRejected, match="must carry a certificate"):
        verify(orders, seed, "welfare", empty)
    with pytest.raises(EndorseError, match="must carry a certificate proving that nothing can trade"):
        ra3.submit("propose", gate, json.dumps(empty.to_json()), all_peers=True)
    first = best.to_json()["trades"][0]
    split = {
        **best.to_json(),
        "trades": [{**first, "quantity_wh": 1}, {**first, "quantity_wh": first["quantity_wh"] - 1}],
    }
    split["trades"] += best.to_json()["trades"][1:]
    with pytest.raises(EndorseError, match="one trade per pair"):
        ra3.submit("propose", gate, json.dumps(split), all_peers=True)
    ra3.submit("propose", gate, json.dumps(best.to_json()), all_peers=True)

    sleep_until(closed["deadline_ms"])
    final = ra2.submit("finalise", gate)
    assert (final["winner"]["org"], final["proposals"]) == ("RA1", 2)  # the same outcome: the first by key
    assert final["clearing"]["average_price_sen_per_kwh"] == 2267
    trades = eventually(lambda: market(sessions, "TSO").evaluate("get_trades", gate), "the trades")["trades"]
    assert sorted((t["seller"], t["buyer"], t["quantity_wh"], t["price_sen_per_kwh"]) for t in trades) == [
        ("C1", "C2", 2000, 2300),
        ("C1", "C3", 1000, 2200),
    ]
    c3 = eventually(lambda: sessions("meter:C3").market.evaluate("get_positions", "C3"), "C3's positions")
    # The network is shared with the other suites, which may have traded C3 before: this gate's row, and the
    # totals add up the rows.
    (this_gate,) = [row for row in c3["gates"] if row["gate"] == gate]
    assert (this_gate["bought_wh"], this_gate["paid_millisen"]) == (1000, 2200 * 1000)
    assert c3["totals"]["bought_wh"] == sum(row["bought_wh"] for row in c3["gates"])
    with pytest.raises(GatewayError, match="may not see the positions"):
        market(sessions, "RA2").evaluate("get_positions", "C1")


def test_matching_services_seal_reveal_draw_the_seed_and_finalise_the_optimum(sessions):
    configure(sessions, gate_seconds=8, proposal_seconds=5, objective="volume")
    stop = threading.Event()
    _services, threads = start_matchers(sessions, list(MATCHERS), stop, poll_seconds=1.0)
    try:
        ra1 = market(sessions, "RA1")
        gate, _ = wait_for_fresh_gate(ra1, 5)
        batch = [
            {"participant": p, "side": side, "price": price, "quantity": q}
            for p, side, price, q in [("C1", "sell", 15, 2), ("C4", "sell", 18, 1.5), ("C1", "buy", 30, 1)]
        ]
        ra1.place_orders(batch)
        market(sessions, "RA2").place_orders(
            [
                {"participant": "C2", "side": "buy", "price": 19, "quantity": 2},
                {"participant": "C5", "side": "buy", "price": 16, "quantity": 1},
            ]
        )
        market(sessions, "RA3").place_orders([{"participant": "C3", "side": "sell", "price": 14, "quantity": 1}])
        tso = market(sessions, "TSO")
        final = eventually(
            lambda: (lambda g: g if g["status"] == "finalised" else None)(tso.evaluate("get_gate", gate)),
            "the gate finalised",
            60,
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    assert [c["org"] for c in final["contributions"]] == list(MATCHERS)
    assert (final["withheld"], final["dropped"], final["orders"]) == ([], 0, 6)
    proposals = tso.evaluate("list_proposals", gate)
    assert sorted(p["org"] for p in proposals) == ["RA1", "RA2", "RA3"]
    book = tso.evaluate("get_book", gate)
    secrets = {c["org"]: c["secret"] for c in final["contributions"]}
    assert bytes.fromhex(final["seed"]) == gate_seed(gate, book_digest(book["orders"]), list(secrets.items()))
    independent = solve(orders_of(book), "volume", bytes.fromhex(final["seed"]))
    assert final["winner"]["value"] == str(independent.value)
    assert all(p["optimal"] for p in proposals)
    assert final["closed_by"] in ("RA1", "RA2", "RA3")
    prices = tso.evaluate("get_prices", "5")
    assert prices[-1]["gate"] == gate
    by_id = {o["id"]: o for o in book["orders"]}
    for t in tso.evaluate("get_trades", gate)["trades"]:
        assert by_id[t["sell"]]["price_sen_per_kwh"] <= t["price_sen_per_kwh"] <= by_id[t["buy"]]["price_sen_per_kwh"]
        assert t["seller"] != t["buyer"]
