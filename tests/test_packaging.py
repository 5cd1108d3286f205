"""What the Docker image is built from, checked without Docker (no engine runs in CI).

The wheel (`make dist`: code, console script, GraphiQL assets); `requirements.lock`
(`make lock`), which must agree with pyproject.toml's runtime dependencies, pin and hash
every package and name no index or host; the Dockerfile's steps and `.dockerignore`'s
build context; and the Makefile's two installs (`make run` without the dev extras).
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_carries_the_gateway_its_script_and_the_graphiql_assets():
    subprocess.run(["make", "dist", f"PYTHON={sys.executable}"], cwd=ROOT, check=True)
    (wheel,) = (ROOT / "dist").glob("kombo_gateway-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("gateway/http/static/graphiql/manifest.json"))
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    assert "kombo-gateway = gateway.cli:main" in scripts
    for module in ("gateway/http/app.py", "gateway/schema/types.py", "gateway/sandbox/data.py"):
        assert module in names
    listed = [entry["path"] if isinstance(entry, dict) else entry for entry in manifest["files"]]
    assert listed
    for path in listed:
        assert f"gateway/http/static/graphiql/{path}" in names, path


# --- the lock the image installs ---------------------------------------------------------

LOCK = ROOT / "requirements.lock"
#: The image's platform: the lock must serve it (python:3.11-slim, Linux).
IMAGE_ENVIRONMENT: dict[str, str] = {
    **{key: str(value) for key, value in default_environment().items()},
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
_HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")
#: A dotted name ending in a top-level domain: a host, which the lock must not name.
_HOSTNAME = re.compile(r"\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:org|com|net|io|dev|cloud|app)\b", re.I)


@dataclass(frozen=True)
class Locked:
    requirement: Requirement
    hashes: tuple[str, ...]
    line: str

    @property
    def version(self) -> Version:
        (spec,) = self.requirement.specifier
        return Version(spec.version)


def _lock_entries() -> dict[str, Locked]:
    """The lock's requirements by canonical name; every line must be one (or a comment)."""
    text = LOCK.read_text()
    entries: dict[str, Locked] = {}
    # A requirement and its hashes form one logical line, joined by backslash-newline.
    for line in text.replace("\\\n", " ").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        assert not line.startswith("-"), f"an option in the lock: {line}"
        spec, *hashes = re.split(r"\s+(?=--hash=)", line)
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name not in entries, f"{name} is locked twice"
        entries[name] = Locked(requirement, tuple(h.strip() for h in hashes), line)
    return entries


def _runtime_dependencies() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(dependency) for dependency in project["dependencies"]]


def test_lock_pins_every_runtime_dependency_within_its_specifier():
    """pyproject.toml and requirements.lock agree; else run `make lock`."""
    locked = _lock_entries()
    for dependency in _runtime_dependencies():
        if dependency.marker is not None and not dependency.marker.evaluate(IMAGE_ENVIRONMENT):
            continue
        entry = locked.get(canonicalize_name(dependency.name))
        assert entry is not None, f"{dependency} is not in requirements.lock: run `make lock`"
        assert dependency.specifier.contains(entry.version, prereleases=True), (
            f"requirements.lock has {entry.requirement}, pyproject.toml wants {dependency}: "
            "run `make lock`"
        )
        marker = entry.requirement.marker
        assert marker is None or marker.evaluate(IMAGE_ENVIRONMENT), (
            f"{entry.requirement} would not be installed in the image"
        )
        assert not dependency.extras - entry.requirement.extras, entry.line


