"""Demand response end to end on the real Fabric network, live, through the `gridledger dr` CLI and the gateway:
seed figure 6 at a window a little ahead (BC and AS aggregates side by side), seed figure 7 (who sees which
consumer, on every read path), the identity rules, settlement, and simulated runs, with meters posting under their
own identities.

The endorsers hold each step to real time, so the module starts its commands and simulations first (the `live`
fixture) and lets time pass once: the identity rules post readings of baseline minutes already over; figure 6's
readings go out minute by minute as each window minute ends; settlement waits until the readings are due, a
minute after the window; the simulations (`gridledger dr simulate`, live too) run beside it all the while."""

import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from live_commands import live_command, live_figure_6, past_baseline_minutes, wait_until_begun, wait_until_ended
from seed_examples import AC1_WH, FIGURES, OWNER, READINGS, SEES
from waiting import eventually

from cli import main
from consortium import topology as topology_file
from consortium.units import minute_index, minute_label
from gateway.errors import GatewayError
from network.connections import open_session
from sim.aggregation_system import AggregationSystem

TOPOLOGY = topology_file.load()
ORGS = TOPOLOGY.org_names
READINGS_PER_FIGURE = {"AC1": 10, "RA1": 5, "RA2": 5, "AC2": 5, "RA3": 5}
REPO = Path(__file__).resolve().parents[2]
# The simulated runs, started with the module, collected by the last tests: (name, arguments).
SIMULATIONS = (
    ("batched", "--consumers 60 --minutes 5 --baseline-minutes 5 --batch-size 100 --seed 11"),
    ("wrong", "--consumers 6 --minutes 3 --baseline-minutes 2 --seed 12 --discrepancy-rate 0.5 --as AC2"),
    ("per-meter", "--consumers 6 --minutes 3 --baseline-minutes 3 --per-meter --seed 13"),
)


def gridledger(network, *args):
    """Runs `gridledger dr …` against the test network; returns (exit code, stdout, stderr)."""
    result = CliRunner().invoke(main, ["dr", *args, "--run-dir", str(network.root)])
    assert "Traceback" not in result.output + result.stderr, result.output + result.stderr
    return result.exit_code, result.stdout, result.stderr


def wait_for_command(network, command_id, orgs):
    def seen():
        for org in orgs:
            assert command_id in [c["id"] for c in ok(network, "command", "list", "--as", org, "--json")]

    eventually(seen)


def require_valid_meter_certificates(network):
    """Meter certificates are the meter operator's: its CA issued them. Fabric's MSP checks a certificate's chain as
    of its NotBefore + 1 s, and cryptogen's CA starts at a rounded minute: a meter certificate that predates its CA
    would be refused by every peer ("creator is malformed")."""
    operator = network.layout.org_dir(TOPOLOGY.meter_operator)
    ca = x509.load_pem_x509_certificate(next((operator / "ca").glob("*-cert.pem")).read_bytes())
    meter = x509.load_pem_x509_certificate(
        (
            network.layout.meter_dir(TOPOLOGY.organisation("RA1").consumers[0]) / "msp" / "signcerts" / "cert.pem"
        ).read_bytes()
    )
    assert meter.issuer == ca.subject
    meter.verify_directly_issued_by(ca)
    assert meter.not_valid_before_utc >= ca.not_valid_before_utc, (meter.not_valid_before_utc, ca.not_valid_before_utc)


def ok(network, *args):
    code, out, err = gridledger(network, *args)
    assert code == 0, err
    return json.loads(out) if "--json" in args else out


def refused(network, *args) -> str:
    code, out, err = gridledger(network, *args)
    assert code == 1 and not out, (code, out)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.fixture(scope="module", autouse=True)
