"""Order books: exact unit conversion, the messages bad orders get, proposals' JSON form and the midpoint rule."""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solver.orders import InvalidOrders, Order, load_orders, parse_orders
from solver.proposals import Certificate, Proposal, Trade, midpoint_price


def order(**fields):
    base = {"id": "o1", "participant": "alice", "side": "sell", "price": 12.5, "quantity": 1, "time": 0}
    base.update(fields)
    return base


def test_json_numbers_become_whole_sen_and_wh_exactly():
    text = '{"orders": [{"id": 7, "participant": "a", "side": "buy", "price": 12.34, "quantity": 0.1, "time": 5}]}'
    assert load_orders(text) == [Order("7", "a", "buy", 1234, 100, 5)]


@pytest.mark.parametrize("price, sen", [(0, 0), (1000, 100000), (0.29, 29), ("8.10", 810), (Decimal("30.00"), 3000)])
def test_prices_convert_exactly_at_the_edges(price, sen):
    assert parse_orders([order(price=price)])[0].price == sen


def test_iso_times_become_unix_milliseconds():
    parsed = parse_orders([order(time="1970-01-01T09:00:00.250+09:00")])
    assert parsed[0].time == 250


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"id": 17, "price": -3}, "order 17: price must be between 0 and 1000 yen/kWh, got -3"),
        ({"price": 1000.01}, "order o1: price must be between 0 and 1000 yen/kWh, got 1000.01"),
        ({"price": 12.345}, "order o1: price must be a multiple of 0.01 yen/kWh, got 12.345"),
        ({"quantity": 0}, "order o1: quantity must be more than 0 and at most 10000 kWh, got 0"),
        ({"quantity": 1e9}, "order o1: quantity must be more than 0 and at most 10000 kWh, got 1000000000.0"),
        ({"quantity": 0.0005}, "order o1: quantity must be a multiple of 0.001 kWh (1 Wh), got 0.0005"),
        ({"quantity": True}, "order o1: quantity must be a number, got True"),
        ({"price": float("nan")}, "order o1: price must be a finite number, got nan"),
        ({"side": "bid"}, 'order o1: side must be "buy" or "sell", got \'bid\''),
        ({"participant": ""}, "order o1: participant must be a non-empty string, got ''"),
        ({"time": -1}, "order o1: time must not be negative, got -1"),
        (
            {"time": "2026-01-01T00:00:00"},
            "order o1: time must be Unix milliseconds or an ISO 8601 timestamp with a UTC",
        ),
        ({"time": 1.5}, "order o1: time must be Unix milliseconds or an ISO 8601 timestamp, got 1.5"),
    ],
)
def test_bad_orders_are_refused_with_a_message_naming_the_order(fields, message):
    with pytest.raises(InvalidOrders) as refused:
        parse_orders([order(**fields)])
    assert str(refused.value).startswith(message)


def test_missing_fields_duplicate_ids_and_bad_books_are_named():
    with pytest.raises(InvalidOrders, match="order o1: missing price, time"):
        parse_orders([{"id": "o1", "participant": "a", "side": "buy", "quantity": 1}])
    with pytest.raises(InvalidOrders, match="order o1: id is used by more than one order"):
        parse_orders([order(), order()])
    with pytest.raises(InvalidOrders, match="order at position 1: id must be"):
        parse_orders([order(), order(id=None)])
    with pytest.raises(InvalidOrders, match='must be an object with an "orders" list'):
        parse_orders({"bids": []})
    with pytest.raises(InvalidOrders, match="not valid JSON"):
        load_orders('{"orders": [')
    with pytest.raises(InvalidOrders, match="NaN, which is not a number"):
        load_orders('{"orders": [{"id": 1, "price": NaN}]}')


@given(ask=st.integers(0, 100000), spread=st.integers(0, 100000))
def test_midpoint_is_within_ask_and_bid_and_rounds_halves_to_even(ask, spread):
    bid = ask + spread
    price = midpoint_price(ask, bid)
    assert ask <= price <= bid
    assert price == round(Fraction(ask + bid, 2))  # Python's round() is round-half-to-even
    assert abs(2 * price - (ask + bid)) <= 1


def test_midpoint_halves_go_to_the_even_sen():
    assert [midpoint_price(1000, 1001), midpoint_price(1001, 1002), midpoint_price(1000, 1002)] == [1000, 1002, 1001]


def test_proposal_json_round_trips_and_its_digest_ignores_trade_order():
    trades = (Trade("s1", "b1", 1500, 1234), Trade("s2", "b1", 20, 1300))
    proposal = Proposal("maxmin", trades, Fraction(7, 3))
    assert Proposal.from_json(proposal.to_json()) == proposal
    assert Proposal("maxmin", trades[::-1], Fraction(7, 3)).digest() == proposal.digest()
    assert Proposal("welfare", trades, 5).digest() != proposal.digest()
    certified = Proposal("volume", trades, 1520, Certificate({"s1": 1, "s2": 0}, {"b1": 0}))
    assert Proposal.from_json(certified.to_json()) == certified


@settings(max_examples=20)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            st.sampled_from(["buy", "sell"]),
            st.decimals(0, 1000, places=2),
            st.decimals("0.001", 10000, places=3),
        ),
        max_size=6,
    )
)
def test_what_is_written_as_json_reads_back_the_same(rows):
    from solver.orders import order_to_json

    orders = parse_orders(
        [
            {"id": str(n), "participant": p, "side": side, "price": price, "quantity": quantity, "time": n}
            for n, (p, side, price, quantity) in enumerate(rows)
        ]
    )
    assert parse_orders([order_to_json(o) for o in orders]) == orders
