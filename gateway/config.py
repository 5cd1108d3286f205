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

import dataclasses
import ipaddress
import json
import math
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
class TokenSpec:
    """One gateway access token, as configured: stored as its SHA-256, never in clear.

    `integrations` None means every integration. `default_integration` serves requests
    that name none.
    """

    name: str
    sha256: str
    integrations: frozenset[str] | None
    default_integration: str | None = None

    def entry(self) -> dict[str, object]:
        """This token as one entry of GATEWAY_TOKENS (what `parse_tokens` reads back)."""
        entry: dict[str, object] = {
            "name": self.name,
            "sha256": self.sha256,
            "integrations": "*" if self.integrations is None else sorted(self.integrations),
        }
        if self.default_integration is not None:
            entry["default_integration"] = self.default_integration
        return entry


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
    #: Seconds past `cache_ttl` a cached page may still be served while one refresh runs
    #: in the background (stale-while-revalidate); never after Kombo's webhook dropped it.
    cache_stale: float = 30.0
    cache_max_entries: int = 5_000
    cache_max_bytes: int = 16 * 1024 * 1024
    #: Bytes of whole encoded GraphQL answers kept per worker (the response cache, in
    #: front of execution); 0 turns it off (so does `cache_ttl` 0). One answer may take
    #: at most a sixteenth of it (2 MiB by default: the 250-job page with every field
    #: is ~1.1 MB).
    response_cache_bytes: int = 32 * 1024 * 1024
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_connections: int = 100
    #: Upstream calls in flight per integration and worker. Kombo caps concurrency for
    #: actions only (30 per integration), not for reads like `GET /ats/jobs`, so this
    #: guards our own pool and Kombo from a stampede; its 429s (held by every replica)
    #: are the real limit. 16 made cache misses wait: 16 / latency calls a second.
    max_concurrency: int = 64
    #: Time one GraphQL request may spend on Kombo, retries included.
    request_timeout: float = 20.0
    #: Seconds an idle client connection stays open. Longer than what clients and load
    #: balancers keep idle connections for (httpx 5 s, AWS ALB 60 s): the side that
    #: closes first must be the client, or a request sent as the server closes is lost.
    keepalive_timeout: float = 75.0
    #: Tries per upstream call, the first included (1: no retries).
    retry_attempts: int = 4
    #: Gateway access tokens; none configured: the gateway is open to whoever reaches it.
    tokens: tuple[TokenSpec, ...] = ()
    #: Where `tokens` came from when read from a file (`GATEWAY_TOKENS_FILE`), which is
    #: then watched: changes apply without a restart (`gateway.http.token_file`).
    tokens_file: str | None = None
    #: Callers may bring their own Kombo key (`X-Kombo-Api-Key`); required then.
    key_passthrough: bool = False
    #: `serve` may stand the embedded sandbox (invented jobs) in for Kombo when there is
    #: no Kombo to call. Deployments set it false: one that lost its secret then stops
    #: instead of passing its health checks while serving fake data.
    allow_sandbox: bool = True
    #: Requests per second per caller (token, else client address); 0: no limit.
    rate_limit: float = 50.0
    rate_burst: int = 100
    #: Failed authentications per minute per client address, checked before a request's
    #: credentials are (then 429); 0: no limit.
    auth_failure_limit: int = 30
    max_body_bytes: int = 1024 * 1024
    max_depth: int = 15
    max_aliases: int = 500
    max_tokens: int = 20_000
    #: Bytes (UTF-8) of one GraphQL document, checked before it is read: lexing and
    #: validating cost ~10 us a byte, and a parsed document ~30-300 times its size.
    #: GraphiQL's introspection query is ~1.6 KB, the benchmark's 60 look-ups ~8 KB, the
    #: tests' chain of 1,000 fragments (refused later, for its nesting) ~33 KB. Past
    #: ~40 KB, `max_tokens` decides first for dense text anyway.
    max_document_bytes: int = 48 * 1024
    #: Operations one HTTP request may carry (a JSON list; they share one request's
    #: batching of look-ups); 1 turns batching off.
    max_batch: int = 10
    #: Most IDs in one `nodes` call or one `JobFilter` list.
    max_ids: int = 1_000
    #: Upstream calls one batch of IDs may spend finding unknown IDs (Kombo 404s a batch).
    isolation_calls: int = 100
    #: Fields one operation may select after fragment expansion (aliases, introspection
    #: and every expansion of a fragment counted). GraphiQL's introspection query selects
    #: 229; every Job field with every nested object and union member, 127; the
    #: benchmark's 60 aliased look-ups, 660.
    max_fields: int = 2_000
    #: Kombo calls one HTTP request may cause: every operation of a batch, every alias,
    #: page walks, isolation of unknown IDs and retries together.
    max_upstream_calls: int = 100
    #: Bytes of one Kombo answer read at most, as received and after decompression.
    max_response_bytes: int = 16 * 1024 * 1024
    #: Seconds a client may take to send its request headers (from connecting, or from
    #: starting its next request on a kept-alive connection), then its body.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    #: Proxies whose `X-Forwarded-For` names the client (addresses or networks); empty:
    #: the client is the connection's peer, and `X-Forwarded-For` is ignored.
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    #: Keys cursor checksums. None: derived from the Kombo key, so every replica with
    #: the same key accepts the others' cursors with nothing more to configure.
    cursor_secret: str | None = None
    introspection: bool = True
    graphiql: bool = True
    log_level: str = "INFO"
    #: OpenTelemetry spans per upstream call (needs the opentelemetry SDK installed and
    #: configured, e.g. through its OTEL_* variables).
    tracing: bool = False
    #: Freeze start-up objects and collect young ones less often (see app.py).
    gc_tuning: bool = True
    #: Redis shared by every worker and replica (cache, in-flight calls, rate limit,
    #: Kombo back-off); None: everything stays in-process. May carry a password: it is
    #: never logged, nor echoed in an error.
    redis_url: str | None = None
    #: Prefix of every Redis key, so several gateways can share one Redis.
    redis_prefix: str = "kgw"
    #: Seconds one Redis operation may take before the gateway goes on without it. It is
    #: measured on the worker's event loop, so a busy worker's own lag counts too: with
    #: 0.1 s, up to ~1% of operations timed out in the bench's replica run (and three in
    #: a row open the breaker, when the worker is busiest).
    redis_timeout: float = 0.25
    #: Kombo's webhook signing secret; None: `POST /webhooks/kombo` answers 404. A
    #: secret: kept out of `repr`, never logged nor echoed.
    webhook_secret: str | None = dataclasses.field(default=None, repr=False)
    #: Webhook requests per second per client address (bursts of ten seconds' worth);
    #: 0: no limit. Kombo sends one `data-changed` per integration after each sync.
    webhook_rate_limit: float = 10.0
    #: A trusted-documents file (relay-compiler's persisted queries, or Apollo's
    #: persisted query manifest), read and validated at start-up; None: no such list.
    persisted_documents: str | None = None
    #: Run only the documents of `persisted_documents` (and introspection, when it is
    #: on): any other is refused before it is parsed, and APQ registration is off.
    persisted_only: bool = False
    #: Automatic persisted queries (Apollo's protocol): a client sends a document's
    #: SHA-256 instead of its text once the gateway knows it.
    apq: bool = True
    #: Seconds a registered APQ document is kept (in Redis, and at most that in each
    #: worker): clients register again after a miss, so this only bounds memory.
    apq_ttl: float = 24 * 3600.0

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
        api_key = _secret(
            environ,
            "KOMBO_API_KEY",
            "set it to your Kombo API key, or unset it to serve the embedded sandbox "
            "(development only)",
        )
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
        if (
            parsed.scheme == "http"
            and not _is_loopback(parsed.hostname)
            and not _flag(environ, "KOMBO_ALLOW_PLAIN_HTTP", False)
        ):
            raise ConfigError(
                f"KOMBO_BASE_URL={base_url!r} is plain HTTP to another machine: the Kombo key "
                "would travel in clear text. Use https, or set KOMBO_ALLOW_PLAIN_HTTP=true "
                "if the network between them is yours"
            )
        if _flag(environ, "GATEWAY_PERSISTED_ONLY", False) and not _optional(
            environ, "GATEWAY_PERSISTED_DOCUMENTS"
        ):
            raise ConfigError(
                "GATEWAY_PERSISTED_ONLY=true refuses every document not in "
                "GATEWAY_PERSISTED_DOCUMENTS, which is not set: set it to your persisted "
                "documents file, or unset GATEWAY_PERSISTED_ONLY"
            )
        defaults = cls()  # each default is stated once: on its field above
        changes: dict[str, Any] = {}
        for field, (variable, minimum) in NUMERIC_VARIABLES.items():
            default = getattr(defaults, field)
            value = _number(environ, variable, default, minimum=minimum)
            changes[field] = int(value) if isinstance(default, int) else value
        for field, variable in FLAG_VARIABLES.items():
            changes[field] = _flag(environ, variable, getattr(defaults, field))
        return dataclasses.replace(
            defaults,
            api_key=api_key,
            base_url=base_url.rstrip("/"),
            integration_id=_optional(environ, "KOMBO_INTEGRATION_ID"),
            tokens=_tokens(environ),
            tokens_file=_optional(environ, "GATEWAY_TOKENS_FILE"),
            trusted_proxies=_networks(environ, "GATEWAY_TRUSTED_PROXIES"),
            cursor_secret=_optional(environ, "GATEWAY_CURSOR_SECRET"),
            webhook_secret=_secret(
                environ,
                "KOMBO_WEBHOOK_SECRET",
                "set it to the webhook secret Kombo's dashboard shows, or unset it to "
                "turn POST /webhooks/kombo off",
            ),
            persisted_documents=_optional(environ, "GATEWAY_PERSISTED_DOCUMENTS"),
            redis_url=_redis_url(environ, "GATEWAY_REDIS_URL"),
            redis_prefix=_redis_prefix(environ, "GATEWAY_REDIS_PREFIX", defaults.redis_prefix),
            log_level=_choice(environ, "GATEWAY_LOG_LEVEL", defaults.log_level, _LOG_LEVELS),
            **changes,
        )


