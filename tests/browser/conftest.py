"""Browser tests: Debian's chromium, headless, driven by Playwright for Python (never a browser Playwright
downloads), against each organisation's own web server over a real Fabric network of its own: every server is a
process of its own (`gridledger web serve --org ORG --detach`, holding that organisation's keys only) on its port
from the topology, started when a test first signs in to it and stopped at the end.

    GRIDLEDGER_BROWSER_PORT_BASE   the network's port base (default 18100; tests/conftest.py's `web_network`)
    GRIDLEDGER_BROWSER_RUN_DIR     use the network already running in this run directory instead (left running)
    GRIDLEDGER_CHROMIUM            the browser (default /usr/bin/chromium)

Screenshots go to test-artifacts/browser/ (gitignored).
"""

import os
from pathlib import Path

import pytest

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("GRIDLEDGER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def web_server(web_network):
    """web_server(org) → the address of org's own server (started on first use, stopped after the session)."""
    from cli.web import process_name, server_accounts, start_detached
    from network.processes import ManagedProcess
    from web.backend import web_port

    addresses, started = {}, []

    def address_of(org: str) -> str:
        if org not in addresses:
            process = ManagedProcess(web_network.root, process_name(org))
            if process.pid() is None:
                started.append(process)
            _, accounts = server_accounts(str(web_network.root), org)
            port = web_port(web_network.topology, org)
            addresses[org] = start_detached(str(web_network.root), org, "127.0.0.1", port, accounts).rstrip("/")
        return addresses[org]

    yield address_of
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def server_of(web_network):
    """server_of(name) → the organisation whose server signs `name` in: the one holding its key."""
    from network.identities import holder_of
    from web.backend import accounts_for

    accounts = accounts_for(web_network.topology)
    return lambda name: holder_of(web_network, accounts[name].who)


@pytest.fixture(scope="session")
def passwords(web_server, web_network, server_of):
    """passwords[name]: the generated password of `name` on the server holding it (that server started)."""
    from web.users import initial_passwords

    class Passwords(dict):
        def __missing__(self, name):
            org = server_of(name)
            web_server(org)  # its sign-ins are generated as it starts
            self.update(initial_passwords(web_network.root, org))
            return self[name]

    return Passwords()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no chromium at {CHROMIUM}: install Debian's with `apt-get install -y chromium` "
            f"(or set GRIDLEDGER_CHROMIUM)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def sign_in(browser, web_server, server_of, passwords):
    """sign_in("RA1") → a page signed in as RA1 on RA1's own server, in a context of its own (its own cookies: its
    own session)."""
    contexts = []

    def open_as(name: str):
        context = browser.new_context(base_url=web_server(server_of(name)), viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.goto("/auth/login")
        page.fill("#name", name)
        page.fill("#password", passwords[name])
        page.click("button[type=submit]")
        page.wait_for_selector(f"[data-testid=who]:has-text('{name}')")
        return page

    yield open_as
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot():
    """screenshot(page, "name") saves test-artifacts/browser/name.png, the whole page."""

    def save(page, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
