"""Who must endorse what, derived from the topology: the chaincode's endorsement policy and the private data
collections of the visibility groups, in the form Fabric's lifecycle takes them."""

from consortium.topology import Topology


def endorsement_policy(topology: Topology) -> str:
    """A majority of the organisations' peers, as an explicit signature policy. The channel's default
    "MAJORITY Endorsement" means the same but is an ImplicitMeta policy, whose evaluation checks every
    signature once per organisation: profiled, that was two thirds of each peer's CPU."""
    peers = [f"'{org.msp_id}.peer'" for org in topology.organisations]
    return f"OutOf({len(peers) // 2 + 1}, {', '.join(peers)})"


def collections_config(topology: Topology) -> list[dict]:
    """Fabric's collection config for every visibility group; member peers alone endorse their writes."""
    config = []
    for name, members in topology.collections().items():
        msps = [topology.organisation(m).msp_id for m in members]
        config.append(
            {
                "name": name,
                "policy": "OR(" + ", ".join(f"'{m}.member'" for m in msps) + ")",
                # Endorsement waits until one other member holds the data, so no single peer's loss loses it;
                # a two-member group has no third peer to wait for without stalling when the other is down.
                "requiredPeerCount": 1 if len(msps) > 2 else 0,
                "maxPeerCount": len(msps) - 1,
                "blockToLive": 0,
                "memberOnlyRead": True,
                "memberOnlyWrite": True,
                "endorsementPolicy": {"signaturePolicy": "OR(" + ", ".join(f"'{m}.peer'" for m in msps) + ")"},
            }
        )
    return config
