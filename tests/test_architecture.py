"""Imports flow one way (docs/architecture.md): checked on the source, so the rule cannot drift."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

GATEWAY = Path(__file__).resolve().parent.parent / "gateway"
# Modules in import order: each may import only modules listed before it.
LAYERS = [
    "config", "budget", "retry", "transport", "kombo", "errors", "metrics", "refusals",
    "observability", "cache", "loaders", "ids", "context", "access", "token_file", "limits",
    "client_address", "pagination", "state", "schema", "graphiql", "request_shape", "view", "app",
    "http_protocol", "serving", "cli",
]  # fmt: skip
GRAPHQL_LIBRARIES = {"strawberry", "graphql"}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def layer_of(module: str) -> str:
    return module.removeprefix("gateway.").split(".")[0]


@pytest.mark.parametrize("layer", LAYERS)
def test_each_module_imports_only_lower_layers(layer: str):
    path = GATEWAY / f"{layer}.py"
    files = sorted((GATEWAY / layer).rglob("*.py")) if not path.exists() else [path]
    allowed = set(LAYERS[: LAYERS.index(layer) + 1])
    if layer == "cli":
        allowed.add("sandbox")  # `kombo-gateway sandbox` runs it
    for file in files:
        for name in imports_of(file):
            if name.startswith("gateway."):
                assert layer_of(name) in allowed, f"{file.name} imports {name}"


@pytest.mark.parametrize("layer", ["config", "budget", "kombo", "metrics", "cache", "loaders"])
def test_the_rest_client_side_knows_nothing_of_graphql(layer: str):
    roots = {name.split(".")[0] for name in imports_of(GATEWAY / f"{layer}.py")}
    assert not roots & GRAPHQL_LIBRARIES


def test_the_schema_knows_nothing_of_http():
    for file in (GATEWAY / "schema").rglob("*.py"):
        roots = {name.split(".")[0] for name in imports_of(file)}
        assert not roots & {"httpx", "starlette", "uvicorn"}, file.name


def test_the_sandbox_imports_only_config_of_the_gateway():
    for file in (GATEWAY / "sandbox").rglob("*.py"):
        ours = {layer_of(n) for n in imports_of(file) if n.startswith("gateway.")}
        assert ours <= {"config", "sandbox"}, file.name
