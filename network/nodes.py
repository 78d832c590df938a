"""Each Fabric node's settings, as explicit ORDERER_*/CORE_* overrides rooted at one run directory (after
fabric-samples' test-network-nano-bash), and the admin commands that act on a node."""

import http.client
import json
import os
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from consortium.topology import Node, Topology
from network.crypto import CryptoLayout

CCAAS_BUILDER = Path(__file__).resolve().parent / "ccaas-builder"
# The shortest interval between a client's pings that peers and orderers accept: half of gRPC's client floor (10 s,
# what v3.1's Gateway uses, having no setting of its own). Equal to the floor, a ping that the busy server reads a
# moment late makes the next one look early; gRPC counts such strikes on an idle connection without ever clearing
# them, and the third ends the connection with GOAWAY "too_many_pings".
KEEPALIVE_MIN_INTERVAL = "5s"


class NodeCommandError(RuntimeError):
    pass


def write_node_config(sampleconfig: Path, config_dir: Path) -> Path:
    """core.yaml and orderer.yaml from Fabric's sampleconfig, with what env overrides cannot express."""
    config_dir.mkdir(parents=True, exist_ok=True)
    core = yaml.safe_load((sampleconfig / "core.yaml").read_text())
    core["vm"]["endpoint"] = ""  # no Docker: chaincode runs as a service, reached through the builder below
    core["chaincode"]["externalBuilders"] = [
        {
            "name": "gridledger-ccaas",
            "path": str(CCAAS_BUILDER),
            "propagateEnvironment": ["PATH", "TMPDIR"],
        }
    ]
    (config_dir / "core.yaml").write_text(yaml.safe_dump(core, sort_keys=False))
    (config_dir / "orderer.yaml").write_text((sampleconfig / "orderer.yaml").read_text())
    return config_dir


def _node_dirs(node: Node, layout: CryptoLayout, run_root: Path) -> tuple[Path, Path, Path, dict[str, str]]:
    """A node's MSP home, its TLS directory, its data directory, and the settings every node shares."""
    home = layout.node_dir(node)
    shared = {"FABRIC_CFG_PATH": str(run_root / "config"), "FABRIC_LOGGING_SPEC": "INFO"}
    return home, home / "tls", run_root / "data" / node.name, shared


def orderer_env(node: Node, topology: Topology, layout: CryptoLayout, run_root: Path) -> dict[str, str]:
    home, tls, data, shared = _node_dirs(node, layout, run_root)
    return {
        **shared,
        "ORDERER_GENERAL_LISTENADDRESS": node.host,
        "ORDERER_GENERAL_LISTENPORT": str(node.listen_port),
        "ORDERER_GENERAL_LOCALMSPID": topology.orderer_msp_id,
        "ORDERER_GENERAL_LOCALMSPDIR": str(home / "msp"),
        "ORDERER_GENERAL_TLS_ENABLED": "true",
        "ORDERER_GENERAL_TLS_PRIVATEKEY": str(tls / "server.key"),
        "ORDERER_GENERAL_TLS_CERTIFICATE": str(tls / "server.crt"),
        "ORDERER_GENERAL_TLS_ROOTCAS": f"[{tls / 'ca.crt'}]",
        # Consensus traffic (Raft's or SmartBFT's) shares the node's main listener, authenticated with the same TLS
        # pair; SmartBFT's write-ahead log goes to the WAL directory too (<WALDIR>/<channel>).
        "ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE": str(tls / "server.crt"),
        "ORDERER_GENERAL_CLUSTER_CLIENTPRIVATEKEY": str(tls / "server.key"),
        "ORDERER_GENERAL_CLUSTER_ROOTCAS": f"[{tls / 'ca.crt'}]",
        "ORDERER_GENERAL_BOOTSTRAPMETHOD": "none",
        "ORDERER_CHANNELPARTICIPATION_ENABLED": "true",
        "ORDERER_FILELEDGER_LOCATION": str(data / "ledger"),
        "ORDERER_CONSENSUS_WALDIR": str(data / "etcdraft" / "wal"),
        "ORDERER_CONSENSUS_SNAPDIR": str(data / "etcdraft" / "snapshot"),
        "ORDERER_OPERATIONS_LISTENADDRESS": f"{node.host}:{node.operations_port}",
        # Prometheus metrics on the operations port: the bring-up reads each orderer's consensus role from them.
        "ORDERER_METRICS_PROVIDER": "prometheus",
        # Permit a ping every 5 s: see KEEPALIVE_MIN_INTERVAL.
        "ORDERER_GENERAL_KEEPALIVE_SERVERMININTERVAL": KEEPALIVE_MIN_INTERVAL,
        "ORDERER_ADMIN_LISTENADDRESS": f"{node.host}:{node.admin_port}",
        "ORDERER_ADMIN_TLS_ENABLED": "true",
        "ORDERER_ADMIN_TLS_CERTIFICATE": str(tls / "server.crt"),
        "ORDERER_ADMIN_TLS_PRIVATEKEY": str(tls / "server.key"),
        "ORDERER_ADMIN_TLS_ROOTCAS": f"[{tls / 'ca.crt'}]",
        "ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED": "true",
        "ORDERER_ADMIN_TLS_CLIENTROOTCAS": f"[{tls / 'ca.crt'}]",
    }


