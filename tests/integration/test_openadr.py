"""The TSO's OpenADR 2.0b VTN (`gridledger openadr serve`) on the real network, driven by openleadr's own VEN
(openleadr.OpenADRClient) as RA1's existing DR software: a command on the ledger reaches the VEN as an event, its
opt-in is held against RA1's declaration, its telemetry shows in the TSO's comparison beside the ledger's
readings; a VEN registering as another RA, or with a certificate no RA issued, is refused.

Commands run in real time, as the endorsers hold them (tests/live_commands.py): issued for a window starting
LEAD_SECONDS ahead, declared before it starts, the ledger's readings of a minute posted once it has ended."""

import asyncio
import json
import os
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from live_commands import live_command, wait_until_ended
from openleadr import OpenADRClient, enums
from waiting import eventually

from cli import main
from clients.dr import Reading
from consortium.units import JST, minute_index, minute_label
from network.connections import open_session
from network.crypto import MeterOperator, issue_certificate
from openadr import vtn_port
from openadr.certificates import ven_dir
from openadr.mapping import event_id_of
from sim.aggregation_system import AggregationSystem

REPO = Path(__file__).resolve().parents[2]
MEASURED_MINUTES = 2  # the window's minutes: one the VEN's figures match, one they do not
SLOTS = MEASURED_MINUTES
LEAD_SECONDS = 45  # for the VEN to register, hear the event, opt in and RA1 to declare before the window starts


def run_apart(coroutine):
    """asyncio.run in a thread of its own: the browser suite's Playwright keeps an event loop running in the main
    thread for the whole session, where asyncio.run refuses to start another."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def offer_telemetry(client, consumer: str, values) -> None:
    """The VEN offers per-minute energy (Wh) of `consumer` as a TELEMETRY_USAGE report, every 5 s."""
    client.add_report(
        values,
        resource_id=consumer,
        measurement=enums.MEASUREMENTS.ENERGY_REAL,
        unit="Wh",
        data_collection_mode="full",
        sampling_rate=timedelta(seconds=5),
        report_duration=timedelta(hours=1),
    )


def gridledger(network, *args) -> str:
    result = CliRunner().invoke(main, [*args, "--run-dir", str(network.root)])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def vtn(fabric_network):
    """The TSO's VTN as `gridledger openadr serve` runs it, asking for telemetry every 5 s; stopped afterwards."""
    log = fabric_network.root / "logs" / "openadr-test.log"
    argv = [sys.executable, "-c", "from cli import main; main()", "openadr", "serve", "--run-dir"]
    argv += [str(fabric_network.root), "--org", "TSO", "--poll-seconds", "1", "--report-seconds", "5"]
    with log.open("w") as out:
        process = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
    port = vtn_port(fabric_network.topology, "TSO")
    try:
        eventually(lambda: "VTN at" in log.read_text() or process.poll() is not None, "the VTN", seconds=60)
        assert process.poll() is None, log.read_text()
        yield f"https://{fabric_network.topology.host}:{port}/OpenADR2/Simple/2.0b", log
    finally:
        process.terminate()
        process.wait(timeout=20)


def ven_of(network, url: str, ven_name: str, material: Path, **options) -> OpenADRClient:
    return OpenADRClient(
        ven_name=ven_name,
        vtn_url=url,
        cert=str(material / "ven.crt"),
        key=str(material / "ven.key"),
        ca_file=str(material / "vtn-ca.pem"),
        show_fingerprint=False,
        **options,
    )


async def until(check, log: Path, seconds: float = 90.0):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out; the VTN's log:\n{log.read_text()[-4000:]}"
        await asyncio.sleep(0.5)


