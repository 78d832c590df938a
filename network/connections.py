"""Gateway connections to a running network, as one of its identities, through that organisation's own peer."""

from pathlib import Path

from gateway import connect, grpc_channel_for, identity_from_msp_dir


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
    msp_id = network.topology.organisation(org).msp_id
    identity, signer = identity_from_msp_dir(msp_dir(network, org, user), msp_id)
    peer = network.topology.peer_of(org)
    channel = grpc_channel_for(peer.address, network.layout.node_dir(peer) / "tls" / "ca.crt")
    return connect(identity, signer=signer, channel=channel, **options)
