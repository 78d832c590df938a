"""Solving gates: the fast path reaches the Pyomo model's optimum, the answers obey B6, and small gates give
the answers worked out by hand."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from order_books import order_book

from solver.cda import continuous_double_auction
from solver.matching import solve
from solver.orders import Order, own_orders_cross
from solver.proposals import objective_value, total_surplus, traded_volume
from solver.verify import verify

SEED = b"\x01gate"


@st.composite
def gates(draw, max_orders=10):
    """Small books with few participants (so many trade on both sides and could meet themselves), coarse
    prices (so bids and asks often tie) and repeated quantities and times (so equivalent orders appear)."""
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from("ABCD"),
                st.sampled_from(["buy", "sell"]),
                st.integers(16, 24).map(lambda p: p * 50),
                st.sampled_from([100, 250, 1000, 1750]),
                st.integers(0, 1),
            ),
            min_size=2,
            max_size=max_orders,
        )
    )
    return [
        Order(f"o{n}", participant, side, price, quantity, time)
        for n, (participant, side, price, quantity, time) in enumerate(rows)
    ]


def fast_and_model(orders, objective):
    return solve(orders, objective, SEED), solve(orders, objective, SEED, method="model")


def assert_trades_obey_the_rules(orders, trades):
    by_id = {o.id: o for o in orders}
    filled = {}
    for t in trades:
        sell, buy = by_id[t.sell], by_id[t.buy]
        assert sell.is_sell and not buy.is_sell
        assert sell.participant != buy.participant
        assert sell.price <= t.price <= buy.price
        assert t.quantity > 0
        for order_id in (t.sell, t.buy):
            filled[order_id] = filled.get(order_id, 0) + t.quantity
    assert all(filled[i] <= by_id[i].quantity for i in filled)


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("objective", ["volume", "welfare"])
@PROPERTY
@given(orders=gates())
def test_the_fast_path_equals_the_model_and_both_are_certified(objective, orders):
    fast, model = fast_and_model(orders, objective)
    assert fast.value == model.value
    if objective == "volume":  # the LP optimum in kWh is the whole Wh of the trades
        assert fast.value == round(model.bound * 1000)
    for solution in (fast, model):
        assert_trades_obey_the_rules(orders, solution.trades)
        assert verify(orders, SEED, objective, solution.proposal()).optimal


@PROPERTY
@given(gates())
def test_maxmin_fast_path_is_at_least_the_models_and_proven_where_b6_cannot_bind(orders):
    fast, model = fast_and_model(orders, "maxmin")
    for solution in (fast, model):
        assert_trades_obey_the_rules(orders, solution.trades)
        assert len({t.price for t in solution.trades}) <= 1  # one price for the gate
        verified = verify(orders, SEED, "maxmin", solution.proposal())
        assert verified.value == solution.value
    # Where B6 cannot bind, proven; elsewhere only a certificate that nothing can trade at a profit proves it.
    proven = not own_orders_cross(orders) or (not fast.trades and fast.certificate is not None)
    assert verify(orders, SEED, "maxmin", fast.proposal()).optimal == proven
    if not own_orders_cross(orders):  # both fill welfare's optimum; the model's may carry extra zero-gain kWh
        assert fast.surplus == model.surplus and fast.value >= model.value


@PROPERTY
@given(gates(max_orders=14))
def test_the_optimum_is_at_least_as_good_as_the_continuous_double_auction(orders):
    baseline = continuous_double_auction(orders)
    assert_trades_obey_the_rules(orders, baseline)
    by_id = {o.id: o for o in orders}
    assert solve(orders, "volume", SEED).value >= traded_volume(baseline)
    assert solve(orders, "welfare", SEED).value >= total_surplus(by_id, baseline)


def random_gate(size, seed):
    """A seeded book with realistic spreads (8-30 yen), 0.1-10 kWh, some participants on both sides."""
    import random

    rng = random.Random(seed)
    orders = []
    for n in range(size):
        participant = f"p{rng.randrange(size // 2)}"
        side = rng.choice(["buy", "sell"])
        centre = 1900 if side == "buy" else 1500
        price = min(max(int(round(rng.gauss(centre, 400), -1)), 800), 3000)
        orders.append(Order(f"o{n}", participant, side, price, rng.randint(1, 100) * 100, rng.randint(0, 3)))
    return orders


@pytest.mark.parametrize("objective", ["volume", "welfare", "maxmin"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_path_equals_the_model_on_larger_random_gates(objective, seed):
    orders = random_gate(80, seed)
    fast, model = fast_and_model(orders, objective)
    if objective == "maxmin":
        assert fast.value >= model.value and fast.surplus == model.surplus
    else:
        assert fast.value == model.value
        assert fast.certificate is not None and model.certificate is not None
    assert verify(orders, SEED, objective, fast.proposal()).value == fast.value


def test_a_participant_never_trades_with_itself():
    orders = order_book("a-sell A sell 1000 1000 0", "a-buy A buy 2000 1000 0", "b-buy B buy 1500 1000 0")
    for objective in ("volume", "welfare"):
        for method in ("fast", "model"):
            solution = solve(orders, objective, SEED, method=method)
            assert [(t.sell, t.buy, t.quantity, t.price) for t in solution.trades] == [("a-sell", "b-buy", 1000, 1250)]
    assert solve(orders, "welfare", SEED).value == 500 * 1000  # (15 - 10) yen/kWh x 1 kWh = 5 yen = 500000 millisen


def test_volume_finds_the_matching_that_greedy_first_come_choices_miss():
    # The cheap sells tie; if buy C takes B's energy, A's own buy is left with only A's sell. An augmenting path
    # moves C onto A's sell and lets B's go to A.
    orders = order_book(
        "b B sell 1000 1000 0", "a A sell 1000 1000 0", "c-buy C buy 1100 1000 0", "a-buy A buy 1200 1000 0"
    )
    solution = solve(orders, "volume", SEED)
    assert solution.value == 2000
    assert {(t.sell, t.buy) for t in solution.trades} == {("a", "c-buy"), ("b", "a-buy")}


def test_welfare_prefers_the_wide_spread_and_volume_the_extra_trade():
    # One seller at 10 yen; a buyer at 30 and one at 11. Welfare gives all of it to the 30-yen buyer, volume
    # cannot do better than the seller's 2 kWh either way; both obey the midpoint rule.
    orders = order_book("s S sell 1000 2000 0", "rich R buy 3000 2000 0", "poor P buy 1100 1000 0")
    welfare = solve(orders, "welfare", SEED)
    assert [(t.buy, t.quantity, t.price) for t in welfare.trades] == [("rich", 2000, 2000)]
    assert welfare.value == 20 * 2000 * 100 // 1  # 20 yen/kWh x 2 kWh = 40 yen
    assert solve(orders, "volume", SEED).value == 2000


def test_maxmin_shares_the_surplus_so_the_worst_off_gains_most():
    # Seller S (10 yen, 1 kWh) and buyer B (20 yen, 1 kWh): 10 yen of surplus over 2 kWh offered. Equal profit per
    # kWh offered means 5 yen each: price 15 yen, value 5 yen/kWh = 500 sen/kWh.
    orders = order_book("s S sell 1000 1000 0", "b B buy 2000 1000 0")
    solution = solve(orders, "maxmin", SEED)
    assert [(t.quantity, t.price) for t in solution.trades] == [(1000, 1500)]
    assert solution.value == 500
    assert solution.bound == pytest.approx(5.0)


def test_maxmin_clears_at_the_midpoint_of_the_marginal_ask_and_bid():
    # Two sellers share one buyer (20 yen, 2 kWh): S1 asks 10, S2 asks 18. Both trade (welfare's fills); the
    # marginal ask is 18 and the marginal bid 20, so both sell at 19 yen: S2 and B earn 1 yen/kWh, the worst.
    orders = order_book("s1 S1 sell 1000 1000 0", "s2 S2 sell 1800 1000 0", "b B buy 2000 2000 0")
    solution = solve(orders, "maxmin", SEED)
    assert {(t.sell, t.quantity, t.price) for t in solution.trades} == {("s1", 1000, 1900), ("s2", 1000, 1900)}
    assert solution.value == 100
    assert solution.surplus == (1000 + 200) * 1000
    assert objective_value("maxmin", orders, solution.trades) == solution.value
    assert verify(orders, SEED, "maxmin", solution.proposal()).optimal


def test_participants_who_cannot_profit_do_not_pin_maxmin_at_zero():
    # Z's ask equals the only bid: any trade of Z has zero surplus, so Z is not among the worst-off it ranks.
    orders = order_book("s S sell 1000 1000 0", "z Z sell 2000 1000 0", "b B buy 2000 1000 0")
    assert solve(orders, "maxmin", SEED).value == 500


def test_empty_and_one_sided_books_have_no_trades():
    sells_only = [Order("s", "S", "sell", 1000, 1000, 0)]
    crossing_none = [*sells_only, Order("b", "B", "buy", 900, 1000, 0)]
    for orders in ([], sells_only, crossing_none):
        for objective in ("volume", "welfare", "maxmin"):
            for method in ("fast", "model"):
                solution = solve(orders, objective, SEED, method=method)
                assert solution.trades == () and solution.value == 0


def test_solving_rejects_an_unknown_objective_or_method():
    with pytest.raises(ValueError, match="objective must be one of volume, welfare, maxmin"):
        solve([], "profit")
    with pytest.raises(ValueError, match="method must be one of fast, model"):
        solve([], "volume", method="guess")
