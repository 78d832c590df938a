"""Issue 6's acceptance in a real browser on a real network, each organisation on its own server (issue 12): RA1
declares through the form on RA1's server and sees it listed; the TSO sees the comparison table with seed figure
6's numbers on the TSO's; RA2 fails to reach RA1's data by URL; malformed and forged input change nothing; RA1's
server signs in no one of another organisation; pages follow the ledger by themselves; a consumer places an
order.

Figure 6's command runs in real time, as the endorsers hold it (tests/live_commands.py): issued for five minutes
starting LEAD_SECONDS ahead, declared before they start, each minute's readings posted once it has ended."""

import json
import re
import time

import pytest
from live_commands import live_command, live_figure_6, wait_until_ended
from seed_examples import AC1_KWH, READINGS
from waiting import eventually

from clients.contract import Refused
from clients.dr import meter_signatures
from network.crypto import MeterOperator
from sim.aggregation_system import AggregationSystem
from sim.meters import Reading
from web.backend import FabricBackend
from web.ledger import LedgerSession


def eventually_seen(check, what: str):
    """Another organisation's peer commits a moment after the submitter's: retry until it sees it."""
    return eventually(check, what, retry_on=(Refused,))


@pytest.fixture(scope="module")
def ledger(web_network, server_of):
    """ledger(name) → the ledger as `name`, through the backend its own organisation's server would use."""
    backends = {}

    def as_name(name: str) -> LedgerSession:
        org = server_of(name)
        if org not in backends:
            backends[org] = FabricBackend(web_network.root, org)
        return LedgerSession(backends[org], backends[org].accounts[name])

    yield as_name
    for backend in backends.values():
        backend.close()


# Time to launch the browser, start RA1's server and declare through its form before the window starts.
LEAD_SECONDS = 40


@pytest.fixture(scope="module")
def figure(ledger):
    """Seed figure 6's command (its five minutes and AC1's consumers) for a window starting LEAD_SECONDS ahead (a
    fresh id when a reused network already has command 1), as the TSO, reaching every RA's peer; RA2 and RA3
    declare their consumers (RA1 declares through the form, in the test)."""
    tso = ledger("TSO")
    existing = {c["id"] for c in tso.evaluate("dr", "list_commands")}
    command_id = "1" if "1" not in existing else f"1-{int(time.time())}"
    figure = live_figure_6(command_id, due_minutes=10, lead_seconds=LEAD_SECONDS)
    tso.submit("dr", "issue_command", json.dumps(figure.command))
    for ra, consumer in (("RA2", "C2"), ("RA3", "C3")):
        session = ledger(ra)
        eventually_seen(lambda: session.evaluate("dr", "get_command", command_id), f"the command at {ra}")
        session.declare(
            command_id, {"baseline_method": "mean-before", "consumers": {consumer: {"expected_wh": [100] * 5}}}
        )
    eventually_seen(lambda: ledger("RA1").evaluate("dr", "get_command", command_id), "the command at RA1")
    return figure


@pytest.fixture(scope="module")
def command(figure) -> str:
    return figure.command["id"]


@pytest.fixture(scope="module")
def window(figure) -> list[str]:
    """The command's five minutes, figure 6's 00:00 to 00:04."""
    return figure.window


def ra1_declared(ledger, command_id: str) -> bool:
    return any(d["ra"] == "RA1" for d in ledger("RA1").evaluate("dr", "list_declarations", command_id))


@pytest.fixture(scope="module")
def readings(ledger, command, window, web_network):
    """Figure 6's meter readings on the ledger and in the aggregation system, each minute's posted once it has ended
    (RA1's declaration first: through the form when that test ran, else here, before the window starts). The tests
    that need them come last in this file, so that the window runs while the others do."""
    if not ra1_declared(ledger, command):
        ledger("RA1").declare(
            command, {"baseline_method": "mean-before", "consumers": {"C1": {"expected_wh": [500] * 5}}}
        )
    system = AggregationSystem(web_network.root / "aggregation-system.sqlite", web_network.topology)
    meters = MeterOperator(web_network.layout)  # the meter operator's meters sign what each RA relays
    for number, minute in enumerate(window):
        wait_until_ended(minute)
        for consumer, (ra, values) in READINGS.items():
            batch = [Reading(ra, consumer, minute, values[number])]
            ledger(ra).submit(
                "dr",
                "post_readings",
                command,
                private=True,
                transient={
                    "readings": json.dumps([r.as_json() for r in batch]),
                    "meter_signatures": json.dumps(meter_signatures(command, batch, meters)),
                },
            )
            system.receive(command, batch)
    system.close()
    tso = ledger("TSO")
    eventually_seen(
        lambda: all(
            m["readings"] == 1
            for a in tso.evaluate("dr", "get_aggregates", command)["aggregates"]
            if a["level"] == "ra"
            for m in a["minutes"]
        ),
        "every reading at the TSO's peer",
    )
    return command