def live(fabric_network, tmp_path_factory):
    """Started before the module's first test: command "1" (seed figure 6 at the first minute at least 40 s
    ahead, readings due a minute after its window), declared by RA1 (C1), RA2 (C2) and RA3 (C3); the simulated
    runs, each `gridledger dr simulate` in a process of its own; a command of its own for the identity rules
    (command 1 gets settled), ten minutes ahead with 30 baseline minutes, declared by RA1 for C1 and C4."""
    network = fabric_network
    files = tmp_path_factory.mktemp("simulations")
    figure = live_figure_6("1", baseline_minutes=5, lead_seconds=40)
    command = figure.command
    ok(
        network,
        *f"command issue --as TSO --id 1 --start {command['start']} --end {command['end']} --kw 600 --target AC1 "
        f"--target AC2 --price 2500 --baseline-minutes 5 --readings-due {command['readings_due']}".split(),
    )
    wait_for_command(network, "1", OWNER.values())
    for consumer, ra in OWNER.items():
        ok(network, "declare", "--as", ra, "--command", "1", "--consumer", consumer, "--expected-wh", "500")
    # Only now the simulations: their start-up competes for the CPU with command 1's declarations.
    simulations = {
        name: simulation(network, name, arguments, files / f"{name}.sqlite") for name, arguments in SIMULATIONS
    }
    try:
        own = live_command(f"ids-{uuid.uuid4().hex[:8]}", minutes=5, baseline_minutes=30, lead_seconds=600)
        ok(
            network,
            *f"command issue --as TSO --id {own['id']} --start {own['start']} --end {own['end']} --kw 1 "
            f"--target AC1 --price 1 --baseline-minutes 30".split(),
        )
        wait_for_command(network, own["id"], ["RA1"])
        ok(network, *f"declare --as RA1 --command {own['id']} --consumer C1 --consumer C4 --expected-wh 1".split())
        yield {
            "network": network,
            "figure": figure,
            "open": own,
            "past": past_baseline_minutes(own),
            "simulations": simulations,
        }
    finally:
        for process in simulations.values():
            if process.poll() is None:
                process.kill()
                process.wait()


def simulation(network, name: str, arguments: str, as_db: Path) -> subprocess.Popen:
    """`gridledger dr simulate` with `arguments` against the network, in a process of its own (its JSON on stdout)."""
    argv = [sys.executable, "-c", "from cli import main; main()", "dr", "simulate", "--run-dir", str(network.root)]
    argv += [*arguments.split(), "--command", f"sim-{name}-{uuid.uuid4().hex[:6]}", "--as-db", str(as_db), "--json"]
    return subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def simulated(live, name: str) -> dict:
    """The result of simulated run `name`, once its process has finished (its window and settlement are live)."""
    process = live["simulations"][name]
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0 and "Traceback" not in err, err[-3000:]
    return json.loads(out)


# The identity rules, on readings of baseline minutes already over (no waiting).


def test_identity_rules_for_organisations(live):
    network, command, past = live["network"], live["open"]["id"], live["past"]
    window = live["figure"].window
    assert "only the TSO issues DR commands, not AC1" in refused(
        network,
        *f"command issue --as AC1 --id x --start {window[0]} --end {window[-1]} --kw 1 --target AC1 --price 1".split(),
    )
    assert "consumer C1 belongs to RA1; RA2 may declare only its own consumers" in refused(
        network, "declare", "--as", "RA2", "--command", command, "--consumer", "C1", "--expected-wh", "1"
    )
    assert "RA2 has not declared for command" in refused(
        network, *f"readings post --as RA2 --command {command} --consumer C1 --minute {past[0]} --wh 5 --no-as".split()
    )
    assert "consumer 'C2' belongs to RA2, not RA1" in refused(
        network, *f"readings post --as RA1 --command {command} --consumer C2 --minute {past[1]} --wh 5 --no-as".split()
    )
    ok(network, *f"readings post --as RA1 --command {command} --consumer C1 --minute {past[1]} --wh 5 --no-as".split())
    assert f"duplicate reading: C1 at {past[1]} is already recorded" in refused(
        network, *f"readings post --as RA1 --command {command} --consumer C1 --minute {past[1]} --wh 5 --no-as".split()
    )
    assert "wh must be an integer from 0 to 100000, got -3" in refused(
        network, *f"readings post --as RA1 --command {command} --consumer C1 --minute {past[0]} --wh -3 --no-as".split()
    )
    assert "--as must be one of" in refused(network, "command", "list", "--as", "Mallory")


def test_a_meter_posts_its_own_readings_only(live):
    network, command, past = live["network"], live["open"]["id"], live["past"]
    require_valid_meter_certificates(network)
    assert "the meter of consumer C1 may post only its own readings, not 'C4'" in refused(
        network,
        *f"readings post --as meter:C1 --command {command} --consumer C4 --minute {past[0]} --wh 5 --no-as".split(),
    )
    ok(
        network,
        *f"readings post --as meter:C4 --command {command} --consumer C4 --minute {past[0]} --kwh 0.005 --no-as".split(),
    )
    ra1 = open_session(network, "RA1").dr

    def on_ra1s_peer():  # the meter's transaction commits first on the operator's peer, through which it posts
        assert ra1.evaluate("get_readings", "C4", command)["readings"] == [{"minute": past[0], "wh": 5}]

    eventually(on_ra1s_peer)
    assert "a smart meter may post and read only its own readings" in refused(
        network, "aggregates", "--as", "meter:C4", "--command", command
    )


