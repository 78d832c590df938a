"""A network restarted the way a person restarts it after using it: `gridledger demo` running (trading rounds,
every matcher, the web pages) beside a steady load of meter readings, then Ctrl-C (SIGINT) on the demo,
`gridledger network down`, `gridledger network up`. `up` returns only once an ordered transaction has committed,
and then a submit of our own must commit within 10 s.

Issue 16 saw every submit fail after such a restart of a network used for 14 minutes (no Raft leader for
minutes). The short run (the default) uses the network for USE_SECONDS; GRIDLEDGER_CHAOS=1 (`make chaos`) for as
long as that demo ran. Figures: the use, `up`'s time, the submit's time and restart-to-first-commit.

Then the ordering probe itself: with no Raft leader possible it names each orderer and what it tried, and an
orderer that has stopped taking part in elections (frozen) is restarted until a transaction commits."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_load import LONG, SteadyLoad

from network.bringup import NetworkError
from network.connections import connect_as

REPO = Path(__file__).resolve().parents[2]
USE_SECONDS = 840.0 if LONG else 60.0
SUBMIT_LIMIT = 10.0  # after `up` returns, one submit must commit within this
UP_TIMEOUT = 180.0

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(USE_SECONDS + 600)]


def gridledger(network, *args: str, timeout: float) -> subprocess.CompletedProcess:
    """The command a person types, against the test network's run directory."""
    return subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", *args, "--run-dir", str(network.root)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


def channel_height(network) -> int:
    return network.peer_admin(network.topology.peers[0]).height(network.topology.channel)


def test_a_network_used_then_stopped_by_hand_commits_within_10_s_of_network_up(fault_network, figures, tmp_path):
    network = fault_network
    demo_log = tmp_path / "demo.log"
    with open(demo_log, "wb") as out:
        demo = subprocess.Popen(
            [
                *(sys.executable, "-c", "from cli import main; main()", "demo", "--run-dir", str(network.root)),
                *("--gate-seconds", "20", "--proposal-seconds", "5"),  # each web server on its org's port
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    load = SteadyLoad(network, consumers_per_ra=4)
    height_before = channel_height(network)
    try:
        load.start()
        time.sleep(USE_SECONDS)
        load.stop()
        assert demo.poll() is None, f"the demo exited early:\n{demo_log.read_text()[-3000:]}"
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        assert demo.wait(60) == 0, demo_log.read_text()[-3000:]
    finally:
        if demo.poll() is None:
            demo.kill()
        load.close()
    used_blocks = channel_height(network) - height_before
    assert load.acked(), "the load acknowledged nothing: the network was not used"

    down = gridledger(network, "network", "down", timeout=120)
    assert down.returncode == 0, down.stdout
    assert all(network.process(node).pid() is None for node in network.topology.nodes)

    restarted = time.monotonic()
    up = gridledger(network, "network", "up", timeout=UP_TIMEOUT)
    up_seconds = time.monotonic() - restarted
    assert up.returncode == 0, up.stdout[-4000:]

    submitted = time.monotonic()
    with connect_as(network, "TSO", submit_timeout=SUBMIT_LIMIT, commit_status_timeout=SUBMIT_LIMIT) as gateway:
        records = gateway.get_network(network.topology.channel).get_contract("gridledger", "records")
        records.submit("put_record", "restart-after-use", json.dumps({"restarted": time.time()}))
    committed = time.monotonic()
    figures.append(
        {
            "fault": "network used, Ctrl-C on the demo, network down, network up",
            "use_seconds": USE_SECONDS,
            "blocks_during_use": used_blocks,
            "acked_readings": sum(len(b.readings) for b in load.acked()),
            "network_up_seconds": round(up_seconds, 2),
            "submit_after_up_seconds": round(committed - submitted, 2),
            "recovery_seconds": round(committed - restarted, 2),
        }
    )
    assert committed - submitted < SUBMIT_LIMIT


def test_without_a_raft_leader_the_probe_names_each_orderer_and_what_it_tried(fault_network):
    network = fault_network
    down = network.topology.orderers[1:]
    for node in down:
        network.process(node).kill()  # two of three: no quorum, so no leader
    try:
        with pytest.raises(NetworkError) as refused:
            network.wait_until_ordering(time.monotonic() + 30, log=lambda line: None)
        message = str(refused.value)
        assert "no Raft leader" in message and "tried submitting 'network/ready'" in message
        for node in network.topology.orderers:
            assert node.name in message
        assert "restarted no orderer (every running one was campaigning)" in message
    finally:
        network.up(log=lambda line: None)


def test_an_orderer_that_stops_campaigning_while_there_is_no_leader_is_restarted(fault_network):
    """Two orderers frozen (SIGSTOP): their listeners still accept connections, they answer no vote and never
    time out themselves, as the stuck followers of issue 16 did. The probe restarts them and then commits."""
    network = fault_network
    frozen = network.topology.orderers[1:]
    for node in frozen:
        os.kill(network.process(node).pid(), signal.SIGSTOP)
    lines: list[str] = []
    try:
        seconds = network.wait_until_ordering(time.monotonic() + 120, log=lines.append)
    finally:
        for node in frozen:
            if (pid := network.process(node).pid()) is not None:
                os.kill(pid, signal.SIGCONT)
    for node in frozen:
        assert any(f"{node.name} has not campaigned" in line for line in lines), lines
    assert not any(network.topology.orderers[0].name + " has not" in line for line in lines)
    assert seconds < 120
    network.wait_in_step(time.monotonic() + 60, log=lambda line: None)
