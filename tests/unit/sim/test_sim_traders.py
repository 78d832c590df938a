"""Simulated prosumers: repeatable orders in standard lots (so equivalent orders occur), valid for the contract,
and limits that move toward the last clearing price only for those who did not trade (B8)."""

from sim.traders import TraderFleet
from solver.orders import price_from_yen, quantity_from_kwh

CONSUMERS = [(f"RA{1 + n % 3}-S{n:05d}", f"RA{1 + n % 3}") for n in range(60)]


def test_orders_are_repeatable_valid_and_grouped_by_ra():
    first = TraderFleet.for_consumers(CONSUMERS, seed=4).orders_for_gate(0)
    assert first == TraderFleet.for_consumers(CONSUMERS, seed=4).orders_for_gate(0)
    assert first != TraderFleet.for_consumers(CONSUMERS, seed=5).orders_for_gate(0)
    assert set(first) == {"RA1", "RA2", "RA3"}
    for ra, orders in first.items():
        for order in orders:
            assert order["participant"].startswith(ra)
            price_from_yen(order["price"]), quantity_from_kwh(order["quantity"])
    sides = {o["side"] for orders in first.values() for o in orders}
    assert sides == {"buy", "sell"}


def test_equivalent_orders_occur_within_an_ra_batch():
    orders = TraderFleet.for_consumers(CONSUMERS, seed=1).orders_for_gate(0)
    keys = [(o["side"], o["price"], o["quantity"]) for batch in orders.values() for o in batch]
    assert len(set(keys)) < len(keys)


def test_who_did_not_trade_moves_toward_the_clearing_price():
    fleet = TraderFleet.for_consumers(CONSUMERS, seed=2)
    orders = [o for batch in fleet.orders_for_gate(0).values() for o in batch]
    sellers = [o["participant"] for o in orders if o["side"] == "sell"]
    buyer = next(o["participant"] for o in orders if o["side"] == "buy")
    by_id = {t.id: t for t in fleet.traders}
    by_id[sellers[0]].ask, by_id[sellers[1]].ask, by_id[buyer].bid = 20, 20, 8
    fleet.observe({sellers[1]}, clearing_yen=12.0)
    assert by_id[sellers[0]].ask == 20 - 2  # 30% of the 8 yen gap
    assert by_id[sellers[1]].ask == 20  # it traded: no reason to move
    assert by_id[buyer].bid == 8 + 1  # at least 1 yen
    fleet.observe(set(), None)  # no clearing price: nothing to adjust to
    assert (by_id[sellers[0]].ask, by_id[buyer].bid) == (18, 9)
