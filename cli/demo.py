"""`gridledger demo`: the whole system on the running network until interrupted, each organisation's part a
process of its own holding only that organisation's keys (the DR scenario runs before it: see `make demo`):

- the market operator (TSO) configures the gates (`market configure --as TSO`, once);
- each matcher's matching service and agent (`market serve --as RA1`, …), which also reveals its RA's orders;
- each RA's simulated prosumers bidding every gate with sealed orders (`market trade --as RA1`, …);
- the TSO printing each finalised gate (`market watch --as TSO`): orders, every matcher's proposal value, the
  winner, volume, surplus and the continuous double auction's surplus on the same book;
- each organisation's web server, started by that organisation's `web serve --org ORG --detach`, on its port
  from the topology.

This process holds no organisation's keys: it starts the others, prints their output line by line behind
whose part it is, stops them all on Ctrl-C or SIGTERM, and stops the demo (exit 1) when one of them dies; if it is
killed outright, its parts notice within a second and stop (cli.market.STOP_WITH_PARENT)."""

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import click

from cli.common import fail, reported, run_dir_option
from cli.market import STOP_WITH_PARENT, traders_option
from consortium import OBJECTIVES
from network.processes import ManagedProcess

REPO = Path(__file__).resolve().parent.parent
STOP_SECONDS = 20  # how long a process has to finish its step after SIGTERM before it is killed


@dataclass(frozen=True)
class Part:
    """One organisation's process: `org` whose keys it holds (its `--as`), `role` what it does, `args` the
    gridledger command it runs."""

    org: str
    role: str
    args: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.org} {self.role}"


def trading_parts(
    run_dir: str,
    topology,
    gate_seconds: int,
    proposal_seconds: int,
    objective: str,
    trader_count: int,
    since_ms: int,
) -> tuple[Part, list[Part]]:
    """The market's processes: (the operator's one-shot configuration, the processes that run until stopped),
    each acting as one organisation only; the operator's watch reports the gates that end after `since_ms`."""
    operator = topology.market.operator
    where = ("--run-dir", str(Path(run_dir).resolve()))
    configure = Part(
        operator,
        "configure",
        (
            *("market", "configure", "--as", operator, *where),
            *("--gate-seconds", str(gate_seconds), "--proposal-seconds", str(proposal_seconds)),
            *("--objective", objective),
        ),
    )
    parts = [Part(m, "matcher", ("market", "serve", "--as", m, *where)) for m in topology.market.matchers]
    parts += [
        Part(org.name, "traders", ("market", "trade", "--as", org.name, *where, "--traders", str(trader_count)))
        for org in topology.organisations
        if org.role == "ra"
    ]
    parts.append(Part(operator, "gates", ("market", "watch", "--as", operator, *where, "--since-ms", str(since_ms))))
    return configure, parts


