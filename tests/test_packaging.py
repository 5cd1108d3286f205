"""The wheel the Docker image installs (`make dist`): code, console script, GraphiQL assets."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_carries_the_gateway_its_script_and_the_graphiql_assets():
    subprocess.run(["make", "dist", f"PYTHON={sys.executable}"], cwd=ROOT, check=True)
    (wheel,) = (ROOT / "dist").glob("kombo_gateway-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("gateway/static/graphiql/manifest.json"))
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    assert "kombo-gateway = gateway.cli:main" in scripts
    for module in ("gateway/app.py", "gateway/schema/types.py", "gateway/sandbox/data.py"):
        assert module in names
    listed = [entry["path"] if isinstance(entry, dict) else entry for entry in manifest["files"]]
    assert listed
    for path in listed:
        assert f"gateway/static/graphiql/{path}" in names, path
