"""The web's sign-in, CSRF protection and demand-response pages over the embedded ledger: the TSO's comparison
(seed figure 6), the RA declaration form (good, malformed and forged input), AC/RA views, settlement, and the
access matrix of pages × identities (nobody reaches what the ledger would not show them). What each organisation
sees is asked of its own server (server_client), which holds its keys only."""

import re
from datetime import datetime

import pytest
from seed_examples import AC1_KWH, DUE
from web_pages import (
    HOLDER,
    PASSWORD,
    TOPOLOGY,
    USERS,
    as_account,
    at,
    declare,
    figure_6,
    issue_figure_6,
    post,
    sign_in,
    token,
)

from consortium.units import JST
from sim.aggregation_system import AggregationSystem

# Sign-in and sessions.


def test_pages_need_sign_in_and_json_says_401(client):
    assert client.get("/dr/compare").status_code == 302
    assert client.get("/dr/compare").headers["Location"].startswith("/auth/login?next=")
    assert client.get("/dr/compare.json").status_code == 401
    assert client.get("/market/gates.json").status_code == 401


@pytest.mark.parametrize(
    "name, password, message",
    [
        ("TSO", "wrong", "Unknown name or wrong password."),
        ("NOBODY", PASSWORD, "Unknown name or wrong password."),
        ("", "", "Enter the name you sign in with"),
    ],
)
def test_bad_sign_in_is_refused_with_a_clear_message(client, name, password, message):
    response = client.post("/auth/login", data={"name": name, "password": password, "csrf_token": token(client)})
    assert response.status_code == 400
    assert message in response.text
    with client.session_transaction() as session:
        assert "user" not in session


def test_sign_in_goes_to_the_accounts_home_and_sign_out_ends_the_session(client):
    sign_in(client, "TSO")
    assert client.get("/").headers["Location"] == "/dr/compare"
    assert 'Signed in as <strong data-testid="who">TSO</strong>' in client.get("/dr/").text
    assert post(client, "/auth/logout").status_code == 302
    assert client.get("/dr/").status_code == 302


def test_sign_in_never_redirects_off_site(client):
    response = client.post(
        "/auth/login?next=//evil.example/x", data={"name": "TSO", "password": PASSWORD, "csrf_token": token(client)}
    )
    assert response.headers["Location"] == "/"


def test_a_password_reset_ends_the_sessions_opened_with_the_old_one(app, client):
    sign_in(client, "RA1")
    assert client.get("/dr/").status_code == 200
    app.config["USERS"] = {**USERS, "RA1": "pbkdf2:sha256:1000$other$00"}
    assert client.get("/dr/").status_code == 302


def test_pages_are_never_cached_for_anyone_else(client):
    sign_in(client, "TSO")
    response = client.get("/dr/")
    assert response.headers["Cache-Control"] == "no-store"
    assert "Cookie" in response.headers["Vary"]
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_each_account_gets_its_own_gateway_identity(backend):
    seen = {name: backend.gateway(account).identity for name, account in backend.accounts.items()}
    assert len({id(identity) for identity in seen.values()}) == len(seen)
    assert backend.gateway(backend.accounts["RA1"]) is backend.gateway(backend.accounts["RA1"])  # opened once


# CSRF: forged requests change nothing.


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(client, backend, ledger):
    issue_figure_6(backend)
    sign_in(client, "RA1")
    height = ledger.height
    response = client.post(
        "/dr/declare?command=1",
        data={"command": "1", "baseline_method": "mean-before", "consumers": "C1", "expected-C1": "0.1"},
    )
    assert response.status_code == 400
    assert "did not come from this site" in response.text and "nothing was changed" in response.text
    assert ledger.height == height


def test_a_post_with_a_wrong_token_or_from_another_site_is_refused(client, backend, ledger):
    issue_figure_6(backend)
    sign_in(client, "RA1")
    height = ledger.height
    data = {"command": "1", "baseline_method": "mean-before", "consumers": "C1", "expected-C1": "0.1"}
    assert client.post("/dr/declare", data={**data, "csrf_token": "forged"}).status_code == 400
    response = client.post(
        "/dr/declare", data={**data, "csrf_token": token(client)}, headers={"Origin": "http://evil.example"}
    )
    assert response.status_code == 400 and "another site" in response.text
    assert ledger.height == height


