"""Hyperledger Caliper's figures for gridledger: brings up a network of its own, sets up what the rounds need,
generates Caliper's network configuration from the topology and the run directory, runs `caliper launch manager`
on benchmark.yaml twice, and prints and writes the figures of the successful transactions only.

Orders are sealed while their gate is open and revealed after it (chaincode.contracts.market), which one launch
cannot do between its rounds. So the first launch runs the order round alone (sealed batches prepared here); then
Python reveals the orders of every gate it filled and the matchers reveal their seed contributions (committed ahead,
before the first launch), as clients.market and clients.market_agent do; the second launch runs the other rounds,
the close round last.

    .venv/bin/python tests/bench/caliper/run.py --caliper-dir ~/.cache/gridledger/caliper-0.6.0
        [--seconds 20] [--workers 2] [--report-dir bench-results/caliper] [--out bench-results/caliper.json]

`make caliper` installs Caliper into --caliper-dir first. The network's ports start at GRIDLEDGER_BENCH_PORT_BASE
(default 11100); it is always taken down, and Caliper is stopped after a bounded time. Everything stays on
127.0.0.1. Caliper's own "Throughput" counts failed transactions too and its latencies are min/avg/max; the
figures here come from observers/tx-times.js (every transaction's status and times) and count successes only.
"""

import argparse
import copy
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the benchmarks' shared harness, as bench_*.py import it

from baseline_load import baseline_hours, load_command, wait_for_baseline  # noqa: E402
from harness import own_network  # noqa: E402

from chaincode.contracts.market import gate_label  # noqa: E402
from chaincode.contracts.market_seed import seed_commitment  # noqa: E402
from clients.contract import Refused  # noqa: E402
from clients.dr import Reading, meter_signatures  # noqa: E402
from clients.market_agent import MarketAgent, contribution_key  # noqa: E402
from consortium import CHAINCODE_NAME  # noqa: E402
from consortium.units import minute_label  # noqa: E402
from gateway.errors import CommitError, GatewayError  # noqa: E402
from network.bringup import Network  # noqa: E402
from network.connections import Sessions  # noqa: E402
from network.crypto import MeterOperator  # noqa: E402
from sim.meters import MeterFleet, SimulatedConsumer  # noqa: E402

DEFAULT_PORT_BASE = 11100
CALIPER_VERSION = "0.6.0"
SETTLE_SECONDS = 60  # Caliper's start (workers, gateways) and its waits between rounds, beyond the rounds' own
LEAD_SECONDS = 60  # to issue the DR command and declare every RA's consumers before its window starts
# Batches signed ahead per second of a readings round: ten times the rate measured unpaced (4.4 tx/s).
SIGNED_BATCHES_PER_SECOND = 50
# Batches sealed ahead per second of the order round: ten times the rate measured (about 30 tx/s).
SEALED_BATCHES_PER_SECOND = 300
# Each phase after a gate's end (reveals, then contributions): long enough for the first launch to end and the
# reveals to be made.
REVEAL_SECONDS = 600
# Seed contributions are committed for the gates of this long after the first launch starts: Caliper's start and
# the order round (the round's own duration is added).
COMMIT_AHEAD_SECONDS = SETTLE_SECONDS + 10
PARALLEL_SUBMITS = 12  # the setup's and the reveals' transactions in flight


def identity_name(org: str) -> str:
    return f"{org}-User1"  # workloads/common.js identityOf


def connection_profile(network: Network, org: str) -> dict:
    """A common connection profile for `org`: its own peer, reached over TLS with its TLS CA's certificate."""
    peer = network.topology.peer_of(org)
    ca = network.layout.node_dir(peer) / "tls" / "ca.crt"
    return {
        "name": f"gridledger-{org}",
        "version": "1.0.0",
        "client": {"organization": org},
        "organizations": {org: {"mspid": network.topology.organisation(org).msp_id, "peers": [peer.hostname]}},
        "peers": {
            peer.hostname: {
                "url": f"grpcs://{peer.address}",
                "tlsCACerts": {"path": str(ca)},
                "grpcOptions": {"ssl-target-name-override": peer.hostname},
            }
        },
    }


