"""Which peers a peer sees on a channel, asked through Fabric's discovery service: private data reaches a
member only through gossip, so a network is ready when every peer sees every other."""

from fabric_protos.discovery import protocol_pb2, protocol_pb2_grpc

from gateway import grpc_channel_for, identity_from_msp_dir


class DiscoveryError(RuntimeError):
    pass


def channel_members(network, org: str, timeout: float = 5.0) -> set[str]:
    """The MSP ids of the peers that `org`'s peer sees on the channel (itself included), asked as org's user."""
    topology = network.topology
    identity, signer = identity_from_msp_dir(network.layout.user_dir(org) / "msp", topology.organisation(org).msp_id)
    peer = topology.peer_of(org)
    request = protocol_pb2.Request(
        authentication=protocol_pb2.AuthInfo(client_identity=identity.serialize()),
        queries=[protocol_pb2.Query(channel=topology.channel, peer_query=protocol_pb2.PeerMembershipQuery())],
    )
    payload = request.SerializeToString()
    stub = protocol_pb2_grpc.DiscoveryStub(
        grpc_channel_for(peer.address, network.layout.node_dir(peer) / "tls" / "ca.crt")
    )
    response = stub.Discover(
        protocol_pb2.SignedRequest(payload=payload, signature=signer.sign(payload)), timeout=timeout
    )
    result = response.results[0]
    if result.HasField("error"):
        raise DiscoveryError(f"discovery on {peer.name}: {result.error.content}")
    return {msp for msp, peers in result.members.peers_by_org.items() if peers.peers}