def test_the_token_before_sign_in_is_worthless_after_it(client):
    before = token(client)
    sign_in(client, "TSO")
    response = client.post("/auth/logout", data={"csrf_token": before})
    assert response.status_code == 400


# The TSO's comparison screen (seed figure 6).


def test_tso_sees_the_figure_6_numbers_per_ac_and_ra(server_client, backend, as_db):
    figure_6(backend, as_db)
    client = sign_in(server_client(HOLDER["TSO"]), "TSO")
    page = client.get("/dr/compare?command=1&org=AC1")
    assert page.status_code == 200
    for minute, kwh in zip(range(5), AC1_KWH, strict=True):
        row = f'data-org="AC1" data-minute="2021-01-14T00:0{minute}"'
        assert row in page.text
        cells = page.text.split(row, 1)[1].split("</tr>", 1)[0]
        assert f'<td class="num bc">{kwh}</td><td class="num as">{kwh}</td>' in cells
        assert "<td>2021-01-14</td><td>00:0" in cells and "<td>1</td>" in cells
    assert "MISMATCH" not in page.text
    assert "<svg" in page.text and "BC and AS aggregates of AC1" in page.text
    everything = client.get("/dr/compare?command=1").text
    for org in ("AC1", "RA1", "RA2", "AC2", "RA3"):
        assert f'data-org="{org}"' in everything


def test_a_mismatch_is_highlighted_counted_and_filterable(client, backend, as_db):
    figure_6(backend, as_db)
    system = AggregationSystem(as_db, TOPOLOGY)
    system.inject_discrepancy("1", "C2", "2021-01-14T00:03", 250)
    system.close()
    sign_in(client, "TSO")
    page = client.get("/dr/compare?command=1")
    assert '<tr class="mismatch" data-org="AC1" data-minute="2021-01-14T00:03">' in page.text
    assert '<tr class="mismatch" data-org="RA2" data-minute="2021-01-14T00:03">' in page.text
    assert 'data-testid="mismatches-AC1">1<' in page.text and 'data-testid="mismatches-RA1">0<' in page.text
    only = client.get("/dr/compare?command=1&mismatches=1").text
    assert only.count('class="mismatch" data-org') == 2
    assert '10.000</td><td class="num as">10.250' in only
    rows = client.get("/dr/compare.json?command=1&mismatches=1").get_json()["rows"]
    assert [(r["org"], r["minute"], r["bc_wh"], r["as_wh"]) for r in rows] == [
        ("AC1", "00:03", 10000, 10250),
        ("RA2", "00:03", 4000, 4250),
    ]


def test_the_comparison_filters_by_org_and_date_and_downloads_as_csv(client, backend, as_db):
    figure_6(backend, as_db)
    sign_in(client, "TSO")
    csv = client.get("/dr/compare.csv?command=1&org=AC1&date=2021-01-14")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert 'filename="comparison-1.csv"' in csv.headers["Content-Disposition"]
    lines = csv.text.splitlines()
    assert lines[0] == "org,level,command,date,minute,bc_kwh,as_kwh,readings,match"
    assert lines[1:] == [f"AC1,ac,1,2021-01-14,00:0{m},{kwh},{kwh},{2},yes" for m, kwh in enumerate(AC1_KWH)]
    assert client.get("/dr/compare?command=1&date=2020-01-01").status_code == 404
    assert client.get("/dr/compare?command=nope").status_code == 404


def test_an_ac_compares_only_its_own_and_its_ras_figures(server_client, backend, as_db):
    figure_6(backend, as_db)
    client = sign_in(server_client(HOLDER["AC2"]), "AC2")
    page = client.get("/dr/compare?command=1").text
    assert 'data-org="AC2"' in page and 'data-org="RA3"' in page
    assert 'data-org="AC1"' not in page and 'data-org="RA1"' not in page
    assert client.get("/dr/compare?command=1&org=AC1").status_code == 404
    assert client.get("/dr/compare.csv?command=1&org=RA1").status_code == 404
    assert "AC1" not in client.get("/dr/compare.csv?command=1").text


