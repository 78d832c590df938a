"""Chaincode as a service: each organisation's package, install, approve and commit with the private data
collections of the topology, and each organisation's own Python chaincode server process."""

import gzip
import hashlib
import io
import json
import socket
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from consortium import CHAINCODE_NAME
from consortium.policies import collections_config, endorsement_policy
from consortium.topology import Topology
from network import crypto, nodes
from network.processes import ManagedProcess, check_ports_free

CHAINCODE_VERSION = "1.0"
CHECKOUT = Path(__file__).resolve().parent.parent
# What a chaincode server process runs by default, and the environment it runs in (from the checkout).
SERVER_PROGRAM = ("-m", "chaincode.server")
SERVER_ENVIRONMENT = {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"}
# What a chaincode server runs: the contracts, the verifier they call, and the topology they read.
CHAINCODE_SOURCES = (
    CHECKOUT / "chaincode",
    CHECKOUT / "solver",
    CHECKOUT / "consortium",
)


class DeployError(RuntimeError):
    pass


def code_fingerprint() -> str:
    """SHA-256 over what the chaincode runs: a chaincode server runs the code it was started with."""
    digest = hashlib.sha256()
    for source in CHAINCODE_SOURCES:
        for path in (
            sorted(p for p in source.rglob("*") if p.suffix in (".py", ".yaml")) if source.is_dir() else [source]
        ):
            digest.update(str(path.relative_to(CHECKOUT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _tar(files: dict[str, bytes]) -> bytes:
    """A gzipped tar with fixed metadata (the gzip header's time too), so the same content gives the same
    package id, and a redeployment of unchanged content keeps the running servers' ids valid."""
    out = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


class ChaincodeDeployment:
    """The chaincode of one network: packages, server processes and the committed definition."""

    def __init__(self, network):
        self.network = network
        self.topology: Topology = network.topology
        self.dir = network.root / "chaincode"

    def server_process(self, org: str) -> ManagedProcess:
        return ManagedProcess(self.network.root, f"chaincode.{org.lower()}")

    def server_tls_dir(self, org: str) -> Path:
        return self.dir / org / "tls"

    def package_ids(self) -> dict[str, str]:
        path = self.dir / "package-ids.json"
        return json.loads(path.read_text()) if path.exists() else {}

    # Packaging

    def _issue_tls(self, org: str) -> None:
        """Server and client TLS pairs from the organisation's TLS CA: the peer and its chaincode authenticate
        each other (mutual TLS), both trusting only that CA."""
        tls = self.server_tls_dir(org)
        if (tls / "server.crt").exists():
            return
        tls.mkdir(parents=True, exist_ok=True)
        ca_dir = self.network.layout.org_dir(org) / "tlsca"
        host = self.topology.host
        cert, key = crypto.issue_certificate(
            ca_dir, f"chaincode.{self.topology.organisation(org).domain}", sans=(host, "localhost"), tls=True
        )
        (tls / "server.crt").write_bytes(cert)
        (tls / "server.key").write_bytes(key)
        cert, key = crypto.issue_certificate(ca_dir, f"peer-client.{self.topology.organisation(org).domain}", tls=True)
        (tls / "client.crt").write_bytes(cert)
        (tls / "client.key").write_bytes(key)
        (tls / "ca.crt").write_bytes(next(ca_dir.glob("*-cert.pem")).read_bytes())

    def package(self, org: str) -> tuple[Path, str]:
        """The organisation's CCaaS package and its package id (label:sha256 of the package file)."""
        self._issue_tls(org)
        tls = self.server_tls_dir(org)
        peer = self.topology.peer_of(org)
        connection = {
            "address": f"{peer.host}:{peer.chaincode_server_port}",
            "dial_timeout": "10s",
            "tls_required": True,
            "client_auth_required": True,
            "root_cert": (tls / "ca.crt").read_text(),
            "client_key": (tls / "client.key").read_text(),
            "client_cert": (tls / "client.crt").read_text(),
        }
        label = f"{CHAINCODE_NAME}_{org.lower()}_{CHAINCODE_VERSION}"
        code = _tar({"connection.json": json.dumps(connection, indent=2).encode()})
        package = _tar({"metadata.json": json.dumps({"type": "ccaas", "label": label}).encode(), "code.tar.gz": code})
        path = self.dir / org / f"{label}.tgz"
        path.write_bytes(package)
        return path, f"{label}:{hashlib.sha256(package).hexdigest()}"

    # Servers

    def server_argv(self, org: str, program: tuple[str, ...] = SERVER_PROGRAM) -> list[str]:
        """The command line of the organisation's chaincode server: `program` (python's arguments before the
        server's options) with the address its peer dials, its package id, its peer's MSP id and its TLS pair."""
        peer = self.topology.peer_of(org)
        tls = self.server_tls_dir(org)
        return [
            sys.executable,
            *program,
            "--address",
            f"{peer.host}:{peer.chaincode_server_port}",
            "--id",
            self.package_ids()[org],
            "--peer-msp-id",
            self.topology.organisation(org).msp_id,
            "--tls-cert",
            str(tls / "server.crt"),
            "--tls-key",
            str(tls / "server.key"),
            "--client-ca",
            str(tls / "ca.crt"),
        ]

    def start_server(
        self,
        org: str,
        process: ManagedProcess | None = None,
        program: tuple[str, ...] = SERVER_PROGRAM,
        environment: dict[str, str] | None = None,
        log=print,
    ) -> int:
        """Starts the organisation's chaincode server as `process` (default: its own) running `program` in the
        checkout, in `environment` (default SERVER_ENVIRONMENT); returns its pid. The port must be free: a server
        already listening there is someone else's."""
        peer = self.topology.peer_of(org)
        check_ports_free({f"chaincode.{org.lower()} listen": peer.chaincode_server_port}, peer.host)
        process = process or self.server_process(org)
        pid = process.start(self.server_argv(org, program), dict(environment or SERVER_ENVIRONMENT), cwd=CHECKOUT)
        log(f"chaincode: started the {org} chaincode server (pid {pid}) on {peer.host}:{peer.chaincode_server_port}")
        return pid

    def wait_listening(self, org: str, process: ManagedProcess | None = None, timeout: float = 30.0) -> None:
        """Waits until the organisation's chaincode server (`process`, default its own) listens."""
        process = process or self.server_process(org)
        peer = self.topology.peer_of(org)
        deadline = time.monotonic() + timeout
        while not _listening(peer.host, peer.chaincode_server_port):
            if process.pid() is None:
                raise DeployError(f"the {org} chaincode server exited; see {process.log_file}")
            if time.monotonic() > deadline:
                raise DeployError(f"the {org} chaincode server does not listen in time")
            time.sleep(0.1)

    def start_servers(self, log=print, timeout: float = 30.0) -> None:
        for org in self.topology.org_names:
            if self.server_process(org).pid() is None:
                self.start_server(org, log=log)
        deadline = time.monotonic() + timeout
        for org in self.topology.org_names:
            self.wait_listening(org, timeout=max(0.0, deadline - time.monotonic()))

    def stop_servers(self) -> None:
        for org in self.topology.org_names:
            self.server_process(org).stop()

    # Lifecycle

    def committed(self) -> dict | None:
        admin = self.network.peer_admin(self.topology.peers[0])
        try:
            out = admin.run(
                "lifecycle",
                "chaincode",
                "querycommitted",
                "--channelID",
                self.topology.channel,
                "--name",
                CHAINCODE_NAME,
                "--output",
                "json",
            )
        except nodes.NodeCommandError as error:
            if "404" in str(error):  # "namespace gridledger is not defined": nothing committed yet
                return None
            raise
        return first_json_object(out)

    def deploy(self, log=print) -> int:
        """Packages, installs, approves and commits the chaincode if its definition changed; starts the
        servers. Returns the committed sequence (a changed definition commits sequence + 1)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        collections = collections_config(self.topology)
        collections_file = self.dir / "collections.json"
        collections_file.write_text(json.dumps(collections, indent=2))
        previous = self.package_ids()
        ids = {org: self.package(org)[1] for org in self.topology.org_names}
        (self.dir / "package-ids.json").write_text(json.dumps(ids, indent=2))
        for org, package_id in ids.items():
            if previous.get(org) != package_id and self.server_process(org).stop():
                log(f"chaincode: stopped the {org} server of the previous package {previous.get(org)}")
        fingerprint_file = self.dir / "code-fingerprint"
        fingerprint = code_fingerprint()
        if fingerprint_file.exists() and fingerprint_file.read_text() != fingerprint:
            log("chaincode: the chaincode's code changed; restarting its servers")
            self.stop_servers()
        fingerprint_file.write_text(fingerprint)
        self.start_servers(log)

        current = self.committed()
        definition = hashlib.sha256(
            json.dumps([collections, ids, endorsement_policy(self.topology)], sort_keys=True).encode()
        ).hexdigest()[:16]
        marker = self.dir / "definition"
        if current and marker.exists() and marker.read_text() == f"{current['sequence']}:{definition}":
            log(f"chaincode: {CHAINCODE_NAME} sequence {current['sequence']} is committed and current")
            return current["sequence"]
        sequence = (current["sequence"] if current else 0) + 1
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(ids)) as pool:
            list(
                pool.map(
                    lambda org: self._install_and_approve(org, ids[org], sequence, collections_file),
                    self.topology.org_names,
                )
            )
        self._commit(sequence, collections_file)
        marker.write_text(f"{sequence}:{definition}")
        self.wait_until_endorsable()
        log(
            f"chaincode: {CHAINCODE_NAME} sequence {sequence} committed and endorsable in "
            f"{time.monotonic() - started:.1f} s"
        )
        return sequence

    def wait_until_endorsable(self, timeout: float = 60.0) -> None:
        """Waits until the Gateway can gather the endorsements the chaincode's policy needs: discovery learns
        of each peer's chaincode through gossip a moment after the commit. The probe is endorsed, never
        submitted, so it leaves nothing on the ledger."""
        from gateway import EndorseError
        from network.identities import connect_as

        org = self.topology.org_names[0]
        deadline = time.monotonic() + timeout
        with connect_as(self.network, org) as gateway:
            contract = gateway.get_network(self.topology.channel).get_contract(CHAINCODE_NAME)
            while True:
                try:
                    contract.new_proposal("org.hyperledger.fabric:GetMetadata").endorse(timeout=5)
                    return
                except EndorseError as error:
                    if time.monotonic() > deadline:
                        raise DeployError(
                            f"the chaincode is not endorsable {timeout:.0f} s after its commit: {error}"
                        ) from None
                    time.sleep(0.3)

    def _orderer_args(self) -> list[str]:
        orderer = self.topology.orderers[0]
        return [
            "-o",
            orderer.address,
            "--tls",
            "--cafile",
            str(self.network.layout.node_dir(orderer) / "tls" / "ca.crt"),
        ]

    def _definition_args(self, sequence: int, collections_file: Path) -> list[str]:
        return [
            "--channelID",
            self.topology.channel,
            "--name",
            CHAINCODE_NAME,
            "--version",
            CHAINCODE_VERSION,
            "--sequence",
            str(sequence),
            "--collections-config",
            str(collections_file),
            "--signature-policy",
            endorsement_policy(self.topology),
        ]

    def _install_and_approve(self, org: str, package_id: str, sequence: int, collections_file: Path) -> None:
        admin = self.network.peer_admin(self.topology.peer_of(org))
        installed = admin.run("lifecycle", "chaincode", "queryinstalled", "--output", "json")
        if package_id not in installed:
            admin.run("lifecycle", "chaincode", "install", str(self.dir / org / f"{package_id.split(':')[0]}.tgz"))
        admin.run(
            "lifecycle",
            "chaincode",
            "approveformyorg",
            *self._orderer_args(),
            *self._definition_args(sequence, collections_file),
            "--package-id",
            package_id,
            "--waitForEventTimeout",
            "60s",
        )

    def _commit(self, sequence: int, collections_file: Path) -> None:
        peers = []
        for peer in self.topology.peers:
            peers += [
                "--peerAddresses",
                peer.address,
                "--tlsRootCertFiles",
                str(self.network.layout.node_dir(peer) / "tls" / "ca.crt"),
            ]
        admin = self.network.peer_admin(self.topology.peers[0])
        admin.run(
            "lifecycle",
            "chaincode",
            "commit",
            *self._orderer_args(),
            *self._definition_args(sequence, collections_file),
            *peers,
            "--waitForEventTimeout",
            "60s",
        )


def first_json_object(out: str) -> dict:
    """The first JSON object in a peer command's output: `--output json` prints it on stdout, and Fabric v3.1's
    gRPC library may log lines after it (or before it, on stderr), some of them with braces of their own."""
    decoder = json.JSONDecoder()
    start = out.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(out, start)
        except json.JSONDecodeError:
            start = out.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = out.find("{", start + 1)
    raise DeployError(f"no JSON object in the peer's output: {out[-2000:]}")


def _listening(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0
