"""Gateway connections to a running network as one of its identities, through that organisation's own peer, and
the sessions (DR and market clients) of a run directory's identities, opened once each.

    sessions = Sessions("run")
    sessions("RA1").dr.declare("1", declaration)        # an organisation's User1
    sessions("meter:C1").market.positions("C1")         # a consumer's smart meter
"""

from pathlib import Path

from clients.contract import Refused
from clients.session import Session, SessionPool
from network.bringup import Network, NetworkError

AS_DB_NAME = "aggregation-system.sqlite"  # the aggregation system's store in a run directory


def msp_dir(network, org: str, user: str = "User1") -> Path:
    """The MSP directory of `user` in `org`: "User1", "Admin", or "meter:<consumer id>"."""
    if user.startswith("meter:"):
        consumer = user.split(":", 1)[1]
        owner = network.topology.consumer_owner(consumer)
        if owner.name != org:
            raise KeyError(f"consumer {consumer} belongs to {owner.name}, not {org}")
        return network.layout.meter_dir(consumer) / "msp"
    return network.layout.user_dir(org, user) / "msp"


def connect_as(network, org: str, user: str = "User1", **options):
    """A Gateway for `user` of `org`, talking to `org`'s peer over TLS (Fabric's gateway routes the rest)."""
    from gateway import connect, grpc_channel_for, identity_from_msp_dir  # need Fabric's generated protobufs

    msp_id = network.topology.organisation(org).msp_id
    identity, signer = identity_from_msp_dir(msp_dir(network, org, user), msp_id)
    peer = network.topology.peer_of(org)
    channel = grpc_channel_for(peer.address, network.layout.node_dir(peer) / "tls" / "ca.crt")
    return connect(identity, signer=signer, channel=channel, **options)


def identity_of(topology, who: str) -> tuple[str, str]:
    """(organisation, user) of `who`: an organisation (its User1), or a smart meter "meter:<consumer>", whose
    identity its consumer's RA issued."""
    if who.startswith("meter:"):
        consumer = who.split(":", 1)[1]
        try:
            return topology.consumer_owner(consumer).name, who
        except KeyError:
            raise Refused(
                f"no meter identity for {consumer!r}: meters exist for the topology's consumers only"
            ) from None
    if who in topology.org_names:
        return who, "User1"
    raise Refused(f"--as must be one of {', '.join(topology.org_names)} or meter:<consumer>, got {who!r}")


def open_session(network, who: str, **options) -> Session:
    """A session of `who` (see identity_of) on the network; `options` go to gateway.connect."""
    org, user = identity_of(network.topology, who)
    return Session(connect_as(network, org, user, **options), network.topology, org, who)


class Sessions(SessionPool):
    """The network of a run directory and one session per identity (see identity_of), opened on first use."""

    def __init__(self, run_dir: str | Path):
        root = Path(run_dir)
        if not (root / "network.json").exists():
            raise NetworkError(f"no network in {root}: start one with `gridledger network up --run-dir {root}`")
        self.run_dir = root
        self.network = Network(root)
        self.topology = self.network.topology
        self.as_db_path = root / AS_DB_NAME
        super().__init__(lambda who: open_session(self.network, who))