def test_ra1_declares_through_the_form_and_sees_it_listed(command, sign_in, ledger, screenshot):
    page = sign_in("RA1")
    page.goto(f"/dr/declare?command={command}")
    assert page.locator("input[name=consumers][value=C1]").count() == 1
    assert page.locator("input[name=consumers][value=C2]").count() == 0  # RA2's consumer is not offered

    # Malformed first: messages beside the fields, nothing committed.
    page.check("#pick-C1")
    page.fill("#expected-C1", "lots")
    page.click("form#declaration button[type=submit]")
    assert "is not a number of kWh" in page.inner_text("#expected-C1-error")
    assert "Nothing was declared" in page.inner_text("main")
    screenshot(page, "ra1-declaration-malformed")
    assert not ra1_declared(ledger, command)

    page.fill("#expected-C1", "0.5")
    page.check("input[name=baseline_method][value=mean-before]")
    page.click("form#declaration button[type=submit]")
    page.wait_for_url(re.compile(rf"/dr/commands/{re.escape(command)}$"))
    flash = page.inner_text(".flash.committed")
    assert f"Declaration for command {command} committed: 1 consumer(s), 2.500 kWh expected." in flash
    assert len(re.findall(r"\b[0-9a-f]{64}\b", flash)) == 2  # the private and the public transaction
    row = page.locator("[data-testid=declarations] tr[data-ra=RA1]")
    assert row.count() == 1 and "2.500" in row.inner_text()
    screenshot(page, "ra1-declaration-listed")
    assert ra1_declared(ledger, command)


def test_a_forged_request_is_refused_and_changes_nothing(sign_in, ledger, command):
    page = sign_in("RA1")
    before = ledger("RA1").evaluate("dr", "list_declarations", command)
    response = page.request.post(
        f"/dr/declare?command={command}",
        form={"command": command, "baseline_method": "mean-before", "consumers": "C4", "expected-C4": "1"},
    )
    assert response.status == 400 and "nothing was changed" in response.text()
    response = page.request.post(
        "/market/orders",
        form={"participant": "C1", "side": "sell", "price": "20", "quantity": "1"},
        headers={"Origin": "http://evil.example"},
    )
    assert response.status == 400
    assert ledger("RA1").evaluate("dr", "list_declarations", command) == before


def test_the_tso_dashboard_and_the_ra_form_are_different_servers(browser, web_server, passwords, sign_in):
    tso, ra1 = web_server("TSO"), web_server("RA1")
    assert tso != ra1
    context = browser.new_context(base_url=ra1)
    try:
        page = context.new_page()
        page.goto("/auth/login")
        assert "This is the web server of RA1" in page.inner_text("[data-testid=server]")
        # The TSO's and RA1's own consumer's real passwords, on RA1's server: C1 signs in through its meter, whose
        # key is the meter operator's (the TSO's server), not RA1's.
        for name in ("TSO", "C1"):
            page.fill("#name", name)
            page.fill("#password", passwords[name])
            page.click("button[type=submit]")
            assert "Unknown name or wrong password." in page.inner_text("main"), name
            assert page.locator("[data-testid=who]").count() == 0
    finally:
        context.close()
    page = sign_in("TSO")
    assert page.url.startswith(tso) and page.inner_text("[data-testid=server-org]") == "TSO"
    # A cookie named for its server: a browser sends a host's cookies to every port of it.
    assert {c["name"] for c in page.context.cookies()} == {"gridledger_tso"}