def test_command_event_opt_in_and_telemetry_reach_the_tsos_comparison(fabric_network, vtn):
    url, log = vtn
    gridledger(fabric_network, "openadr", "ven-certificate", "--org", "RA1")
    tso = open_session(fabric_network, "TSO").dr
    ra1 = open_session(fabric_network, "RA1").dr
    ra1.meters = MeterOperator(fabric_network.layout)  # RA1 relays what C1's meter signed
    command = tso.issue(
        live_command(
            f"adr-{uuid.uuid4().hex[:8]}",
            minutes=MEASURED_MINUTES,
            baseline_minutes=5,
            due_minutes=10,
            lead_seconds=LEAD_SECONDS,
            target_acs=["AC1"],
        )
    )
    # RA1's meters' readings of C1 over the window, for the ledger (what settlement uses) once each minute has ended
    measured = [minute_label(minute_index(command["start"]) + n) for n in range(MEASURED_MINUTES)]
    metered = {minute: 40 + n for n, minute in enumerate(measured)}
    # ... and RA1's DR system's own figures, which its VEN reports: one minute 7 Wh off, for the comparison to catch.
    reported = dict(metered)
    reported[measured[-1]] += 7
    events: list[dict] = []

    async def on_event(event):
        events.append(event)
        return "optIn"

    def telemetry(date_from, date_to, sampling_interval):
        return [(datetime.fromisoformat(minute).replace(tzinfo=JST), wh) for minute, wh in reported.items()]

    async def run_ven():
        client = ven_of(fabric_network, url, "RA1", ven_dir(fabric_network.root, "RA1"))
        client.add_handler("on_event", on_event)
        offer_telemetry(client, "C1", telemetry)
        await client.run()
        try:
            assert client.registration_id, log.read_text()
            await until(
                lambda: any(e["event_descriptor"]["event_id"] == event_id_of(command["id"]) for e in events), log
            )
            await until(lambda: _opt_of(fabric_network, command["id"]) == "awaiting declaration", log)
            ra1.wait_for_command(command["id"])
            await asyncio.to_thread(
                ra1.declare, command["id"], {"baseline_method": "mean-before", "consumers": {"C1": _expected(command)}}
            )
            await until(lambda: _opt_of(fabric_network, command["id"]) == "confirmed", log)
            await until(lambda: len(_as_figures(fabric_network, command["id"])) == MEASURED_MINUTES, log)
        finally:
            await client.stop()

    run_apart(run_ven())
    event = next(e for e in events if e["event_descriptor"]["event_id"] == event_id_of(command["id"]))
    assert event["active_period"]["dtstart"] == datetime.fromisoformat(command["start"]).replace(tzinfo=JST)
    assert [i["signal_payload"] for i in event["event_signals"][0]["intervals"]] == [1] * SLOTS

    wait_until_ended(measured[-1])
    ra1.post_readings(command["id"], [Reading("RA1", "C1", minute, wh) for minute, wh in metered.items()])
    system = AggregationSystem(fabric_network.root / "aggregation-system.sqlite", read_only=True)

    def compared():
        rows = [r for r in tso.compare(command["id"], system).rows if r.org == "RA1" and r.readings]
        return rows if len(rows) == MEASURED_MINUTES else None

    rows = eventually(compared, "RA1's minutes in the comparison")
    assert {r.minute: (r.bc_wh, r.as_wh) for r in rows} == {m: (metered[m], reported[m]) for m in measured}
    assert [r.minute for r in rows if not r.match] == [measured[-1]]
    # `gridledger dr compare` (and the web's comparison, from the same store) show the VEN's figures too.
    shown = json.loads(gridledger(fabric_network, "dr", "compare", "--as", "TSO", "--command", command["id"], "--json"))
    assert shown["mismatches"] == 2  # RA1's minute and AC1's same minute


def test_a_ven_registering_as_another_ra_is_refused(fabric_network, vtn):
    url, log = vtn
    gridledger(fabric_network, "openadr", "ven-certificate", "--org", "RA1")
    before = _registered(fabric_network)

    async def register(name, material):
        client = ven_of(fabric_network, url, name, material)
        await client.run()  # without a registration id openleadr's VEN stops by itself
        registered = client.registration_id
        if registered:
            await client.stop()
        return registered

    # RA1's certificate, claiming to be RA2's VEN: refused by the VTN's registration rule.
    assert run_apart(register("RA2", ven_dir(fabric_network.root, "RA1"))) is None
    assert "cannot register as 'RA2'" in log.read_text()
    # A certificate that no RA's CA issued (the TSO's own TLS CA): refused by the TLS handshake.
    foreign = fabric_network.root / "openadr" / "foreign"
    foreign.mkdir(parents=True, exist_ok=True)
    cert, key = issue_certificate(fabric_network.layout.org_dir("TSO") / "tlsca", "ven.tso.grid.local", tls=True)
    (foreign / "ven.crt").write_bytes(cert)
    (foreign / "ven.key").write_bytes(key)
    (foreign / "vtn-ca.pem").write_bytes((ven_dir(fabric_network.root, "RA1") / "vtn-ca.pem").read_bytes())
    assert run_apart(register("RA1", foreign)) is None
    # What refused it: the VTN's TLS handshake, which trusts the served RAs' CAs only: it ends the handshake with
    # the foreign certificate and completes it with RA1's (TLS 1.2, where the client certificate is judged within
    # the handshake, not at the first read).
    with pytest.raises(ssl.SSLError, match=r"(?i)EOF|unknown ca|certificate"):
        _handshake(fabric_network, foreign)
    _handshake(fabric_network, ven_dir(fabric_network.root, "RA1"))
    assert _registered(fabric_network) == before


