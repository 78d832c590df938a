"""What the network benchmarks share: a network of their own in a temporary directory, and a load that counts its
failures and goes on."""

import os
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

from consortium import topology as topology_file
from network.bringup import Network


@contextmanager
def own_network(prefix: str, default_port_base: int, consensus: str | None = None):
    """A network brought up for the benchmark in a temporary directory and always taken down; its ports start at
    GRIDLEDGER_BENCH_PORT_BASE (default: `default_port_base`, below the kernel's ephemeral ports at 32768), its
    orderers run `consensus` (etcdraft or BFT; default: the topology's, see GRIDLEDGER_ORDERER_CONSENSUS)."""
    port_base = int(os.environ.get("GRIDLEDGER_BENCH_PORT_BASE", str(default_port_base)))
    with tempfile.TemporaryDirectory(prefix=prefix) as temporary:
        network = Network(Path(temporary) / "run", topology_file.load(port_base=port_base, consensus=consensus))
        try:
            network.up(log=lambda line: None)
            yield network
        finally:
            network.down(log=lambda line: None)


def count_failure(failures: list[str], lock: threading.Lock, error: Exception, what: str = "") -> None:
    """Counts a failure of the load, which goes on; the figures report the first few."""
    with lock:
        failures.append(f"{what}{type(error).__name__}: {error}"[:200])
