"""Process-lifetime parts of the gateway: the pooled HTTP client, the Kombo client, the
cache, access policy, rate limiter, metrics and readiness probe.

Usage::

    gateway = GatewayState(settings)      # once per process (per worker)
    ...
    await gateway.aclose()                # in the app's lifespan
"""

from __future__ import annotations

import http.cookiejar
import logging
import time

import httpx

from gateway.access import AccessPolicy
from gateway.cache import UpstreamCache, credential_fingerprint
from gateway.config import SANDBOX_API_KEY, Settings
from gateway.errors import Code, upstream_code
from gateway.kombo import KomboAPIError, KomboClient, KomboError
from gateway.limits import RateLimiter
from gateway.metrics import GatewayMetrics
from gateway.observability import count, upstream_hooks, upstream_span
from gateway.retry import RetryPolicy
from gateway.transport import AiohttpTransport

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
        transport=AiohttpTransport(limits),
        event_hooks=upstream_hooks(metrics),
    )
    # One client serves every caller and credential: a cookie Kombo (or a load balancer
    # in front of it) set for one request must not ride along on another's.
    client.cookies.jar.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return client


class GatewayState:
    """Process-lifetime parts, opened and closed by the app's lifespan."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        if settings.api_key is None:
            raise ValueError("create_app needs a Kombo API key (the CLI provides the sandbox's)")
        self.settings = settings
        self.metrics = GatewayMetrics()
        self._own_http = http is None
        self.http = http or create_http_client(settings, self.metrics)
        self.kombo = KomboClient(
            self.http,
            base_url=settings.base_url,
            api_key=settings.api_key,
            retry=RetryPolicy(
                attempts=settings.retry_attempts, attempt_timeout=settings.read_timeout
            ),
            max_concurrency=settings.max_concurrency,
            request_timeout=settings.request_timeout,
            on_retry=self._on_retry,
            span=upstream_span,
        )
        self.fingerprint = credential_fingerprint(settings.api_key)
        self.access = AccessPolicy(settings.tokens, key_passthrough=settings.key_passthrough)
        self.rate_limiter = RateLimiter(settings.rate_limit, settings.rate_burst)
        self.ready = ReadinessProbe(self.kombo)
        self.cache = UpstreamCache(
            settings.cache_ttl,
            max_entries=settings.cache_max_entries,
            max_bytes=settings.cache_max_bytes,
            metrics=self.metrics,
        )

    def _on_retry(self, error: BaseException) -> None:
        self.metrics.on_retry(error)
        count("retries")

    async def aclose(self) -> None:
        if self._own_http:
            await self.http.aclose()


def warn_if_open(settings: Settings, access: AccessPolicy) -> None:
    """Say loudly when a real Kombo key is reachable by anyone who reaches the gateway."""
    if access.open and not settings.key_passthrough and settings.api_key != SANDBOX_API_KEY:
        logger.warning(
            "NO GATEWAY TOKENS CONFIGURED: anyone who can reach this gateway can read every "
            "integration of the configured Kombo key. Set GATEWAY_TOKENS (see README)."
        )


class ReadinessProbe:
    """Whether the gateway can serve: Kombo accepts its key. Answers are reused for a few
    seconds, so a probe every second does not become a call every second."""

    TTL = 10.0

    def __init__(self, kombo: KomboClient) -> None:
        self._kombo = kombo
        self._checked = -self.TTL
        self._problem: str | None = None

    async def problem(self) -> str | None:
        now = time.monotonic()
        if now - self._checked >= self.TTL:
            self._problem = await self._check()
            self._checked = now
        return self._problem

    async def _check(self) -> str | None:
        try:
            await self._kombo.check_api_key()
        except KomboAPIError as exc:
            if upstream_code(exc) is Code.UNAUTHENTICATED:
                return "Kombo rejects KOMBO_API_KEY"
            return f"Kombo answered HTTP {exc.status}"
        except KomboError:
            return "Kombo is unreachable at KOMBO_BASE_URL"
        return None
