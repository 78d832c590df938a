"""The continuous double auction baseline (B9): first come, first matched, at the resting order's price."""

from order_books import order_book

from solver.cda import continuous_double_auction
from solver.matching import solve


def trades_of(orders):
    return [(t.sell, t.buy, t.quantity, t.price) for t in continuous_double_auction(orders)]


def test_equal_prices_go_to_the_earlier_order_and_the_rest_rests():
    orders = order_book(
        "late A sell 1000 1000 5", "early B sell 1000 1000 1", "b1 C buy 1100 700 6", "b2 D buy 1100 700 7"
    )
    assert trades_of(orders) == [("early", "b1", 700, 1000), ("early", "b2", 300, 1000), ("late", "b2", 400, 1000)]


def test_an_arriving_order_takes_the_best_resting_prices_first_at_their_price():
    orders = order_book("s-dear A sell 1500 1000 1", "s-cheap B sell 1200 1000 2", "b C buy 1600 1500 3")
    assert trades_of(orders) == [("s-cheap", "b", 1000, 1200), ("s-dear", "b", 500, 1500)]


def test_a_sell_arriving_after_buys_trades_at_their_bids():
    orders = order_book("b-low A buy 1300 1000 0", "b-high B buy 1800 1000 1", "s C sell 1200 1500 2")
    assert trades_of(orders) == [("s", "b-high", 1000, 1800), ("s", "b-low", 500, 1300)]


def test_own_resting_orders_are_passed_over_but_keep_their_place():
    orders = order_book(
        "own A sell 900 1000 0", "other B sell 1000 1000 1", "a-buy A buy 1100 1000 2", "c-buy C buy 1100 1000 3"
    )
    assert trades_of(orders) == [("other", "a-buy", 1000, 1000), ("own", "c-buy", 1000, 900)]


def test_first_come_matching_can_miss_what_optimal_matching_finds():
    # The first buyer (bid 20) takes the only cheap seller; the later buyer (bid 12) finds nothing left it can
    # afford. An optimiser gives the cheap seller to the 12-yen buyer and the 19-yen seller to the 20-yen buyer.
    orders = order_book(
        "s-cheap A sell 1000 1000 0",
        "b-rich B buy 2000 1000 1",
        "s-dear C sell 1900 1000 2",
        "b-poor D buy 1200 1000 3",
    )
    assert sum(t.quantity for t in continuous_double_auction(orders)) == 1000
    assert solve(orders, "volume", b"x").value == 2000