#: Numeric settings: field -> (variable, smallest value allowed). An int field reads as int.
NUMERIC_VARIABLES: Mapping[str, tuple[str, float]] = {
    "cache_ttl": ("GATEWAY_CACHE_TTL", 0.0),
    "cache_stale": ("GATEWAY_CACHE_STALE", 0.0),
    "cache_max_entries": ("GATEWAY_CACHE_MAX_ENTRIES", 1),
    "cache_max_bytes": ("GATEWAY_CACHE_MAX_BYTES", 1024),
    "response_cache_bytes": ("GATEWAY_RESPONSE_CACHE_BYTES", 0),
    "connect_timeout": ("KOMBO_CONNECT_TIMEOUT", 0.001),
    "read_timeout": ("KOMBO_READ_TIMEOUT", 0.001),
    "max_connections": ("KOMBO_MAX_CONNECTIONS", 1),
    "max_concurrency": ("KOMBO_MAX_CONCURRENCY", 1),
    "request_timeout": ("GATEWAY_REQUEST_TIMEOUT", 0.1),
    "keepalive_timeout": ("GATEWAY_KEEPALIVE_TIMEOUT", 1.0),
    "retry_attempts": ("GATEWAY_RETRY_ATTEMPTS", 1),
    "rate_limit": ("GATEWAY_RATE_LIMIT", 0.0),
    "rate_burst": ("GATEWAY_RATE_BURST", 1),
    "auth_failure_limit": ("GATEWAY_AUTH_FAILURE_LIMIT", 0),
    "max_body_bytes": ("GATEWAY_MAX_BODY_BYTES", 1024),
    "max_depth": ("GATEWAY_MAX_DEPTH", 2),
    "max_aliases": ("GATEWAY_MAX_ALIASES", 1),
    "max_tokens": ("GATEWAY_MAX_TOKENS", 100),
    "max_document_bytes": ("GATEWAY_MAX_DOCUMENT_BYTES", 1024),
    "max_batch": ("GATEWAY_MAX_BATCH", 1),
    "max_ids": ("GATEWAY_MAX_IDS", 1),
    "isolation_calls": ("GATEWAY_MAX_ISOLATION_CALLS", 1),
    "max_fields": ("GATEWAY_MAX_FIELDS", 1),
    "max_upstream_calls": ("GATEWAY_MAX_UPSTREAM_CALLS", 1),
    "max_response_bytes": ("KOMBO_MAX_RESPONSE_BYTES", 64 * 1024),
    "header_timeout": ("GATEWAY_HEADER_TIMEOUT", 0.1),
    "body_timeout": ("GATEWAY_BODY_TIMEOUT", 0.1),
    "redis_timeout": ("GATEWAY_REDIS_TIMEOUT", 0.001),
    "webhook_rate_limit": ("GATEWAY_WEBHOOK_RATE_LIMIT", 0.0),
    "apq_ttl": ("GATEWAY_APQ_TTL", 1.0),
}
#: Boolean settings: field -> variable.
FLAG_VARIABLES: Mapping[str, str] = {
    "key_passthrough": "GATEWAY_KOMBO_KEY_PASSTHROUGH",
    "allow_sandbox": "GATEWAY_ALLOW_SANDBOX",
    "introspection": "GATEWAY_INTROSPECTION",
    "graphiql": "GATEWAY_GRAPHIQL",
    "tracing": "GATEWAY_TRACING",
    "gc_tuning": "GATEWAY_GC_TUNING",
    "persisted_only": "GATEWAY_PERSISTED_ONLY",
    "apq": "GATEWAY_APQ",
}
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


