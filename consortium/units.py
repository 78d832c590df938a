"""Units of the ledger and how people read them: JST minutes, Wh and kWh, sen and yen, millisen.

The ledger keeps integers only: energy in Wh, prices in sen (1/100 yen) per kWh, money in millisen
(1/1000 sen: sen/kWh × Wh), time in minutes since 1970-01-01T00:00Z labelled in JST. Conversions from what people
write are exact; more precision than the unit is refused, never rounded.
"""

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

JST = timezone(timedelta(hours=9), "JST")
WH_PER_KWH = 1000
SEN_PER_YEN = 100
MILLISEN_PER_YEN = 100_000
NO_FIGURE = "–"

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # minute and millisecond indices count from here
_MINUTE = re.compile(r"(2[0-9]{3})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2})(\+09:00)?")


def minute_index(text: str) -> int:
    """Minutes since 1970-01-01T00:00Z of a JST minute label; ValueError says what is wrong."""
    match = _MINUTE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"must be a JST minute YYYY-MM-DDTHH:MM (years 2000-2999), got {text!r}")
    year, month, day, hour, minute = (int(part) for part in match.groups()[:5])
    try:
        moment = datetime(year, month, day, hour, minute, tzinfo=JST)
    except ValueError as error:
        raise ValueError(f"is not a real time: {text!r} ({error})") from None
    return (moment - EPOCH) // timedelta(minutes=1)


def minute_label(index: int) -> str:
    """The JST label "YYYY-MM-DDTHH:MM" of a minute index; labels sort as the minutes do."""
    return (EPOCH + timedelta(minutes=index)).astimezone(JST).strftime("%Y-%m-%dT%H:%M")


def wh_from_kwh(text: str) -> int:
    """Whole Wh from kWh written with at most three decimals; ValueError says what is wrong."""
    try:
        wh = Decimal(str(text).strip()) * WH_PER_KWH
    except InvalidOperation:
        raise ValueError(f"must be a number of kWh, got {text!r}") from None
    if not wh.is_finite() or wh != wh.to_integral_value():
        raise ValueError(f"must be whole Wh (at most three decimals of kWh), got {text!r}")
    return int(wh)


def kwh(wh: int | None, grouped: bool = False, none: str = NO_FIGURE) -> str:
    """Wh as kWh with three decimals ("4.000", or "1,234.500" grouped); `none` for no figure."""
    if wh is None:
        return none
    return f"{Decimal(wh) / WH_PER_KWH:,.3f}" if grouped else f"{Decimal(wh) / WH_PER_KWH:.3f}"


def yen(sen: int | None, grouped: bool = False, none: str = NO_FIGURE) -> str:
    """Sen as yen with two decimals (a price in sen/kWh reads as yen/kWh); `none` for no figure."""
    if sen is None:
        return none
    return f"{Decimal(sen) / SEN_PER_YEN:,.2f}" if grouped else f"{Decimal(sen) / SEN_PER_YEN:.2f}"


def money(millisen: int | None, grouped: bool = False, none: str = NO_FIGURE) -> str:
    """Millisen (sen/kWh × Wh) as yen with two decimals; `none` for no figure."""
    if millisen is None:
        return none
    value = Decimal(millisen) / MILLISEN_PER_YEN
    return f"{value:,.2f}" if grouped else f"{value:.2f}"