class Children:
    """The demo's processes, their output printed line by line behind their part's label (`width` wide)."""

    def __init__(self, width: int):
        self.width = width
        self.running: list[tuple[Part, subprocess.Popen]] = []
        self._readers: list[threading.Thread] = []
        self._echo = threading.Lock()

    def echo(self, label: str, line: str) -> None:
        with self._echo:
            click.echo(f"{label:<{self.width}} | {line}")

    def start(self, part: Part) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", "from cli import main; main()", *part.args],
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1", STOP_WITH_PARENT: "1"},  # each line as it is printed
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        self.running.append((part, process))
        reader = threading.Thread(target=self._relay, args=(part, process), name=f"output-{part.label}", daemon=True)
        reader.start()
        self._readers.append(reader)
        return process

    def _relay(self, part: Part, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.echo(part.label, line.rstrip("\n"))

    def dead(self) -> list[tuple[Part, int]]:
        return [(part, process.returncode) for part, process in self.running if process.poll() is not None]

    def stop(self) -> None:
        """SIGTERM to each (they finish their step and exit), SIGKILL to any still running after STOP_SECONDS."""
        for _, process in self.running:
            if process.poll() is None:
                process.terminate()
        for part, process in self.running:
            try:
                process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.echo(part.label, f"still running {STOP_SECONDS} s after SIGTERM: killed")
                process.kill()
                process.wait()
        for reader in self._readers:
            reader.join(timeout=5)


@click.command()
@run_dir_option
@click.option("--gate-seconds", type=click.IntRange(10, 86400), default=60, show_default=True)
@click.option("--proposal-seconds", type=click.IntRange(2, 3600), default=15, show_default=True)
@click.option("--objective", type=click.Choice(OBJECTIVES), default="welfare", show_default=True)
@traders_option("Simulated prosumers, spread over the RAs; each RA's bid through its own process.")
@reported
def demo(run_dir, gate_seconds, proposal_seconds, objective, trader_count):
    """Run trading rounds (a process per organisation's part) and each organisation's web server, until Ctrl-C."""
    from network.bringup import Network, NetworkError

    if not (Path(run_dir) / "network.json").exists():
        raise NetworkError(f"no network in {run_dir}: start one with `gridledger network up --run-dir {run_dir}`")
    topology = Network(run_dir).topology  # public: who the organisations are and their ports
    configure, parts = trading_parts(
        run_dir, topology, gate_seconds, proposal_seconds, objective, trader_count, time.time_ns() // 1_000_000
    )
    starters = web_parts(run_dir, topology)
    one_shot = {configure, *starters}
    servers = web_servers(run_dir, topology)
    ours = [org for org, server in servers.items() if server.pid() is None]  # one already running stays
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    children = Children(max(len(p.label) for p in [configure, *parts, *starters]))
    died: list[tuple[str, int | None]] = []
    try:
        if children.start(configure).wait() != 0:
            fail("the market operator's configuration failed (its output is above)")
        click.echo(
            f"demo: gates of {gate_seconds} s, {objective}; {trader_count} prosumers bid through their RAs; "
            f"matchers {', '.join(topology.market.matchers)} propose; a process per organisation's part:"
        )
        for part in parts:
            process = children.start(part)
            click.echo(f"  {part.label:<{children.width}}  pid {process.pid}  gridledger {' '.join(part.args)}")
        started = [children.start(part) for part in starters]  # side by side: each waits for its server
        failed = [p.label for p, process in zip(starters, started, strict=True) if process.wait() != 0]
        if failed:
            fail(f"web servers did not start: {', '.join(failed)} (their output is above)")
        click.echo("demo: Ctrl-C stops the trading and the web servers")
        while not stop.wait(1):
            died = [(p.label, code) for p, code in children.dead() if p not in one_shot]
            died += [(f"{org} web", None) for org, server in servers.items() if server.pid() is None]
            if died:
                break
        else:
            died = []  # stopped by Ctrl-C or SIGTERM: whatever ended with it was told to
    finally:
        stop.set()
        children.stop()
        for org in ours:
            servers[org].stop()
    if died:
        what = ", ".join(f"{label} (exit {code})" if code is not None else f"{label} (stopped)" for label, code in died)
        fail(f"the demo stopped: {what} ended; its output is above")


def web_parts(run_dir: str, topology) -> list[Part]:
    """Each organisation's `web serve --org ORG --detach`: the organisation's own process starts its server (a
    process of the run directory, stopped by `network down` too), prints its address and sign-ins, and exits."""
    where = ("--run-dir", str(Path(run_dir).resolve()))
    return [Part(org, "web", ("web", "serve", *where, "--org", org, "--detach")) for org in topology.org_names]


def web_servers(run_dir: str, topology) -> dict[str, ManagedProcess]:
    """Each organisation's web server process, by organisation (started or not)."""
    from cli.web import process_name

    return {org: ManagedProcess(Path(run_dir).resolve(), process_name(org)) for org in topology.org_names}