# The RA declaration form.


def test_ra1_declares_through_the_form_and_sees_it_listed_with_its_transaction_ids(server_client, backend, ledger):
    issue_figure_6(backend)
    client = sign_in(server_client(HOLDER["RA1"]), "RA1")
    form = client.get("/dr/declare?command=1")
    assert form.status_code == 200 and 'value="C1"' in form.text and 'value="C4"' in form.text
    assert 'value="C2"' not in form.text  # RA2's consumer is not offered
    response = post(
        client,
        "/dr/declare?command=1",
        {
            "command": "1",
            "baseline_method": "mean-before",
            "consumers": ["C1", "C4"],
            "expected-C1": "0.5",
            "expected-C4": "0.1, 0.2, 0.3, 0.4, 0.5",
        },
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "Declaration for command 1 committed: 2 consumer(s), 4.000 kWh expected." in response.text
    transactions = [tx for tx, status in ((t, ledger.commit_status(t)) for t in _hex_words(response.text)) if status]
    assert len(transactions) == 2 and all(ledger.commit_status(t).successful for t in transactions)
    assert '<tr data-ra="RA1">' in response.text and "4.000</td>" in response.text
    detail = as_account(backend, "RA1").evaluate("dr", "get_declaration", "1", "RA1")
    assert detail["detail"]["C4"]["expected_wh"] == [100, 200, 300, 400, 500]
    assert detail["detail"]["C1"]["expected_wh"] == [500] * 5


def _hex_words(text: str) -> list[str]:
    return re.findall(r"\b[0-9a-f]{64}\b", text)


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"consumers": "C1", "expected-C1": "lots"}, "expected-C1", "is not a number of kWh"),
        ({"consumers": "C1", "expected-C1": "-1"}, "expected-C1", "must be between 0 and 100 kWh per slot"),
        ({"consumers": "C1", "expected-C1": "1,2"}, "expected-C1", "exactly 5 values (one per slot); got 2"),
        ({"consumers": "C1", "expected-C1": "0.0001"}, "expected-C1", "at most three decimals"),
        ({"consumers": "C1", "expected-C1": ""}, "expected-C1", "Enter kWh per slot"),
        ({"expected-C1": "1"}, "consumers", "Pick at least one of your consumers."),
        ({"consumers": "C2", "expected-C2": "1"}, "consumers", "Not one of your consumers: &#39;C2&#39;"),
        ({"consumers": "C1", "expected-C1": "1", "baseline_method": "declared"}, "baseline-C1", "Baseline: Enter kWh"),
        (
            {"consumers": "C1", "expected-C1": "1", "baseline_method": "guess"},
            "baseline_method",
            "Choose a baseline method",
        ),
        ({"consumers": "C1", "expected-C1": "1", "command": "99"}, "command", "does not exist or does not target AC1"),
    ],
)
def test_malformed_declarations_get_messages_beside_the_fields_and_commit_nothing(
    client, backend, ledger, data, field, message
):
    issue_figure_6(backend)
    sign_in(client, "RA1")
    height = ledger.height
    response = post(client, "/dr/declare", {"command": "1", "baseline_method": "mean-before", **data})
    assert response.status_code == 400
    assert f'id="{field}-error" role="alert">' in response.text
    assert message in response.text.split(f'id="{field}-error" role="alert">', 1)[1].split("</span>", 1)[0]
    assert "Nothing was declared" in response.text
    assert ledger.height == height


def test_declaring_twice_is_refused_beside_the_command(client, backend, ledger):
    issue_figure_6(backend)
    declare(backend, "RA1", ["C1"])
    sign_in(client, "RA1")
    height = ledger.height
    response = post(
        client, "/dr/declare", {"command": "1", "baseline_method": "mean-before", "consumers": "C1", "expected-C1": "1"}
    )
    assert response.status_code == 400 and "already declared for command 1" in response.text
    assert ledger.height == height


