"""Brings the Fabric network of the topology up as plain processes, reports on it, and takes it down."""

import json
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc

from consortium import CHAINCODE_NAME
from consortium import topology as topology_file
from consortium.topology import Node, Topology
from network import configtx, crypto, fabric, nodes
from network.chaincode import ChaincodeDeployment
from network.discovery import DiscoveryError, channel_members
from network.processes import ManagedProcess, check_ports_free

DEFAULT_RUN_ROOT = Path(__file__).resolve().parent.parent / "run"
# An orderer this far behind the others while they are in step is restarted once (see wait_in_step).
STUCK_ORDERER_SECONDS = 15.0
# The ordering probe: one public record, rewritten by every `up`, and how long one attempt may take.
READY_PROBE_KEY = "network/ready"
READY_PROBE_ATTEMPT_SECONDS = 10.0
# No orderer leading Raft for this long while the probe fails: restart the orderers that did not campaign, once.
LEADERLESS_RESTART_SECONDS = 15.0


class NetworkError(RuntimeError):
    pass


@dataclass
class NodeStatus:
    name: str
    kind: str
    org: str
    address: str
    pid: int | None
    healthy: bool
    height: int | None


class Network:
    """The network living in one run directory: its crypto, channel block, node data, logs and pid files."""

    def __init__(
        self, run_root: Path | str = DEFAULT_RUN_ROOT, topology: Topology | None = None, bin_dir: Path | None = None
    ):
        self.root = Path(run_root).resolve()
        self.state_file = self.root / "network.json"
        # A network keeps the ports and the consensus type it was created with, whatever GRIDLEDGER_PORT_BASE and
        # GRIDLEDGER_ORDERER_CONSENSUS say later (a network saved before the consensus type was recorded is Raft).
        saved = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        if saved:
            saved.setdefault("consensus", "etcdraft")
        self.topology = topology or topology_file.load(
            port_base=saved.get("port_base"), consensus=saved.get("consensus")
        )
        if saved and saved["port_base"] != self.topology.port_base:
            raise NetworkError(
                f"the network in {self.root} was created with port base {saved['port_base']}, "
                f"not {self.topology.port_base}; take it down with --clean to move it"
            )
        if saved and saved["consensus"] != self.topology.consensus:
            raise NetworkError(
                f"the network in {self.root} was created with {saved['consensus']} orderers, "
                f"not {self.topology.consensus}; take it down with --clean to change that"
            )
        self._bin_dir = bin_dir
        self.layout = crypto.CryptoLayout(self.topology, self.root / "crypto")
        self.block = self.root / "channel" / f"{self.topology.channel}.block"

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = fabric.require_built()
        return self._bin_dir

    def process(self, node: Node) -> ManagedProcess:
        return ManagedProcess(self.root, node.name)

    def orderer_admin(self, node: Node) -> nodes.OrdererAdmin:
        return nodes.OrdererAdmin(node, self.layout, self.bin_dir)

    def peer_admin(self, node: Node) -> nodes.PeerAdmin:
        return nodes.PeerAdmin(node, self.topology, self.layout, self.bin_dir, self.root)

    # Bring-up

    def up(self, log=print, timeout: float = 120.0) -> list[NodeStatus]:
        """Starts what is not running and returns once the network is usable: every node healthy and in step,
        the chaincode endorsable, and a transaction ordered and committed (see wait_until_ordering)."""
        started = time.monotonic()
        deadline = started + timeout
        missing = [n for n in self.topology.nodes if self.process(n).pid() is None]
        if missing:
            self._start_nodes(missing, log, deadline)
            self.wait_for_gossip(deadline)
        else:
            log(f"network: already running in {self.root}")
        ChaincodeDeployment(self).deploy(log)
        self.wait_in_step(deadline, log)
        probe_seconds = self.wait_until_ordering(deadline, log)
        statuses = self.wait_in_step(deadline, log)
        if missing:
            log(
                f"network: up in {time.monotonic() - started:.1f} s (the ordering probe committed in "
                f"{probe_seconds:.1f} s); logs in {self.root / 'logs'}"
            )
        return statuses

    def _start_nodes(self, missing: list[Node], log, deadline: float) -> None:
        for node in missing:
            check_ports_free(
                {f"{node.name} {what}": port for what, port in node.ports().items() if what != "chaincode server"},
                node.host,
            )
        if not self.block.exists():
            self._generate(log)
        orderers = [n for n in missing if n.kind == "orderer"]
        peers = [n for n in missing if n.kind == "peer"]
        self._start(orderers, log, deadline)
        for node in self.topology.orderers:
            admin = self.orderer_admin(node)
            if self.topology.channel not in admin.channels():
                log(f"network: {node.name} joins channel {self.topology.channel}")
                admin.join(self.topology.channel, self.block)
        self._start(peers, log, deadline)
        for node in self.topology.peers:
            admin = self.peer_admin(node)
            if self.topology.channel not in admin.channels():
                log(f"network: {node.name} joins channel {self.topology.channel}")
                admin.join(self.block)

    def _generate(self, log) -> None:
        log(f"network: generating crypto material and the {self.topology.channel} genesis block in {self.root}")
        shutil.rmtree(self.root / "crypto", ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        crypto.generate(self.topology, self.root / "crypto", self.bin_dir / "cryptogen")
        nodes.write_node_config(fabric.sampleconfig_dir(), self.root / "config")
        configtx.genesis_block(self.topology, self.layout, self.bin_dir / "configtxgen", self.block.parent)
        self.state_file.write_text(
            json.dumps({"port_base": self.topology.port_base, "consensus": self.topology.consensus})
        )

    def _start(self, batch: list[Node], log, deadline: float) -> None:
        for node in batch:
            env_for = nodes.orderer_env if node.kind == "orderer" else nodes.peer_env
            env = {"PATH": "/usr/bin:/bin", **env_for(node, self.topology, self.layout, self.root)}
            pid = self.process(node).start(nodes.start_argv(node, self.bin_dir), env, cwd=self.root)
            log(f"network: started {node.name} (pid {pid}) on {node.address}")
        for node in batch:
            while not nodes.healthy(node):
                if self.process(node).pid() is None:
                    raise NetworkError(
                        f"{node.name} exited; the end of {self.process(node).log_file}:\n"
                        + _tail(self.process(node).log_file)
                    )
                if time.monotonic() > deadline:
                    raise NetworkError(f"{node.name} is not healthy in time; see {self.process(node).log_file}")
                time.sleep(0.2)

    def wait_for_gossip(self, deadline: float) -> None:
        """Waits until every peer sees every organisation's peer on the channel: until then a private write
        cannot reach the other members of its collection."""
        everyone = {o.msp_id for o in self.topology.organisations}
        for org in self.topology.org_names:
            while True:
                try:
                    seen = channel_members(self, org)
                except (DiscoveryError, grpc.RpcError) as error:
                    seen = set()
                    if time.monotonic() > deadline:
                        raise NetworkError(f"discovery on {org}'s peer fails: {error}") from None
                if seen == everyone:
                    break
                if time.monotonic() > deadline:
                    raise NetworkError(f"{org}'s peer sees only {sorted(seen)} on the channel in time")
                time.sleep(0.3)

    def wait_in_step(self, deadline: float, log=print) -> list[NodeStatus]:
        """Waits until every node is healthy and every peer and orderer sees the same channel height.

        Seen once under heavy load: a Raft follower that joined with the others voted for the leader and then
        appended nothing, staying at the genesis block while the leader's stream to it stayed open. A restart
        makes it catch up from the leader, so an orderer that lags STUCK_ORDERER_SECONDS is restarted, once."""
        lagging_since: dict[str, float] = {}
        restarted: set[str] = set()
        while True:
            statuses = self.status()
            ledger_nodes = [s for s in statuses if s.kind != "chaincode"]
            heights = {s.height for s in ledger_nodes}
            if all(s.healthy for s in statuses) and len(heights) == 1 and None not in heights:
                return statuses
            top = max((h for h in heights if h is not None), default=None)
            now = time.monotonic()
            for status in ledger_nodes:
                if status.kind != "orderer" or status.height is None or status.height == top:
                    lagging_since.pop(status.name, None)
                    continue
                since = lagging_since.setdefault(status.name, now)
                if now - since > STUCK_ORDERER_SECONDS and status.name not in restarted:
                    log(
                        f"network: {status.name} is stuck at height {status.height} while others are at {top}; "
                        f"restarting it"
                    )
                    node = next(n for n in self.topology.orderers if n.name == status.name)
                    self.process(node).stop()
                    self._start([node], log, deadline)
                    restarted.add(status.name)
            if time.monotonic() > deadline:
                raise NetworkError(
                    "nodes are not healthy at one height in time: "
                    + ", ".join(f"{s.name}={s.height}" for s in statuses)
                )
            time.sleep(0.3)

    def wait_until_ordering(self, deadline: float, log=print) -> float:
        """Submits one transaction (READY_PROBE_KEY, a public record) and waits until it commits: healthy nodes at
        one height do not prove that the orderers have a leader, and without one every submit fails. Tries again
        until the deadline; then raises NetworkError naming each orderer's consensus role and what was tried.
        Returns the seconds it took. A Raft network without a leader for LEADERLESS_RESTART_SECONDS has its stuck
        orderers restarted once (restart_stuck_orderers)."""
        from gateway import GatewayError
        from network.identities import connect_as

        started = time.monotonic()
        org = self.topology.org_names[0]
        tried: list[str] = []
        leaderless_since: float | None = None
        restart_tried = False
        remedy = "no orderer restarted"
        while True:
            attempt = time.monotonic()
            record = json.dumps({"by": "network up", "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
            try:
                with connect_as(
                    self,
                    org,
                    submit_timeout=READY_PROBE_ATTEMPT_SECONDS,
                    commit_status_timeout=READY_PROBE_ATTEMPT_SECONDS,
                ) as gateway:
                    contract = gateway.get_network(self.topology.channel).get_contract(CHAINCODE_NAME, "records")
                    contract.submit("put_record", READY_PROBE_KEY, record)
                return time.monotonic() - started
            except (GatewayError, grpc.RpcError) as error:
                tried.append(f"{time.monotonic() - started:.0f} s: {_first_line(error)}")
                log(f"network: the ordering probe through {org}'s peer failed ({_first_line(error)}); trying again")
            # Only Raft's stuck orderer has a known signature (see restart_stuck_orderers); SmartBFT's leader gauge
            # changes only with a committed block, so it cannot say that no orderer leads.
            if self.topology.consensus != "etcdraft" or any(self.leads(n) for n in self.topology.orderers):
                leaderless_since = None
            elif leaderless_since is None:
                leaderless_since = time.monotonic()
            elif time.monotonic() - leaderless_since > LEADERLESS_RESTART_SECONDS and not restart_tried:
                restart_tried = True
                restarted = self.restart_stuck_orderers(log, deadline)
                remedy = f"after {time.monotonic() - started:.0f} s without a Raft leader, restarted " + (
                    ", ".join(restarted) or "no orderer (every running one was campaigning)"
                )
            if time.monotonic() > deadline:
                raise NetworkError(
                    f"no transaction commits: {self.ordering_diagnosis()}\n{remedy}\n"
                    f"tried submitting {READY_PROBE_KEY!r} through {org}'s peer {len(tried)} times, the last:\n  "
                    + "\n  ".join(tried[-5:])
                )
            time.sleep(max(0.0, 1.0 - (time.monotonic() - attempt)))

    def restart_stuck_orderers(self, log, deadline: float) -> list[str]:
        """Restarts each running orderer that has not campaigned for LEADERLESS_RESTART_SECONDS while no orderer
        leads. A live follower without a leader campaigns every one to two election timeouts; one that does not
        is stuck (it casts no vote that arrives and never times out itself), and a restart brings it back.
        Issue 16's orderers were stuck so by the 2023 build's replay deadlock (hyperledger/fabric#4199, fixed in
        v3.1.5; tests/fault/test_raft_replay.py); this stays as the remedy for an orderer stuck any other way."""
        since = time.time() - LEADERLESS_RESTART_SECONDS
        stuck = [
            node
            for node in self.topology.orderers
            if self.process(node).pid() is not None
            and not any(moment >= since for moment in _logged_times(self.process(node).log_file, RAFT_CAMPAIGNS))
        ]
        for node in stuck:
            log(
                f"network: no Raft leader and {node.name} has not campaigned for "
                f"{LEADERLESS_RESTART_SECONDS:.0f} s; restarting it"
            )
            self.process(node).stop()
            self._start([node], log, deadline)
        return [node.name for node in stuck]

    def leads(self, node: Node) -> bool | None:
        """Whether the orderer leads the channel's consensus by its own metrics; None if unknown."""
        return nodes.is_leader(node, self.topology.channel, self.topology.consensus)

    def leader(self) -> Node | None:
        """The orderer that says it leads the channel's consensus, None if none does."""
        return next((node for node in self.topology.orderers if self.leads(node)), None)

    def ordering_diagnosis(self) -> str:
        """Which orderer leads the consensus, or that none does, with each orderer's last consensus state change
        from its log (Raft's role changes, SmartBFT's view changes)."""
        consensus = CONSENSUS_NAMES[self.topology.consensus]
        roles = {n.name: self.leads(n) for n in self.topology.orderers}
        leaders = [name for name, leading in roles.items() if leading]
        parts = [f"{consensus} leader: {', '.join(leaders)}" if leaders else f"no {consensus} leader"]
        for node in self.topology.orderers:
            state = "?" if roles[node.name] is None else ("leader" if roles[node.name] else "not leader")
            last = _last_line_with(self.process(node).log_file, STATE_CHANGES[self.topology.consensus])
            parts.append(f"{node.name} ({state}; last: {last or f'no {consensus} state change logged'})")
        return "; ".join(parts)

    # Reporting and tear-down

    def node_status(self, node: Node) -> NodeStatus:
        pid = self.process(node).pid()
        healthy = pid is not None and nodes.healthy(node)
        height = None
        if healthy:
            try:
                admin = self.orderer_admin(node) if node.kind == "orderer" else self.peer_admin(node)
                height = admin.height(self.topology.channel)
            except nodes.NodeCommandError:
                height = None
        return NodeStatus(node.name, node.kind, node.org, node.address, pid, healthy, height)

    def status(self) -> list[NodeStatus]:
        # Each height is a CLI call of a second or so on a busy machine: ask every node at once.
        with ThreadPoolExecutor(max_workers=len(self.topology.nodes)) as pool:
            out = list(pool.map(self.node_status, self.topology.nodes))
        deployment = ChaincodeDeployment(self)
        for org in self.topology.org_names:
            pid = deployment.server_process(org).pid()
            if pid is None and not deployment.server_process(org).pid_file.exists():
                continue  # never deployed here
            peer = self.topology.peer_of(org)
            out.append(
                NodeStatus(
                    deployment.server_process(org).name,
                    "chaincode",
                    org,
                    f"{peer.host}:{peer.chaincode_server_port}",
                    pid,
                    pid is not None,
                    None,
                )
            )
        return out

    def down(self, clean: bool = False, log=print) -> int:
        """Stops every process this run directory started, with clean removes it all. Chaincode servers and peers
        go first, then the three orderers together: each wave is stopped at once (TERM, then KILL after a grace
        period), so no orderer runs on alone and no process waits for another to finish its grace period."""
        orderers = {n.name for n in self.topology.orderers}
        pid_dir = self.root / "pids"
        names = sorted(p.stem for p in pid_dir.glob("*.pid")) if pid_dir.exists() else []
        stopped = 0
        for wave in ([n for n in names if n not in orderers], [n for n in names if n in orderers]):
            with ThreadPoolExecutor(max_workers=max(1, len(wave))) as pool:
                results = list(pool.map(lambda name: ManagedProcess(self.root, name).stop(), wave))
            for name, was_running in zip(wave, results, strict=True):
                if was_running:
                    stopped += 1
                    log(f"network: stopped {name}")
        if clean and self.root.exists():
            shutil.rmtree(self.root)
            log(f"network: removed {self.root}")
        return stopped


# What etcd/raft logs when a node's role changes, e.g. "2 became pre-candidate at term 3".
RAFT_STATE_CHANGES = ("became leader", "became follower", "became candidate", "became pre-candidate")
RAFT_CAMPAIGNS = ("became leader", "became candidate", "became pre-candidate")
# What each consensus type logs when an orderer's role changes: SmartBFT logs the role (and the leader) of each
# view it starts.
STATE_CHANGES = {"etcdraft": RAFT_STATE_CHANGES, "BFT": ("Changing to leader role", "Changing to follower role")}
CONSENSUS_NAMES = {"etcdraft": "Raft", "BFT": "SmartBFT"}
LOG_TIME = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) UTC")  # how Fabric stamps each log line


def _logged_times(path: Path, markers: tuple[str, ...]) -> list[float]:
    """The times (seconds since the epoch) of the log lines that contain one of markers."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    times = []
    for line in lines:
        if any(marker in line for marker in markers) and (stamp := LOG_TIME.search(line)):
            moment = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
            times.append(moment.timestamp())
    return times


def _last_line_with(path: Path, markers: tuple[str, ...]) -> str | None:
    """The message of the last log line that contains one of markers, without the logger's prefix."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if any(marker in line for marker in markers):
            return line.rsplit("-> ", 1)[-1].strip()
    return None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def status_table(statuses: list[NodeStatus]) -> str:
    rows = [("node", "org", "address", "pid", "health", "height")]
    for s in statuses:
        rows.append(
            (
                s.name,
                s.org,
                s.address,
                str(s.pid or "-"),
                "ok" if s.healthy else "DOWN",
                str(s.height if s.height is not None else "-"),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) for r in rows)


def status_json(statuses: list[NodeStatus]) -> list[dict]:
    return [asdict(s) for s in statuses]
