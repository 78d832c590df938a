"""The web and JSON API rows of the access matrix (tests/security/access_matrix.py, generated from the topology):
every organisation × every kind of DR data, each asked through the page or JSON route that shows it on that
organisation's own server (which holds only its keys); an allowed cell answers with the data, a forbidden one with
404 and none of it."""

import pytest
from web_pages import TOPOLOGY, figure_6, sign_in

from tests.security.access_matrix import cells

CELLS = cells(TOPOLOGY, paths=("web", "json-api"))


def url_for(cell) -> str:
    kind, owner = cell.kind.what, cell.kind.owner
    consumer = TOPOLOGY.organisation(owner).consumers[0] if owner and TOPOLOGY.organisation(owner).consumers else None
    json = cell.path == "json-api"
    if kind == "readings":
        return f"/dr/compare.json?command=1&org={owner}" if json else f"/dr/commands/1/readings/{consumer}"
    if kind == "declaration":
        return f"/dr/commands/1/declarations/{owner}" + (".json" if json else "")
    if kind == "figures":
        return f"/dr/commands/1/orgs/{owner}" + (".json" if json else "")
    if kind == "command":
        return "/dr/commands.json" if json else "/dr/commands/1"
    raise AssertionError(f"no route for {cell.kind.name}")


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.id)
def test_each_cell_of_the_matrix_through_the_web(server_client, backend, as_db, cell):
    figure_6(backend, as_db)
    client = sign_in(server_client(cell.org), cell.org)
    response = client.get(url_for(cell))
    if cell.allowed:
        assert response.status_code == 200, (cell.id, response.status_code)
        if cell.path == "json-api" and cell.kind.what == "readings":
            assert {row["org"] for row in response.get_json()["rows"]} == {cell.kind.owner}
    else:
        assert response.status_code == 404, (cell.id, response.status_code)
        if cell.kind.owner:
            assert "6.000" not in response.text and "6000" not in response.text
