"""`gridledger web serve|users`: the web pages on the running network, and who may sign in to them."""

import os
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path

import click

from cli.common import reported, run_dir_option
from clients.contract import Refused


@click.group()
def web():
    """The web pages: the TSO's comparison, the RA declaration form, role views, the market."""


def _accounts(run_dir: str):
    from network.bringup import Network, NetworkError
    from web.backend import accounts_for

    if not (Path(run_dir) / "network.json").exists():
        raise NetworkError(f"no network in {run_dir}: start one with `gridledger network up --run-dir {run_dir}`")
    return accounts_for(Network(run_dir).topology)


def _sign_in_lines(run_dir: str, accounts) -> list[str]:
    from web.users import INITIAL_PASSWORDS_FILE, WEB_DIR, initial_passwords

    passwords = initial_passwords(run_dir)
    lines = []
    for name, account in accounts.items():
        password = passwords.get(name)
        lines.append(f"  {name:<5} {account.title:<34} password: {password or '(changed; see gridledger web users)'}")
    if passwords:
        lines.append(
            f"  (passwords from {Path(run_dir) / WEB_DIR / INITIAL_PASSWORDS_FILE}; delete it once they are handed out)"
        )
    return lines


def _detach(run_dir: str, host: str, port: int, accounts) -> None:
    """Starts the server as a process of the run directory (pids/web.pid, logs/web.log), so that `gridledger
    network down` stops it with the network; returns once it answers, or says why it did not."""
    from network.processes import ManagedProcess, PortInUse, check_ports_free
    from web.users import ensure_users

    process = ManagedProcess(Path(run_dir).resolve(), "web")
    if process.pid() is None:
        try:
            check_ports_free({"web": port}, host)
        except PortInUse as error:
            raise Refused(f"{error} (choose another with --port)") from None
        ensure_users(run_dir, list(accounts))  # before the process starts, so the passwords print below
        argv = [
            sys.executable,
            "-c",
            "from cli import main; main()",
            "web",
            "serve",
            "--run-dir",
            str(Path(run_dir).resolve()),
            "--host",
            host,
            "--port",
            str(port),
        ]
        process.start(argv, dict(os.environ), cwd=Path(__file__).resolve().parent.parent)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://{host}:{port}/auth/login", timeout=2).close()
                break
            except OSError:
                if process.pid() is None or time.monotonic() > deadline:
                    raise Refused(f"the web server did not start; see {process.log_file}") from None
                time.sleep(0.2)
    click.echo(
        f"web: http://{host}:{port}/ serves the network of {Path(run_dir).resolve()} (pid {process.pid()}, "
        f"log {process.log_file}; `gridledger network down` stops it)"
    )
    click.echo("web: sign in as one of")
    click.echo("\n".join(_sign_in_lines(run_dir, accounts)))


@web.command()
@run_dir_option
@click.option("--host", default="127.0.0.1", show_default=True, envvar="GRIDLEDGER_WEB_HOST")
@click.option("--port", type=click.IntRange(1, 65535), default=8050, show_default=True, envvar="GRIDLEDGER_WEB_PORT")
@click.option("--detach", is_flag=True, help="Run in the background as a process of the run directory.")
@reported
def serve(run_dir, host, port, detach):
    """Serve the web pages for the network of RUN_DIR until interrupted (Ctrl-C or SIGTERM)."""
    accounts = _accounts(run_dir)
    if detach:
        _detach(run_dir, host, port, accounts)
        return
    from werkzeug.serving import make_server

    from web import create_app

    app = create_app({"RUN_DIR": run_dir})
    server = make_server(host, port, app, threaded=True)
    click.echo(f"web: serving the network of {Path(run_dir).resolve()} at http://{host}:{port}/")
    click.echo("web: sign in as one of")
    click.echo("\n".join(_sign_in_lines(run_dir, accounts)))
    stopping = threading.Event()

    def stop(*_):
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()
    finally:
        app.extensions["gridledger"].close()  # ends open event streams, so their threads finish
        server.server_close()
        click.echo("web: stopped")


@web.command()
@run_dir_option
@click.option("--reset", "reset_name", metavar="NAME", help="Give NAME a new password (its sessions end).")
@reported
def users(run_dir, reset_name):
    """The sign-in names, and their generated passwords while the initial passwords file exists."""
    from web.users import ensure_users, reset_password

    accounts = _accounts(run_dir)
    ensure_users(run_dir, list(accounts))
    if reset_name:
        if reset_name not in accounts:
            raise Refused(f"no account {reset_name!r}; the names are {', '.join(accounts)}")
        click.echo(f"{reset_name}: new password {reset_password(run_dir, reset_name)}")
        return
    click.echo("\n".join(_sign_in_lines(run_dir, accounts)))
