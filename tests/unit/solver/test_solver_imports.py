"""The solver's rooms: the pure part (what the chaincode imports) has no threads, logging or daemon in it, and the
matching daemon (solver.service) imports only the pure solver and the standard library."""

import ast
import sys
from pathlib import Path

import pytest

SOLVER = Path(__file__).resolve().parents[3] / "solver"
PURE = sorted(path for path in SOLVER.rglob("*.py") if path.name != "service.py")
SOLVERS = {"numpy", "highspy", "pyomo"}
NOT_PURE = {"threading", "logging", "queue", "solver.service"}


def module_name(path):
    parts = path.relative_to(SOLVER.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path):
    """The top-level names (and solver modules, by full name) path imports."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        names.update(module if module.startswith("solver") else module.split(".")[0] for module in modules)
    return names


def test_the_daemon_imports_only_the_pure_solver_and_the_standard_library():
    imports = imported(SOLVER / "service.py")
    assert {name for name in imports if not name.startswith("solver.")} <= sys.stdlib_module_names
    assert {name for name in imports if name.startswith("solver.")} <= {module_name(path) for path in PURE}


@pytest.mark.parametrize("path", PURE, ids=lambda path: str(path.relative_to(SOLVER)))
def test_the_pure_solver_has_no_threads_logging_or_daemon(path):
    imports = imported(path)
    assert not imports & NOT_PURE
    assert {name for name in imports if not name.startswith("solver")} <= sys.stdlib_module_names | SOLVERS | {
        "consortium"
    }
