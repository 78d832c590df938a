"""Order books written the way a trader reads them: one row "id participant side price(sen/kWh) quantity(Wh) time"
per order."""

from solver.orders import Order


def order_book(*rows: str) -> list[Order]:
    """Orders from rows "id participant side price(sen/kWh) quantity(Wh) time", e.g. "s1 S1 sell 1000 1000 0"."""
    return [Order(i, p, side, int(price), int(wh), int(t)) for i, p, side, price, wh, t in map(str.split, rows)]