def peer_env(node: Node, topology: Topology, layout: CryptoLayout, run_root: Path) -> dict[str, str]:
    home, tls, data, shared = _node_dirs(node, layout, run_root)
    return {
        **shared,
        "CORE_PEER_ID": node.hostname,
        "CORE_PEER_ADDRESS": node.address,
        "CORE_PEER_LISTENADDRESS": node.address,
        "CORE_PEER_CHAINCODEADDRESS": f"{node.host}:{node.chaincode_port}",
        "CORE_PEER_CHAINCODELISTENADDRESS": f"{node.host}:{node.chaincode_port}",
        "CORE_PEER_LOCALMSPID": topology.organisation(node.org).msp_id,
        "CORE_PEER_MSPCONFIGPATH": str(home / "msp"),
        "CORE_PEER_TLS_ENABLED": "true",
        "CORE_PEER_TLS_CERT_FILE": str(tls / "server.crt"),
        "CORE_PEER_TLS_KEY_FILE": str(tls / "server.key"),
        "CORE_PEER_TLS_ROOTCERT_FILE": str(tls / "ca.crt"),
        # Fabric v3.1's Gateway dials the other peers and the orderers with no keepalive setting, which gRPC
        # turns into a ping every 10 s; servers permitting one a minute (sampleconfig) answer the third with
        # GOAWAY "too_many_pings" and drop the connection, submits in flight on it included. See
        # KEEPALIVE_MIN_INTERVAL for why the permitted interval is below 10 s.
        "CORE_PEER_KEEPALIVE_MININTERVAL": KEEPALIVE_MIN_INTERVAL,
        # One peer per organisation: it is its own gossip bootstrap and leader, and pulls blocks itself.
        "CORE_PEER_GOSSIP_BOOTSTRAP": node.address,
        "CORE_PEER_GOSSIP_EXTERNALENDPOINT": node.address,
        "CORE_PEER_GOSSIP_USELEADERELECTION": "false",
        "CORE_PEER_GOSSIP_ORGLEADER": "true",
        # Discovery learns which peers run which chaincode from gossiped state info: publish it every second
        # (default 4 s) so the Gateway can plan endorsements soon after a deployment.
        "CORE_PEER_GOSSIP_PUBLISHSTATEINFOINTERVAL": "1s",
        # Peers first meet before they have joined the channel and refuse each other; on loopback, retry in
        # 2 s rather than 25 s, and notice a dead peer in 15 s rather than 25 s. (5 s was too short on a busy
        # 2-core machine: live peers expired, and private writes found "0 suitable peers" to disseminate to.)
        "CORE_PEER_GOSSIP_RECONNECTINTERVAL": "2s",
        "CORE_PEER_GOSSIP_ALIVETIMEINTERVAL": "1s",
        "CORE_PEER_GOSSIP_ALIVEEXPIRATIONTIMEOUT": "15s",
        # A member that missed a private write at endorsement (best-effort push) fetches it within seconds
        # rather than a minute, and a block is not held back a minute waiting for it.
        "CORE_PEER_GOSSIP_PVTDATA_RECONCILESLEEPINTERVAL": "5s",
        "CORE_PEER_GOSSIP_PVTDATA_PULLRETRYTHRESHOLD": "5s",
        "CORE_PEER_FILESYSTEMPATH": str(data),
        "CORE_LEDGER_SNAPSHOTS_ROOTDIR": str(data / "snapshots"),
        "CORE_OPERATIONS_LISTENADDRESS": f"{node.host}:{node.operations_port}",
        "CORE_METRICS_PROVIDER": "disabled",
        "CORE_PEER_PROFILE_ENABLED": "true" if os.environ.get("GRIDLEDGER_PEER_PROFILE") == "1" else "false",
        "CORE_PEER_PROFILE_LISTENADDRESS": f"{node.host}:{node.profile_port}",
    }


def start_argv(node: Node, bin_dir: Path) -> list[str]:
    if node.kind == "orderer":
        return [str(bin_dir / "orderer")]
    return [str(bin_dir / "peer"), "node", "start"]


def healthy(node: Node, timeout: float = 2.0) -> bool:
    """The node's own operations endpoint says OK and its gRPC listener accepts connections (the operations
    server answers a moment before the listener does), and an orderer's admin listener too. Any other answer
    means "not up yet"."""
    try:
        body = _operations_get(node, "/healthz", timeout)
        if body is None or _json_field(body, "status") != "OK":
            return False
        # An orderer's admin (channel participation) listener comes up a moment after the others.
        for port in (node.listen_port, node.admin_port) if node.kind == "orderer" else (node.listen_port,):
            with socket.create_connection((node.host, port), timeout=timeout) as probe:
                # A port in the kernel's ephemeral range can be handed to the probe itself: it then "connects"
                # to its own socket, and nothing is listening at all.
                if probe.getsockname() == probe.getpeername():
                    return False
        return True
    except OSError:
        return False


