"""The channel's genesis block: configtx.yaml derived from the topology, then `configtxgen -outputBlock`."""

import subprocess
from pathlib import Path

import yaml

from consortium.topology import Topology
from network.crypto import CryptoLayout

PROFILE = "GridChannel"


def _implicit(rule: str) -> dict:
    return {"Type": "ImplicitMeta", "Rule": rule}


def _signature(rule: str) -> dict:
    return {"Type": "Signature", "Rule": rule}


def _peer_org(topology: Topology, layout: CryptoLayout, name: str) -> dict:
    org = topology.organisation(name)
    msp = org.msp_id
    peer = topology.peer_of(name)
    return {
        "Name": msp,
        "ID": msp,
        "MSPDir": str(layout.org_msp_dir(name)),
        "Policies": {
            "Readers": _signature(f"OR('{msp}.admin', '{msp}.peer', '{msp}.client')"),
            "Writers": _signature(f"OR('{msp}.admin', '{msp}.client')"),
            "Admins": _signature(f"OR('{msp}.admin')"),
            "Endorsement": _signature(f"OR('{msp}.peer')"),
        },
        # Anchor peers in the genesis block: cross-organisation gossip (and so private data) works at once.
        "AnchorPeers": [{"Host": peer.host, "Port": peer.listen_port}],
    }


def _etcdraft(topology: Topology, layout: CryptoLayout) -> dict:
    consenters = [
        {
            "Host": o.host,
            "Port": o.listen_port,
            "ClientTLSCert": str(layout.node_dir(o) / "tls" / "server.crt"),
            "ServerTLSCert": str(layout.node_dir(o) / "tls" / "server.crt"),
        }
        for o in topology.orderers
    ]
    return {
        "EtcdRaft": {
            "Consenters": consenters,
            # 100 ms ticks: a leader is elected in about a second, not five (loopback only).
            "Options": {
                "TickInterval": "100ms",
                "ElectionTick": 10,
                "HeartbeatTick": 1,
                "MaxInflightBlocks": 5,
                "SnapshotIntervalSize": "16 MB",
            },
        }
    }


def _smartbft(topology: Topology, layout: CryptoLayout) -> dict:
    """SmartBFT: each consenter by its numeric id, its signing identity (blocks carry a quorum of the consenters'
    signatures, and configtxgen derives the BlockValidation policy from these) and its TLS pair. Batches as Raft's
    (at most 500 transactions, cut after 250 ms) so that the two are measured on the same blocks."""
    consenters = [
        {
            "ID": i + 1,
            "Host": o.host,
            "Port": o.listen_port,
            "MSPID": topology.orderer_msp_id,
            "Identity": str(_signing_cert(layout.node_dir(o) / "msp")),
            "ClientTLSCert": str(layout.node_dir(o) / "tls" / "server.crt"),
            "ServerTLSCert": str(layout.node_dir(o) / "tls" / "server.crt"),
        }
        for i, o in enumerate(topology.orderers)
    ]
    return {
        "ConsenterMapping": consenters,
        # Every option must be given: configtxgen takes this block whole, and SmartBFT refuses zeros.
        "SmartBFT": {
            "RequestBatchMaxCount": 500,
            "RequestBatchMaxBytes": 10 * 1024 * 1024,
            "RequestBatchMaxInterval": "250ms",
            "IncomingMessageBufferSize": 200,
            "RequestPoolSize": 10000,
            "RequestForwardTimeout": "2s",
            "RequestComplainTimeout": "20s",
            "RequestAutoRemoveTimeout": "3m",
            "ViewChangeResendInterval": "5s",
            "ViewChangeTimeout": "20s",
            # A follower suspects a silent leader after 5 s (SmartBFT's default is a minute), hearing from it
            # every 0.5 s: on loopback, failover in seconds, as Raft's 1 s election timeout gives.
            "LeaderHeartbeatTimeout": "5s",
            "LeaderHeartbeatCount": 10,
            "CollectTimeout": "1s",
            "SyncOnStart": False,
            "SpeedUpViewChange": False,
        },
    }


def _signing_cert(msp_dir: Path) -> Path:
    certs = sorted((msp_dir / "signcerts").glob("*.pem"))
    if len(certs) != 1:
        raise FileNotFoundError(f"expected one signing certificate in {msp_dir / 'signcerts'}, found {len(certs)}")
    return certs[0]


def configtx(topology: Topology, layout: CryptoLayout) -> dict:
    msp = topology.orderer_msp_id
    orderer_org = {
        "Name": msp,
        "ID": msp,
        "MSPDir": str(layout.org_msp_dir(topology.orderer_org)),
        "Policies": {
            "Readers": _signature(f"OR('{msp}.member')"),
            "Writers": _signature(f"OR('{msp}.member')"),
            "Admins": _signature(f"OR('{msp}.admin')"),
        },
        "OrdererEndpoints": [o.address for o in topology.orderers],
    }
    return {
        "Profiles": {
            PROFILE: {
                "Policies": {
                    "Readers": _implicit("ANY Readers"),
                    "Writers": _implicit("ANY Writers"),
                    "Admins": _implicit("MAJORITY Admins"),
                },
                # V3_0, Fabric v3's channel level (every node here runs v3.1.5): per-organisation orderer endpoints
                # only, MSP v3 (Ed25519 keys); SmartBFT requires it, as does a later Raft-to-BFT migration. Raft stays
                # Raft: in v3.1.5 the Gateway sends to every orderer only when the consensus type is BFT
                # (internal/pkg/gateway/submit.go), no longer whenever the channel is V3_0.
                "Capabilities": {"V3_0": True},
                "Orderer": {
                    "OrdererType": topology.consensus,
                    # Small batches, cut quickly: meter readings and orders want latency, not huge blocks.
                    "BatchTimeout": "250ms",
                    "BatchSize": {"MaxMessageCount": 500, "AbsoluteMaxBytes": "10 MB", "PreferredMaxBytes": "2 MB"},
                    **(_smartbft(topology, layout) if topology.consensus == "BFT" else _etcdraft(topology, layout)),
                    "Organizations": [orderer_org],
                    "Policies": {
                        "Readers": _implicit("ANY Readers"),
                        "Writers": _implicit("ANY Writers"),
                        "Admins": _implicit("MAJORITY Admins"),
                        "BlockValidation": _implicit("ANY Writers"),
                    },
                    "Capabilities": {"V2_0": True},
                },
                "Application": {
                    "Organizations": [_peer_org(topology, layout, o.name) for o in topology.organisations],
                    "Policies": {
                        "Readers": _implicit("ANY Readers"),
                        "Writers": _implicit("ANY Writers"),
                        "Admins": _implicit("MAJORITY Admins"),
                        "LifecycleEndorsement": _implicit("MAJORITY Endorsement"),
                        "Endorsement": _implicit("MAJORITY Endorsement"),
                    },
                    "Capabilities": {"V2_5": True},
                },
            }
        }
    }


def genesis_block(topology: Topology, layout: CryptoLayout, configtxgen: Path, out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "configtx.yaml").write_text(yaml.safe_dump(configtx(topology, layout), sort_keys=False))
    block = out_dir / f"{topology.channel}.block"
    subprocess.run(
        [
            str(configtxgen),
            "-configPath",
            str(out_dir),
            "-profile",
            PROFILE,
            "-channelID",
            topology.channel,
            "-outputBlock",
            str(block),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return block
