"""The gateway's line to Redis: bounded waits, a circuit breaker, metrics, two log lines.

Usage::

    link = RedisLink.from_url(url, timeout=0.1, metrics=metrics)
    value = await link.run("cache_get", lambda redis: redis.get(key), fallback=None)
    await link.aclose()

Every Redis operation of the gateway goes through `run`, which is what makes Redis an
optimisation and never a dependency: an operation that fails or takes longer than
`timeout` returns `fallback` (the caller then does what it does without Redis), and
after `failures` failures in a row the breaker skips Redis entirely for `cooldown`
seconds, so a dead Redis costs requests nothing, not a timeout each. One log line when
Redis goes away and one when it answers again, never one per request; the state is in
`gateway_redis_up`, the failures in `gateway_redis_errors_total{operation}`.

The URL (it may carry a password) is never logged, nor is anything Redis answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from gateway.observability.metrics import GatewayMetrics
from gateway.sharing.breaker import BreakerState, CircuitBreaker

logger = logging.getLogger("gateway.redis")

T = TypeVar("T")

#: Failures in a row that open the breaker, and how long it then stays open.
BREAKER_FAILURES = 3
BREAKER_COOLDOWN = 5.0


class RedisLink:
    """One process's Redis client, guarded; shared by every request of the process."""

    def __init__(
        self,
        client: Redis,
        *,
        timeout: float,
        metrics: GatewayMetrics,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.client = client
        self.timeout = timeout
        self.metrics = metrics
        #: The client subscriptions use (`listen`), made on first use.
        self._listening: Redis | None = None
        self.breaker = breaker or CircuitBreaker(
            failures=BREAKER_FAILURES, cooldown=BREAKER_COOLDOWN
        )

    @classmethod
    def from_url(cls, url: str, *, timeout: float, metrics: GatewayMetrics) -> RedisLink:
        """A link over a pooled client. Its own timeouts are the link's, and it does not
        retry: the breaker decides what happens after a failure, not the client."""
        client = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=None,
            health_check_interval=0,
            client_name="kombo-gateway",
        )
        return cls(client, timeout=timeout, metrics=metrics)

    async def listen(
        self,
        channel: str,
        on_message: Callable[[str], None],
        *,
        poll: float,
        running: Callable[[], bool],
        on_subscribed: Callable[[], None] | None = None,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        """Hand each message of `channel` (as text) to `on_message` while `running()`;
        `on_subscribed` runs once subscribed, `on_tick` after every wait of at most `poll`
        seconds. Ends quietly on the first error (Redis away): the caller decides whether
        and when to listen again.

        On a connection of the link's listening client, whose pool is its own: the
        reconnect attempts of subscriptions held while Redis is away then never churn
        the pool requests draw from (they did: a stale connection came to the top of it,
        and the first call after Redis came back, the breaker's trial, failed on it).
        """
        if self._listening is None:
            pool = self.client.connection_pool
            own = type(pool)(connection_class=pool.connection_class, **pool.connection_kwargs)
            self._listening = Redis.from_pool(own)  # closing the client closes its pool
        pubsub: PubSub = self._listening.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
            if on_subscribed is not None:
                on_subscribed()
            while running():
                message = await pubsub.get_message(timeout=poll)
                if message is not None:
                    data = message.get("data")
                    on_message(data.decode() if isinstance(data, bytes) else str(data))
                if on_tick is not None:
                    on_tick()
        except Exception as exc:
            logger.debug("listener on %s stopped: %s", channel, type(exc).__name__)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    @property
    def up(self) -> bool:
        """Whether the last operations reached Redis (the breaker is closed)."""
        return self.breaker.state is BreakerState.CLOSED

    async def run(
        self,
        operation: str,
        call: Callable[[Redis], Awaitable[T]],
        *,
        fallback: T,
        timeout: float | None = None,
    ) -> T:
        """`call(client)`'s result, or `fallback` when Redis fails, is slow, or is being
        skipped, or when anything else goes wrong on the way: no exception of a Redis
        operation ever reaches a request. `operation` names it in the metrics.
        `timeout` (default: the link's) may only be shorter, e.g. what is left of a
        request's deadline."""
        if not self.breaker.allows():
            return fallback
        limit = self.timeout if timeout is None else min(timeout, self.timeout)
        try:
            async with asyncio.timeout(max(limit, 0.0)):
                result = await call(self.client)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(operation, exc)
            return fallback
        except Exception as exc:
            # Not a failure Redis is known to cause: a client-library race on a dying
            # connection (redis-py has had several), or a bug in `call`. Either way the
            # request goes on without Redis; the traceback is logged, since it is news.
            logger.error("Redis operation %s failed unexpectedly", operation, exc_info=exc)
            self._failed(operation, exc)
            return fallback
        if self.breaker.succeeded():
            self.metrics.redis_up.set(1)
            logger.warning("Redis answers again: sharing resumed")
        return result

    def _failed(self, operation: str, exc: Exception) -> None:
        """Count a failed operation; the failure that opens the breaker logs it once."""
        self.metrics.redis_errors.labels(operation=operation).inc()
        if self.breaker.failed():
            self.metrics.redis_up.set(0)
            logger.warning(
                "Redis is unavailable (%s): workers share nothing until it answers "
                "again, every request is served in-process meanwhile",
                type(exc).__name__,
            )

    async def aclose(self) -> None:
        if self._listening is not None:
            await self._listening.aclose()
        await self.client.aclose()
