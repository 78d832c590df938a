"""`network down` stops exactly the processes of its run directory: chaincode servers and peers first, then the
orderers, each wave at once; a process that ignores SIGTERM is killed after the grace period."""

import sys
import time

from consortium import topology as topology_file
from network.bringup import Network
from network.processes import ManagedProcess

# Writes when it got SIGTERM, then exits (or, with "stubborn", ignores it).
PROCESS = """
import signal, sys, time
out, stubborn = sys.argv[1], len(sys.argv) > 2
def stop(*_):
    open(out, "w").write(repr(time.monotonic()))
    if not stubborn:
        sys.exit(0)
signal.signal(signal.SIGTERM, stop)
open(out + ".ready", "w").close()
time.sleep(60)
"""


def _start(root, name, stubborn=False):
    out = root / f"{name}.stopped"
    argv = [sys.executable, "-c", PROCESS, str(out)] + (["stubborn"] if stubborn else [])
    ManagedProcess(root, name).start(argv, {"PATH": "/usr/bin:/bin"})
    deadline = time.monotonic() + 10
    while not (root / f"{name}.stopped.ready").exists():
        assert time.monotonic() < deadline, f"{name} did not start"
        time.sleep(0.02)
    return out


def test_down_stops_peers_and_chaincode_servers_before_the_orderers(tmp_path):
    network = Network(tmp_path, topology_file.load(port_base=25900))
    names = ["orderer0", "orderer1", "orderer2", "peer0.tso", "peer0.ra1", "chaincode.tso"]
    stopped_at = {name: _start(tmp_path, name) for name in names}
    assert network.down(log=lambda line: None) == len(names)
    times = {name: float(path.read_text()) for name, path in stopped_at.items()}
    orderers = [times[n] for n in names if n.startswith("orderer")]
    others = [times[n] for n in names if not n.startswith("orderer")]
    assert max(others) <= min(orderers)
    assert max(orderers) - min(orderers) < 1.0  # together, not one after another's exit
    assert all(ManagedProcess(tmp_path, name).pid() is None for name in names)
    assert network.down(log=lambda line: None) == 0  # nothing left to stop


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path):
    _start(tmp_path, "peer0.tso", stubborn=True)
    process = ManagedProcess(tmp_path, "peer0.tso")
    started = time.monotonic()
    assert process.stop(timeout=1.0)
    assert process.pid() is None and 1.0 <= time.monotonic() - started < 5.0