def test_a_refusal_by_the_ledger_is_shown_and_commits_nothing(client, backend, as_db, ledger):
    figure_6(backend, as_db, ra1_declares=False)
    at(backend, DUE)
    as_account(backend, "TSO").submit("dr", "settle", "1")
    sign_in(client, "RA1")
    height = ledger.height
    response = post(
        client, "/dr/declare", {"command": "1", "baseline_method": "mean-before", "consumers": "C1", "expected-C1": "1"}
    )
    assert response.status_code == 400
    assert "The ledger refused the declaration: failed to declare: command 1 is settled" in response.text
    assert ledger.height == height


def test_a_command_for_another_ac_is_not_offered(client, backend):
    issue_figure_6(backend, target_acs=["AC2"])
    sign_in(client, "RA1")
    assert "No command targets AC1 yet." in client.get("/dr/declare").text
    response = post(
        client, "/dr/declare", {"command": "1", "baseline_method": "mean-before", "consumers": "C1", "expected-C1": "1"}
    )
    assert response.status_code == 400 and "does not exist or does not target AC1" in response.text


@pytest.mark.parametrize("name", ["TSO", "AC1", "C1"])
def test_only_ras_may_declare(client, backend, name):
    sign_in(client, name)
    response = client.get("/dr/declare")
    assert response.status_code == 403 and "Only resource aggregators may declare" in response.text


# AC and RA views, settlement, readings.


def test_ra1_sees_its_own_aggregate_and_performance(server_client, backend, as_db):
    figure_6(backend, as_db)
    client = sign_in(server_client(HOLDER["RA1"]), "RA1")
    page = client.get("/dr/commands/1/orgs/RA1")
    assert page.status_code == 200 and "Aggregate of RA1" in page.text
    assert '<td>2021-01-14T00:03</td><td class="num">6.000</td>' in page.text
    data = client.get("/dr/commands/1/orgs/RA1.json").get_json()
    assert [m["wh"] for m in data["minutes"]] == [1000, 2000, 2000, 6000, 1000]
    assert data["performance"]["org"] == "RA1"


def test_the_tso_settles_once_readings_are_due_and_everyone_sees_only_their_rewards(client, backend, as_db, ledger):
    figure_6(backend, as_db)
    sign_in(client, "TSO")
    page = client.get("/dr/commands/1/settlement")
    assert "Not settled yet" in page.text and "Settle command 1" not in page.text
    assert (
        "Readings are accepted until before 2021-01-14T00:35 JST; the command can be settled from then on." in page.text
    )
    at(backend, DUE)
    page = client.get("/dr/commands/1/settlement")
    assert "Not settled yet" in page.text and "Settle command 1" in page.text
    response = post(client, "/dr/commands/1/settle", follow_redirects=True)
    assert "Command 1 settled in transaction" in response.text and "these figures are final" in response.text
    sign_in(client, "RA2")
    figures = client.get("/dr/commands/1/settlement.json").get_json()["figures"]
    assert [f["org"] for f in figures] == ["RA2"]
    assert client.post("/dr/commands/1/settle", data={"csrf_token": token(client)}).status_code == 403


def test_the_tso_issues_a_command_through_the_form(client, backend, ledger):
    sign_in(client, "TSO")
    bad = post(client, "/dr/commands/new", {"id": "x y", "start": "2021-13-01T00:00", "end": "", "price": "1.234"})
    assert bad.status_code == 400 and 'id="id-error"' in bad.text and 'id="start-error"' in bad.text
    assert 'id="price-error"' in bad.text and 'id="target_acs-error"' in bad.text
    good = post(client, "/dr/commands/new", COMMAND_7, follow_redirects=True)
    assert "Command 7 issued in transaction" in good.text
    assert as_account(backend, "AC1").evaluate("dr", "get_command", "7")["price_per_kwh"] == 2500


