"""OpenADR 2.0b in front of the ledger: one VTN per commanding organisation (the TSO for every RA, an AC for its
own RAs), so that an RA's existing DR software (a VEN) receives the ledger's DR commands as OpenADR events, answers
them, and reports its telemetry (openadr.vtn; the mapping rules in openadr.mapping).

How the VEN's word meets the ledger's trust rules: the VEN is the RA's DR system. Its opt-in is checked against
the RA's own declaration on the ledger (the VTN cannot sign for the RA), and its telemetry is the RA's own figures,
kept where the aggregation system's are: the TSO's comparison sets them beside the ledger's metered readings, and
settlement uses only those readings, never what a VEN reports.
"""

from consortium.topology import Topology

# Each organisation's VTN listens on a port of its peer's block (consortium.topology: offsets 0-4 are the peer's,
# 5 its web server's), so it never collides with a node and moves with the port base.
VTN_PORT_OFFSET = 6


def vtn_port(topology: Topology, org: str) -> int:
    """The port `org`'s VTN listens on by default."""
    return topology.peer_of(org).listen_port + VTN_PORT_OFFSET