_REDIS_SCHEMES = ("redis", "rediss", "unix")
# Braces would open a Redis Cluster hash tag of their own; the rest keeps keys readable.
_REDIS_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _redis_url(environ: Mapping[str, str], name: str) -> str | None:
    """A Redis URL; the error never repeats the URL (it may hold a password)."""
    url = _optional(environ, name)
    if url is None:
        return None
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in _REDIS_SCHEMES:
        raise ConfigError(
            f"{name} must be a redis://, rediss:// or unix:// URL "
            f"(e.g. redis://:password@redis:6379/0), not a {scheme or 'schemeless'} one"
        )
    return url


def _redis_prefix(environ: Mapping[str, str], name: str, default: str) -> str:
    prefix = _optional(environ, name) or default
    if not _REDIS_PREFIX.fullmatch(prefix):
        raise ConfigError(
            f"{name}={prefix!r} must be 1-64 letters, digits or the characters _ . : -"
        )
    return prefix


def _optional(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _secret(environ: Mapping[str, str], name: str, remedy: str) -> str | None:
    """A secret: None when unset, but an error when set and empty (`remedy` says what
    to do instead). The error never repeats a value.

    Set but empty is what a deployment whose secret store failed to deliver looks like
    (`KOMBO_API_KEY=` from an empty variable); reading it as unset would quietly serve
    the embedded sandbox's invented jobs (or, for the webhook secret, switch webhooks off).
    """
    if name not in environ:
        return None
    value = environ[name].strip()
    if not value:
        raise ConfigError(f"{name} is set but empty (a secret that did not arrive?): {remedy}")
    return value


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


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _optional(environ, name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true or false)")


def _choice(environ: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = (_optional(environ, name) or default).upper()
    if raw not in allowed:
        raise ConfigError(f"{name}={raw!r} is not one of {', '.join(allowed)}")
    return raw


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _networks(
    environ: Mapping[str, str], name: str
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """A comma-separated list of addresses or networks (`10.0.0.0/8, 127.0.0.1`)."""
    raw = _optional(environ, name)
    if raw is None:
        return ()
    networks = []
    for item in raw.split(","):
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ConfigError(
                f"{name}: {item.strip()!r} is not an IP address or network (e.g. 10.0.0.0/8)"
            ) from None
    return tuple(networks)


def _tokens(environ: Mapping[str, str]) -> tuple[TokenSpec, ...]:
    """Tokens from GATEWAY_TOKENS (JSON) or the JSON file GATEWAY_TOKENS_FILE names."""
    inline, path = _optional(environ, "GATEWAY_TOKENS"), _optional(environ, "GATEWAY_TOKENS_FILE")
    if inline and path:
        raise ConfigError("set GATEWAY_TOKENS or GATEWAY_TOKENS_FILE, not both")
    if path:
        return read_tokens_file(path)
    if inline is None:
        return ()
    return parse_tokens(inline, "GATEWAY_TOKENS")


def read_tokens_file(path: str) -> tuple[TokenSpec, ...]:
    """The tokens the file at `path` lists (what GATEWAY_TOKENS_FILE names).

    Raises:
        ConfigError: the file cannot be read, or is not a valid list of tokens.
    """
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"GATEWAY_TOKENS_FILE={path!r} cannot be read: {reason}") from None
    return parse_tokens(text, "GATEWAY_TOKENS_FILE")


def parse_tokens(text: str, name: str) -> tuple[TokenSpec, ...]:
    """Tokens from JSON `text`, which the setting `name` holds or names.

    Format: `[{"name": "web", "sha256": "<64 hex>", "integrations": ["personio:..."] or "*",
    "default_integration": "personio:..."}]`; `kombo-gateway token` prints such entries.

    Raises:
        ConfigError: not a non-empty list of valid, distinct token entries.
    """
    # Configured but empty (an empty file, `[]`): refused, never an open gateway. Someone
    # meant to require tokens; serving everyone instead would be the worst reading.
    if not text.strip():
        raise ConfigError(f"{name} is empty: list at least one token (or unset it)")
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name} is not valid JSON ({exc.msg} at {exc.pos})") from None
    if not isinstance(entries, list):
        raise ConfigError(f"{name} must be a JSON list of token entries")
    if not entries:
        raise ConfigError(f"{name} lists no tokens: list at least one token (or unset it)")
    specs = tuple(_token(name, index, entry) for index, entry in enumerate(entries))
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"{name}: token names must be unique")
    digests = [spec.sha256 for spec in specs]
    if len(set(digests)) != len(digests):
        raise ConfigError(f"{name}: two entries have the same sha256 (one token, two names)")
    return specs


def _token(variable: str, index: int, entry: object) -> TokenSpec:
    where = f"{variable}[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be an object")
    name, digest = entry.get("name"), entry.get("sha256")
    integrations, default = entry.get("integrations", "*"), entry.get("default_integration")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name must be a non-empty string")
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ConfigError(f"{where}.sha256 must be 64 lowercase hex digits (kombo-gateway token)")
    if integrations == "*":
        allowed = None
    elif isinstance(integrations, list) and all(isinstance(i, str) for i in integrations):
        allowed = frozenset(integrations)
    else:
        raise ConfigError(f'{where}.integrations must be "*" or a list of integration IDs')
    if default is not None and (
        not isinstance(default, str) or (allowed is not None and default not in allowed)
    ):
        raise ConfigError(f"{where}.default_integration must be one of its integrations")
    return TokenSpec(name, digest, allowed, default)
