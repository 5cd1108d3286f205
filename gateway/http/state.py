"""Process-lifetime parts of the gateway: the pooled HTTP client, the Kombo client, the
caches (upstream answers, and whole GraphQL answers), access policy, rate limiter,
metrics and readiness probe, the store of APQ documents, and the link to Redis that
shares the caches, in-flight calls, rate limits, APQ documents and Kombo's back-off
when configured.

Usage::

    gateway = GatewayState(settings)      # once per process (per worker)
    ...
    await gateway.aclose()                # in the app's lifespan
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import logging
import math
import time

import httpx

from gateway.config import SANDBOX_API_KEY, Settings
from gateway.errors import Code
from gateway.http.access import AccessPolicy
from gateway.http.apq_store import ApqStore
from gateway.http.limits import RateLimiter
from gateway.http.response_cache import ResponseCache
from gateway.observability.metrics import GatewayMetrics
from gateway.observability.request_stats import count
from gateway.observability.tracing import upstream_span
from gateway.schema.pagination import cursor_key
from gateway.sharing.backoff import SharedBackoff
from gateway.sharing.generations import Generations
from gateway.sharing.in_flight import SharedFlights
from gateway.sharing.keys import KeySpace
from gateway.sharing.link import RedisLink
from gateway.sharing.rate_limit import SharedRateLimiter
from gateway.sharing.shared_cache import SharedCache
from gateway.upstream.cache import UpstreamCache, credential_fingerprint
from gateway.upstream.failures import upstream_code
from gateway.upstream.instrumentation import upstream_hooks
from gateway.upstream.kombo import KomboAPIError, KomboCertificateError, KomboClient, KomboError
from gateway.upstream.retry import RetryPolicy
from gateway.upstream.shared_pages import SharedPages
from gateway.upstream.transport import AiohttpTransport

logger = logging.getLogger("gateway")


def create_http_client(settings: Settings, metrics: GatewayMetrics) -> httpx.AsyncClient:
    """The process's pooled client for Kombo, with explicit timeouts.

    httpx's API over aiohttp's pool and parser (`transport.py` says why and what it cost).
    It keeps no cookies.
    """
    limits = httpx.Limits(max_connections=settings.max_connections)
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(
            settings.read_timeout, connect=settings.connect_timeout, pool=settings.read_timeout
        ),
        transport=AiohttpTransport(limits, max_body_bytes=settings.max_response_bytes),
        event_hooks=upstream_hooks(metrics),
    )
    # One client serves every caller and credential: a cookie Kombo (or a load balancer
    # in front of it) set for one request must not ride along on another's.
    client.cookies.jar.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return client


def create_probe_client(settings: Settings, metrics: GatewayMetrics) -> httpx.AsyncClient:
    """`/readyz`'s own client for Kombo: one connection, apart from the query pool.

    The probe is unauthenticated: however often it is called, it must never hold a
    connection a GraphQL request is waiting for. Timeouts, TLS, transport and metrics
    as `create_http_client`'s; it keeps no cookies either.
    """
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(
            settings.read_timeout, connect=settings.connect_timeout, pool=settings.read_timeout
        ),
        transport=AiohttpTransport(
            httpx.Limits(max_connections=1), max_body_bytes=settings.max_response_bytes
        ),
        event_hooks=upstream_hooks(metrics),
    )
    client.cookies.jar.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return client


class GatewayState:
    """Process-lifetime parts, opened and closed by the app's lifespan.

    `http`, when given, carries every call to Kombo, the readiness probe's included (a
    test's transport sees them all), and stays the caller's to close.
    """

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        server_key = settings.api_key
        if server_key is None:
            if not settings.key_passthrough:
                raise ValueError(
                    "create_app needs a Kombo API key, or pass-through of callers' keys "
                    "(the CLI provides the sandbox's)"
                )
            # Pass-through with no key of our own: every GraphQL request brings its
            # caller's key (`AccessPolicy` admits none without), so `self.kombo`'s key,
            # the fingerprint and cursor key derived from it, are never used for one.
            server_key = ""
        self.settings = settings
        self.metrics = GatewayMetrics()
        self._own_http = http is None
        self.http = http or create_http_client(settings, self.metrics)
        self._probe_http = http or create_probe_client(settings, self.metrics)
        #: Redis, when configured: what every worker and replica shares goes through it.
        self.redis = (
            RedisLink.from_url(
                settings.redis_url,
                timeout=settings.redis_timeout,
                metrics=self.metrics,
            )
            if settings.redis_url
            else None
        )
        keys = KeySpace(settings.redis_prefix)
        self.kombo = KomboClient.from_settings(
            self.http,
            settings,
            api_key=server_key,
            on_retry=self._on_retry,
            span=upstream_span,
            backoff=SharedBackoff(self.redis, keys),
        )
        self.fingerprint = credential_fingerprint(server_key)
        self.cursor_key = self.cursor_key_for(server_key)
        self.access = AccessPolicy(settings.tokens, key_passthrough=settings.key_passthrough)
        self.rate_limiter = SharedRateLimiter(
            self.redis,
            keys,
            rate=settings.rate_limit,
            burst=settings.rate_burst,
            local=RateLimiter(settings.rate_limit, settings.rate_burst),
        )
        # Charged per failed authentication only, so a client with good credentials
        # never pays it; a full bucket is a minute's allowance.
        failures_rate, failures_burst = (
            settings.auth_failure_limit / 60,
            max(settings.auth_failure_limit, 1),
        )
        self.auth_failures = SharedRateLimiter(
            self.redis,
            KeySpace(f"{settings.redis_prefix}:auth"),
            rate=failures_rate,
            burst=failures_burst,
            local=RateLimiter(failures_rate, failures_burst),
        )
        self.ready = ReadinessProbe(
            KomboClient(
                self._probe_http,
                base_url=settings.base_url,
                api_key=server_key,
                retry=RetryPolicy(attempts=1, attempt_timeout=settings.read_timeout),
                max_concurrency=1,
                request_timeout=settings.request_timeout,
            ),
            checks_key=settings.api_key is not None,
        )
        #: Each integration's data generation: Kombo's webhook raises it, every cache
        #: key holds it (`gateway.sharing.generations`).
        self.generations = Generations(self.redis, keys)
        # Level 2 of both caches: upstream answers, and whole GraphQL answers.
        shared = (
            SharedCache(self.redis, ttl=settings.cache_ttl, metrics=self.metrics)
            if self.redis is not None
            else None
        )
        self.cache = UpstreamCache.from_settings(
            settings,
            metrics=self.metrics,
            shared=SharedPages(
                shared,
                SharedFlights(self.redis, keys),
                keys,
                self.generations,
            )
            if shared is not None and self.redis is not None
            else None,
            generations=self.generations,
        )
        self.responses = ResponseCache.from_settings(
            settings,
            metrics=self.metrics,
            shared=shared,
            keys=keys,
        )
        #: Documents registered by automatic persisted queries (`GATEWAY_APQ`).
        self.apq = ApqStore(self.redis, keys, ttl=settings.apq_ttl)

    def cursor_key_for(self, kombo_key: str) -> bytes:
        """The key of cursors issued for calls with `kombo_key`: derived from it (every
        replica with the same key agrees, nothing to configure) and from
        `GATEWAY_CURSOR_SECRET` when set (rotating that secret voids every cursor)."""
        return cursor_key(f"{self.settings.cursor_secret or ''}\0{kombo_key}")

    def _on_retry(self, error: BaseException) -> None:
        self.metrics.on_retry(error)
        count("retries")

    async def aclose(self) -> None:
        await self.generations.aclose()
        if self.cache.shared is not None:
            await self.cache.shared.flights.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        if self._own_http:
            await self.http.aclose()
            await self._probe_http.aclose()


def warn_if_open(settings: Settings, access: AccessPolicy) -> None:
    """Say loudly when a real Kombo key is reachable by anyone who reaches the gateway."""
    if access.open and not settings.key_passthrough and settings.api_key != SANDBOX_API_KEY:
        logger.warning(
            "NO GATEWAY TOKENS CONFIGURED: anyone who can reach this gateway can read every "
            "integration of the configured Kombo key. Set GATEWAY_TOKENS (see docs/security.md)."
        )


class ReadinessProbe:
    """Whether the gateway can serve: Kombo accepts its key.

    `/readyz` is unauthenticated, so anyone may call it, as often as they like; it must
    not become a lever on Kombo (calls made with our key) or on our connection pool.
    So an answer is reused for `TTL` seconds, at most one check is in flight per
    process, and that check uses a client of its own (`create_probe_client`). The
    caller that starts a check waits for it; callers arriving meanwhile get the previous
    answer at once (before the first answer exists, they wait for the same check).

    Pass-through without a `KOMBO_API_KEY` (`checks_key=False`): there is no key of
    ours to check, and Kombo checks each caller's key on their own requests. The probe
    then checks that Kombo answers at all: the same call, with no usable key, where
    Kombo's 401 means it is up; no answer, or any other error status, means not ready.
    """

    TTL = 10.0

    def __init__(self, kombo: KomboClient, *, checks_key: bool = True) -> None:
        self._kombo = kombo
        self._checks_key = checks_key
        #: When the latest check started: checks start at most once per `TTL`.
        self._checked = -math.inf
        self._answered = False
        self._problem: str | None = "Kombo has not been checked yet"
        self._check: asyncio.Task[None] | None = None

    async def problem(self) -> str | None:
        """Why the gateway cannot serve, or None when it can."""
        check = self._check
        if check is None and time.monotonic() - self._checked >= self.TTL:
            self._checked = time.monotonic()
            check = self._check = asyncio.create_task(self._refresh())
        elif check is None or self._answered:
            return self._problem
        # Shielded: a caller that goes away must not cancel the check the others share.
        await asyncio.shield(check)
        return self._problem

    async def _refresh(self) -> None:
        try:
            self._problem = await self._ask_kombo()
            self._answered = True
        finally:
            self._check = None

    async def _ask_kombo(self) -> str | None:
        try:
            await self._kombo.check_api_key()
        except KomboAPIError as exc:
            if upstream_code(exc) is Code.UNAUTHENTICATED:
                return "Kombo rejects KOMBO_API_KEY" if self._checks_key else None
            return f"Kombo answered HTTP {exc.status}"
        except KomboCertificateError:
            return "Kombo's TLS certificate at KOMBO_BASE_URL was not accepted"
        except KomboError:
            return "Kombo is unreachable at KOMBO_BASE_URL"
        return None
