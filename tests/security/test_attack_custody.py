"""One organisation's web server asked to act as another, on the real network (issue 12, custody). RA1's server is
the app `gridledger web serve --org RA1` runs, served from this process so the test sees every file it opens; the
TSO's is a process of its own (`--detach`). What refuses each attack:

(a) signing in to RA1's server as TSO, as RA2's consumer C2 or as RA1's own consumer C1, with their real passwords:
    RA1's server has no such account, because its accounts are the identities whose keys RA1 holds
    (network.identities.Keyring), and a consumer acts through its meter, whose key is the meter operator's (TSO's);
(b) the TSO server's genuine session cookie replayed to RA1's: each server signs its cookies with a key of its own
    (<run>/web/<ORG>/secret-key), so RA1's finds the signature wrong and signs in no one;
(c) a cookie naming TSO forged with RA1's own secret key (a dishonest RA1 holds it): the signature is good, but RA1's
    server has no account TSO, and drops the session;
(d) headers naming the TSO (X-Forwarded-User and the like): ignored, RA1 still sees RA1's figures only;
(e) a declaration form and an order naming RA2's consumer C2: refused by the web's form check, and past the form by
    every endorser's chaincode (C2 is RA2's) — the server's only organisation identity is RA1's;
(f) the server's own code asking for the TSO's session, or the TSO's key: CustodyError, before any file is read;
    over the whole run, RA1's server opened RA1's private key and no other organisation's private file (only the
    other organisations' public CA certificates, to name the MSP a certificate belongs to).
"""

import sys
import threading
import uuid
from datetime import datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import HTTPRedirectHandler, Request, build_opener

import pytest

from clients.dr import uniform_declaration
from consortium.units import JST
from gateway.errors import EndorseError
from network.connections import open_session
from network.identities import CustodyError
from web.auth import _hash_fingerprint
from web.backend import accounts_for, web_port

pytestmark = [pytest.mark.timeout(600)]

FORGED_HEADERS = {"X-Forwarded-User": "TSO", "X-Remote-User": "TSO", "Remote-User": "TSO", "X-Gridledger-Org": "TSO"}

# Every file this process opens while RA1's server runs (Python's audit hook "open"); None when not recording.
OPENED: list[Path] | None = None


def _record_open(event: str, args: tuple) -> None:
    if event == "open" and OPENED is not None and isinstance(args[0], str | bytes):
        OPENED.append(Path(args[0].decode() if isinstance(args[0], bytes) else args[0]).absolute())


sys.addaudithook(_record_open)


class _NoRedirects(HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 302 comes back as it is: where it points is what the test checks


class Client:
    """A browser without a browser: real HTTP to one server, its cookies kept by name."""

    opener = build_opener(_NoRedirects)

    def __init__(self, base: str):
        self.base = base
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None, headers: dict | None = None):
        data = urlencode(form, doseq=True).encode() if form is not None else None
        request = Request(self.base + path, data=data, method=method, headers=dict(headers or {}))
        if self.cookies:
            request.add_header("Cookie", "; ".join(f"{name}={value}" for name, value in self.cookies.items()))
        try:
            response = self.opener.open(request, timeout=60)
        except HTTPError as error:
            response = error
        with response:
            body = response.read().decode()
            for header in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    if morsel.value:
                        self.cookies[name] = morsel.value
                    else:
                        self.cookies.pop(name, None)
            return response.status, body, response.headers

    def get(self, path: str, headers: dict | None = None):
        return self.request("GET", path, headers=headers)

    def csrf(self, path: str = "/auth/login") -> str:
        _, body, _ = self.get(path)
        return body.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]

    def post(self, path: str, form: dict, headers: dict | None = None):
        return self.request("POST", path, {**form, "csrf_token": self.csrf()}, headers)

    def sign_in(self, name: str, password: str):
        return self.post("/auth/login", {"name": name, "password": password})


