"""The market pages over the embedded ledger with the market contract, on a clock the test moves: sealed order
entry (good, malformed, for someone else) and its reveal, the book (commitments only while the gate is open),
proposals with their objective values, the chosen block, clearing prices, positions (visible only to the
participant, its RA, its AC and the TSO), the operator's settings."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from web_pages import as_account, post, sign_in

from solver.matching import solve
from solver.orders import order_from_ledger

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 10:00 JST: a default 30-minute gate starts
GATE = "2026-11-23T10:00:00"
END = T0 + timedelta(minutes=30)
DEADLINE = END + timedelta(seconds=120)


@pytest.fixture
def clock(ledger):
    """The transactions' time: the embedded ledger's clock, which its clients stamp their proposals with."""

    def move_to(moment):
        ledger.clock = lambda: moment

    move_to(T0 + timedelta(seconds=10))
    return move_to


def place(client, participant, side, price, quantity):
    return post(
        client, "/market/orders", {"participant": participant, "side": side, "price": price, "quantity": quantity}
    )


def reveal(client, name):
    sign_in(client, name)
    response = post(client, f"/market/gates/{GATE}/reveal", follow_redirects=True)
    assert response.status_code == 200 and "of your orders revealed" in response.text, response.text
    return response


def book_of_three(client):
    """C1 (its own meter) sells 3 kWh at 20 yen; RA2 buys 2 kWh at 26 for C2; RA3 buys 2 kWh at 24 for C3."""
    for name, participant, side, price, quantity in (
        ("C1", "C1", "sell", "20", "3"),
        ("RA2", "C2", "buy", "26", "2"),
        ("RA3", "C3", "buy", "24", "2"),
    ):
        sign_in(client, name)
        response = place(client, participant, side, price, quantity)
        assert response.status_code == 302, response.text
        assert response.headers["Location"] == f"/market/gates/{GATE}"


def test_a_consumer_places_an_order_and_sees_it_in_the_gates_book(client, clock, ledger):
    sign_in(client, "C1")
    page = client.get("/market/")
    assert f'data-testid="current-gate">{GATE}<' in page.text
    assert '<option value="C1"' in page.text and '<option value="C4"' not in page.text
    response = place(client, "C1", "sell", "20.5", "1.5")
    gate = client.get(response.headers["Location"]).text
    assert f"placed in gate {GATE}, sealed until the gate ends, transaction" in gate
    assert "cancel</button>" in gate  # its own order, gate open
    # Nobody, its placer included, reads the order off the ledger while the gate is open: a commitment and a count.
    for reader in ("C1", "RA2", "TSO"):
        sign_in(client, reader)
        page = client.get(f"/market/gates/{GATE}").text
        assert 'data-testid="sealed"' in page and "20.50" not in page and "1.500" not in page
        book = client.get(f"/market/gates/{GATE}.json").get_json()
        assert book["gate"]["orders"] == 1 and "price_sen_per_kwh" not in book["orders"][0]
    clock(END + timedelta(seconds=1))
    gate = reveal(client, "C1").text
    assert "1 of your orders revealed." in gate and 'data-testid="gate-status">closing<' in gate
    assert '<td>C1</td><td class="num">20.50</td><td class="num">1.500</td>' in gate


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"price": "abc"}, "price", "Enter the price in yen/kWh"),
        ({"price": "-1"}, "price", "at least 0 and at most 1,000 yen/kWh"),
        ({"price": "20.123"}, "price", "at most 2 decimals"),
        ({"quantity": "0"}, "quantity", "more than 0 and at most 10,000 kWh"),
        ({"quantity": "1.0001"}, "quantity", "at most 3 decimals"),
        ({"side": "hold"}, "side", "Choose buy or sell."),
        ({"participant": "C2"}, "participant", "You may not place orders for &#39;C2&#39;."),
    ],
)
def test_malformed_orders_get_messages_beside_the_fields_and_commit_nothing(
    client, clock, ledger, data, field, message
):
    sign_in(client, "RA1")
    height = ledger.height
    response = post(
        client, "/market/orders", {"participant": "C1", "side": "sell", "price": "20", "quantity": "1", **data}
    )
    assert response.status_code == 400
    assert message in response.text.split(f'id="{field}-error" role="alert">', 1)[1].split("</span>", 1)[0]
    assert "No order was placed" in response.text
    assert ledger.height == height


@pytest.mark.parametrize("name", ["TSO", "AC1"])
def test_only_traders_place_orders(client, clock, name):
    sign_in(client, name)
    response = post(client, "/market/orders", {"participant": "C1", "side": "sell", "price": "20", "quantity": "1"})
    assert response.status_code == 403 and "Only resource aggregators and consumers may place orders" in response.text


def test_an_order_is_cancelled_by_its_placer_only(client, clock, ledger):
    sign_in(client, "C1")
    place(client, "C1", "sell", "20", "1")
    order_id = as_account(client.application.extensions["gridledger"], "TSO").evaluate("market", "get_book", GATE)[
        "orders"
    ][0]["id"]
    sign_in(client, "RA2")
    response = post(client, f"/market/gates/{GATE}/orders/{order_id}/cancel", follow_redirects=True)
    assert "Not cancelled: failed to cancel the order: no order" in response.text
    sign_in(client, "C1")
    response = post(client, f"/market/gates/{GATE}/orders/{order_id}/cancel", follow_redirects=True)
    assert f"Order {order_id} cancelled in transaction" in response.text
    assert 'data-testid="sealed"' not in response.text
    assert '<td colspan="4" class="empty">sealed until the gate ends</td>' in response.text


def test_proposals_the_chosen_block_and_clearing_prices(client, clock, backend):
    book_of_three(client)
    clock(END + timedelta(seconds=2))
    sign_in(client, "RA2")
    assert 'data-testid="gate-status">revealing<' in client.get(f"/market/gates/{GATE}").text
    for name in ("C1", "RA2", "RA3"):
        reveal(client, name)
    sign_in(client, "RA1")
    closed = post(client, f"/market/gates/{GATE}/close", follow_redirects=True)
    assert f"Gate {GATE} closed in transaction" in closed.text and 'data-testid="gate-status">proposing<' in closed.text
    book = as_account(backend, "RA1").evaluate("market", "get_book", GATE)
    orders = [order_from_ledger(o) for o in book["orders"]]
    best = solve(orders, "welfare", bytes.fromhex(book["gate"]["seed"])).proposal()
    clock(END + timedelta(seconds=5))
    as_account(backend, "RA1").submit("market", "propose", GATE, json.dumps(best.to_json()))
    as_account(backend, "RA2").submit("market", "propose", GATE, json.dumps(best.to_json()))
    page = client.get(f"/market/gates/{GATE}").text
    assert page.count('<td class="num">16.000 yen</td>') == 2  # welfare: (26-20) x 2 + (24-20) x 1 yen
    clock(DEADLINE + timedelta(seconds=3))  # closed 2 s after the end: its window ends 2 s later
    finalised = post(client, f"/market/gates/{GATE}/finalise", follow_redirects=True)
    assert f"Gate {GATE} finalised in transaction" in finalised.text
    assert "· chosen</strong>" in finalised.text and "The chosen block: 2 trades" in finalised.text
    sign_in(client, "C3")
    index = client.get("/market/").text
    assert "<svg" in index and "Clearing prices per gate" in index
    assert client.get("/market/prices.json").get_json()[0]["gate"] == GATE


def test_positions_are_visible_to_the_participant_its_ra_its_ac_and_the_tso_only(client, clock, backend):
    test_proposals_the_chosen_block_and_clearing_prices(client, clock, backend)
    for name, allowed in (
        ("C1", True),
        ("RA1", True),
        ("AC1", True),
        ("TSO", True),
        ("C4", False),
        ("RA2", False),
        ("AC2", False),
    ):
        sign_in(client, name)
        response = client.get("/market/positions/C1")
        assert response.status_code == (200 if allowed else 404), name
        if allowed:
            assert "Sold</dt><dd>3.000 kWh" in response.text


def test_the_operator_configures_the_market_and_others_may_not(client, clock):
    sign_in(client, "TSO")
    bad = post(client, "/market/config", {"gate_seconds": "0", "proposal_seconds": "x", "objective": "luck"})
    assert bad.status_code == 400
    assert 'id="config-gate_seconds-error"' in bad.text and 'id="config-objective-error"' in bad.text
    good = post(
        client,
        "/market/config",
        {"gate_seconds": "900", "proposal_seconds": "60", "objective": "volume"},
        follow_redirects=True,
    )
    assert "gates of 900 s, objective volume" in good.text
    sign_in(client, "RA1")
    assert (
        post(
            client, "/market/config", {"gate_seconds": "900", "proposal_seconds": "60", "objective": "volume"}
        ).status_code
        == 403
    )


def test_unknown_gates_are_404(client, clock):
    sign_in(client, "TSO")
    assert client.get("/market/gates/yesterday").status_code == 404
    assert client.get("/market/gates/2026-11-23T10:07:00").status_code == 404
    assert client.get("/market/gates/yesterday.json").get_json()["error"] == "Not Found"
