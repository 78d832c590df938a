"""`gridledger web serve|users --org ORG`: one organisation's web server on the running network (it holds that
organisation's keys only), and who may sign in to it."""

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

org_option = click.option(
    "--org",
    required=True,
    metavar="ORG",
    envvar="GRIDLEDGER_WEB_ORG",
    help="Whose server: TSO, AC1, RA1, … It signs only as that organisation and the identities it holds.",
)


@click.group()
def web():
    """Each organisation's web pages: the TSO's comparison, the RA declaration form, role views, the market."""


def server_accounts(run_dir: str, org: str):
    """(topology, accounts) of `org`'s server: the accounts whose keys the organisation holds."""
    from network.bringup import Network, NetworkError
    from network.identities import Keyring
    from web.backend import accounts_for

    if not (Path(run_dir) / "network.json").exists():
        raise NetworkError(f"no network in {run_dir}: start one with `gridledger network up --run-dir {run_dir}`")
    network = Network(run_dir)
    if org not in network.topology.org_names:
        raise Refused(f"--org must be one of {', '.join(network.topology.org_names)}, got {org!r}")
    held = Keyring(network, org).held
    return network.topology, {name: a for name, a in accounts_for(network.topology).items() if a.who in held}


def sign_in_lines(run_dir: str, org: str, accounts) -> list[str]:
    """One line per account of `org`'s server with its generated password while the initial passwords file lasts."""
    from web.users import INITIAL_PASSWORDS_FILE, initial_passwords, web_dir

    passwords = initial_passwords(run_dir, org)
    lines = []
    for name, account in accounts.items():
        password = passwords.get(name)
        lines.append(
            f"  {name:<5} {account.title:<34} password: {password or f'(changed; see gridledger web users --org {org})'}"
        )
    if passwords:
        lines.append(
            f"  (passwords from {web_dir(run_dir, org) / INITIAL_PASSWORDS_FILE}; delete it once they are handed out)"
        )
    return lines


def process_name(org: str) -> str:
    """The name of `org`'s detached server among the run directory's processes (pids/<name>.pid, logs/)."""
    return f"web-{org.lower()}"


def start_detached(run_dir: str, org: str, host: str, port: int, accounts) -> str:
    """Starts `org`'s server as a process of the run directory, so that `gridledger network down` stops it with
    the network; returns its address once it answers, or says why it did not."""
    from network.processes import ManagedProcess, PortInUse, check_ports_free
    from web.users import ensure_users

    process = ManagedProcess(Path(run_dir).resolve(), process_name(org))
    if process.pid() is None:
        try:
            check_ports_free({f"{org}'s web server": port}, host)
        except PortInUse as error:
            raise Refused(f"{error} (choose another with --port)") from None
        ensure_users(run_dir, org, list(accounts))  # before the process starts, so the passwords print
        argv = [
            sys.executable,
            "-c",
            "from cli import main; main()",
            "web",
            "serve",
            "--run-dir",
            str(Path(run_dir).resolve()),
            "--org",
            org,
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
                    raise Refused(f"{org}'s web server did not start; see {process.log_file}") from None
                time.sleep(0.2)
    return f"http://{host}:{port}/"


@web.command()
@run_dir_option
@org_option
@click.option("--host", default="127.0.0.1", show_default=True, envvar="GRIDLEDGER_WEB_HOST")
@click.option("--port", type=click.IntRange(1, 65535), help="Default: the organisation's web port from the topology.")
@click.option("--detach", is_flag=True, help="Run in the background as a process of the run directory.")
@reported
def serve(run_dir, org, host, port, detach):
    """Serve ORG's web pages for the network of RUN_DIR until interrupted (Ctrl-C or SIGTERM)."""
    from web.backend import web_port

    topology, accounts = server_accounts(run_dir, org)
    port = port or web_port(topology, org)
    if detach:
        address = start_detached(run_dir, org, host, port, accounts)
        from network.processes import ManagedProcess

        process = ManagedProcess(Path(run_dir).resolve(), process_name(org))
        click.echo(
            f"web: {org}'s server at {address} (pid {process.pid()}, log {process.log_file}; "
            f"`gridledger network down` stops it)"
        )
        click.echo("web: sign in as one of")
        click.echo("\n".join(sign_in_lines(run_dir, org, accounts)))
        return
    from werkzeug.serving import make_server

    from web import create_app

    app = create_app({"RUN_DIR": run_dir, "ORG": org})
    server = make_server(host, port, app, threaded=True)
    click.echo(f"web: {org}'s server for the network of {Path(run_dir).resolve()} at http://{host}:{port}/")
    click.echo("web: sign in as one of")
    click.echo("\n".join(sign_in_lines(run_dir, org, accounts)))
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
@org_option
@click.option("--reset", "reset_name", metavar="NAME", help="Give NAME a new password (its sessions end).")
@reported
def users(run_dir, org, reset_name):
    """The names that may sign in to ORG's server, and their passwords while the initial passwords file exists."""
    from web.users import ensure_users, reset_password

    _, accounts = server_accounts(run_dir, org)
    ensure_users(run_dir, org, list(accounts))
    if reset_name:
        if reset_name not in accounts:
            raise Refused(f"{org}'s server has no account {reset_name!r}; its names are {', '.join(accounts)}")
        click.echo(f"{reset_name}: new password {reset_password(run_dir, org, reset_name)}")
        return
    click.echo("\n".join(sign_in_lines(run_dir, org, accounts)))