# Seed figure 6, live: each window minute's readings once it has ended.


@pytest.fixture(scope="module")
def figure_6(fabric_network, live):
    """Command "1" with every reading of seed figure 6 posted through the CLI, to the ledger and the aggregation
    system, each minute's as soon as it has ended."""
    network = fabric_network
    window = live["figure"].window
    for position, minute in enumerate(window):
        wait_until_ended(minute)
        for consumer, (poster, values) in READINGS.items():
            ok(
                network,
                *f"readings post --as {poster} --command 1 --consumer {consumer} --minute {minute} "
                f"--wh {values[position]}".split(),
            )

    def every_peer_has_every_reading():
        for org in ORGS:
            shown = ok(network, "aggregates", "--as", org, "--command", "1", "--json")["aggregates"]
            assert {a["org"]: sum(m["readings"] for m in a["minutes"]) for a in shown} == {
                figure: READINGS_PER_FIGURE[figure] for figure in FIGURES[org]
            }

    eventually(every_peer_has_every_reading)
    return network


def test_figure_6_bc_and_as_aggregates_agree_and_an_injected_discrepancy_shows(figure_6, live):
    window = live["figure"].window
    comparison = ok(figure_6, "compare", "--as", "TSO", "--command", "1", "--json")
    ac1 = [row for row in comparison["rows"] if row["org"] == "AC1"]
    assert [row["minute"] for row in ac1] == window
    assert [row["bc_wh"] for row in ac1] == [row["as_wh"] for row in ac1] == AC1_WH
    assert comparison["mismatches"] == 0 and all(row["match"] for row in comparison["rows"])
    table = ok(figure_6, "compare", "--as", "TSO", "--command", "1")
    assert f"AC1  1        {window[3][:10]}  {window[3][11:]}   10.000  10.000" in table

    system = AggregationSystem(figure_6.root / "aggregation-system.sqlite", TOPOLOGY)
    system.inject_discrepancy("1", "C2", window[2], 1000)
    try:
        comparison = ok(figure_6, "compare", "--as", "TSO", "--command", "1", "--json")
        wrong = [
            (row["org"], row["minute"], row["bc_wh"], row["as_wh"]) for row in comparison["rows"] if not row["match"]
        ]
        assert wrong == [("AC1", window[2], 5000, 6000), ("RA2", window[2], 3000, 4000)]
        assert "MISMATCH" in ok(figure_6, "compare", "--as", "AC1", "--command", "1")
        assert ok(figure_6, "compare", "--as", "AC2", "--command", "1", "--json")["mismatches"] == 0
    finally:
        system.inject_discrepancy("1", "C2", window[2], -1000)
        system.close()


@pytest.mark.parametrize("org", ORGS)
def test_figure_7_every_read_path_shows_each_organisation_its_group_only(figure_6, org):
    session = open_session(figure_6, org).dr
    for consumer in ("C1", "C2", "C3"):
        if consumer in SEES[org]:
            readings = session.evaluate("get_readings", consumer, "1")["readings"]
            assert [r["wh"] for r in readings] == READINGS[consumer][1]
            assert session.evaluate("get_declaration", "1", OWNER[consumer])["consumers"] == [consumer]
        else:
            with pytest.raises(GatewayError, match=f"is not one {org} may see"):
                session.evaluate("get_readings", consumer, "1")
            with pytest.raises(GatewayError, match=f"{org} may not see the figures of '{OWNER[consumer]}'"):
                session.evaluate("get_declaration", "1", OWNER[consumer])
            # Asking a peer that holds the data does not help: the caller decides, not the peer.
            with pytest.raises(GatewayError, match="may see"):
                session.contract.evaluate("get_readings", consumer, "1", endorsing_organizations=["TSOMSP"])
    listed = session.evaluate("list_consumers")
    assert set().union(*listed.values()) & {"C1", "C2", "C3"} == SEES[org]
    assert [a["org"] for a in session.evaluate("get_aggregates", "1")["aggregates"]] == FIGURES[org]
    assert [f["org"] for f in session.evaluate("get_settlement", "1")["figures"]] == FIGURES[org]
    for target in ("AC1", "AC2", "RA1", "RA2", "RA3"):
        if target in FIGURES[org]:
            shown = ok(figure_6, "aggregates", "--as", org, "--command", "1", "--org", target, "--json")
            assert [a["org"] for a in shown["aggregates"]] == [target]
        else:
            assert f"{org} may not see the figures of '{target}'" in refused(
                figure_6, "aggregates", "--as", org, "--command", "1", "--org", target
            )


