"""What every page shares: how the ledger's units read (template filters over consortium.units, thousands
grouped, "–" for no figure) and whether a request asks for a page's live region only (live.js does)."""

from flask import request

from consortium.units import kwh, money, yen


def wants_fragment() -> bool:
    return request.args.get("fragment") == "1"


def init_app(app) -> None:
    app.add_template_filter(lambda wh: kwh(wh, grouped=True), "kwh")
    app.add_template_filter(lambda hundredths: yen(hundredths, grouped=True), "yen")  # a DR price or reward
    app.add_template_filter(lambda sen: yen(sen, grouped=True), "yen_per_kwh")  # a market price
    app.add_template_filter(lambda millisen: money(millisen, grouped=True), "millisen_yen")
