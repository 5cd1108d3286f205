"""Imports flow one way (docs/architecture.md): checked on the source, so the rule cannot drift."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

GATEWAY = Path(__file__).resolve().parent.parent / "gateway"
# The sides, in import order: a module may import its own side and the sides before it
# (`config` and `errors` share the first place). A side is a module or a folder of `gateway/`.
SIDES = {
    "config": 0,
    "errors": 0,
    "observability": 1,
    "sharing": 2,
    "upstream": 3,
    "schema": 4,
    "http": 5,
    "cli": 6,
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


@pytest.mark.parametrize("side", ["config", "observability", "sharing", "upstream"])
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


# --- transitively: what importing a module loads, in a fresh interpreter ----------------

# Packages a side must not load, whoever imports them on its behalf.
WEB_SERVER = {"starlette", "uvicorn"}
FORBIDDEN_PACKAGES = {
    "config": GRAPHQL_LIBRARIES | WEB_SERVER | {"httpx"},
    "errors": GRAPHQL_LIBRARIES | WEB_SERVER | {"httpx"},
    "observability": GRAPHQL_LIBRARIES | WEB_SERVER | {"httpx"},
    "sharing": GRAPHQL_LIBRARIES | WEB_SERVER | {"httpx"},
    "upstream": GRAPHQL_LIBRARIES | WEB_SERVER,
    "schema": WEB_SERVER,
    "sandbox": GRAPHQL_LIBRARIES,
}
# One fresh interpreter; each side's modules are imported in a child forked from it
# before any import of ours, so every side starts from the same empty `sys.modules`. (A
# child per side, not per module: what the side loads as a whole is what the rule is
# about, and six children cost a fraction of fifty.)
_LOADED_BY_EACH = """
import json, os, sys, tempfile
pending = list(enumerate(sys.argv[1:]))
running = {}
with tempfile.TemporaryDirectory() as scratch:
    while pending or running:
        while pending and len(running) < (os.cpu_count() or 1):
            index, modules = pending.pop()
            out = os.path.join(scratch, str(index))
            pid = os.fork()
            if pid == 0:
                for name in modules.split(","):
                    __import__(name)
                with open(out, "w") as file:
                    json.dump(sorted(sys.modules), file)
                os._exit(0)
            running[pid] = (modules, out)
        pid, _ = os.wait()
        modules, out = running.pop(pid)
        loaded = json.load(open(out)) if os.path.exists(out) else None
        print(json.dumps([modules, loaded]))
"""


def module_name(path: Path) -> str:
    parts = path.relative_to(GATEWAY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.fixture(scope="module")
def loaded_by() -> dict[str, list[str]]:
    """For each of the lower sides: every module a fresh interpreter holds after
    importing all of that side's modules."""
    sides = {side: ",".join(module_name(f) for f in files_of(side)) for side in FORBIDDEN_PACKAGES}
    run = subprocess.run(
        [sys.executable, "-c", _LOADED_BY_EACH, *sides.values()],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=GATEWAY.parent,
        check=True,
    )
    found = dict(json.loads(line) for line in run.stdout.splitlines())
    assert set(found) == set(sides.values()) and all(found.values()), run.stderr[-2000:]
    return {side: found[modules] for side, modules in sides.items()}


@pytest.mark.parametrize("side", FORBIDDEN_PACKAGES)
def test_a_side_loads_no_side_above_it_nor_a_forbidden_package_transitively(
    side: str, loaded_by: dict[str, list[str]]
):
    allowed = {name for name, rank in SIDES.items() if rank <= SIDES.get(side, 0)}
    if side == "sandbox":
        allowed = {"config", "sandbox"}
    loaded = loaded_by[side]
    ours = {side_of(name) for name in loaded if name.startswith("gateway.")}
    assert ours <= allowed, f"importing the {side} side loads the {ours - allowed} side"
    roots = {name.split(".")[0] for name in loaded}
    forbidden = roots & FORBIDDEN_PACKAGES[side]
    assert not forbidden, f"importing the {side} side loads {sorted(forbidden)}"


def test_the_transitive_check_sees_what_a_direct_check_cannot(loaded_by: dict[str, list[str]]):
    """The check above is only as good as its data: the schema's builder must be seen
    loading graphql through its own imports and httpx through the upstream side."""
    loaded = set(loaded_by["schema"])
    assert {"graphql", "strawberry", "httpx", "gateway.upstream.kombo.client"} <= loaded