def test_a_consumer_sees_only_its_own_readings(server_client, backend, as_db):
    figure_6(backend, as_db)
    client = sign_in(server_client(HOLDER["C1"]), "C1")
    page = client.get("/dr/commands/1/readings/C1")
    assert page.status_code == 200 and '<td>2021-01-14T00:03</td><td class="num">6.000</td>' in page.text
    assert client.get("/dr/commands/1/readings/C2").status_code == 404
    assert client.get("/dr/commands/1/readings/C4").status_code == 404  # the same RA's, still not its own


# The access matrix: RA2 (and everyone else) fails to reach what is not theirs, by any URL.

RA1_URLS = [
    "/dr/commands/1/declarations/RA1",
    "/dr/commands/1/declarations/RA1.json",
    "/dr/commands/1/orgs/RA1",
    "/dr/commands/1/orgs/RA1.json",
    "/dr/compare?command=1&org=RA1",
    "/dr/compare.csv?command=1&org=RA1",
    "/dr/compare.json?command=1&org=RA1",
    "/dr/commands/1/readings/C1",
    "/market/positions/C1",
    "/market/positions/C1.json",
]


@pytest.mark.parametrize("name", ["RA2", "RA3", "AC2"])
@pytest.mark.parametrize("url", RA1_URLS)
def test_others_fail_to_reach_ra1s_data_by_url(server_client, backend, as_db, name, url):
    figure_6(backend, as_db)
    client = sign_in(server_client(HOLDER[name]), name)
    response = client.get(url)
    assert response.status_code == 404, (name, url, response.status_code)
    assert "2.000" not in response.text and "6.000" not in response.text  # none of C1's figures
    if url.endswith(".json"):
        assert response.get_json()["error"] == "Not Found"


@pytest.mark.parametrize("name", ["TSO", "AC1", "RA1"])
@pytest.mark.parametrize("url", [u for u in RA1_URLS if "positions" not in u])
def test_those_in_ra1s_group_reach_its_data(server_client, backend, as_db, name, url):
    figure_6(backend, as_db)
    client = sign_in(server_client(HOLDER[name]), name)
    assert client.get(url).status_code == 200, (name, url)


def test_ra2s_views_never_mention_ra1s_figures(server_client, backend, as_db):
    figure_6(backend, as_db)
    client = sign_in(server_client(HOLDER["RA2"]), "RA2")
    compare = client.get("/dr/compare.json?command=1").get_json()
    assert {r["org"] for r in compare["rows"]} == {"RA2"}
    command = client.get("/dr/commands/1").text
    assert "/dr/commands/1/declarations/RA1" not in command  # listed (public summary) but not linked
    assert client.get("/dr/commands/1/settlement.json").get_json()["figures"][0]["org"] == "RA2"


def test_unknown_commands_are_404_everywhere(client, backend):
    sign_in(client, "TSO")
    for url in (
        "/dr/commands/nope",
        "/dr/commands/nope/settlement",
        "/dr/commands/nope/orgs/AC1",
        "/dr/commands/nope/declarations/RA1",
    ):
        assert client.get(url).status_code == 404, url


def test_live_regions_render_alone_for_the_refresh(client, backend, as_db):
    figure_6(backend, as_db)
    sign_in(client, "TSO")
    fragment = client.get("/dr/compare?command=1&org=AC1&fragment=1").text
    assert fragment.lstrip().startswith("<table") or "<table" in fragment[:400]
    assert "<html" not in fragment and 'data-org="AC1"' in fragment
    page = client.get("/dr/compare?command=1&org=AC1").text
    assert 'data-live-src="/dr/compare?command=1&amp;org=AC1&amp;fragment=1"' in page


def test_static_assets_are_local(client):
    sign_in(client, "TSO")
    page = client.get("/dr/").text
    assert "http://" not in page and "https://" not in page
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/static/live.js").status_code == 200


# Deadlines: declare-by and readings-due, shown and held to.

COMMAND_7 = {
    "id": "7",
    "start": "2021-01-14T18:00",
    "end": "2021-01-14T18:09",
    "requested_kw": "5",
    "target_acs": ["AC1"],
    "price": "25",
    "granularity_minutes": "1",
    "baseline_minutes": "10",
}


