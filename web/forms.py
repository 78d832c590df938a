"""Reading and checking the web's forms: each returns the value to commit and {field: message} for what is wrong.

Messages say what was received and what is expected, and sit beside their field; nothing is committed while any
remain. The ledger checks everything again (the chaincode never trusts the client): these checks are for people.
"""

import re
from decimal import Decimal, InvalidOperation

from chaincode.contracts.dr import BASELINE_METHODS, MAX_READING_WH
from clients.dr import slot_count
from consortium.units import SEN_PER_YEN, WH_PER_KWH, minute_index

MAX_FIELD_CHARS = 20_000
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def parse_kwh_per_slot(text: str, slots: int, high_wh: int) -> tuple[list[int] | None, str | None]:
    """kWh per slot, as Wh: one number for every slot, or one per slot separated by commas or spaces."""
    text = (text or "").strip()
    if not text:
        return None, "Enter kWh per slot: one number for every slot, or one per slot separated by commas."
    if len(text) > MAX_FIELD_CHARS:
        return None, f"Too long ({len(text)} characters)."
    parts = [p for p in re.split(r"[,\s]+", text) if p]
    if len(parts) not in (1, slots):
        return None, (f"Give one value for every slot or exactly {slots} values (one per slot); got {len(parts)}.")
    values = []
    for position, part in enumerate(parts, 1):
        where = f"value {position} ({part!r})" if len(parts) > 1 else f"{part!r}"
        try:
            number = Decimal(part)
        except InvalidOperation:
            return None, f"{where} is not a number of kWh."
        if not number.is_finite():
            return None, f"{where} is not a number of kWh."
        wh = number * WH_PER_KWH
        if wh != wh.to_integral_value():
            return None, f"{where}: use at most three decimals (whole Wh)."
        if not 0 <= wh <= high_wh:
            return None, f"{where} must be between 0 and {Decimal(high_wh) / WH_PER_KWH:g} kWh per slot."
        values.append(int(wh))
    return (values * slots if len(values) == 1 else values), None


def declaration_form(
    form, command: dict | None, own_consumers: list[str], declared_already: bool
) -> tuple[dict | None, dict[str, str]]:
    """The RA declaration form → the dr contract's declaration ({"baseline_method", "consumers": {id: {
    "expected_wh": [...], "baseline_wh": [...]}}}) and the errors by field name."""
    errors: dict[str, str] = {}
    if command is None:
        errors["command"] = "Choose the command you answer."
    elif declared_already:
        errors["command"] = f"You have already declared for command {command['id']}; a declaration is final."
    method = form.get("baseline_method", "")
    if method not in BASELINE_METHODS:
        errors["baseline_method"] = f"Choose a baseline method: {' or '.join(BASELINE_METHODS)}."
    chosen = form.getlist("consumers")
    unknown = [c for c in chosen if c not in own_consumers]
    if unknown:
        shown = ", ".join(repr(c[:40]) for c in unknown[:5])
        errors["consumers"] = f"Not one of your consumers: {shown}. Pick among the consumers listed."
    elif not chosen:
        errors["consumers"] = "Pick at least one of your consumers."
    elif len(set(chosen)) != len(chosen):
        errors["consumers"] = "A consumer is picked twice."
    if "command" in errors or errors.get("consumers"):
        return None, errors
    slots = slot_count(command)
    high = MAX_READING_WH * command["granularity_minutes"]
    consumers = {}
    for consumer in chosen:
        expected, problem = parse_kwh_per_slot(form.get(f"expected-{consumer}", ""), slots, high)
        if problem:
            errors[f"expected-{consumer}"] = problem
        entry = {"expected_wh": expected}
        if method == "declared":
            baseline, problem = parse_kwh_per_slot(form.get(f"baseline-{consumer}", ""), slots, high)
            if problem:
                errors[f"baseline-{consumer}"] = "Baseline: " + problem
            entry["baseline_wh"] = baseline
        consumers[consumer] = entry
    if errors:
        return None, errors
    return {"baseline_method": method, "consumers": consumers}, errors


def command_form(form, acs: list[str]) -> tuple[dict | None, dict[str, str]]:
    """The TSO's command form → the dr contract's command; declare_by and readings_due are optional (the ledger's
    defaults: the first minute, and the topology's minutes after the window's end)."""
    errors: dict[str, str] = {}
    command_id = form.get("id", "").strip()
    if not _IDENTIFIER.fullmatch(command_id):
        errors["id"] = "Use 1–64 letters, digits, '_', '.' or '-', starting with a letter or digit."
    minutes = {}
    for field in ("start", "end"):
        value = form.get(field, "").strip()
        try:
            minutes[field] = minute_index(value)
        except ValueError:
            errors[field] = f"Give a JST minute as YYYY-MM-DDTHH:MM, got {value[:40]!r}."
    if not errors.get("start") and not errors.get("end") and not 0 <= minutes["end"] - minutes["start"] < 1440:
        errors["end"] = "The end must be at or after the start, within 24 hours (both minutes included)."
    deadlines = {}
    for field in ("declare_by", "readings_due"):
        value = form.get(field, "").strip()
        if not value:
            continue
        try:
            minutes[field] = minute_index(value)
        except ValueError:
            errors[field] = f"Give a JST minute as YYYY-MM-DDTHH:MM (or leave it empty), got {value[:40]!r}."
            continue
        deadlines[field] = value
    if "declare_by" in deadlines and "start" in minutes and minutes["declare_by"] > minutes["start"]:
        errors["declare_by"] = "Declarations must be due at or before the first minute."
    if "readings_due" in deadlines and "end" in minutes and minutes["readings_due"] <= minutes["end"] + 1:
        errors["readings_due"] = "Readings must be due at least a minute after the window's end (the last minute + 1)."
    numbers = {}
    for field, low, high, label in (
        ("requested_kw", 1, 10_000_000, "kW"),
        ("granularity_minutes", 1, 60, "minutes"),
        ("baseline_minutes", 1, 240, "minutes"),
    ):
        value = form.get(field, "").strip()
        if not value.isdigit() or not low <= int(value) <= high:
            errors[field] = f"Give a whole number of {label} from {low} to {high:,}, got {value[:20]!r}."
        else:
            numbers[field] = int(value)
    price = form.get("price", "").strip()
    try:
        price_sen = Decimal(price) * SEN_PER_YEN
        if price_sen != price_sen.to_integral_value() or not 0 <= price_sen <= 10_000_000:
            raise InvalidOperation
    except InvalidOperation:
        errors["price"] = f"Give yen per kWh with at most two decimals, from 0 to 100,000, got {price[:20]!r}."
    targets = form.getlist("target_acs")
    if not targets or any(t not in acs for t in targets):
        errors["target_acs"] = f"Pick one or more of {', '.join(acs)}."
    if errors:
        return None, errors
    length = minutes["end"] - minutes["start"] + 1
    if length % numbers["granularity_minutes"]:
        return None, {
            "granularity_minutes": f"The window of {length} minutes is not a whole number of "
            f"{numbers['granularity_minutes']}-minute slots."
        }
    return {
        "id": command_id,
        "start": form["start"].strip(),
        "end": form["end"].strip(),
        "requested_kw": numbers["requested_kw"],
        "target_acs": sorted(targets),
        "price_per_kwh": int(price_sen),
        "granularity_minutes": numbers["granularity_minutes"],
        "baseline_minutes": numbers["baseline_minutes"],
        **deadlines,
    }, errors
