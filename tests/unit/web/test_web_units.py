"""The settlement pages by 30-minute unit on the embedded ledger: per command and organisation its own figures
(the TSO all, an AC its own and its RAs', an RA its own without the sen), baseline against actual as a chart, each
consumer's baseline, the CSV, and 404s that do not tell what the account may not see."""

import csv
import io
import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from web_pages import IDENTITIES, TOPOLOGY, post, sign_in

from consortium.units import minute_index, minute_label
from web.units import baseline_method_text

EVENT_DAY = date(2026, 11, 25)  # a Wednesday


def at(hhmm: str, day: date = EVENT_DAY) -> datetime:
    return datetime.fromisoformat(f"{day.isoformat()}T{hhmm}:00+09:00")


def run(ledger, who: str, function: str, *args, transient=None, when: datetime, contract: str = "units"):
    """A transaction at `when` (a past moment: the data of a command that has run), endorsed on `who`'s peer."""
    identity = IDENTITIES[who]
    arguments = [f"{contract}:{function}".encode(), *(a.encode() for a in args)]
    transient = {k: v.encode() for k, v in (transient or {}).items()}
    endorsement = ledger.endorse(identity, arguments, transient, [identity.msp_id], uuid.uuid4().hex, when)
    assert endorsement.response.ok, endorsement.response.message
    assert ledger.order(endorsement).code == "VALID"


def flat_history(consumer: str) -> str:
    days = [EVENT_DAY - timedelta(days=back) for back in range(1, 36)]
    return json.dumps([{"consumer": consumer, "day": d.isoformat(), "wh": [100] * 48} for d in days])


def readings(consumer: str, first: str, values: list[int]) -> str:
    start = minute_index(first)
    return json.dumps(
        [{"consumer": consumer, "minute": minute_label(start + n), "wh": wh} for n, wh in enumerate(values)]
    )


@pytest.fixture
def command_7(ledger):
    """kWh-type DR command 7, 14:00-14:59 on a weekday, C1 (RA1) and C2 (RA2) declared 50 Wh a 30-minute slot; five
    weeks of flat history (100 Wh a slot); 5 Wh a minute before the window (same-day adjustment +50, capped at
    +20 %), 2 a minute in it: 120 Wh baseline, 60 actual, 60 delivered a unit, 120 Wh rewarded at 25 yen/kWh = 300
    sen each."""
    command = {
        "id": "7",
        "start": f"{EVENT_DAY}T14:00",
        "end": f"{EVENT_DAY}T14:59",
        "requested_kw": 1,
        "target_acs": ["AC1", "AC2"],
        "price_per_kwh": 2500,
        "granularity_minutes": 30,
        "baseline_minutes": 240,
        "product": {"name": "kwh-dr"},
    }
    run(ledger, "TSO", "issue_command", json.dumps(command), when=at("09:00"), contract="dr")
    for consumer, ra in (("C1", "RA1"), ("C2", "RA2")):
        run(ledger, consumer, "post_history", transient={"history": flat_history(consumer)}, when=at("00:10"))
        declaration = {"baseline_method": "mean-before", "consumers": {consumer: {"expected_wh": [50, 50]}}}
        run(
            ledger,
            ra,
            "declare",
            "7",
            transient={"declaration": json.dumps(declaration)},
            when=at("09:01"),
            contract="dr",
        )
        values = [5] * 240 + [2] * 60
        run(
            ledger,
            consumer,
            "post_readings",
            "7",
            transient={"readings": readings(consumer, f"{EVENT_DAY}T10:00", values)},
            when=at("15:01"),
            contract="dr",
        )
    return command


def page(client, name: str, path: str):
    sign_in(client, name)
    return client.get(path)


def test_the_tso_sees_every_figure_the_chart_and_each_consumers_baseline(client, command_7):
    response = page(client, "TSO", "/dr/units/commands/7")
    assert response.status_code == 200
    text = response.text
    assert 'data-testid="product">kwh-dr' in text and "<svg" in text
    for org in ("TSO", "AC1", "RA1", "RA2", "C1", "C2"):
        assert f">{org}</a>" in text
    assert "high-4-of-5 (weekday)" in text and "(capped)" in text
    assert "6.00" in text  # the TSO's 600 sen
    c1 = client.get("/dr/units/commands/7?org=C1").text
    assert "0.120" in c1 and "0.060" in c1  # C1's unit: 120 Wh baseline, 60 Wh actual


def test_an_ac_sees_its_own_and_its_ras_and_no_other(client, command_7):
    text = page(client, "AC1", "/dr/units/commands/7").text
    assert ">AC1</a>" in text and ">RA1</a>" in text and ">C2</a>" in text and ">TSO</a>" not in text
    assert client.get("/dr/units/commands/7?org=TSO").status_code == 404
    sign_in(client, "AC2")
    assert client.get("/dr/units/commands/7?org=C1").status_code == 404
    assert ">RA1</a>" not in client.get("/dr/units/commands/7").text


def test_an_ra_sees_its_own_energy_figures_and_why_not_the_sen(client, command_7):
    text = page(client, "RA1", "/dr/units/commands/7").text
    assert ">RA1</a>" in text and ">C1</a>" in text and ">RA2</a>" not in text and ">C2</a>" not in text
    assert 'data-testid="money"' in text and "depends on its AC" in text
    assert client.get("/dr/units/commands/7?org=RA2").status_code == 404


