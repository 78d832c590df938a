"""Dashboard latency of the web over the real Fabric network, with a day of per-minute data for 1,000 consumers;
prints the figures and writes JSON.

    .venv/bin/python tests/bench/bench_web.py [--consumers 1000] [--minutes 1440] [--requests 60]
                                             [--out bench-results/web.json]

Data: `gridledger dr simulate` on a network of its own: one DR command of `--minutes` minutes (a day), 1,000
consumers over the three RAs, every consumer's per-minute reading posted to the ledger (private data, batches of
5,000) and to the aggregation system's store, the comparison computed, the command settled. Not timed.

Measured: the web app served by werkzeug (threaded) in this process, over HTTP on 127.0.0.1, signed in as each
account through the sign-in form. The dashboard is the TSO's home, the comparison screen of the newest command
(every AC and RA, 1,440 minutes each: the summary, the chart of 1,440 minutes, the first page of rows); each
request reads the ledger afresh as the TSO (nothing cached). Also timed: the same screen filtered to one AC,
the CSV download of every row, an RA's own figures, the market page, and the ledger query behind the dashboard on
its own (get_aggregates as the TSO, through the gateway). Target: dashboard p95 under 300 ms.

Brings up its own network (ports at GRIDLEDGER_BENCH_PORT_BASE, default 31100) in a temporary directory and takes
it down afterwards; every step is bounded in time; everything stays on 127.0.0.1.
"""

import argparse
import http.cookiejar
import json
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from harness import own_network

from network.bringup import Network

REPO = Path(__file__).resolve().parents[2]
TARGET_P95_MS = 300
SIMULATE_TIMEOUT_SECONDS = 1500


def percentile(values: list[float], share: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[round(share * (len(ordered) - 1))], 1) if ordered else None


def signed_in(base: str, name: str, password: str) -> urllib.request.OpenerDirector:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(f"{base}/auth/login", timeout=30).read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    opener.open(
        f"{base}/auth/login",
        urllib.parse.urlencode({"name": name, "password": password, "csrf_token": token}).encode(),
        timeout=30,
    )
    home = opener.open(f"{base}/dr/", timeout=60).read().decode()
    if f'data-testid="who">{name}<' not in home:
        raise RuntimeError(f"could not sign in as {name}")
    return opener


def timed(opener, url: str, requests: int, warmup: int = 3) -> dict:
    """Latency of `requests` sequential GETs (after `warmup`), in ms, and the size of the last answer."""
    size = 0
    samples = []
    for n in range(warmup + requests):
        began = time.perf_counter()
        with opener.open(url, timeout=60) as response:
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"{url} answered {response.status}")
        if n >= warmup:
            samples.append((time.perf_counter() - began) * 1000)
        size = len(body)
    return {
        "url": url,
        "requests": len(samples),
        "p50_ms": percentile(samples, 0.5),
        "p95_ms": percentile(samples, 0.95),
        "max_ms": round(max(samples), 1),
        "mean_ms": round(statistics.fmean(samples), 1),
        "bytes": size,
    }