def test_figure_7_a_peer_outside_the_group_cannot_serve_its_data(figure_6):
    with pytest.raises(GatewayError, match="this peer \\(RA3MSP\\) is not a member of collection RA1"):
        open_session(figure_6, "TSO").dr.contract.evaluate(
            "get_aggregates", "1", "RA1", endorsing_organizations=["RA3MSP"]
        )


def test_figure_7_events_reach_everyone_and_carry_no_private_values(figure_6):
    expected = {
        ("CommandIssued", None),
        *(("Declared", ra) for ra in OWNER.values()),
        *(("ReadingsPosted", ra) for ra in OWNER.values()),
    }
    for org in ORGS:
        session = open_session(figure_6, org)
        seen = {}
        events = session.gateway.get_network(TOPOLOGY.channel).get_chaincode_events("gridledger", start_block=0)
        timer = threading.Timer(30.0, events.close)  # bounded: a missing event fails, never hangs
        timer.start()
        try:
            for event in events:
                payload = json.loads(event.payload)
                if payload.get("command", payload.get("id")) == "1":
                    seen[(event.event_name, payload.get("ra"))] = payload
                if expected <= set(seen):
                    break
        finally:
            timer.cancel()
            events.close()
        assert expected <= set(seen), f"{org} missed {expected - set(seen)}"
        for (name, _), payload in seen.items():
            if name == "ReadingsPosted":
                assert set(payload) == {"command", "ra", "readings", "first_minute", "last_minute"}
            if name == "Declared":
                assert set(payload) == {"command", "ra", "consumers", "expected_wh"}
            assert not {"C1", "C2", "C3"} & set(json.dumps(payload).replace('"', " ").split())


def test_settlement_is_the_tsos_once_readings_are_due_and_closes_the_command(figure_6, live):
    command = live["figure"].command
    assert "only the TSO settles DR commands, not RA1" in refused(figure_6, "settle", "--as", "RA1", "--command", "1")
    wait_until_begun(command["readings_due"])
    settled = ok(figure_6, "settle", "--as", "TSO", "--command", "1", "--json")
    assert settled["settled"] and [f["org"] for f in settled["figures"]] == FIGURES["TSO"]
    ac1 = settled["figures"][0]
    assert [s["actual_wh"] for s in ac1["slots"]] == AC1_WH

    def shown_to_ra2():
        shown = ok(figure_6, "settle", "--as", "RA2", "--command", "1", "--show", "--json")
        assert shown["settled"] and shown["figures"] == [settled["figures"][2]] and "total" not in shown

    eventually(shown_to_ra2)
    assert "command 1 is settled" in refused(
        figure_6,
        *f"readings post --as RA1 --command 1 --consumer C1 --minute {live['figure'].before[-1]} --wh 1".split(),
    )


def test_a_simulated_run_batched_by_ra_agrees_with_the_aggregation_system(live):
    result = simulated(live, "batched")
    assert result["readings"] == 60 * 10 and result["mismatches"] == 0
    assert result["settlement"]["settled"] and result["settlement"]["total"]["actual_wh"] > 0
    assert result["settlement"]["total"]["delivered_wh"] > 0
    command = result["command"]
    assert command["readings_due"] == minute_after(command["end"], 2)  # readings due a minute after the window
    wrong = simulated(live, "wrong")
    assert wrong["mismatches"] > 0 and {row["org"] for row in wrong["comparison"]["rows"]} == {"AC2", "RA3"}


def test_a_simulated_run_with_meters_posting_for_themselves(live):
    require_valid_meter_certificates(live["network"])
    result = simulated(live, "per-meter")
    # Each of the six meters posts once per round: the baseline minutes already over at once, then each window
    # minute as it ends (4 to 6 rounds, as the window starts 20 to 80 s after the command).
    assert result["readings"] == 6 * 6 and result["mismatches"] == 0
    assert result["transactions"] % 6 == 0 and 4 <= result["transactions"] // 6 <= 6


def minute_after(label: str, minutes: int) -> str:
    return minute_label(minute_index(label) + minutes)