@pytest.fixture(scope="module")
def command(security_network):
    """A command for AC1 starting tomorrow (JST), so declaring for it is in time whatever the contract's rules."""
    tomorrow = datetime.now(JST).replace(second=0, microsecond=0) + timedelta(days=1)
    tso = open_session(security_network, "TSO")
    record = tso.dr.issue(
        {
            "id": f"custody-{uuid.uuid4().hex[:8]}",
            "start": tomorrow.strftime("%Y-%m-%dT%H:%M"),
            "end": (tomorrow + timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M"),
            "requested_kw": 1,
            "target_acs": ["AC1"],
            "price_per_kwh": 2500,
            "baseline_minutes": 1,
        }
    )
    open_session(security_network, "RA1").dr.wait_for_command(record["id"])
    tso.close()
    return record


@pytest.fixture(scope="module")
def tso_server(security_network):
    """The TSO's server, a process of its own holding the TSO's keys; its address and the TSO's password."""
    from cli.web import process_name, server_accounts, start_detached
    from network.processes import ManagedProcess
    from web.users import initial_passwords

    root = str(security_network.root)
    process = ManagedProcess(security_network.root, process_name("TSO"))
    ours = process.pid() is None
    _, accounts = server_accounts(root, "TSO")
    address = start_detached(root, "TSO", "127.0.0.1", web_port(security_network.topology, "TSO"), accounts)
    yield address.rstrip("/"), initial_passwords(root, "TSO")["TSO"]
    if ours:
        process.stop()


@pytest.fixture(scope="module")
def ra1_server(security_network, command, tso_server):
    """RA1's server (the app `web serve --org RA1` runs) in a thread, every file it opens recorded from its start."""
    global OPENED
    from werkzeug.serving import make_server

    from web import create_app
    from web.users import initial_passwords

    OPENED = []
    app = create_app({"RUN_DIR": str(security_network.root), "ORG": "RA1"})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="ra1-web", daemon=True)
    thread.start()
    try:
        yield ServedApp(f"http://127.0.0.1:{server.server_port}", app, initial_passwords(security_network.root, "RA1"))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        app.extensions["gridledger"].close()
        OPENED = None


class ServedApp:
    def __init__(self, base: str, app, passwords: dict):
        self.base, self.app, self.passwords = base, app, passwords

    def signed_in(self) -> Client:
        client = Client(self.base)
        status, body, _ = client.sign_in("RA1", self.passwords["RA1"])
        assert status == 302, body
        return client


def other_passwords(network, names):
    """The real passwords of `names` on the servers holding them (generated if need be, as their servers would)."""
    from network.identities import holder_of
    from web.users import ensure_users, initial_passwords

    accounts = accounts_for(network.topology)
    passwords = {}
    for name in names:
        org = holder_of(network, accounts[name].who)
        ensure_users(network.root, org, [name])
        passwords[name] = initial_passwords(network.root, org)[name]
    return passwords


def test_signing_in_as_another_organisation_is_refused_there_is_no_such_account(security_network, ra1_server):
    for name, password in other_passwords(security_network, ["TSO", "C2", "C1"]).items():
        client = Client(ra1_server.base)
        status, body, _ = client.sign_in(name, password)
        assert status == 400 and "Unknown name or wrong password." in body, name
        assert client.get("/dr/compare")[0] == 302  # still signed out
    assert set(ra1_server.app.extensions["gridledger"].accounts) == {"RA1"}


def test_the_tso_servers_genuine_cookie_signs_in_no_one_on_ra1s(tso_server, ra1_server):
    address, password = tso_server
    tso = Client(address)
    assert tso.sign_in("TSO", password)[0] == 302
    assert tso.get("/dr/compare")[0] == 200
    cookie = tso.cookies["gridledger_tso"]
    for name in ("gridledger_tso", "gridledger_ra1"):
        replayed = Client(ra1_server.base)
        replayed.cookies[name] = cookie
        status, _, headers = replayed.get("/dr/compare")
        assert status == 302 and headers["Location"].startswith("/auth/login"), name
        assert replayed.get("/dr/compare.json")[0] == 401


