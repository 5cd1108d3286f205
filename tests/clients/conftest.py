"""What the client tests share: the environment of a gateway process on the session's
sandbox (`tests.support.gateway_process`), and the check that the npm packages are there."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.config import SANDBOX_API_KEY, SANDBOX_INTEGRATION_IDS

JS = Path(__file__).resolve().parent / "js"
NODE = shutil.which("node")


def require_packages(*names: str) -> None:
    """Fail (not skip) when Node is there but `tests/clients/js` was never installed."""
    missing = [name for name in names if not (JS / "node_modules" / name).is_dir()]
    assert not missing, (
        f"npm packages missing ({', '.join(missing)}): run `make test` "
        "(it installs tests/clients/js)"
    )


@pytest.fixture(scope="module")
def kombo_env(sandbox_url: str) -> dict[str, str]:
    """A gateway process's variables: the session's sandbox as Kombo, no rate limit."""
    return {
        "KOMBO_API_KEY": SANDBOX_API_KEY,
        "KOMBO_BASE_URL": f"{sandbox_url}/v1",
        "KOMBO_INTEGRATION_ID": SANDBOX_INTEGRATION_IDS[0],
        "GATEWAY_RATE_LIMIT": "0",
    }