def test_only_commanders_serve_and_only_ras_get_ven_certificates(fabric_network):
    for args, why in (
        (["serve", "--org", "RA1"], "only the TSO and the ACs command VENs"),
        (["ven-certificate", "--org", "TSO"], "TSO is not an RA"),
        (["serve", "--org", "RA9"], "--org must be one of"),
    ):
        result = CliRunner().invoke(main, ["openadr", *args, "--run-dir", str(fabric_network.root)])
        assert result.exit_code == 1 and why in result.stderr, result.output + result.stderr
        assert "Traceback" not in result.output + result.stderr


def test_a_ven_reports_only_its_own_ras_consumers(fabric_network, vtn):
    """RA2's VEN offers telemetry of its own consumer C2 and of RA1's C1: only C2's is requested and kept."""
    url, log = vtn
    gridledger(fabric_network, "openadr", "ven-certificate", "--org", "RA2")
    command = open_session(fabric_network, "TSO").dr.issue(
        live_command(f"adr-{uuid.uuid4().hex[:8]}", minutes=5, baseline_minutes=30, target_acs=["AC1"])
    )
    minute = datetime.fromisoformat(command["start"]).replace(tzinfo=JST)

    async def run_ven():
        client = ven_of(fabric_network, url, "RA2", ven_dir(fabric_network.root, "RA2"))
        client.add_handler("on_event", lambda event: "optIn")
        for consumer, wh in (("C2", 30), ("C1", 900)):
            offer_telemetry(client, consumer, lambda date_from, date_to, sampling_interval, wh=wh: [(minute, wh)])
        await client.run()
        try:
            assert client.registration_id, log.read_text()
            await until(lambda: _as_readings(fabric_network, command["id"], "C2"), log)
            await asyncio.sleep(6)  # another report round: C1's would have come with it
        finally:
            await client.stop()

    run_apart(run_ven())
    assert _as_readings(fabric_network, command["id"], "C2") == {command["start"]: 30}
    assert _as_readings(fabric_network, command["id"], "C1") == {}
    assert "offered telemetry of 'C1', not a consumer of RA2" in log.read_text()


def _as_readings(network, command_id: str, consumer: str) -> dict:
    system = AggregationSystem(network.root / "aggregation-system.sqlite", read_only=True)
    try:
        return system.readings(command_id, consumer)
    except sqlite3.OperationalError:  # no figure kept yet: the store has no tables
        return {}
    finally:
        system.close()


def _handshake(network, material: Path) -> None:
    context = ssl.create_default_context(cafile=str(material / "vtn-ca.pem"))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(material / "ven.crt"), str(material / "ven.key"))
    host, port = network.topology.host, vtn_port(network.topology, "TSO")
    with socket.create_connection((host, port), timeout=10) as raw, context.wrap_socket(raw, server_hostname=host):
        pass


def _expected(command: dict) -> dict:
    return {"expected_wh": [10] * SLOTS}


def _status(network) -> dict:
    return json.loads(gridledger(network, "openadr", "status", "--org", "TSO", "--json"))


def _opt_of(network, command_id: str) -> str | None:
    return next(
        (o["status"] for o in _status(network)["opts"] if o["command"] == command_id and o["ra"] == "RA1"), None
    )


def _registered(network) -> list:
    return sorted((v["ra"], v["ven_name"]) for v in _status(network)["vens"])


def _as_figures(network, command_id: str) -> dict:
    system = AggregationSystem(network.root / "aggregation-system.sqlite", read_only=True)
    try:
        return system.aggregates(command_id, "RA1")
    finally:
        system.close()