def only_file(directory: Path) -> Path:
    files = sorted(p for p in directory.iterdir() if p.is_file())
    if len(files) != 1:
        raise SystemExit(f"caliper: expected one file in {directory}, found {len(files)}")
    return files[0]


def network_config(network: Network, directory: Path) -> Path:
    """Caliper's Fabric network configuration (format 2.0.0): the channel and chaincode, and per organisation its
    User1 (certificate and key from the run directory's crypto material) and its connection profile."""
    organisations = []
    for org in network.topology.org_names:
        profile = directory / f"profile-{org}.yaml"
        profile.write_text(yaml.safe_dump(connection_profile(network, org)))
        msp = network.layout.user_dir(org, "User1") / "msp"
        organisations.append(
            {
                "mspid": network.topology.organisation(org).msp_id,
                "identities": {
                    "certificates": [
                        {
                            "name": identity_name(org),
                            "clientPrivateKey": {"path": str(only_file(msp / "keystore"))},
                            "clientSignedCert": {"path": str(only_file(msp / "signcerts"))},
                        }
                    ]
                },
                "connectionProfile": {"path": str(profile), "discover": True},
            }
        )
    config = {
        "name": "gridledger",
        "version": "2.0.0",
        "caliper": {"blockchain": "fabric"},
        "channels": [{"channelName": network.topology.channel, "contracts": [{"id": CHAINCODE_NAME}]}],
        "organizations": organisations,
    }
    path = directory / "network.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def round_arguments(benchmark: dict, module: str) -> dict:
    """The arguments of the first round whose workload is `module` (e.g. "workloads/readings.js")."""
    for round_ in benchmark["test"]["rounds"]:
        if round_["workload"]["module"] == module:
            return round_["workload"]["arguments"]
    raise SystemExit(f"caliper: benchmark.yaml has no round of {module}")


def set_up(sessions: Sessions, benchmark: dict) -> None:
    """What the rounds assume: the market's gate length, the consumers registered, the DR command (dated now by
    baseline_load, given to every readings round) and its declarations; then waits until its baseline's whole
    hours, the readings the rounds post, have ended."""
    gates = round_arguments(benchmark, "workloads/gates.js")
    sessions("TSO").market.configure({"gate_seconds": gates["gateSeconds"], "reveal_seconds": REVEAL_SECONDS})
    readings = round_arguments(benchmark, "workloads/readings.js")
    consumers = {
        ra: [
            SimulatedConsumer(consumer_id(ra, n), ra, 0.3 + (n % 27) / 10, 0.1 + (n % 4) / 10)
            for n in range(readings["consumersPerRa"])
        ]
        for ra in readings["ras"]
    }
    for ra in readings["ras"]:
        sessions(ra).dr.register_consumers([c.id for c in consumers[ra]])
    command = load_command(readings["command"]["id"], LEAD_SECONDS)
    for round_ in benchmark["test"]["rounds"]:
        if round_["workload"]["module"] == "workloads/readings.js":
            round_["workload"]["arguments"]["command"] = command
    sessions("TSO").dr.issue(command)
    for ra in readings["ras"]:
        dr = sessions(ra).dr
        dr.wait_for_command(command["id"])  # the TSO's peer committed it; the RA's may be a moment behind
        dr.declare(command["id"], MeterFleet(consumers[ra], seed=1).declaration(command, consumers[ra]))
    wait_for_baseline(command)


def consumer_id(ra: str, number: int) -> str:
    return f"{ra}-B{number:05d}"  # as set_up registers them


