"""The consortium, the bottom room: its topology file and what derives from it, for chaincode, clients and bring-up.

Every other room may import this one; it imports none of them.
"""

from consortium.topology import MarketRules, Node, Organisation, Topology, TopologyError, load

CHAINCODE_NAME = "gridledger"
# What a gate may be matched for: the most energy, the most surplus, or the best deal for the worst-off.
OBJECTIVES = ("volume", "welfare", "maxmin")

__all__ = [
    "CHAINCODE_NAME",
    "OBJECTIVES",
    "MarketRules",
    "Node",
    "Organisation",
    "Topology",
    "TopologyError",
    "load",
]
