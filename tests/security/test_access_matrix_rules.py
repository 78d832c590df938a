"""The access matrix is generated from the topology: every organisation × every collection, members alone allowed
on the paths that return values, nobody on the paths that must never carry a private value."""

from access_matrix import cells, data_kinds

from consortium import topology as topology_file

TOPOLOGY = topology_file.load()
CELLS = cells(TOPOLOGY)


def test_the_matrix_is_the_topologys():
    """Every organisation × every collection appears, and on a value-reading path exactly the members may read."""
    collections = TOPOLOGY.collections()
    kinds = data_kinds(TOPOLOGY)
    assert {k.collection for k in kinds if k.private} == set(collections)
    for cell in CELLS:
        if cell.path == "evaluate" and cell.kind.private:
            assert cell.allowed == (cell.org in collections[cell.kind.collection])
        if cell.path in ("events", "blocks", "history") and cell.kind.private:
            assert not cell.allowed
    evaluated = {(c.org, c.kind.collection) for c in CELLS if c.path == "evaluate" and c.kind.private}
    assert evaluated == {(o, c) for o in TOPOLOGY.org_names for c in collections}