def reading_units(arguments: dict) -> list[tuple[str, int, int, int]]:
    """The batches of the readings rounds, in the order the workers take them: (RA, first consumer number,
    consumers, first minute of the hour), one whole hour of the command's baseline (baseline_load) of each group of
    consumersPerBatch consumers of each RA."""
    command, per_ra, per_batch = arguments["command"], arguments["consumersPerRa"], arguments["consumersPerBatch"]
    groups = -(-per_ra // per_batch)
    return [
        (ra, group * per_batch, min(per_batch, per_ra - group * per_batch), hour)
        for hour in baseline_hours(command)
        for group in range(groups)
        for ra in arguments["ras"]
    ]


def sign_readings(network: Network, benchmark: dict, directory: Path) -> int:
    """Writes each batch the readings rounds may post to `directory/<unit>.json` with its meters' signatures, as an
    RA relays them (clients.dr: transient "readings" and "meter_signatures"), and tells each round where they are
    and where its share ends. Signed here, in Python, with the meter operator's simulated meters, so the JS
    workload only sends them and Caliper measures the ledger, not the signing. Returns the batches signed."""
    meters = MeterOperator(network.layout)
    rounds = [r for r in benchmark["test"]["rounds"] if r["workload"]["module"] == "workloads/readings.js"]
    signed = 0
    for index, round_ in enumerate(rounds):
        arguments = round_["workload"]["arguments"]
        units = reading_units(arguments)
        following = [r["workload"]["arguments"]["unitOffset"] for r in rounds[index + 1 :]]
        begin = arguments["unitOffset"]
        end = min(len(units), *following, begin + int(round_["txDuration"] * SIGNED_BATCHES_PER_SECOND))
        command = arguments["command"]["id"]
        for unit in range(begin, end):
            ra, first, count, hour = units[unit]
            readings = [
                Reading(ra, consumer_id(ra, c), minute_label(m), 100 + (c * 7 + m) % 200)
                for c in range(first, first + count)
                for m in range(hour, hour + 60)
            ]
            batch = {
                "ra": ra,
                "readings": json.dumps([r.as_json() for r in readings]),
                "meter_signatures": json.dumps(meter_signatures(command, readings, meters)),
            }
            (directory / f"{unit}.json").write_text(json.dumps(batch))
        arguments["batchesDirectory"], arguments["unitEnd"] = str(directory), end
        signed += end - begin
    return signed


def seal_orders(sessions: Sessions, benchmark: dict, directory: Path) -> int:
    """Writes each batch the order round may place to `directory/<n>.json`: {"ra", "orders": its commitments as
    place_orders takes them}, sealed by the RA's MarketClient.seal (as place_orders seals), which keeps the orders
    and salts for its reveal_orders after their gate. Returns the batches sealed."""
    round_ = next(r for r in benchmark["test"]["rounds"] if r["workload"]["module"] == "workloads/orders.js")
    arguments = round_["workload"]["arguments"]
    consumers_by_ra, per_batch = arguments["consumersByRa"], arguments["ordersPerBatch"]
    ras = list(consumers_by_ra)
    count = int(round_["txDuration"] * SEALED_BATCHES_PER_SECOND)
    for n in range(count):
        ra = ras[n % len(ras)]
        consumers = consumers_by_ra[ra]
        orders = []
        for i in range(per_batch):
            sell = (n + i) % 2 == 0
            orders.append(
                {
                    "participant": consumers[i % len(consumers)],
                    "side": "sell" if sell else "buy",
                    "price": 10 + (n + i) % 15 if sell else 12 + (n * 7 + i) % 15,  # yen/kWh: books that cross
                    "quantity": 0.5 + ((n + i) % 8) / 2,  # kWh
                }
            )
        _, sealed, _ = sessions(ra).market.seal(orders)
        (directory / f"{n}.json").write_text(json.dumps({"ra": ra, "orders": json.dumps(sealed)}))
    arguments["batchesDirectory"], arguments["batches"] = str(directory), count
    return count


def matcher_agents(sessions: Sessions) -> list[MarketAgent]:
    """Each matcher's MarketAgent, for its contribution secrets (HMAC of its key in the run directory and the gate)."""
    return [
        MarketAgent(sessions(org).market, contributes=True, key=contribution_key(sessions.run_dir, org))
        for org in sessions.topology.market.matchers
    ]


def in_parallel(calls: list) -> list:
    """Runs the calls (functions of no argument) PARALLEL_SUBMITS at a time; their results, in order."""
    with ThreadPoolExecutor(PARALLEL_SUBMITS) as pool:
        return list(pool.map(lambda call: call(), calls))


def commit_seeds_ahead(sessions: Sessions, agents: list[MarketAgent], seconds: float) -> int:
    """Every matcher commits its contribution (market_seed.seed_commitment of MarketAgent.secret_for) to every gate
    of the next `seconds`, before the first launch: the contract takes commitments for any gate that has not ended,
    and so none competes with the order round, whose gates are 1 second, shorter than a transaction. Returns the
    commitments made."""
    config = sessions("TSO").market.config()
    length_ms = config["gate_seconds"] * 1000
    first = config["current_gate_end_ms"] + length_ms  # a gate that is sure not to end before its commitment
    gates = [gate_label(first + k * length_ms) for k in range(int(seconds * 1000 // length_ms))]

    def commit(agent: MarketAgent, gate: str):
        def call() -> int:
            try:
                agent.market.commit_seed(gate, seed_commitment(gate, agent.org, agent.secret_for(gate)))
            except GatewayError as error:
                if error.refused and "has ended" in str(error):
                    return 0  # one of the first gates, over while the setup committed: before the order round
                raise
            return 1

        return call

    return sum(in_parallel([commit(agent, gate) for gate in gates for agent in agents]))


def reveal_gates(sessions: Sessions, agents: list[MarketAgent]) -> dict:
    """After the order round: every RA reveals its orders of every gate the round filled (MarketClient.reveal_orders,
    from the salts seal_orders kept), then each matcher that committed to the gate reveals its contribution, so the
    gates are ready to close. Returns what was revealed and how long it took."""
    began = time.monotonic()
    filled = [g["id"] for g in sessions("TSO").market.gates(500) if g["status"] == "revealing" and g["orders"]]
    ras = [org.name for org in sessions.topology.organisations if org.role == "ra"]

    def reveal(ra: str, gate: str):
        return lambda: len(sessions(ra).market.reveal_orders(gate)["revealed"])

    revealed = sum(in_parallel([reveal(ra, gate) for gate in filled for ra in ras]))
    orders_seconds = time.monotonic() - began

    def contribute(agent: MarketAgent, gate: str):
        def call() -> int:
            for _ in range(10):
                try:
                    agent.market.reveal_seed(gate, agent.secret_for(gate))
                    return 1
                except CommitError:  # ordered beside a transaction it conflicted with
                    pass
                except GatewayError as error:
                    if error.refused and "has not committed" in str(error):
                        return 0
                    if not (error.refused and "contributions come after" in str(error)):
                        raise  # an endorser a block behind the last reveal: again
                time.sleep(1)
            raise Refused(f"{agent.org} could not reveal its contribution to gate {gate}")

        return call

    contributions = sum(in_parallel([contribute(agent, gate) for gate in filled for agent in agents]))
    return {
        "gates": len(filled),
        "orders_revealed": revealed,
        "reveal_transactions": len(filled) * len(ras),
        "orders_seconds": round(orders_seconds, 1),
        "contributions_revealed": contributions,
        "seconds": round(time.monotonic() - began, 1),
    }


def fit_gate_round(sessions: Sessions, round_: dict, workers: int) -> int:
    """Closes no more gates than are ready ("closing", with orders), and a multiple of the workers: they are dealt
    the gates in turn and each closes its share of txNumber. Returns the gates ready."""
    ready = [g for g in sessions("TSO").market.gates(500) if g["status"] == "closing" and g["orders"]]
    round_["txNumber"] = min(round_["txNumber"], workers * (len(ready) // workers))
    if round_["txNumber"] == 0:
        raise SystemExit(f"caliper: {len(ready)} gates ready to close, fewer than the {workers} workers")
    return len(ready)


def bounded_seconds(rounds: list[dict]) -> float:
    """How long the rounds may take: their durations, or their counts at their rates, and Caliper's own waits."""
    total = 0.0
    for round_ in rounds:
        if "txDuration" in round_:
            total += round_["txDuration"]
        else:
            total += round_["txNumber"] / round_["rateControl"]["opts"].get("tps", 1)
    return 2 * total + SETTLE_SECONDS * (1 + len(rounds))


class GroupCpu:
    """The CPU seconds used by the processes of one process group (Caliper's manager and its workers), read
    from /proc twice a second while they run; the last half second of each is not seen."""

    CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self, group: int):
        self.group = group
        self.used: dict[int, float] = {}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stopped.wait(0.5):
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[2]) == self.group:  # pgrp
                    self.used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / self.CLOCK_TICKS

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def seconds(self) -> float:
        return sum(self.used.values())


def launch(
    caliper_dir: Path, network_yaml: Path, benchmark_yaml: Path, report: Path, log: Path, seconds: float
) -> float:
    """`caliper launch manager` (its workers run as child processes), stopped with its process group after
    `seconds`; its output goes to `log`. Returns the CPU seconds Caliper used, its manager and workers together."""
    command = [
        str(caliper_dir / "node_modules" / ".bin" / "caliper"),
        "launch",
        "manager",
        "--caliper-workspace",
        str(HERE),
        "--caliper-networkconfig",
        str(network_yaml),
        "--caliper-benchconfig",
        str(benchmark_yaml),
        "--caliper-report-path",
        str(report),
        "--caliper-flow-only-test",
    ]
    # The workload modules and the observer require Caliper's packages from the install outside the checkout.
    environment = {**os.environ, "NODE_PATH": str(caliper_dir / "node_modules")}
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=log.parent, env=environment, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        cpu = GroupCpu(process.pid)
        try:
            code = process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
            raise SystemExit(f"caliper: stopped after {seconds:.0f} s; see {log}") from None
        finally:
            cpu.stop()
    if code != 0 or not report.exists():
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise SystemExit(f"caliper: launch manager exited with {code}; the end of {log}:\n{tail}")
    return cpu.seconds()


def percentile(values: list[float], share: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[int(share * (len(ordered) - 1))], 1) if ordered else None


def figures_from_times(directory: Path) -> dict[str, dict]:
    """Per round label: successful and failed counts, throughput of the successful ones over the round (first
    transaction created to last finished, the span Caliper's Throughput uses), their latencies, and how many
    transactions were in flight on average (Little's law: the sum of all latencies over the span), which shows
    whether the workers kept up the load their rate controller asked for."""
    rows: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for path in sorted(directory.glob("worker-*.tsv")):
        for line in path.read_text().splitlines():
            label, status, created, final = line.split("\t")
            rows[label].append((status, int(created), int(final)))
    figures = {}
    for label, transactions in rows.items():
        successes = [final - created for status, created, final in transactions if status == "success"]
        span = (max(t[2] for t in transactions) - min(t[1] for t in transactions)) / 1000
        figures[label] = {
            "successful": len(successes),
            "failed": len(transactions) - len(successes),
            "seconds": round(span, 2),
            "successful_tps": round(len(successes) / span, 1) if span > 0 else None,
            "mean_in_flight": round(sum(t[2] - t[1] for t in transactions) / 1000 / span, 1) if span > 0 else None,
            "latency_ms": {
                "p50": percentile(successes, 0.5),
                "p95": percentile(successes, 0.95),
                "avg": round(statistics.fmean(successes), 1) if successes else None,
                "max": max(successes, default=None),
            },
        }
    return figures


class ReportTable(HTMLParser):
    """The rows of the summary table of Caliper's report.html ("Name", "Succ", "Fail", "Send Rate (TPS)", …)."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def caliper_summary(report: Path) -> dict[str, dict[str, str]]:
    """Caliper's own summary per round label, as its report shows it."""
    parser = ReportTable()
    parser.feed(report.read_text())
    header = next((row for row in parser.rows if row[:2] == ["Name", "Succ"]), None)
    if header is None:
        return {}
    summary = {}
    for row in parser.rows:
        if len(row) == len(header) and row != header and row[0] not in summary:
            summary[row[0]] = dict(zip(header[1:], row[1:], strict=True))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--caliper-dir", type=Path, required=True, help="where make caliper installed Caliper")
    parser.add_argument("--seconds", type=float, help="override the rounds' txDuration (each at most this)")
    parser.add_argument("--workers", type=int, help="override the number of Caliper workers (benchmark.yaml: 2)")
    parser.add_argument("--report-dir", type=Path, default=Path("bench-results/caliper"))
    parser.add_argument("--out", type=Path, default=Path("bench-results/caliper.json"))
    args = parser.parse_args()
    if not (args.caliper_dir / "node_modules" / ".bin" / "caliper").exists():
        raise SystemExit(f"caliper: no Caliper installed in {args.caliper_dir}; run `make caliper`")
    benchmark = yaml.safe_load((HERE / "benchmark.yaml").read_text())
    rounds = benchmark["test"]["rounds"]
    if args.seconds:
        for round_ in rounds:
            if "txDuration" in round_:
                round_["txDuration"] = min(round_["txDuration"], args.seconds)
    if args.workers:
        benchmark["test"]["workers"]["number"] = args.workers
    workers = benchmark["test"]["workers"]["number"]
    report_dir = args.report_dir.resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    times_dir = report_dir / "tx-times"
    for stale in times_dir.glob("worker-*.tsv"):  # both launches append to them
        stale.unlink()
    benchmark["monitors"]["transaction"][0]["options"]["directory"] = str(times_dir)
    # The first launch: the order round alone; the second: the other rounds, in benchmark.yaml's order.
    launches = [
        [r for r in rounds if r["workload"]["module"] == "workloads/orders.js"],
        [r for r in rounds if r["workload"]["module"] != "workloads/orders.js"],
    ]
    reports = [report_dir / f"report-{n}.html" for n in (1, 2)]
    for report in reports:
        report.unlink(missing_ok=True)
    started = time.monotonic()
    caliper_cpu = 0.0
    between: dict = {}
    with own_network("gridledger-caliper-", DEFAULT_PORT_BASE) as network, tempfile.TemporaryDirectory() as work:
        sessions = Sessions(network.root)
        setup_began = time.monotonic()
        set_up(sessions, benchmark)
        for kind in ("readings", "orders"):
            (Path(work) / kind).mkdir()
        signed = sign_readings(network, benchmark, Path(work) / "readings")
        sealed = seal_orders(sessions, benchmark, Path(work) / "orders")
        agents = matcher_agents(sessions)
        order_seconds = sum(r["txDuration"] for r in launches[0])
        committed = commit_seeds_ahead(sessions, agents, COMMIT_AHEAD_SECONDS + order_seconds)
        setup_seconds = time.monotonic() - setup_began
        print(
            f"setup: {setup_seconds:.1f} s, {signed} readings batches signed by their meters, {sealed} order "
            f"batches sealed, {committed} seed contributions committed ahead"
        )
        network_yaml = network_config(network, Path(work))
        for number, (launch_rounds, report) in enumerate(zip(launches, reports, strict=True), start=1):
            if number == 2:
                between = reveal_gates(sessions, agents)
                gates_round = next(r for r in launch_rounds if r["workload"]["module"] == "workloads/gates.js")
                between["ready_to_close"] = fit_gate_round(sessions, gates_round, workers)
                print(
                    f"between the launches (Python, not measured by Caliper): {between['orders_revealed']} orders of "
                    f"{between['gates']} gates revealed in {between['reveal_transactions']} transactions "
                    f"({between['orders_seconds']} s), {between['contributions_revealed']} seed contributions "
                    f"revealed, {between['ready_to_close']} gates ready to close; {between['seconds']} s"
                )
            launch_benchmark = copy.deepcopy(benchmark)
            launch_benchmark["test"]["rounds"] = launch_rounds
            benchmark_yaml = Path(work) / f"benchmark-{number}.yaml"
            benchmark_yaml.write_text(yaml.safe_dump(launch_benchmark, sort_keys=False))
            caliper_cpu += launch(
                args.caliper_dir,
                network_yaml,
                benchmark_yaml,
                report,
                report_dir / f"caliper-{number}.log",
                bounded_seconds(launch_rounds),
            )
        closed = [g for g in sessions("TSO").market.gates(limit=500) if g.get("closed_by")]
        sessions.close()
    ours = figures_from_times(times_dir)
    theirs = {label: row for report in reports for label, row in caliper_summary(report).items()}
    readings_per_batch = round_arguments(benchmark, "workloads/readings.js")["consumersPerBatch"] * 60
    orders_per_batch = round_arguments(benchmark, "workloads/orders.js")["ordersPerBatch"]
    results = []
    for round_ in rounds:
        label = round_["label"]
        figures = ours.get(label, {"successful": 0, "failed": 0})
        result = {
            "label": label,
            "description": round_["description"],
            "rate_control": round_["rateControl"],
            **figures,
            "caliper_report": theirs.get(label),
        }
        if round_["workload"]["module"] == "workloads/readings.js" and figures.get("successful_tps") is not None:
            result["readings_per_second"] = round(figures["successful_tps"] * readings_per_batch)
        if round_["workload"]["module"] == "workloads/orders.js" and figures.get("successful_tps") is not None:
            result["sealed_orders_per_second"] = round(figures["successful_tps"] * orders_per_batch)
        if round_["workload"]["module"] == "workloads/gates.js" and closed:
            result["orders_per_closed_gate"] = round(statistics.fmean(g["orders"] for g in closed), 1)
        results.append(result)
    print(
        f"{'round':<22} {'ok':>6} {'failed':>6} {'tps (ok)':>9} {'p50 ms':>8} {'p95 ms':>8} {'avg ms':>8} {'in flight':>9}  Caliper's row"
    )
    for r in results:
        latency = r.get("latency_ms", {})
        row = r["caliper_report"] or {}
        print(
            f"{r['label']:<22} {r['successful']:>6} {r['failed']:>6} {r.get('successful_tps')!s:>9} "
            f"{latency.get('p50')!s:>8} {latency.get('p95')!s:>8} {latency.get('avg')!s:>8} {r.get('mean_in_flight')!s:>9}  "
            f"succ {row.get('Succ')}, fail {row.get('Fail')}, throughput {row.get('Throughput (TPS)')} tps, "
            f"avg {row.get('Avg Latency (s)')} s"
        )
        if "readings_per_second" in r:
            print(f"{'':<22} {r['readings_per_second']} readings/s ({readings_per_batch} per transaction)")
        if "sealed_orders_per_second" in r:
            print(f"{'':<22} {r['sealed_orders_per_second']} sealed orders/s ({orders_per_batch} per transaction)")
        if "orders_per_closed_gate" in r:
            print(f"{'':<22} {r['orders_per_closed_gate']} orders per closed gate on average")
    transactions = sum(r["successful"] + r["failed"] for r in results)
    print(
        f"Caliper (manager and {benchmark['test']['workers']['number']} workers) used {caliper_cpu:.1f} CPU s, "
        f"{1000 * caliper_cpu / max(1, transactions):.1f} ms per transaction, start-up included (read from /proc)"
    )
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "caliper",
                "caliper": CALIPER_VERSION,
                "workers": benchmark["test"]["workers"]["number"],
                "setup_seconds": round(setup_seconds, 1),
                "caliper_cpu_seconds": round(caliper_cpu, 1),
                "caliper_cpu_ms_per_transaction": round(1000 * caliper_cpu / max(1, transactions), 1),
                "total_seconds": round(time.monotonic() - started, 1),
                "counting": "successful transactions only (failed ones are counted apart)",
                "reports": [str(report) for report in reports],
                "between_launches": between,
                "rounds": results,
            },
            indent=2,
        )
    )
    print(f"Caliper's reports: {', '.join(str(report) for report in reports)}; written {out}")
    if not all(r["successful"] for r in results):
        raise SystemExit("caliper: some round committed nothing; see the reports and caliper-*.log")


if __name__ == "__main__":
    main()
