"""Orders of a trading gate: the Order type, exact unit conversion and validation of order books.

Inside the solver every amount is an integer: quantities in Wh, prices in hundredths of a yen (sen) per kWh.
Money follows from those: price (sen/kWh) x quantity (Wh) is in millisen (1/1000 sen = 1/100000 yen).
Conversions from the yen/kWh and kWh that people write are exact; more precision than 0.01 yen or 1 Wh is
refused rather than rounded, so every peer reads the same book.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from consortium.units import SEN_PER_YEN, WH_PER_KWH

SIDES = ("buy", "sell")
MAX_PRICE_YEN = 1000
MAX_QUANTITY_KWH = 10_000


class InvalidOrders(ValueError):
    """An order book that cannot be traded; the message says which order and what to change."""


@dataclass(frozen=True, slots=True)
class Order:
    """One order of a gate. price: sen per kWh; quantity: Wh; time: arrival, Unix milliseconds."""

    id: str
    participant: str
    side: str
    price: int
    quantity: int
    time: int

    @property
    def is_sell(self) -> bool:
        return self.side == "sell"

    def equivalence_key(self) -> tuple:
        """Orders with the same key differ only in who placed them (B7): the solver may not prefer one."""
        return (self.side, self.price, self.quantity, self.time)


def _exact_decimal(value, what: str, label: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise InvalidOrders(f"{label}: {what} must be a number, got {value!r}")
    try:
        # str() of a float is its shortest round-tripping form, so 0.1 stays 0.1, not 0.1000000000000000055.
        number = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise InvalidOrders(f"{label}: {what} must be a number, got {value!r}") from None
    if not number.is_finite():
        raise InvalidOrders(f"{label}: {what} must be a finite number, got {value!r}")
    return number


def _whole(number: Decimal, per_unit: int, refusal: str) -> int:
    """`number` in units of 1/per_unit, refused with `refusal` rather than rounded when it is not whole."""
    scaled = number * per_unit
    if scaled != scaled.to_integral_value():
        raise InvalidOrders(refusal)
    return int(scaled)


def price_from_yen(value, label: str = "order") -> int:
    """Yen per kWh (0 to 1000, at most 2 decimals) to sen per kWh."""
    yen = _exact_decimal(value, "price", label)
    if not 0 <= yen <= MAX_PRICE_YEN:
        raise InvalidOrders(f"{label}: price must be between 0 and {MAX_PRICE_YEN} yen/kWh, got {value}")
    return _whole(yen, SEN_PER_YEN, f"{label}: price must be a multiple of 0.01 yen/kWh, got {value}")


def quantity_from_kwh(value, label: str = "order") -> int:
    """kWh (more than 0, at most 10000, at most 3 decimals) to Wh."""
    kwh = _exact_decimal(value, "quantity", label)
    if not 0 < kwh <= MAX_QUANTITY_KWH:
        raise InvalidOrders(f"{label}: quantity must be more than 0 and at most {MAX_QUANTITY_KWH} kWh, got {value}")
    return _whole(kwh, WH_PER_KWH, f"{label}: quantity must be a multiple of 0.001 kWh (1 Wh), got {value}")


def time_from_json(value, label: str = "order") -> int:
    """Unix milliseconds from an integer, or from an ISO 8601 timestamp with a UTC offset."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise InvalidOrders(f"{label}: time must not be negative, got {value}")
        return value
    if isinstance(value, str):
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise InvalidOrders(
                f"{label}: time must be Unix milliseconds or an ISO 8601 timestamp with a UTC offset, got {value!r}"
            )
        since_epoch = moment - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
        if since_epoch.microseconds % 1000:
            raise InvalidOrders(f"{label}: time must be whole milliseconds, got {value!r}")
        return since_epoch // datetime.timedelta(milliseconds=1)
    raise InvalidOrders(f"{label}: time must be Unix milliseconds or an ISO 8601 timestamp, got {value!r}")


