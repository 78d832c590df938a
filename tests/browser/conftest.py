"""Browser tests: Debian's chromium, headless, driven by Playwright for Python, against the web app served from
this process over a real Fabric network of its own (never a browser Playwright downloads).

    GRIDLEDGER_BROWSER_PORT_BASE   the network's port base (default 18100; tests/conftest.py's `web_network`)
    GRIDLEDGER_BROWSER_RUN_DIR     use the network already running in this run directory instead (left running)
    GRIDLEDGER_CHROMIUM            the browser (default /usr/bin/chromium)

Screenshots go to test-artifacts/browser/ (gitignored).
"""

import os
import threading
from pathlib import Path

import pytest

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("GRIDLEDGER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def web_server(web_network):
    """The app on the network, served by werkzeug on a free port in a thread of this process."""
    from werkzeug.serving import make_server

    from web import create_app

    app = create_app({"RUN_DIR": str(web_network.root)})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="web-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        app.extensions["gridledger"].close()
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(scope="session")
def passwords(web_server, web_network):
    from web.users import initial_passwords

    return initial_passwords(web_network.root)


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
def sign_in(browser, web_server, passwords):
    """sign_in("RA1") → a page signed in as RA1 in a context of its own (its own cookies: its own session)."""
    contexts = []

    def open_as(name: str):
        context = browser.new_context(base_url=web_server, viewport={"width": 1280, "height": 900})
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
