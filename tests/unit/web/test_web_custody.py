"""Custody in the web (issue 12): each organisation's server holds only the identities that organisation holds,
so asked to act as another organisation (its sign-in, a cookie naming it, a header, a form naming its consumer)
it refuses, and it could not sign as it anyway: it has no key for it. Also the keyring that decides what an
organisation's processes may load (network.identities), on a crypto layout laid out on disk."""

import json
from types import SimpleNamespace

import pytest
from web_pages import ACCOUNTS, HOLDER, PASSWORD, TOPOLOGY, USERS, figure_6, issue_figure_6, post, sign_in, token

from gateway.errors import GatewayError
from network.crypto import CryptoLayout
from network.identities import CustodyError, Keyring, holder_of
from web.auth import _hash_fingerprint
from web.backend import FabricBackend, web_port

ORGS = TOPOLOGY.org_names
CONSUMERS = [c for o in TOPOLOGY.organisations for c in o.consumers]


def test_each_server_holds_its_own_identities_and_together_they_hold_each_once(server_app):
    held = {org: set(server_app(org).extensions["gridledger"].accounts) for org in ORGS}
    # The meters are the meter operator's devices: their keys, and so the consumers' sign-ins, are the TSO's.
    assert held["RA1"] == {"RA1"} and held["TSO"] == {"TSO", *CONSUMERS}
    assert sorted(name for names in held.values() for name in names) == sorted(ACCOUNTS)
    for org in ORGS:
        backend = server_app(org).extensions["gridledger"]
        assert set(backend.identities) == held[org]  # the keys it was given are its own, nothing else
        assert server_app(org).config["SESSION_COOKIE_NAME"] == f"gridledger_{org.lower()}"


def test_signing_in_to_ra1s_server_as_another_organisation_is_refused(server_client):
    client = server_client("RA1")
    for name in ("TSO", "AC1", "RA2", "C2", "C1"):  # the right password, the wrong server (C1's meter is the TSO's)
        response = client.post("/auth/login", data={"name": name, "password": PASSWORD, "csrf_token": token(client)})
        assert response.status_code == 400 and "Unknown name or wrong password." in response.text, name
        with client.session_transaction() as session:
            assert "user" not in session
    page = client.get("/auth/login").text
    assert "This is the web server of RA1" in page and "signs in RA1 and no one else" in page
    sign_in(client, "RA1")
    assert 'data-testid="server-org">RA1<' in client.get("/dr/").text


def test_a_session_cookie_naming_another_organisation_signs_in_no_one(server_app, server_client):
    # A dishonest RA1 holds its own server's secret key and can forge any cookie it likes for it.
    ra1 = server_app("RA1")
    forged = ra1.session_interface.get_signing_serializer(ra1).dumps(
        {"user": "TSO", "key": _hash_fingerprint(USERS["TSO"]), "csrf": "x"}
    )
    client = ra1.test_client()
    client.set_cookie(ra1.config["SESSION_COOKIE_NAME"], forged)
    assert client.get("/dr/compare").status_code == 302  # to the sign-in page: no account TSO here
    assert client.get("/dr/compare.json").status_code == 401
    with client.session_transaction() as session:
        assert "user" not in session  # and the forged session is dropped


def test_another_servers_genuine_cookie_is_worthless_on_ra1s_server(server_app, server_client):
    tso = sign_in(server_client("TSO"), "TSO")
    assert tso.get("/dr/compare").status_code == 200
    cookie = tso.get_cookie("gridledger_tso").value
    client = server_client("RA1")
    client.set_cookie("gridledger_ra1", cookie)  # under RA1's server's cookie name: signed with another key
    assert client.get("/dr/compare").status_code == 302
    client.set_cookie("gridledger_tso", cookie)  # under its own name: RA1's server does not read it
    assert client.get("/dr/compare").status_code == 302


def test_headers_naming_another_organisation_change_nothing(server_client, backend, as_db):
    figure_6(backend, as_db)
    forged = {"X-Forwarded-User": "TSO", "X-Remote-User": "TSO", "X-Gridledger-Org": "TSO", "Remote-User": "TSO"}
    client = server_client("RA1")
    assert client.get("/dr/compare.json?command=1", headers=forged).status_code == 401
    sign_in(client, "RA1")
    rows = client.get("/dr/compare.json?command=1", headers=forged).get_json()["rows"]
    assert {row["org"] for row in rows} == {"RA1"}
    assert client.get("/dr/compare?command=1&org=RA2", headers=forged).status_code == 404


def test_a_form_naming_another_organisations_consumer_is_refused_and_commits_nothing(server_client, backend, ledger):
    issue_figure_6(backend)
    client = sign_in(server_client("RA1"), "RA1")
    height = ledger.height
    declared = post(
        client, "/dr/declare", {"command": "1", "baseline_method": "mean-before", "consumers": "C2", "expected-C2": "1"}
    )
    assert declared.status_code == 400 and "Not one of your consumers: &#39;C2&#39;" in declared.text
    ordered = post(client, "/market/orders", {"participant": "C2", "side": "sell", "price": "20", "quantity": "1"})
    assert ordered.status_code == 400 and "You may not place orders for &#39;C2&#39;" in ordered.text
    assert ledger.height == height
    # Past the form, the ledger refuses it too: the server's only identity is RA1's, and C2 is not RA1's.
    server = server_client("RA1").application.extensions["gridledger"]
    with pytest.raises(GatewayError, match="consumer C2 belongs to RA2; RA1 may declare only its own consumers"):
        server.session(server.accounts["RA1"]).dr.transact(
            "declare",
            "1",
            transient={"declaration": json.dumps({"baseline_method": "mean-before", "consumers": {"C2": {}}})},
            private=True,
        )
    assert ledger.height == height