def test_the_commands_page_follows_the_ledger_by_itself(sign_in, ledger, command, screenshot):
    page = sign_in("AC1")
    page.goto("/dr/")
    page.wait_for_selector(".live-status")
    page.wait_for_timeout(500)  # the event stream connects
    new_id = f"live-{int(time.time())}"
    ledger("TSO").submit("dr", "issue_command", json.dumps(live_command(new_id, minutes=1)))
    page.wait_for_selector(f"[data-testid=commands] a:text-is('{new_id}')", timeout=15000)
    assert "Updated from the ledger" in page.inner_text(".live-status")
    screenshot(page, "ac1-commands-live")


def test_a_consumer_places_an_order_and_sees_it_in_the_book(sign_in, screenshot):
    page = sign_in("C1")
    page.goto("/market/")
    page.fill("#price", "abc")
    page.click("#order-form button[type=submit]")
    assert "Enter the price in yen/kWh" in page.inner_text("#price-error")
    assert "Choose buy or sell" in page.inner_text("#side-error")
    page.check("input[name=side][value=sell]")
    page.fill("#price", "20.5")
    page.fill("#quantity", "1.5")
    page.click("#order-form button[type=submit]")
    page.wait_for_url(re.compile(r"/market/gates/"))
    assert "placed in gate" in page.inner_text(".flash.committed")
    # Sealed until the gate ends (issue 13): the book shows a commitment, not the price or quantity.
    assert "sealed until the gate ends" in page.inner_text("main")
    sealed = page.locator("[data-testid=sealed] tbody tr")
    assert sealed.count() >= 1 and "20.50" not in sealed.first.inner_text() and "1.500" not in sealed.first.inner_text()
    screenshot(page, "c1-order-in-book")


# The readings of the window: these wait for its minutes to end, while the tests above ran.


def test_tso_sees_the_comparison_table_with_the_figure_6_numbers(sign_in, readings, window, screenshot):
    page = sign_in("TSO")
    page.goto(f"/dr/compare?command={readings}&org=AC1")
    rows = page.locator("[data-testid=comparison] tbody tr")
    assert rows.count() == 5
    for minute, kwh in zip(window, AC1_KWH, strict=True):
        row = page.locator(f"[data-testid=comparison] tr[data-minute='{minute}']")
        cells = row.locator("td").all_inner_texts()
        date, time_of_day = minute.split("T")
        assert cells == ["AC1", readings, date, time_of_day, kwh, kwh, "✓"], cells
    assert page.locator("tr.mismatch").count() == 0
    assert page.locator("svg.chart polyline").count() == 2  # BC and AS over time
    screenshot(page, "tso-comparison-figure-6")
    page.goto(f"/dr/compare?command={readings}")
    orgs = set(page.locator("[data-testid=comparison] tbody tr").evaluate_all("rows => rows.map(r => r.dataset.org)"))
    assert orgs == {"AC1", "RA1", "RA2", "AC2", "RA3"}
    with page.expect_download() as download:
        page.click("a.download")
    lines = download.value.path().read_text().splitlines()
    assert lines[0].startswith("org,level,command,date,minute,bc_kwh,as_kwh")
    date, time_of_day = window[3].split("T")  # figure 6's 00:03, 10 kWh
    assert f"AC1,ac,{readings},{date},{time_of_day},10.000,10.000,2,yes" in lines


def test_ra2_fails_to_reach_ra1s_data_by_url(sign_in, readings, screenshot):
    page = sign_in("RA2")
    for url in (
        f"/dr/commands/{readings}/declarations/RA1",
        f"/dr/commands/{readings}/orgs/RA1",
        f"/dr/compare?command={readings}&org=RA1",
        f"/dr/commands/{readings}/readings/C1",
        "/market/positions/C1",
    ):
        response = page.goto(url)
        assert response.status == 404, url
        text = page.inner_text("main")
        assert "Not Found" in text and "6.000" not in text
    screenshot(page, "ra2-refused-ra1-data")
    response = page.request.get(f"/dr/commands/{readings}/orgs/RA1.json")
    assert response.status == 404 and response.json()["error"] == "Not Found"
    page.goto(f"/dr/compare?command={readings}")
    orgs = set(page.locator("[data-testid=comparison] tbody tr").evaluate_all("rows => rows.map(r => r.dataset.org)"))
    assert orgs == {"RA2"}
