"""The access-control matrix, generated from network/topology.yaml: every organisation × every kind of data × every
read path, and whether that read may succeed. Tests on the real network (test_access_matrix.py) and the web's
tests read the same cells, so a rule is written once, here, from the topology — never from the contract's code.

The rules (seed figure 7 and Fabric's private data):
- A private kind belongs to one collection (`topology.collections()`): an RA collection holds its consumers'
  readings and declarations and the RA's figures, an AC collection the AC's figures (computed from its RAs'
  collections, whose members the AC's are). Its value may be read by the collection's members only, whichever
  peer is asked ("evaluate", "evaluate-member-peer", "private-delivery", "cli", "web", "json-api").
- Everyone may read a private value's hash ("hash"): that is how non-members check it (tamper evidence).
- No private value ever reaches a block ("blocks"), a chaincode event ("events") or key history ("history"),
  whoever reads them: those cells are forbidden for every organisation, members included.
- Public kinds (commands, public records) may be read by everyone on every path.

Web hook: the web's tests parametrise over `cells(TOPOLOGY, paths=("web", "json-api"))` and, for each cell, ask
the page or JSON route that shows `cell.kind` as `cell.org`; an allowed cell must show the seeded value, a
forbidden one must answer 403/404 without it. `seed_values(...)` (test_access_matrix.py's `seeded` fixture) says
which value each kind holds.
"""

from dataclasses import dataclass

from consortium.topology import Topology

READ_PATHS = (
    "evaluate",
    "evaluate-member-peer",
    "hash",
    "history",
    "events",
    "blocks",
    "private-delivery",
    "cli",
    "web",
    "json-api",
)
# Paths on which nothing private may ever appear, for anyone.
NEVER_PRIVATE = ("history", "events", "blocks")


@dataclass(frozen=True)
class DataKind:
    """One kind of data: `name` is "<what>:<owner>" (e.g. "readings:RA1"), `collection` None when public."""

    name: str
    what: str  # private-record | readings | declaration | figures | public-record | command
    owner: str | None  # the organisation whose group it belongs to
    collection: str | None

    @property
    def private(self) -> bool:
        return self.collection is not None


@dataclass(frozen=True)
class Cell:
    org: str
    kind: DataKind
    path: str
    allowed: bool

    @property
    def id(self) -> str:
        return f"{self.path}-{self.org}-{self.kind.name}"


# Which kinds each read path can ask for at all (a path that has no way to ask for a kind has no cell for it).
PATH_KINDS = {
    "evaluate": {"private-record", "readings", "declaration", "figures", "public-record", "command"},
    "evaluate-member-peer": {"private-record", "readings", "declaration", "figures"},
    "hash": {"private-record"},
    "history": {"private-record", "public-record"},
    "events": {"private-record", "readings", "declaration", "public-record", "command"},
    "blocks": {"private-record", "readings", "declaration", "public-record", "command"},
    "private-delivery": {"private-record", "readings", "declaration"},
    "cli": {"figures", "command"},
    "web": {"readings", "declaration", "figures", "command"},
    "json-api": {"readings", "declaration", "figures", "command"},
}


def data_kinds(topology: Topology) -> list[DataKind]:
    kinds = []
    for collection, _ in topology.collections().items():
        owner = topology.organisation(collection)
        kinds.append(DataKind(f"private-record:{collection}", "private-record", owner.name, collection))
        if owner.role == "ra":
            kinds.append(
                DataKind(f"readings:{owner.name}", "readings", owner.name, topology.readings_collection_for(owner.name))
            )
            kinds.append(
                DataKind(
                    f"declaration:{owner.name}", "declaration", owner.name, topology.readings_collection_for(owner.name)
                )
            )
            kinds.append(
                DataKind(f"figures:{owner.name}", "figures", owner.name, topology.readings_collection_for(owner.name))
            )
        else:
            kinds.append(
                DataKind(f"figures:{owner.name}", "figures", owner.name, topology.ac_collection_for(owner.name))
            )
    kinds.append(DataKind("public-record", "public-record", None, None))
    kinds.append(DataKind("command", "command", None, None))
    return kinds


def may_read(topology: Topology, org: str, kind: DataKind, path: str) -> bool:
    if not kind.private:
        return True
    if path in NEVER_PRIVATE:
        return False
    if path == "hash":
        return True
    return org in topology.collections()[kind.collection]


def cells(topology: Topology, paths=READ_PATHS) -> list[Cell]:
    return [
        Cell(org, kind, path, may_read(topology, org, kind, path))
        for path in paths
        for org in topology.org_names
        for kind in data_kinds(topology)
        if kind.what in PATH_KINDS[path]
    ]


def member_peer_org(topology: Topology, org: str, kind: DataKind) -> str:
    """A peer that holds the kind's data, preferably not the caller's own: the caller's identity must decide."""
    members = topology.collections()[kind.collection]
    others = [m for m in members if m != org]
    return (others or list(members))[0]


def table(topology: Topology, results: dict[tuple[str, str, str], bool], path: str) -> str:
    """The matrix of one path as text: rows kinds, columns organisations; Y/n allowed, ! where a result broke it."""
    kinds = [k for k in data_kinds(topology) if k.what in PATH_KINDS[path]]
    lines = [f"{path}:".ljust(26) + " ".join(o.ljust(4) for o in topology.org_names)]
    for kind in kinds:
        row = []
        for org in topology.org_names:
            allowed = may_read(topology, org, kind, path)
            got = results.get((path, org, kind.name))
            mark = ("Y" if allowed else "n") + ("" if got is None or got == allowed else "!")
            row.append(mark.ljust(4))
        lines.append(kind.name.ljust(26) + " ".join(row))
    return "\n".join(lines)