def simulate(run_dir: Path, consumers: int, minutes: int) -> dict:
    argv = [
        sys.executable,
        "-c",
        "from cli import main; main()",
        "dr",
        "simulate",
        "--run-dir",
        str(run_dir),
        "--consumers",
        str(consumers),
        "--minutes",
        str(minutes),
        "--baseline-minutes",
        "1",
        "--batch-size",
        "5000",
        "--workers",
        "4",
        "--discrepancy-rate",
        "0.0001",
        "--json",
    ]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=SIMULATE_TIMEOUT_SECONDS)
    if done.returncode != 0:
        raise RuntimeError(f"dr simulate failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def measure(network: Network, command_id: str, requests: int) -> dict:
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args, **kwargs):  # thousands of requests: keep the figures readable
            pass

    from web import create_app
    from web.backend import FabricBackend
    from web.users import initial_passwords

    # The TSO's dashboard and RA1's figures are different organisations' servers (issue 12, custody).
    apps = {org: create_app({"RUN_DIR": str(network.root), "ORG": org}) for org in ("TSO", "RA1")}
    servers = {
        org: make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler) for org, app in apps.items()
    }
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers.values()]
    for thread in threads:
        thread.start()
    bases = {org: f"http://127.0.0.1:{server.server_port}" for org, server in servers.items()}
    base = bases["TSO"]
    try:
        tso = signed_in(base, "TSO", initial_passwords(network.root, "TSO")["TSO"])
        ra1 = signed_in(bases["RA1"], "RA1", initial_passwords(network.root, "RA1")["RA1"])
        results = {
            "dashboard": timed(tso, f"{base}/dr/compare?command={command_id}", requests),
            "comparison_one_ac": timed(tso, f"{base}/dr/compare?command={command_id}&org=AC1", requests // 2),
            "comparison_csv_all_rows": timed(tso, f"{base}/dr/compare.csv?command={command_id}", 10),
            "ra_own_figures": timed(ra1, f"{bases['RA1']}/dr/commands/{command_id}/orgs/RA1", requests // 2),
            "market": timed(tso, f"{base}/market/", requests // 2),
        }
        backend = FabricBackend(network.root, "TSO")
        tso_dr = backend.session(backend.accounts["TSO"]).dr
        samples = []
        for n in range(3 + requests // 2):
            began = time.perf_counter()
            tso_dr.aggregates(command_id)
            if n >= 3:
                samples.append((time.perf_counter() - began) * 1000)
        backend.close()
        results["ledger_get_aggregates_tso"] = {
            "requests": len(samples),
            "p50_ms": percentile(samples, 0.5),
            "p95_ms": percentile(samples, 0.95),
        }
        return results
    finally:
        for app, server, thread in zip(apps.values(), servers.values(), threads, strict=True):
            app.extensions["gridledger"].close()
            server.shutdown()
            server.server_close()
            thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consumers", type=int, default=1000)
    parser.add_argument("--minutes", type=int, default=1440)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--out", default="bench-results/web.json")
    arguments = parser.parse_args()
    began = time.monotonic()
    with own_network("gridledger-bench-web-", 31100) as network:
        print(
            f"web bench: network up in {time.monotonic() - began:.1f} s; simulating {arguments.consumers} "
            f"consumers x {arguments.minutes} minutes",
            flush=True,
        )
        began = time.monotonic()
        run = simulate(network.root, arguments.consumers, arguments.minutes)
        setup_seconds = round(time.monotonic() - began, 1)
        command_id = run["command"]["id"]
        print(
            f"web bench: {run['readings']} readings in {run['transactions']} transactions "
            f"({setup_seconds} s); measuring",
            flush=True,
        )
        results = measure(network, command_id, arguments.requests)
    dashboard = results["dashboard"]
    report = {
        "consumers": arguments.consumers,
        "minutes": arguments.minutes,
        "readings": run["readings"],
        "comparison_rows": len(run["comparison"]["rows"]),
        "setup_seconds": setup_seconds,
        "target_p95_ms": TARGET_P95_MS,
        "met": dashboard["p95_ms"] < TARGET_P95_MS,
        **results,
    }
    Path(arguments.out).parent.mkdir(parents=True, exist_ok=True)
    Path(arguments.out).write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"web: dashboard (TSO comparison, {report['comparison_rows']} rows, {arguments.consumers} consumers x "
        f"{arguments.minutes} min) p50 {dashboard['p50_ms']} ms, p95 {dashboard['p95_ms']} ms "
        f"(target < {TARGET_P95_MS} ms: {'met' if report['met'] else 'NOT met'})"
    )
    for name in (
        "comparison_one_ac",
        "comparison_csv_all_rows",
        "ra_own_figures",
        "market",
        "ledger_get_aggregates_tso",
    ):
        figure = results[name]
        print(f"web: {name.replace('_', ' ')}: p50 {figure['p50_ms']} ms, p95 {figure['p95_ms']} ms")
    print(f"web: wrote {arguments.out}")


if __name__ == "__main__":
    main()
