"""Settings from the environment, validated once, with errors that name the variable.

Usage::

    settings = Settings.from_env(os.environ)
    settings.base_url          # "https://api.kombo.dev/v1"
    settings.sandbox_mode      # True when no KOMBO_API_KEY is set

`Settings.from_env` is a pure function of the mapping it is given, so tests pass a
plain dict. This module does no I/O and imports nothing else of the gateway: the
sandbox reads its well-known credentials from here without knowing the client.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

#: Kombo's public base URLs per region (see Kombo's server table).
REGION_BASE_URLS: Mapping[str, str] = {
    "eu": "https://api.kombo.dev/v1",
    "us": "https://api.us.kombo.dev/v1",
    "ca": "https://api.ca.kombo.dev/v1",
}
DEFAULT_REGION = "eu"

#: The key the embedded sandbox accepts. It is not a secret: it only opens the sandbox.
SANDBOX_API_KEY = "ks_dev_sandbox_0000000000000000"
#: Integrations the sandbox serves; the first is the default in sandbox mode.
SANDBOX_INTEGRATION_IDS: tuple[str, ...] = (
    "greenhouse:8mJ4sVvB3Ut3PqCbA9z7WkRn",
    "personio:CBNMt7dSNCzBdnRTx87dev4E",
)


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable and what it allows."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the gateway reads from its environment.

    `api_key` is None in sandbox mode: the CLI then starts the embedded sandbox and
    fills `api_key`/`base_url` with the sandbox's before building the app.
    """

    api_key: str | None = None
    base_url: str = REGION_BASE_URLS[DEFAULT_REGION]
    integration_id: str | None = None
    cache_ttl: float = 30.0
    cache_max_entries: int = 5_000
    cache_max_bytes: int = 16 * 1024 * 1024
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_connections: int = 100
    #: Upstream calls in flight per integration (Kombo's concurrency limit is about 30).
    max_concurrency: int = 16
    #: Time one GraphQL request may spend on Kombo, retries included.
    request_timeout: float = 20.0
    #: Tries per upstream call, the first included (1: no retries).
    retry_attempts: int = 4

    @property
    def sandbox_mode(self) -> bool:
        """True when no Kombo key was configured: the embedded sandbox stands in for Kombo."""
        return self.api_key is None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read and validate settings.

        Raises:
            ConfigError: a variable holds a value it does not allow.
        """
        api_key = _optional(environ, "KOMBO_API_KEY")
        region = (_optional(environ, "KOMBO_REGION") or DEFAULT_REGION).lower()
        if region not in REGION_BASE_URLS:
            allowed = ", ".join(sorted(REGION_BASE_URLS))
            raise ConfigError(f"KOMBO_REGION={region!r} is not a Kombo region (allowed: {allowed})")
        base_url = _optional(environ, "KOMBO_BASE_URL") or REGION_BASE_URLS[region]
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigError(
                f"KOMBO_BASE_URL={base_url!r} must be an absolute http(s) URL, "
                "e.g. https://api.kombo.dev/v1"
            )
        return cls(
            api_key=api_key,
            base_url=base_url.rstrip("/"),
            integration_id=_optional(environ, "KOMBO_INTEGRATION_ID"),
            cache_ttl=_number(environ, "GATEWAY_CACHE_TTL", 30.0, minimum=0.0),
            cache_max_entries=int(_number(environ, "GATEWAY_CACHE_MAX_ENTRIES", 5_000, minimum=1)),
            cache_max_bytes=int(
                _number(environ, "GATEWAY_CACHE_MAX_BYTES", 16 * 1024 * 1024, minimum=1024)
            ),
            connect_timeout=_number(environ, "KOMBO_CONNECT_TIMEOUT", 5.0, minimum=0.001),
            read_timeout=_number(environ, "KOMBO_READ_TIMEOUT", 30.0, minimum=0.001),
            max_connections=int(_number(environ, "KOMBO_MAX_CONNECTIONS", 100, minimum=1)),
            max_concurrency=int(_number(environ, "KOMBO_MAX_CONCURRENCY", 16, minimum=1)),
            request_timeout=_number(environ, "GATEWAY_REQUEST_TIMEOUT", 20.0, minimum=0.1),
            retry_attempts=int(_number(environ, "GATEWAY_RETRY_ATTEMPTS", 4, minimum=1)),
        )


def _optional(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _number(environ: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = _optional(environ, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number (expected e.g. {default:g})") from None
    if not math.isfinite(value) or value < minimum:
        raise ConfigError(f"{name}={raw!r} must be a finite number >= {minimum:g}")
    return value