def test_the_csv_carries_every_unit_and_total_the_account_may_see(client, command_7):
    response = page(client, "TSO", "/dr/units/commands/7.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="settlement-7.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    c1 = [r for r in rows if r["org"] == "C1"]
    assert [(r["unit"], r["baseline_wh"], r["actual_wh"], r["delivered_wh"]) for r in c1[:2]] == [
        (f"{EVENT_DAY}T14:00", "120", "60", "60"),
        (f"{EVENT_DAY}T14:30", "120", "60", "60"),
    ]
    totals = {r["org"]: int(r["amount_sen"]) for r in rows if r["unit"] == "total"}
    assert totals == {"TSO": 600, "AC1": 600, "RA1": 300, "RA2": 300, "C1": 300, "C2": 300}
    ra1 = list(csv.DictReader(io.StringIO(page(client, "RA1", "/dr/units/commands/7.csv").text)))
    assert {r["org"] for r in ra1} == {"RA1", "C1"} and all(r["amount_sen"] == "" for r in ra1)


def test_the_json_is_the_ledgers_answer(client, command_7):
    body = page(client, "AC1", "/dr/units/commands/7.json").get_json()
    assert [f["org"] for f in body["acs"]] == ["AC1"] and body["tso"] is None


def test_commands_without_a_product_or_unknown_ones_are_404_and_consumers_403(client, ledger, command_7):
    plain = {k: v for k, v in command_7.items() if k != "product"} | {"id": "8"}
    run(ledger, "TSO", "issue_command", json.dumps(plain), when=at("09:00"), contract="dr")
    assert page(client, "TSO", "/dr/units/commands/8").status_code == 404
    assert client.get("/dr/units/commands/nope").status_code == 404
    listed = client.get("/dr/units/").text
    assert ">7</a>" in listed and ">8</a>" not in listed
    assert page(client, "C1", "/dr/units/commands/7").status_code == 403


@pytest.mark.parametrize(
    "product, words",
    [
        (None, None),
        ({"name": "kwh-dr"}, ["High 4 of 5", "from 240 to 60 minutes", "capped at ±20 %"]),
        ({"name": "kwh-dr", "same_day": None}, ["High 2 of 3", "without same-day adjustment"]),
        ({"name": "tertiary-1", "contracted_w": {"AC1": 1}, "baseline": "measured"}, ["三次調整力①", "直前計測型"]),
        ({"name": "tertiary-2", "contracted_w": {"AC1": 1}, "baseline": "forecast"}, ["基準値計画", "60 minutes"]),
    ],
)
def test_the_baseline_method_a_product_implies_reads_for_people(product, words):
    text = baseline_method_text({"product": product} if product else {}, TOPOLOGY)
    assert text is None if words is None else all(word in text for word in words)


def test_the_declaration_form_shows_the_baseline_the_product_implies_and_asks_for_none(client, command_7):
    text = page(client, "RA1", "/dr/declare?command=7").text
    assert 'data-testid="product-baseline"' in text and "You state none." in text
    assert 'value="declared"' not in text and 'name="baseline-C1"' not in text


def test_once_settled_an_ac_records_its_statement_from_the_page_and_the_tso_sees_it_recorded(client, ledger, command_7):
    before = page(client, "AC1", "/dr/units/commands/7").text
    assert 'data-testid="statements"' in before and "Recorded once the command is settled." in before
    assert "Record AC1's statement" not in before
    run(ledger, "TSO", "settle", "7", when=at("16:00"), contract="dr")
    assert "Record AC1's statement" in client.get("/dr/units/commands/7").text
    done = post(client, "/dr/units/commands/7/statement", {"ac": "AC2"}, follow_redirects=True).text
    assert "AC1&#39;s statement of command 7 recorded in transaction" in done  # an AC records only its own
    assert "shares delivered to RA1, RA2." in done and "Shares delivered to: RA1, RA2." in done
    assert "by AC1; these figures match it." in done and "Record AC1" not in done and "Deliver the shares" not in done
    ra1 = page(client, "RA1", "/dr/units/commands/7").text
    assert 'data-testid="share"' in ra1 and 'data-testid="money"' not in ra1 and "3.00" in ra1  # RA1's 300 sen
    sign_in(client, "AC1")
    again = post(client, "/dr/units/commands/7/statement", follow_redirects=True).text
    assert "Not recorded:" in again and "already recorded" in again
    sign_in(client, "TSO")
    assert "by AC1; these figures match it." in client.get("/dr/units/commands/7").text
    unknown = post(client, "/dr/units/commands/7/statement", {"ac": "AC9"}, follow_redirects=True).text
    assert "there is no AC called &#39;AC9&#39;" in unknown
    refused = post(client, "/dr/units/commands/7/statement", {"ac": "AC2"}, follow_redirects=True).text
    assert "none of AC2&#39;s RAs declared" in refused


def test_an_ra_sees_no_statements_and_may_not_record_one(client, ledger, command_7):
    run(ledger, "TSO", "settle", "7", when=at("16:00"), contract="dr")
    assert 'data-testid="statements"' not in page(client, "RA1", "/dr/units/commands/7").text
    assert post(client, "/dr/units/commands/7/statement", {"ac": "AC1"}).status_code == 403
    sign_in(client, "AC1")
    assert "Record AC1's statement" in client.get("/dr/units/commands/7").text  # nothing was recorded


def test_shares_not_yet_delivered_of_a_recorded_statement_are_delivered_from_the_page(client, ledger, command_7):
    run(ledger, "TSO", "settle", "7", when=at("16:00"), contract="dr")
    run(ledger, "TSO", "record_statement", "7", "AC1", transient={"salt": "ab" * 16}, when=datetime.now(UTC))
    text = page(client, "TSO", "/dr/units/commands/7").text
    assert "by TSO; these figures match it." in text and "Shares delivered to: none." in text
    assert "Deliver the shares" in text and "Record AC1" not in text
    done = post(client, "/dr/units/commands/7/statement", {"ac": "AC1", "deliver_only": "1"}, follow_redirects=True)
    assert "was recorded before; shares delivered to RA1, RA2." in done.text and "Deliver the shares" not in done.text