def test_every_locked_requirement_is_pinned_exactly_and_hashed():
    locked = _lock_entries()
    assert locked
    for name, entry in locked.items():
        specifiers = list(entry.requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", entry.line
        assert "*" not in specifiers[0].version, entry.line
        assert entry.requirement.url is None, entry.line
        assert entry.hashes, f"{name} has no hash"
        for digest in entry.hashes:
            assert _HASH.fullmatch(digest), f"{name}: {digest}"


def test_lock_names_no_index_url_or_host():
    """Hashes pin the files; where they come from is the installer's configuration."""
    text = LOCK.read_text()
    assert "://" not in text
    assert " @ " not in text
    for option in ("--index-url", "--extra-index-url", "--find-links", "--trusted-host"):
        assert option not in text
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            # Comments name packages and `pyproject.toml`, nothing else.
            line = line.replace("pyproject.toml", "")
        assert not _HOSTNAME.search(line), line


# --- the Dockerfile and its build context ------------------------------------------------


def _dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    return [" ".join(line.split()) for line in joined.splitlines() if line.strip()]


def _instructions(keyword: str) -> list[str]:
    return [line[len(keyword) + 1 :] for line in _dockerfile() if line.startswith(keyword + " ")]


def test_image_installs_the_lock_with_hashes_then_the_wheel_without_dependencies():
    steps = _dockerfile()
    lock_install = next(
        i for i, s in enumerate(steps) if "--require-hashes" in s and "requirements.lock" in s
    )
    assert steps[lock_install].startswith("RUN pip install")
    assert any(s.startswith("COPY requirements.lock") for s in steps[:lock_install])
    wheel_install = next(i for i, s in enumerate(steps) if "--no-deps" in s and ".whl" in s)
    assert wheel_install > lock_install
    assert steps[wheel_install].startswith("RUN pip install")


def test_image_builds_with_make_targets_npm_before_the_code():
    steps = _dockerfile()
    makefile = (ROOT / "Makefile").read_text()
    for step in _instructions("RUN"):
        if step.startswith("make "):
            for target in (w for w in step.split()[1:] if "=" not in w):
                assert re.search(rf"^{re.escape(target)}:", makefile, re.M), target
    assets = steps.index("RUN make assets")
    copy_code = next(i for i, s in enumerate(steps) if s.startswith("COPY gateway "))
    # A code change must not redo the npm step: the assets come before the code.
    assert assets < copy_code
    for source in _copy_sources(steps[:assets]):
        assert not source.startswith("gateway"), source


def test_image_serves_from_the_environment_and_checks_the_configured_port():
    env = " ".join(_instructions("ENV")).split()
    for setting in ("GATEWAY_ALLOW_SANDBOX=false", "GATEWAY_HOST=0.0.0.0", "GATEWAY_PORT=8000"):
        assert setting in env
    (cmd,) = _instructions("CMD")
    assert json.loads(cmd) == ["kombo-gateway", "serve"]
    (healthcheck,) = _instructions("HEALTHCHECK")
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    # No URL or port of its own: `health` reads GATEWAY_PORT, so the check follows it.
    assert command == ["kombo-gateway", "health"]


def _copy_sources(steps: list[str]) -> list[str]:
    sources = []
    for step in steps:
        if step.startswith("COPY ") and "--from=" not in step:
            sources += step.split()[1:-1]
    return sources


def _dockerignore() -> list[tuple[re.Pattern[str], bool]]:
    """(pattern, is an exception) per .dockerignore line, as Docker reads them: paths
    relative to the context, `*` within a path segment, `**` across segments."""
    rules = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = posixpath.normpath(line.lstrip("!").strip()).lstrip("/")
        regex, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((re.compile(regex), negated))
    return rules


def _ignored(path: str, rules: list[tuple[re.Pattern[str], bool]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for regex, negated in rules:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            ignored = not negated
    return ignored


def _build_context() -> dict[str, int]:
    """Files `docker build .` would send, with their sizes."""
    rules = _dockerignore()
    exceptions = [regex.pattern for regex, negated in rules if negated]
    context: dict[str, int] = {}
    for folder, dirs, files in os.walk(ROOT):
        base = Path(folder).relative_to(ROOT).as_posix()
        prefix = "" if base == "." else base + "/"
        # Skip a folder that is ignored and that no exception could reach into.
        dirs[:] = [
            d
            for d in dirs
            if not _ignored(prefix + d, rules)
            or any(p.startswith(re.escape(prefix + d + "/")) for p in exceptions)
        ]
        for name in files:
            path = prefix + name
            if not _ignored(path, rules):
                context[path] = (Path(folder) / name).stat().st_size
    return context


def test_build_context_is_what_the_image_copies_and_nothing_heavy():
    context = _build_context()
    for source in _copy_sources(_dockerfile()):
        source = source.rstrip("/")
        assert source in context or any(p.startswith(source + "/") for p in context), source
    for path in context:
        top = path.split("/")[0]
        assert top not in {".venv", ".git", "dist", "tests", "bench", "docs"}, path
        assert "node_modules" not in path and "__pycache__" not in path, path
        assert not path.startswith("gateway/http/static/graphiql/"), path
        assert not re.search(r"(^|/)\.(mypy|ruff|pytest)_cache/|\.pyc$", path), path
    assert "gateway/http/app.py" in context and "requirements.lock" in context
    assert sum(context.values()) < 5 * 1024 * 1024, f"{sum(context.values())} bytes"


# --- make run installs less than make test ------------------------------------------------


def _fake_venv(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the Makefile beside pyproject.toml, and a venv whose `python` only logs."""
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    log = tmp_path / "pip.log"
    python = bin_dir / "python"
    python.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    python.chmod(0o755)
    return tmp_path, log


def _make(directory: Path, *args: str) -> int:
    done = subprocess.run(
        ["make", "--no-print-directory", "VENV=venv", *args],
        cwd=directory,
        capture_output=True,
        text=True,
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode


def test_make_run_installs_the_gateway_without_the_dev_extras(tmp_path: Path):
    directory, log = _fake_venv(tmp_path)
    assert _make(directory, "venv/.installed-run") == 0
    installs = [line for line in log.read_text().splitlines() if "install" in line]
    assert "-m pip install --quiet -e ." in installs
    assert not any("[dev]" in line for line in installs), installs
    # `make test` afterwards still has the dev extras to add.
    assert _make(directory, "-q", "venv/.installed-dev") == 1


def test_make_test_installs_the_dev_extras_and_satisfies_make_run(tmp_path: Path):
    directory, log = _fake_venv(tmp_path)
    assert _make(directory, "venv/.installed-dev") == 0
    assert any("-e .[dev]" in line for line in log.read_text().splitlines())
    # `make run` afterwards installs nothing more.
    assert _make(directory, "-q", "venv/.installed-run") == 0
