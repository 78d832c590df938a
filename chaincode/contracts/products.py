"""What a DR command's `product` names, checked: kWh-type DR (ERAB guideline baselines) or a balancing-market
product (EPRX 取引ガイド §1-2) with its contracted ΔkW per AC, and the settlement figures it overrides; and the
product with the topology's defaults filled in (`resolved`), which is what settlement applies.

    {"name": "kwh-dr"}                                             baseline High 4 of 5 / High 2 of 3 from history
    {"name": "tertiary-1", "contracted_w": {"AC1": 50000}, "baseline": "forecast"}

Fields (all optional but `name`, and `contracted_w` for a balancing product): `contracted_w` {AC: W} for exactly the
command's target ACs; `baseline` "measured" (直前計測型) | "forecast" (事前予測型); `price_sen_per_kw` (ΔkW, per kW
per 30-minute unit); `penalty_sen_per_kwh` (kWh-type shortfall charge); `measure_minutes`; `gate_closure_minutes`;
`same_day` {"starts_before_minutes", "ends_before_minutes", "cap_percent" (null: no cap)}, or null for no same-day
adjustment; `tolerance_percent`.
The command records only what the TSO named; the rest comes from the deployed topology (consortium.topology
.SettlementDefaults), the same on every endorser.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from chaincode.contracts.balancing import PRODUCTS, AssessmentRules
from chaincode.contracts.baselines import SameDayAdjustment
from chaincode.contracts.common import Refusal
from consortium.topology import SettlementDefaults

KWH_DR = "kwh-dr"
NAMES = (KWH_DR, *sorted(PRODUCTS))
BASELINE_TYPES = ("measured", "forecast")
MAX_CONTRACTED_W = 10_000_000_000  # 10 GW
MAX_PRICE_SEN = 10_000_000
MAX_MINUTES = 1440
_FIELDS = {
    "name",
    "contracted_w",
    "baseline",
    "price_sen_per_kw",
    "penalty_sen_per_kwh",
    "measure_minutes",
    "gate_closure_minutes",
    "same_day",
    "tolerance_percent",
}
_SAME_DAY_FIELDS = {"starts_before_minutes", "ends_before_minutes", "cap_percent"}


def _integer(what: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Refusal(f"product {what} must be an integer from {low} to {high}, got {value!r}")
    return value


def checked_product(fields, target_acs: Sequence[str]) -> dict | None:
    """The product as the command records it (None: the command names none and settles as before)."""
    if fields is None:
        return None
    if not isinstance(fields, dict):
        raise Refusal(f"product must be an object with a name ({', '.join(NAMES)}), got {fields!r:.60}")
    unknown = sorted(set(fields) - _FIELDS)
    if unknown:
        raise Refusal(f"unknown product field(s) {', '.join(unknown)}")
    name = fields.get("name")
    if name not in NAMES:
        raise Refusal(f"product name must be one of {', '.join(NAMES)}, got {name!r}")
    balancing = name != KWH_DR
    for field in ("contracted_w", "baseline", "price_sen_per_kw", "measure_minutes", "gate_closure_minutes"):
        if field in fields and not balancing:
            raise Refusal(f"product {field} is for balancing products, not {KWH_DR}")
    for field in ("penalty_sen_per_kwh", "same_day"):
        if field in fields and balancing:
            raise Refusal(f"product {field} is for {KWH_DR}, not {name}")
    checked: dict = {"name": name}
    if balancing:
        contracted = fields.get("contracted_w")
        if not isinstance(contracted, dict) or sorted(contracted) != sorted(target_acs):
            raise Refusal(
                f"product contracted_w must give the contracted ΔkW (W) of each target AC "
                f"({', '.join(sorted(target_acs))}), got {contracted!r:.80}"
            )
        checked["contracted_w"] = {
            ac: _integer(f"contracted_w of {ac}", contracted[ac], 1, MAX_CONTRACTED_W) for ac in sorted(contracted)
        }
        if "baseline" in fields:
            if fields["baseline"] not in BASELINE_TYPES:
                raise Refusal(
                    f"product baseline must be one of {', '.join(BASELINE_TYPES)}, got {fields['baseline']!r}"
                )
            checked["baseline"] = fields["baseline"]
    for field, low, high in (
        ("price_sen_per_kw", 0, MAX_PRICE_SEN),
        ("penalty_sen_per_kwh", 0, MAX_PRICE_SEN),
        ("measure_minutes", 1, 240),
        ("gate_closure_minutes", 0, MAX_MINUTES),
        ("tolerance_percent", 0, 100),
    ):
        if field in fields:
            checked[field] = _integer(field, fields[field], low, high)
    if "same_day" in fields:
        checked["same_day"] = _checked_same_day(fields["same_day"])
    return checked


def _checked_same_day(same_day) -> dict | None:
    if same_day is None:  # no same-day adjustment
        return None
    if not isinstance(same_day, dict) or not set(same_day) <= _SAME_DAY_FIELDS:
        raise Refusal(f"product same_day may hold {', '.join(sorted(_SAME_DAY_FIELDS))}, got {same_day!r:.80}")
    checked: dict[str, int | None] = {}
    for field in ("starts_before_minutes", "ends_before_minutes"):
        if field in same_day:
            checked[field] = _integer(f"same_day {field}", same_day[field], 0, 240)
    if "cap_percent" in same_day:
        cap = same_day["cap_percent"]
        checked["cap_percent"] = None if cap is None else _integer("same_day cap_percent", cap, 0, 100)
    return checked


@dataclass(frozen=True)
class Product:
    """A command's product with every figure settlement needs: what the command named, else the topology's."""

    name: str
    contracted_w: dict[str, int]  # per AC; empty for kWh-type DR
    baseline: str  # "history" (kWh-type DR), "measured" or "forecast"
    price_sen_per_kw: int
    penalty_sen_per_kwh: int
    measure_minutes: int
    gate_closure_minutes: int
    same_day: SameDayAdjustment | None  # None: no same-day adjustment
    rules: AssessmentRules

    @property
    def balancing(self) -> bool:
        return self.name != KWH_DR

    def record(self) -> dict:
        """What a settlement shows of the rules it applied."""
        record: dict = {"name": self.name, "baseline": self.baseline}
        if self.balancing:
            record |= {
                "label": PRODUCTS[self.name].label,
                "contracted_w": dict(self.contracted_w),
                "price_sen_per_kw": self.price_sen_per_kw,
                "tolerance_percent": self.rules.tolerance_percent,
                "penalty_i": str(self.rules.penalty_i),
                "penalty_ii": str(self.rules.penalty_ii),
            }
            if self.baseline == "measured":
                record["measure_minutes"] = self.measure_minutes
            else:
                record["gate_closure_minutes"] = self.gate_closure_minutes
        else:
            record |= {
                "penalty_sen_per_kwh": self.penalty_sen_per_kwh,
                "same_day": same_day_record(self.same_day),
            }
        return record


def same_day_record(adjustment: SameDayAdjustment | None) -> dict | None:
    """A same-day adjustment as a product records it (None: the product applies none)."""
    if adjustment is None:
        return None
    return {
        "starts_before_minutes": adjustment.starts_before_minutes,
        "ends_before_minutes": adjustment.ends_before_minutes,
        "cap_percent": adjustment.cap_percent,
    }


def resolved(product: dict, defaults: SettlementDefaults) -> Product:
    """`product` (as checked_product recorded it) with the topology's defaults for what it leaves out."""
    same_day = product.get("same_day", {})
    adjustment = None
    if same_day is not None:
        adjustment = SameDayAdjustment(
            starts_before_minutes=same_day.get("starts_before_minutes", defaults.same_day_starts_before_minutes),
            ends_before_minutes=same_day.get("ends_before_minutes", defaults.same_day_ends_before_minutes),
            cap_percent=same_day.get("cap_percent", defaults.same_day_cap_percent),
        )
        if adjustment.ends_before_minutes >= adjustment.starts_before_minutes:
            raise Refusal("the product's same-day adjustment window must end after it starts")
    balancing = product["name"] != KWH_DR
    return Product(
        name=product["name"],
        contracted_w=dict(product.get("contracted_w", {})),
        baseline=product.get("baseline", defaults.balancing_baseline) if balancing else "history",
        price_sen_per_kw=product.get("price_sen_per_kw", defaults.price_sen_per_kw),
        penalty_sen_per_kwh=product.get("penalty_sen_per_kwh", defaults.penalty_sen_per_kwh),
        measure_minutes=product.get("measure_minutes", defaults.measure_minutes),
        gate_closure_minutes=product.get("gate_closure_minutes", defaults.gate_closure_minutes),
        same_day=adjustment,
        rules=AssessmentRules(
            tolerance_percent=product.get("tolerance_percent", defaults.tolerance_percent),
            penalty_i=Fraction(defaults.penalty_i),
            penalty_ii=Fraction(defaults.penalty_ii),
        ),
    )


def frozen(product: dict, defaults: SettlementDefaults) -> dict:
    """`product` with the topology's defaults written in, as a command can record it at issue so that a later
    topology cannot move its rules; resolved() of the result is resolved() of `product`."""
    rules = resolved(product, defaults)
    record: dict = {"name": rules.name}
    if rules.balancing:
        record |= {
            "contracted_w": dict(rules.contracted_w),
            "baseline": rules.baseline,
            "price_sen_per_kw": rules.price_sen_per_kw,
            "measure_minutes": rules.measure_minutes,
            "gate_closure_minutes": rules.gate_closure_minutes,
            "tolerance_percent": rules.rules.tolerance_percent,
        }
    else:
        record["penalty_sen_per_kwh"] = rules.penalty_sen_per_kwh
        record["same_day"] = same_day_record(rules.same_day)
    return record
