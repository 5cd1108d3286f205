"""Imports flow one way (docs/architecture.md): checked on the source, so the rule cannot drift."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

GATEWAY = Path(__file__).resolve().parent.parent / "gateway"
# The sides, in import order: a module may import its own side and the sides before it
# (`config` and `errors` share the first place). A side is a module or a folder of `gateway/`.
SIDES = {
    "config": 0,
    "errors": 0,
    "observability": 1,
    "upstream": 2,
    "schema": 3,
    "http": 4,
    "cli": 5,
}
# Imports that break the rule today, left for the behavioural commit that follows the move
# (issue 11): the test fails once one of them is gone, so this list can only shrink.
PENDING: set[tuple[str, str]] = set()
GRAPHQL_LIBRARIES = {"strawberry", "graphql"}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def side_of(module: str) -> str:
    return module.removeprefix("gateway.").split(".")[0]


def files_of(side: str) -> list[Path]:
    path = GATEWAY / f"{side}.py"
    return [path] if path.exists() else sorted((GATEWAY / side).rglob("*.py"))


def test_every_module_belongs_to_a_side():
    for path in GATEWAY.iterdir():
        if path.name == "__pycache__" or path.name in {"__init__.py", "__main__.py"}:
            continue
        assert path.name.removesuffix(".py") in {*SIDES, "sandbox"}, path.name


@pytest.mark.parametrize("side", SIDES)
def test_each_side_imports_only_itself_and_the_sides_before_it(side: str):
    allowed = {name for name, rank in SIDES.items() if rank <= SIDES[side]}
    if side == "cli":
        allowed.add("sandbox")  # `kombo-gateway sandbox` runs it
    for file in files_of(side):
        for name in imports_of(file):
            if name.startswith("gateway.") and (file.name, name) not in PENDING:
                assert side_of(name) in allowed, f"{file.relative_to(GATEWAY)} imports {name}"


def test_pending_exceptions_are_still_there():
    found = {(file.name, name) for file in GATEWAY.rglob("*.py") for name in imports_of(file)}
    assert PENDING <= found, PENDING - found


@pytest.mark.parametrize("side", ["config", "observability", "upstream"])
def test_the_rest_client_side_knows_nothing_of_graphql(side: str):
    for file in files_of(side):
        roots = {name.split(".")[0] for name in imports_of(file)}
        assert not roots & GRAPHQL_LIBRARIES, file.name


def test_the_schema_knows_nothing_of_http():
    for file in (GATEWAY / "schema").rglob("*.py"):
        roots = {name.split(".")[0] for name in imports_of(file)}
        assert not roots & {"httpx", "starlette", "uvicorn"}, file.name


def test_the_sandbox_imports_only_config_of_the_gateway():
    for file in (GATEWAY / "sandbox").rglob("*.py"):
        ours = {side_of(n) for n in imports_of(file) if n.startswith("gateway.")}
        assert ours <= {"config", "sandbox"}, file.name
