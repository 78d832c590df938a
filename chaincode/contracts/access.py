"""Whose figures an organisation may see (seed figure 7): the TSO everything, an AC its own and its RAs', an RA
its own; pure functions of the topology.

Every list keeps the topology's order, each AC followed by its RAs, so that answers read the same on every peer.
"""

from consortium.topology import Organisation, Topology


def acs(topology: Topology) -> list[Organisation]:
    return [org for org in topology.organisations if org.role == "ac"]


def ras(topology: Topology) -> list[Organisation]:
    return [org for org in topology.organisations if org.role == "ra"]


def ras_of(topology: Topology, org: Organisation) -> list[Organisation]:
    """The RAs whose figures make up `org`'s: itself for an RA, its RAs for an AC, all for the TSO."""
    if org.role == "ra":
        return [org]
    return [ra for ra in ras(topology) if org.role == "tso" or ra.parent == org.name]


def visible_figures(topology: Topology, org: Organisation) -> list[Organisation]:
    """The ACs and RAs whose figures `org` may see, each AC followed by its RAs."""
    if org.role == "ra":
        return [org]
    seen_acs = acs(topology) if org.role == "tso" else [org]
    return [each for ac in seen_acs for each in (ac, *ras_of(topology, ac))]


def visible_ras(topology: Topology, org: Organisation) -> list[Organisation]:
    """The RAs whose consumers `org` may see."""
    return [each for each in visible_figures(topology, org) if each.role == "ra"]