def order_from_json(item, position: int) -> Order:
    """One order from its JSON object; errors name the order by id (or by position before the id is known)."""
    if not isinstance(item, dict):
        raise InvalidOrders(f"order at position {position}: must be an object, got {item!r}")
    raw_id = item.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or raw_id == "":
        raise InvalidOrders(f"order at position {position}: id must be a non-empty string or an integer")
    label = f"order {raw_id}"
    missing = [field for field in ("participant", "side", "price", "quantity", "time") if field not in item]
    if missing:
        raise InvalidOrders(f"{label}: missing {', '.join(missing)}")
    participant = item["participant"]
    if not isinstance(participant, str) or not participant:
        raise InvalidOrders(f"{label}: participant must be a non-empty string, got {participant!r}")
    side = item["side"]
    if side not in SIDES:
        raise InvalidOrders(f'{label}: side must be "buy" or "sell", got {side!r}')
    return Order(
        id=str(raw_id),
        participant=participant,
        side=side,
        price=price_from_yen(item["price"], label),
        quantity=quantity_from_kwh(item["quantity"], label),
        time=time_from_json(item["time"], label),
    )


def order_from_ledger(record: dict) -> Order:
    """An order as the market contract stores it: {"id", "participant", "side", "price_sen_per_kwh",
    "quantity_wh", "time_ms", ...}, already in whole units."""
    return Order(
        record["id"],
        record["participant"],
        record["side"],
        record["price_sen_per_kwh"],
        record["quantity_wh"],
        record["time_ms"],
    )


def parse_orders(book) -> list[Order]:
    """Orders from a decoded book {"orders": [...]} (or the bare list); ids must be unique."""
    items = book.get("orders") if isinstance(book, dict) else book
    if not isinstance(items, list):
        raise InvalidOrders('the order book must be an object with an "orders" list')
    orders = [order_from_json(item, position) for position, item in enumerate(items)]
    check_unique_ids(orders)
    return orders


def load_orders(text: str) -> list[Order]:
    """Orders from JSON text; numbers are read as decimals so that 0.1 kWh is exactly 100 Wh."""

    def refuse_constant(name):
        raise InvalidOrders(f"the order book contains {name}, which is not a number")

    try:
        book = json.loads(text, parse_float=Decimal, parse_constant=refuse_constant)
    except json.JSONDecodeError as error:
        raise InvalidOrders(f"the order book is not valid JSON: {error}") from None
    return parse_orders(book)


def check_unique_ids(orders) -> None:
    seen = set()
    for order in orders:
        if order.id in seen:
            raise InvalidOrders(f"order {order.id}: id is used by more than one order")
        seen.add(order.id)


def compatible(sell: Order, buy: Order) -> bool:
    """A sell and a buy can trade: the ask is at most the bid, and they come from different participants (B6)."""
    return sell.price <= buy.price and sell.participant != buy.participant


def own_orders_cross(orders) -> bool:
    """Whether some participant has a sell whose ask is at most one of its own bids: only then can the rule that
    nobody trades with itself (B6) bind, and only then does the solver leave merit-order clearing (clearing.py)."""
    lowest_ask: dict = {}
    highest_bid: dict = {}
    for o in orders:
        if o.is_sell:
            if o.price < lowest_ask.get(o.participant, o.price + 1):
                lowest_ask[o.participant] = o.price
        elif o.price > highest_bid.get(o.participant, -1):
            highest_bid[o.participant] = o.price
    return any(ask <= highest_bid.get(participant, -1) for participant, ask in lowest_ask.items())


class LowestOfOthers:
    """The item with the lowest key, and the lowest-keyed item of any other participant: enough to answer "the
    lowest item not of participant p" for every p, in O(1) per item added (compatibility checks, pricing)."""

    def __init__(self):
        self.first = None
        self.second = None

    def add(self, key, item, participant) -> None:
        entry = (key, item, participant)
        if self.first is None or key < self.first[0]:
            if self.first is not None and self.first[2] != participant:
                self.second = self.first
            self.first = entry
        elif participant != self.first[2] and (self.second is None or key < self.second[0]):
            self.second = entry

    def lowest_not_of(self, participant):
        for entry in (self.first, self.second):
            if entry is not None and entry[2] != participant:
                return entry[1]
        return None


def order_to_json(order: Order) -> dict:
    """The JSON form parse_orders reads, with exact decimals (strings would also be accepted)."""
    return {
        "id": order.id,
        "participant": order.participant,
        "side": order.side,
        "price": float(Decimal(order.price) / SEN_PER_YEN),
        "quantity": float(Decimal(order.quantity) / WH_PER_KWH),
        "time": order.time,
    }
