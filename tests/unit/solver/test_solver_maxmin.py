"""Maxmin that nobody can game by inflating a quantity (issue 13), with one price for identical orders, proven
optimal by welfare's certificate: property tests over random books where no self-trade constraint can bind."""

import dataclasses

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from order_books import order_book

from solver.matching import solve
from solver.orders import Order, own_orders_cross
from solver.verify import verify

SEED = b"\x0bmaxmin"
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def one_sided_books(draw, max_orders=9):
    """Books whose participants each sell or buy, never both (so B6 cannot bind), some with several orders, coarse
    prices (ties at the margin) and few quantities (equivalent orders)."""
    orders = []
    for n in range(draw(st.integers(2, max_orders))):
        side = draw(st.sampled_from(["buy", "sell"]))
        participant = ("S" if side == "sell" else "B") + draw(st.sampled_from("123456"))
        orders.append(
            Order(
                f"o{n}",
                participant,
                side,
                draw(st.sampled_from([800, 1000, 1200, 1500, 1800, 2000, 2400])),
                draw(st.sampled_from([100, 500, 1000, 2000])),
                draw(st.integers(0, 1)),
            )
        )
    return orders


def fills_of(trades):
    filled = {}
    for t in trades:
        for order_id in (t.sell, t.buy):
            filled[order_id] = filled.get(order_id, 0) + t.quantity
    return filled


def utility(orders, trades, participant, true_quantity):
    """What participant really gains, its orders' true quantities given by true_quantity (order id -> Wh): a
    buyer's energy beyond its need is worth nothing; a seller buys in what it sold and does not have, at the
    price it sold at, so it earns only on what it has. Millisen."""
    by_id = {o.id: o for o in orders}
    gain = 0
    for t in trades:
        for order_id in (t.sell, t.buy):
            order = by_id[order_id]
            if order.participant != participant:
                continue
            fill = fills_of([x for x in trades if order_id in (x.sell, x.buy)])[order_id]
            held = min(fill, true_quantity[order_id])
            share = t.quantity / fill  # this trade's part of the order's fill
            if order.is_sell:
                gain += (t.price - order.price) * held * share
            else:
                gain += order.price * held * share - t.price * t.quantity
    return gain


def margin(order, price):
    return price - order.price if order.is_sell else order.price - price


@PROPERTY
@given(orders=one_sided_books(), which=st.integers(0, 8), extra=st.sampled_from([1, 100, 1000, 19_000]))
def test_inflating_a_quantity_gains_nothing(orders, which, extra):
    target = orders[which % len(orders)]
    inflated = [dataclasses.replace(o, quantity=o.quantity + extra) if o is target else o for o in orders]
    honest = solve(orders, "maxmin", SEED)
    gamed = solve(inflated, "maxmin", SEED)
    filled = fills_of(honest.trades).get(target.id, 0)

    # Beyond what it was filled, quantity is inert: the same trades at the same price for everyone.
    if filled < target.quantity:
        assert gamed.trades == honest.trades
    # Per kWh it never earns more: the uniform price does not move its way.
    if filled and gamed.trades:
        assert margin(target, gamed.trades[0].price) <= margin(target, honest.trades[0].price)
    # And so it never gains, counting what it really has or needs.
    true_quantity = {o.id: o.quantity for o in orders}
    before = utility(orders, honest.trades, target.participant, true_quantity)
    after = utility(inflated, gamed.trades, target.participant, true_quantity)
    assert after <= before


def test_the_buyer_of_issue_13_gains_nothing_by_asking_for_20_kwh_instead_of_1():
    # 2 kWh on offer, X needs 1 kWh and Y 1 kWh. Normalised per kWh offered, X asking for 20 kWh got a lower
    # price (its profit had to match 20 kWh); with one price it only pushes the price up against itself.
    book = order_book("s1 S1 sell 1000 1000 0", "s2 S2 sell 1200 1000 0", "x X buy 2000 1000 0", "y Y buy 1800 1000 0")
    honest = solve(book, "maxmin", SEED)
    assert {t.price for t in honest.trades} == {1500} and honest.volume == 2000
    greedy = [dataclasses.replace(o, quantity=20_000) if o.id == "x" else o for o in book]
    gamed = solve(greedy, "maxmin", SEED)
    true_quantity = {o.id: o.quantity for o in book}
    assert utility(greedy, gamed.trades, "X", true_quantity) <= utility(book, honest.trades, "X", true_quantity)
    assert {t.price for t in gamed.trades} == {1600}  # X takes all 2 kWh, the marginal bid is now its own


@PROPERTY
@given(orders=one_sided_books())
def test_orders_of_the_same_side_and_price_trade_at_the_same_price_and_it_is_proven_optimal(orders):
    assert not own_orders_cross(orders)
    solution = solve(orders, "maxmin", SEED)
    by_id = {o.id: o for o in orders}
    price_of: dict = {}
    for t in solution.trades:
        for order_id in (t.sell, t.buy):
            key = (by_id[order_id].side, by_id[order_id].price)
            assert price_of.setdefault(key, t.price) == t.price
    verified = verify(orders, SEED, "maxmin", solution.proposal())
    assert verified.optimal and verified.value == solution.value
    # Welfare's fills: the same surplus as the welfare optimum.
    assert solution.surplus == solve(orders, "welfare", SEED).value


@PROPERTY
@given(orders=one_sided_books(max_orders=7))
def test_no_uniform_price_over_welfare_optimal_fills_does_better(orders):
    """Brute force over every whole-sen price: with the fills of any welfare optimum (the fast path's and the Pyomo
    model's), no price gives the worst-off traded order more than the solver's value."""
    solution = solve(orders, "maxmin", SEED)
    by_id = {o.id: o for o in orders}
    for fills in (solve(orders, "welfare", SEED).trades, solve(orders, "welfare", SEED, method="model").trades):
        asks = [by_id[t.sell].price for t in fills]
        bids = [by_id[t.buy].price for t in fills]
        if not fills or max(asks) > min(bids):
            continue
        best = max(min(p - max(asks), min(bids) - p) for p in range(max(asks), min(bids) + 1))
        assert best <= solution.value
    assume(solution.trades)


def test_a_maxmin_proposal_at_another_price_is_verified_but_not_proven():
    book = order_book("s1 S1 sell 1000 1000 0", "s2 S2 sell 1800 1000 0", "b B buy 2000 2000 0")
    honest = solve(book, "maxmin", SEED).proposal()
    assert verify(book, SEED, "maxmin", honest).optimal and honest.value == 100
    shifted = dataclasses.replace(
        honest, trades=tuple(dataclasses.replace(t, price=1850) for t in honest.trades), value=50
    )
    verified = verify(book, SEED, "maxmin", shifted)
    assert verified.value == 50 and not verified.optimal