# The Prometheus gauge, per consensus type, that is 1 on the channel's leader: Raft's own view, and SmartBFT's as of
# its latest committed block (orderer/consensus/smartbft/metrics.go).
LEADER_METRICS = {"etcdraft": "consensus_etcdraft_is_leader", "BFT": "consensus_BFT_is_leader"}


def is_leader(node: Node, channel: str, consensus: str = "etcdraft", timeout: float = 2.0) -> bool | None:
    """Whether the orderer leads the channel's consensus, from its Prometheus metrics; None if unknown."""
    try:
        body = _operations_get(node, "/metrics", timeout)
    except OSError:
        return None
    if body is None:
        return None
    wanted = f'{LEADER_METRICS[consensus]}{{channel="{channel}"}}'
    for line in body.decode(errors="replace").splitlines():
        name, _, value = line.rpartition(" ")
        if name == wanted:
            return value.strip() == "1"
    return None


def _operations_get(node: Node, path: str, timeout: float) -> bytes | None:
    """The body of a 200 answer from the node's operations server, None for any other answer: an error status,
    a malformed response (e.g. from a socket that connected to itself), or a connection that broke mid-way."""
    try:
        with urllib.request.urlopen(f"http://{node.host}:{node.operations_port}{path}", timeout=timeout) as answer:
            return answer.read() if answer.status == 200 else None
    except (urllib.error.URLError, http.client.HTTPException, ValueError):
        return None


def _json_field(body: bytes, field: str):
    """body[field] if body is a JSON object, else None."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return parsed.get(field) if isinstance(parsed, dict) else None


class OrdererAdmin:
    """The channel participation API of one orderer, through Fabric's osnadmin."""

    def __init__(self, node: Node, layout: CryptoLayout, bin_dir: Path):
        self.node = node
        admin_tls = layout.admin_dir(node.org) / "tls"
        self._argv = [
            "-o",
            f"{node.host}:{node.admin_port}",
            "--ca-file",
            str(layout.node_dir(node) / "tls" / "ca.crt"),
            "--client-cert",
            str(admin_tls / "client.crt"),
            "--client-key",
            str(admin_tls / "client.key"),
        ]
        self._osnadmin = str(bin_dir / "osnadmin")

    def _run(self, *args: str) -> dict:
        done = subprocess.run(
            [self._osnadmin, "channel", *args, *self._argv],
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=30,
        )
        # osnadmin prints "Status: <code>" then the JSON body.
        status, _, body = done.stdout.partition("\n")
        if done.returncode != 0 or not status.startswith("Status: 2"):
            raise NodeCommandError(f"osnadmin channel {args[0]} on {self.node.name}: {done.stdout.strip()}")
        return json.loads(body) if body.strip() else {}

    def channels(self) -> list[str]:
        return [c["name"] for c in self._run("list").get("channels") or []]

    def join(self, channel: str, block: Path) -> None:
        self._run("join", "--channelID", channel, "--config-block", str(block))

    def height(self, channel: str) -> int:
        return int(self._run("list", "--channelID", channel)["height"])


class PeerAdmin:
    """One peer, driven through Fabric's `peer` CLI as its organisation's admin."""

    def __init__(self, node: Node, topology: Topology, layout: CryptoLayout, bin_dir: Path, run_root: Path):
        self.node = node
        self._peer = str(bin_dir / "peer")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "FABRIC_CFG_PATH": str(run_root / "config"),
            "CORE_PEER_LOCALMSPID": topology.organisation(node.org).msp_id,
            "CORE_PEER_MSPCONFIGPATH": str(layout.admin_dir(node.org) / "msp"),
            "CORE_PEER_ADDRESS": node.address,
            "CORE_PEER_TLS_ENABLED": "true",
            "CORE_PEER_TLS_ROOTCERT_FILE": str(layout.node_dir(node) / "tls" / "ca.crt"),
        }

    def run(self, *args: str, timeout: float = 60) -> str:
        done = subprocess.run(
            [self._peer, *args],
            env=self.env,
            text=True,
            capture_output=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise NodeCommandError(f"peer {' '.join(args[:3])} on {self.node.name}: {done.stderr.strip()[-2000:]}")
        return done.stdout + done.stderr

    def channels(self) -> list[str]:
        out = self.run("channel", "list")
        lines = out.split("Channels peers has joined:")[-1].split()
        return [line for line in lines if not line.startswith(("20", "["))]

    def join(self, block: Path) -> None:
        self.run("channel", "join", "-b", str(block))

    def height(self, channel: str) -> int:
        out = self.run("channel", "getinfo", "-c", channel)
        return int(json.loads(out.split("Blockchain info:", 1)[1].strip().splitlines()[0])["height"])
