"""Who a network's identities are on disk and how to connect as one: MSP directories, a Gateway through the
organisation's own peer, and the (organisation, user) behind a name such as "RA1" or "meter:C1"."""

from pathlib import Path

from clients.contract import Refused


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