def test_the_tso_sets_the_deadlines_through_the_form_and_the_command_page_shows_them(client, backend):
    sign_in(client, "TSO")
    form = client.get("/dr/commands/new").text
    assert 'id="declare_by"' in form and 'placeholder="30 minutes after the window"' in form
    deadlines = {"declare_by": "2021-01-14T17:30", "readings_due": "2021-01-14T19:00"}
    page = post(client, "/dr/commands/new", {**COMMAND_7, **deadlines}, follow_redirects=True).text
    assert "Command 7 issued in transaction" in page
    assert '<dd data-testid="declare-by">before 2021-01-14T17:30 JST</dd>' in page
    assert '<dd data-testid="readings-due">before 2021-01-14T19:00 JST' in page
    recorded = as_account(backend, "AC1").evaluate("dr", "get_command", "7")
    assert (recorded["declare_by"], recorded["readings_due"]) == ("2021-01-14T17:30", "2021-01-14T19:00")


def test_without_deadlines_the_command_gets_the_ledgers_defaults(client, backend):
    sign_in(client, "TSO")
    page = post(client, "/dr/commands/new", COMMAND_7, follow_redirects=True).text
    assert '<dd data-testid="declare-by">before 2021-01-14T18:00 JST</dd>' in page
    assert '<dd data-testid="readings-due">before 2021-01-14T18:40 JST' in page  # the end + the topology's 30 min


@pytest.mark.parametrize(
    "field, value, message",
    [
        (
            "declare_by",
            "tomorrow",
            "Give a JST minute as YYYY-MM-DDTHH:MM (or leave it empty), got &#39;tomorrow&#39;.",
        ),
        ("declare_by", "2021-01-14T18:01", "Declarations must be due at or before the first minute."),
        ("readings_due", "2021-01-14T18:10", "Readings must be due at least a minute after the window&#39;s end"),
    ],
)
def test_bad_deadlines_are_marked_beside_their_fields_and_nothing_is_issued(client, ledger, field, value, message):
    sign_in(client, "TSO")
    height = ledger.height
    response = post(client, "/dr/commands/new", {**COMMAND_7, field: value})
    assert response.status_code == 400
    assert message in response.text.split(f'id="{field}-error" role="alert">', 1)[1].split("</span>", 1)[0]
    assert ledger.height == height


def test_a_command_for_a_window_already_started_is_refused_by_the_ledger(client, backend, ledger):
    at(backend, datetime(2021, 1, 14, 18, 0, 30, tzinfo=JST))
    sign_in(client, "TSO")
    height = ledger.height
    response = post(client, "/dr/commands/new", COMMAND_7)
    assert response.status_code == 400
    assert (
        "The ledger refused the command: failed to issue command: command 7&#39;s window starts 2021-01-14T18:00 "
        "(JST), and it is 2021-01-14T18:00:30+09:00: a command is issued before its window starts"
    ) in response.text
    assert ledger.height == height


def test_the_declaration_form_says_until_when_and_a_late_one_is_refused(client, backend, ledger):
    issue_figure_6(backend)
    sign_in(client, "RA1")
    form = client.get("/dr/declare?command=1").text
    assert "Declarations are accepted until before 2021-01-14T00:00 JST." in form
    assert "Declare consumers for this command" in client.get("/dr/commands/1").text
    at(backend, datetime(2021, 1, 14, 0, 0, tzinfo=JST))
    assert "Declare consumers for this command" not in client.get("/dr/commands/1").text
    height = ledger.height
    response = post(
        client, "/dr/declare", {"command": "1", "baseline_method": "mean-before", "consumers": "C1", "expected-C1": "1"}
    )
    assert response.status_code == 400
    assert (
        "The ledger refused the declaration: failed to declare: declarations for command 1 were due before "
        "2021-01-14T00:00 (JST); it is 2021-01-14T00:00:00+09:00"
    ) in response.text
    assert ledger.height == height