def test_ra1s_server_cannot_sign_as_another_organisation_even_when_its_code_asks(server_app):
    backend = server_app("RA1").extensions["gridledger"]
    for name in ("TSO", "AC1", "RA2", "C2", "C1"):
        with pytest.raises(CustodyError, match=f"RA1's web server holds no key of {name}"):
            backend.session(ACCOUNTS[name])
        assert name not in backend.identities
    assert backend.session(ACCOUNTS["RA1"]).gateway.identity.msp_id == "RA1MSP"


def test_the_tso_dashboard_and_an_ra_form_are_different_servers(server_client, backend, as_db):
    figure_6(backend, as_db)
    tso = sign_in(server_client("TSO"), "TSO")
    assert {row["org"] for row in tso.get("/dr/compare.json?command=1").get_json()["rows"]} == {
        "AC1",
        "RA1",
        "RA2",
        "AC2",
        "RA3",
    }
    assert tso.get("/dr/declare").status_code == 403  # the TSO's server has no RA to declare as
    ra2 = sign_in(server_client("RA2"), "RA2")
    assert ra2.get("/dr/declare?command=1").status_code == 200
    assert ra2.get("/dr/compare").status_code == 200
    assert {row["org"] for row in ra2.get("/dr/compare.json?command=1").get_json()["rows"]} == {"RA2"}
    assert ra2.get("/dr/commands/1/orgs/RA1").status_code == 404


def test_a_consumer_signs_in_on_the_server_holding_its_meter(server_client):
    assert HOLDER["C1"] == "TSO"  # the meter operator's, as a consumer sees its meter's data on the T&D portal
    client = sign_in(server_client(HOLDER["C1"]), "C1")
    assert client.get("/").headers["Location"] == "/market/"
    page = server_client("TSO").get("/auth/login").text
    assert f"signs in {', '.join(['TSO', *CONSUMERS])} and no one else" in page


def test_each_organisations_web_port_comes_from_the_topology_below_32768():
    ports = {org: web_port(TOPOLOGY, org) for org in ORGS}
    assert len(set(ports.values())) == len(ORGS)
    every_node_port = {port for node in TOPOLOGY.nodes for port in node.ports().values()}
    assert not set(ports.values()) & every_node_port
    assert web_port(TOPOLOGY.with_port_base(9100), "TSO") == ports["TSO"] - TOPOLOGY.port_base + 9100
    assert max(web_port(TOPOLOGY.with_port_base(31100), org) for org in ORGS) < 32768


# The keyring (network.identities) on a crypto layout on disk: who holds a key is read from where it lies.


@pytest.fixture
def network(tmp_path):
    return SimpleNamespace(topology=TOPOLOGY, layout=CryptoLayout(TOPOLOGY, tmp_path / "crypto"))


def test_an_organisation_holds_its_own_user_and_the_meters_in_its_directory(network):
    assert Keyring(network, "RA1").held == ("RA1",)
    assert Keyring(network, "TSO").held == ("TSO", *(f"meter:{c}" for c in CONSUMERS))
    assert holder_of(network, "meter:C2") == "TSO"


def test_the_holder_of_a_meter_is_read_from_where_its_key_lies_not_assumed(network, tmp_path):
    class MetersWithTheirRA(CryptoLayout):  # the layout before the meter operator issued the meters
        def meter_dir(self, consumer):
            return self.org_dir(TOPOLOGY.consumer_owner(consumer).name) / "meters" / consumer

    moved = SimpleNamespace(topology=TOPOLOGY, layout=MetersWithTheirRA(TOPOLOGY, tmp_path / "crypto"))
    assert Keyring(moved, "RA1").held == ("RA1", "meter:C1", "meter:C4")
    assert Keyring(moved, "TSO").held == ("TSO",)


def test_a_key_of_another_organisation_is_refused_before_anything_is_read(network):
    keyring = Keyring(network, "RA1")
    for who in ("TSO", "RA2", "meter:C2", "meter:C1"):
        with pytest.raises(CustodyError, match=f"RA1's processes hold no key of {who}"):
            keyring.msp_dir(who)
        with pytest.raises(CustodyError):
            keyring.connect(who)  # nothing exists on disk: a read would fail differently
    assert keyring.msp_dir("RA1") == network.layout.user_dir("RA1") / "msp"


def test_a_directory_of_its_own_pointing_at_anothers_key_is_refused(network):
    tso_msp = network.layout.user_dir("TSO") / "msp"
    tso_msp.mkdir(parents=True)
    ra1_user = network.layout.user_dir("RA1")
    ra1_user.mkdir(parents=True)
    (ra1_user / "msp").symlink_to(tso_msp)
    with pytest.raises(CustodyError, match="lies outside RA1's directory"):
        Keyring(network, "RA1").msp_dir("RA1")


def test_a_fabric_server_for_ra1_has_accounts_for_what_ra1_holds_only(tmp_path):
    (tmp_path / "network.json").write_text(json.dumps({"port_base": TOPOLOGY.port_base}))
    backend = FabricBackend(tmp_path, "RA1")
    assert set(backend.accounts) == {"RA1"}
    assert set(FabricBackend(tmp_path, "TSO").accounts) == {"TSO", *CONSUMERS}
    with pytest.raises(CustodyError, match="no key of TSO"):
        backend.session(ACCOUNTS["TSO"])
    with pytest.raises(CustodyError, match="no key of TSO"):
        backend.sessions("TSO")  # below the web too: the sessions of RA1's process
    with pytest.raises(CustodyError, match="no organisation 'ORG9'"):
        FabricBackend(tmp_path, "ORG9")