def test_a_cookie_naming_the_tso_forged_with_ra1s_own_key_is_dropped(security_network, ra1_server):
    from web.users import UsersFile

    app = ra1_server.app
    tso_hash = UsersFile(security_network.root, "TSO")["TSO"]  # the worst case: RA1 even read the TSO's hash
    forged = app.session_interface.get_signing_serializer(app).dumps(
        {"user": "TSO", "key": _hash_fingerprint(tso_hash), "csrf": "forged"}
    )
    client = Client(ra1_server.base)
    client.cookies["gridledger_ra1"] = forged
    status, _, headers = client.get("/dr/compare")
    assert status == 302 and headers["Location"].startswith("/auth/login")
    assert "gridledger_ra1" not in client.cookies  # the server cleared the forged session


def test_headers_naming_the_tso_change_nothing(ra1_server, command):
    assert Client(ra1_server.base).get("/dr/compare.json", headers=FORGED_HEADERS)[0] == 401
    client = ra1_server.signed_in()
    status, body, _ = client.get(f"/dr/compare.json?command={command['id']}", headers=FORGED_HEADERS)
    assert status == 200 and '"org": "AC1"' not in body and '"org": "RA2"' not in body
    assert client.get(f"/dr/commands/{command['id']}/orgs/RA2", headers=FORGED_HEADERS)[0] == 404
    assert 'data-testid="who">RA1<' in client.get("/dr/", headers=FORGED_HEADERS)[1]


def test_forms_naming_ra2s_consumer_are_refused_by_the_form_and_by_every_endorser(ra1_server, command):
    client = ra1_server.signed_in()
    status, body, _ = client.post(
        f"/dr/declare?command={command['id']}",
        {"command": command["id"], "baseline_method": "mean-before", "consumers": "C2", "expected-C2": "1"},
    )
    assert status == 400 and "Not one of your consumers: &#39;C2&#39;" in body
    status, body, _ = client.post(
        "/market/orders", {"participant": "C2", "side": "sell", "price": "20", "quantity": "1"}
    )
    assert status == 400 and "You may not place orders for &#39;C2&#39;" in body
    # Past the form: the server's own session (RA1's identity, the only organisation one it holds) is refused by
    # the chaincode of the endorsing peers.
    backend = ra1_server.app.extensions["gridledger"]
    dr = backend.session(backend.accounts["RA1"]).dr
    with pytest.raises(EndorseError, match="consumer C2 belongs to RA2; RA1 may declare only its own consumers"):
        dr.declare(command["id"], uniform_declaration(command, ["C2"], 10, None))


def test_ra1s_server_cannot_sign_as_another_organisation_it_holds_no_key(security_network, ra1_server):
    backend = ra1_server.app.extensions["gridledger"]
    accounts = accounts_for(security_network.topology)
    before = len(OPENED)
    for name in ("TSO", "AC1", "RA2", "C2", "C1"):
        with pytest.raises(CustodyError, match=f"no key of {name}"):
            backend.session(accounts[name])
    for who in ("TSO", "AC1", "RA2", "meter:C2", "meter:C1"):
        with pytest.raises(CustodyError, match=f"RA1's processes hold no key of {who}"):
            backend.sessions(who)
        with pytest.raises(CustodyError):
            backend.sessions.keyring.msp_dir(who)
    layout = security_network.layout
    assert [p for p in OPENED[before:] if p.is_relative_to(layout.root)] == []  # refused before any key was opened


def test_over_its_whole_run_ra1s_server_read_no_other_organisations_private_file(security_network, ra1_server):
    ra1_server.signed_in().get("/market/")  # at least one ledger call: RA1's key is loaded
    layout = security_network.layout
    crypto = [path for path in OPENED if path.is_relative_to(layout.root)]
    own = layout.org_dir("RA1")
    assert any(p.is_relative_to(own) and p.parent.name == "keystore" for p in crypto)  # the hook does see key reads
    others = [p for p in crypto if not p.is_relative_to(own)]
    public = [layout.org_msp_dir(o) / "cacerts" for o in security_network.topology.org_names]
    assert [p for p in others if not any(p.is_relative_to(d) for d in public)] == []
