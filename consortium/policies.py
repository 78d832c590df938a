"""Who must endorse what, derived from the topology: the chaincode's endorsement policy, the private data collections
of the visibility groups with their own endorsement policies, in the form Fabric's lifecycle takes them, and the
peers a client asks to endorse a private write.

Trust model (DESIGN.md): nobody writes alone what others rely on. A write to a group's collection needs the peer of
the organisation the group is named for (its owner) and the peer of at least one other member:

    RAn  {TSO, ACn, RAn}   AND('RAnMSP.peer', OR('ACnMSP.peer', 'TSOMSP.peer'))
    ACn  {TSO, ACn}        AND('ACnMSP.peer', 'TSOMSP.peer')

Fabric's validation (core/common/validation/statebased, v20) checks a collection's write against the collection's
own policy instead of the chaincode's, on every peer, so a modified chaincode on the owner's peer cannot bypass it:
its transaction, endorsed by that peer alone, is recorded as ENDORSEMENT_POLICY_FAILURE and changes nothing.
Public writes keep the chaincode's majority policy.
"""

from dataclasses import dataclass

from consortium.topology import Topology


@dataclass(frozen=True)
class SignaturePolicy:
    """`n` of `rules` must be satisfied; a rule is an organisation's peer (its MSP id) or a nested policy. The
    structure of Fabric's SignaturePolicy (n_out_of, signed_by), which its policy language writes as AND/OR/OutOf."""

    n: int
    rules: tuple["str | SignaturePolicy", ...]

    def __str__(self) -> str:
        parts = ", ".join(f"'{rule}.peer'" if isinstance(rule, str) else str(rule) for rule in self.rules)
        if self.n == len(self.rules) and self.n > 1:
            return f"AND({parts})"
        if self.n == 1:
            return f"OR({parts})"
        return f"OutOf({self.n}, {parts})"


def _all_of(*rules: "str | SignaturePolicy") -> SignaturePolicy:
    return SignaturePolicy(len(rules), rules)


def _any_of(*rules: "str | SignaturePolicy") -> "str | SignaturePolicy":
    return rules[0] if len(rules) == 1 else SignaturePolicy(1, rules)


def endorsement_policy(topology: Topology) -> str:
    """A majority of the organisations' peers, as an explicit signature policy. The channel's default
    "MAJORITY Endorsement" means the same but is an ImplicitMeta policy, whose evaluation checks every
    signature once per organisation: profiled, that was two thirds of each peer's CPU."""
    peers = tuple(org.msp_id for org in topology.organisations)
    return str(SignaturePolicy(len(peers) // 2 + 1, peers))


def collection_writers(topology: Topology, collection: str) -> list[tuple[str, ...]]:
    """The organisations (names) whose peers together may endorse a write to `collection`, in the order a client
    tries them: the group's owner with its closest other member first (an RA with its AC), then with the others
    (an RA with the TSO), for when that peer cannot endorse."""
    members = topology.collections()[collection]
    owner = topology.organisation(collection)
    if owner.name not in members:
        raise KeyError(f"collection {collection} is not named for one of its members {members}")
    others = sorted((m for m in members if m != owner.name), key=lambda m: (m != owner.parent, members.index(m)))
    return [(owner.name, other) for other in others]


def collection_policy(topology: Topology, collection: str) -> SignaturePolicy:
    """The collection's endorsement policy: its owner's peer and one other member's (see the module's docstring)."""
    writers = collection_writers(topology, collection)
    owner = topology.organisation(writers[0][0]).msp_id
    return _all_of(owner, _any_of(*(topology.organisation(other).msp_id for _, other in writers)))


def private_endorsers(topology: Topology, org: str) -> list[tuple[str, ...]]:
    """Whose peers endorse a private write by `org` (one of its users or meters), in the order to try: its own
    collection's writers (collection_writers). The TSO owns no collection: its writes are public."""
    organisation = topology.organisation(org)
    if organisation.role == "tso":
        raise ValueError("the TSO owns no collection: its writes are public and need the chaincode's majority")
    own = topology.ac_collection_for(org) if organisation.role == "ac" else topology.readings_collection_for(org)
    return collection_writers(topology, own)


def collections_config(topology: Topology) -> list[dict]:
    """Fabric's collection config for every visibility group, with its endorsement policy (collection_policy)."""
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
                "endorsementPolicy": {"signaturePolicy": str(collection_policy(topology, name))},
            }
        )
    return config
