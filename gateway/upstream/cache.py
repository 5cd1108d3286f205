"""Upstream TTL cache with single-flight, and the cached view of Kombo that resolvers use.

Usage (`client` is the process's `KomboClient`; here over the sandbox, in memory)::

    >>> import asyncio, httpx
    >>> from gateway.config import SANDBOX_API_KEY, SANDBOX_INTEGRATION_IDS, Settings
    >>> from gateway.sandbox.app import create_sandbox_app
    >>> from gateway.upstream.kombo import JobQuery, KomboClient
    >>> http = httpx.AsyncClient(transport=httpx.ASGITransport(create_sandbox_app()))
    >>> settings = Settings(base_url="http://sandbox/v1")
    >>> client = KomboClient.from_settings(http, settings, api_key=SANDBOX_API_KEY)
    >>> integration = SANDBOX_INTEGRATION_IDS[0]

    >>> cache = UpstreamCache.from_settings(settings)  # one per process (TTL 30 s)
    >>> fingerprint = credential_fingerprint(SANDBOX_API_KEY)
    >>> async def request():  # what one GraphQL request does
    ...     kombo = CachedKombo(client, cache, fingerprint=fingerprint, refresh=False)
    ...     page = await kombo.list_jobs(integration, JobQuery(statuses=("OPEN",)), page_size=2)
    ...     return page, kombo.cached_job(integration, page["results"][0]["id"])
    >>> page, job = asyncio.run(request())
    >>> len(page["results"]), job is page["results"][0]  # the job was primed by the page
    (2, True)
    >>> asyncio.run(request())[0] is page  # a later request: the page kept, no call
    True
    >>> asyncio.run(http.aclose())

What is cached: whole Kombo answers (keyed by credential fingerprint, integration,
its epoch, path and normalized parameters) and, primed from every answer, single jobs
(keyed by fingerprint, integration, epoch and Kombo ID), so a job seen in a page answers
later by-ID look-ups. The epoch (`gateway.sharing.generations`) rises when Kombo's
data-changed webhook says the integration's data changed: every entry cached before is
unreachable from then on, and `drop_integration` frees them at once. Entries hold
plain parsed payloads, never futures; errors are never stored. Concurrent identical
calls share one in-flight request (of the same epoch: a call after a webhook joins
none started before it). `refresh=True` (the caller
sent `Cache-Control: no-cache`) skips every read and stores what it fetched.
`ttl=0` turns caching and sharing off: every call reaches Kombo, and a page is read
only as far as its caller needs (`keys`).

Freshness: every entry remembers when it was fetched, and `CachedKombo` the oldest entry
one request used (`oldest_fetch`), so an answer built from them is kept no longer than
they are (`fresh_for`: the response cache, and `Cache-Control: max-age`). A value
loaded for the request counts as fetched when its load started, never later than it was
stored. `UpstreamCache.generation` is this process's epoch of the integration
(`Generations.epoch`), which the response cache's keys hold: Kombo's webhook raises it.

Size: an entry costs its upstream body bytes, and at least `max_bytes / max_entries`,
so both bounds hold. Parsed objects take several times their JSON size in memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache

from gateway.config import Settings
from gateway.observability.metrics import GatewayMetrics
from gateway.observability.request_stats import count
from gateway.sharing.generations import Generations
from gateway.upstream.budget import CallBudget
from gateway.upstream.kombo import JOBS_PATH, JobPageFetcher, JobQuery, JobsPage, record_id
from gateway.upstream.shared_pages import SharedPages

Job = dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Entry:
    value: Any
    size: int
    #: When it was fetched (the cache's timer): answers built from it are this old.
    fetched: float


class UpstreamCache:
    """Process-wide TTL cache of upstream payloads, plus the calls in flight."""

    def __init__(
        self,
        ttl: float,
        *,
        max_entries: int,
        max_bytes: int,
        metrics: GatewayMetrics | None = None,
        timer: Callable[[], float] = time.monotonic,
        shared: SharedPages | None = None,
        generations: Generations | None = None,
        stale: float = 0.0,
    ) -> None:
        self.enabled = ttl > 0
        #: Seconds an entry is fresh, and the clock its age is read on.
        self.ttl = ttl
        #: Seconds past `ttl` a page may still be served while one refresh runs
        #: (`GATEWAY_CACHE_STALE`; 0: never).
        self.stale = stale
        self.timer = timer
        #: The level-2 cache every worker and replica shares (Redis), read after a miss
        #: of this one; None: this process shares nothing.
        self.shared = shared if self.enabled else None
        #: Each integration's epoch, part of every key (level 2 reads its own through
        #: `shared.generations`, the same object when both are given).
        self.generations = generations or (shared.generations if shared else Generations())
        self.generations.on_raise(self.drop_integration)
        self._metrics = metrics or GatewayMetrics()
        # Rounded up, so that max_entries entries of the floor size never exceed max_bytes.
        floor = max(1, -(-max_bytes // max(1, max_entries)))
        self._entries: TTLCache[Hashable, _Entry] = TTLCache(
            maxsize=max_bytes,
            ttl=max(ttl + stale, 1e-9),
            timer=timer,
            getsizeof=lambda entry: max(entry.size, floor),
        )
        self._in_flight: dict[Hashable, asyncio.Task[tuple[Any, int]]] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        metrics: GatewayMetrics | None = None,
        shared: SharedPages | None = None,
        generations: Generations | None = None,
    ) -> UpstreamCache:
        """The process's cache as `GATEWAY_CACHE_*` configure it."""
        return cls(
            settings.cache_ttl,
            max_entries=settings.cache_max_entries,
            max_bytes=settings.cache_max_bytes,
            metrics=metrics,
            shared=shared,
            stale=settings.cache_stale,
            generations=generations,
        )

    @classmethod
    def disabled(cls, *, metrics: GatewayMetrics | None = None) -> UpstreamCache:
        """No cache (`GATEWAY_CACHE_TTL=0`): every call reaches Kombo, none is shared."""
        return cls(0, max_entries=1, max_bytes=1, metrics=metrics)

    def get(self, key: Hashable, kind: str) -> Any | None:
        """A cached value (counted as a hit or miss of `kind`), or None."""
        entry = self.lookup(key, kind)
        return None if entry is None else entry.value

    def lookup(self, key: Hashable, kind: str) -> _Entry | None:
        """`get`, with when the value was fetched."""
        entry = self._fresh(key)
        self._count(kind, "miss" if entry is None else "hit")
        return entry

    def _fresh(self, key: Hashable) -> _Entry | None:
        """The entry at `key` within its TTL (one past it is kept only to be served stale
        by `fetch`), uncounted."""
        if not self.enabled:
            return None
        entry = self._entries.get(key)
        if entry is not None and self.timer() - entry.fetched > self.ttl:
            return None
        return entry

    def _count(self, kind: str, result: str) -> None:
        """One read of `kind`: a hit, a miss, or stale (served: counted as a hit too)."""
        self._metrics.cache_lookups.labels(kind=kind, result=result).inc()
        count("cache_misses" if result == "miss" else "cache_hits")

    def generation(self, integration_id: str) -> int:
        """This process's epoch of the integration, in every response-cache slot
        (`gateway.http.response_key`): Kombo's data-changed webhook raises it, making
        every answer built before unreachable. Read it before the answer is built."""
        return self.generations.epoch(integration_id)

    async def shared_generation(self, integration_id: str) -> int | None:
        """The integration's generation in Redis, for shared (level-2) response keys;
        None without Redis or when it cannot be read (nothing is then shared)."""
        if self.shared is None:
            return None
        return await self.generations.shared(integration_id)

    def put(self, key: Hashable, value: Any, size: int) -> None:
        if not self.enabled:
            return
        try:
            self._entries[key] = _Entry(value, size, self.timer())
        except ValueError:  # larger than the whole cache: not worth keeping
            self._entries.pop(key, None)

    async def fetch(
        self,
        key: Hashable,
        load: Callable[[], Awaitable[tuple[Any, int]]],
        *,
        refresh: bool = False,
        kind: str = "page",
        fetched: Callable[[float], None] | None = None,
    ) -> Any:
        """The value for `key`: cached, joined from an identical call in flight, or loaded.

        `load` returns (value, size in bytes). Its errors reach every caller waiting on
        it and are not cached. `fetched` is told when the value was fetched: a cached
        one's time, else this call's start (no later than the value is stored).
        """
        if not self.enabled:
            value, _ = await load()
            return value
        started = self.timer()
        cached = None
        if not refresh:
            # Each read counted once: fresh (hit), stale (served while refreshed), or miss.
            cached = self._fresh(key)
            if cached is not None:
                self._count(kind, "hit")
            else:
                cached = self._serve_stale(key, load, kind)
                if cached is None:
                    self._count(kind, "miss")
        if fetched is not None:
            fetched(started if cached is None else cached.fetched)
        if cached is not None:
            return cached.value
        if not refresh:
            in_flight = self._in_flight.get(key)
            if in_flight is not None:
                self._metrics.upstream_coalesced.inc()
                value, _ = await asyncio.shield(in_flight)
                return value
        task = asyncio.ensure_future(load())
        task.add_done_callback(lambda done: self._settle(key, done))
        # The newest load of a key is the one later callers join and the one whose
        # result is kept: an older load finishing after a refresh must not overwrite it.
        self._in_flight[key] = task
        # Shielded: one caller giving up (a client hanging up) must not cancel the call
        # the other callers wait on; the task still fills the cache when it ends.
        value, _ = await asyncio.shield(task)
        return value

    def _serve_stale(
        self, key: Hashable, load: Callable[[], Awaitable[tuple[Any, int]]], kind: str
    ) -> _Entry | None:
        """An entry past its TTL but within `stale` of it, served at once while one load
        refreshes it in the background (joined by every later caller, never started
        twice); None when there is none. An entry of an integration whose epoch rose
        (Kombo's webhook) is unreachable here as everywhere: its key is another."""
        entry = self._entries.get(key) if self.stale > 0 else None
        if entry is None:
            return None
        if key not in self._in_flight:
            task = asyncio.ensure_future(load())
            task.add_done_callback(lambda done: self._settle(key, done))
            self._in_flight[key] = task
        self._count(kind, "stale")
        return entry

    def drop_integration(self, integration_id: str) -> None:
        """Free every entry of `integration_id` now: its epoch rose, so none of them
        can be read again anyway (one pass over the entries; only on a webhook)."""
        stale = [key for key in self._entries if _integration_of(key) == integration_id]
        for key in stale:
            self._entries.pop(key, None)

    def _settle(self, key: Hashable, task: asyncio.Task[tuple[Any, int]]) -> None:
        if task.cancelled():
            newest = False
        else:
            # Reading the exception also marks it retrieved when no caller waited.
            newest = task.exception() is None and self._in_flight.get(key) is task
        if self._in_flight.get(key) is task:
            del self._in_flight[key]
        if newest:
            value, size = task.result()
            self.put(key, value, size)


def _integration_of(key: Hashable) -> object:
    """The integration of a `CachedKombo` key (fingerprint, integration, epoch, ...)."""
    return key[1] if isinstance(key, tuple) and len(key) > 1 else None


def credential_fingerprint(api_key: str) -> str:
    """A digest naming a credential in cache keys, so no entry is shared across keys."""
    return hashlib.sha256(b"kombo-gateway cache\0" + api_key.encode()).hexdigest()[:32]


class CachedKombo:
    """Kombo as one GraphQL request sees it: through the process's cache.

    It has `KomboClient.list_jobs`'s signature, so pagination and loaders need not
    know whether a cache sits below them.
    """

    def __init__(
        self,
        client: JobPageFetcher,
        cache: UpstreamCache,
        *,
        fingerprint: str,
        refresh: bool = False,
        deadline: float | None = None,
        budget: CallBudget | None = None,
    ) -> None:
        self._client = client
        self._cache = cache
        self._fingerprint = fingerprint
        self.refresh = refresh
        #: When the request stops waiting for Kombo (`time.monotonic()`), retries included.
        self.deadline = deadline
        #: The request's Kombo calls (None: unbounded); cache hits and joined calls are free.
        self._spend = budget.spend if budget is not None else None
        #: When the oldest cached value this request used was fetched (the cache's timer);
        #: None while it used none.
        self.oldest_fetch: float | None = None

    def fresh_for(self) -> float:
        """Seconds the cached values this request used stay in the cache: the TTL less
        the age of the oldest (the whole TTL when it used none; 0 with the cache off).
        An answer built from them may be reused that long, and no longer."""
        cache = self._cache
        if not cache.enabled:
            return 0.0
        if self.oldest_fetch is None:
            return cache.ttl
        return max(0.0, cache.ttl - (cache.timer() - self.oldest_fetch))

    def _used(self, fetched: float) -> None:
        if self.oldest_fetch is None or fetched < self.oldest_fetch:
            self.oldest_fetch = fetched

    async def list_jobs(
        self,
        integration_id: str,
        query: JobQuery,
        *,
        page_size: int | None = None,
        cursor: str | None = None,
        keys: frozenset[str] | None = None,
    ) -> JobsPage:
        """A page of jobs. `keys` (the job keys the caller reads) prunes each job only
        when caching is off: a page that is kept, or shared with concurrent callers, is
        read whole, since its other readers may want any key."""
        params = query.page_params(page_size, cursor)
        if not self._cache.enabled:
            return await self._client.get_jobs_page(
                integration_id,
                params,
                deadline=self.deadline,
                keys=keys,
                before_attempt=self._spend,
            )
        epoch = await self._cache.generations.current(integration_id)
        key = (self._fingerprint, integration_id, epoch, JOBS_PATH, tuple(sorted(params.items())))

        async def fetch() -> JobsPage:
            return await self._client.get_jobs_page(
                integration_id, params, deadline=self.deadline, before_attempt=self._spend
            )

        async def load() -> tuple[JobsPage, int]:
            shared = self._cache.shared
            if shared is None:
                page = await fetch()
            else:
                page = await shared.page(
                    integration_id,
                    self._fingerprint,
                    params,
                    fetch,
                    refresh=self.refresh,
                    # Without a deadline of its own, a call waits for nobody else's.
                    deadline=self.deadline if self.deadline is not None else time.monotonic(),
                )
            self._prime(integration_id, epoch, page)
            return page, page["byte_size"]

        page: JobsPage = await self._cache.fetch(
            key, load, refresh=self.refresh, fetched=self._used
        )
        return page

    def cached_job(self, integration_id: str, kombo_id: str) -> dict[str, Any] | None:
        """A job this process saw recently for this credential and integration, if any."""
        if self.refresh:
            return None
        epoch = self._cache.generations.epoch(integration_id)
        entry = self._cache.lookup(self._job_key(integration_id, epoch, kombo_id), kind="job")
        if entry is None:
            return None
        self._used(entry.fetched)
        job: dict[str, Any] = entry.value
        return job

    async def shared_jobs(self, integration_id: str, kombo_ids: Sequence[str]) -> dict[str, Job]:
        """Jobs another worker or replica primed in the shared cache (none without Redis,
        or on `refresh`); each found is kept in this process's cache too."""
        shared = self._cache.shared
        if shared is None or self.refresh or not kombo_ids:
            return {}
        epoch = await self._cache.generations.current(integration_id)
        found = await shared.jobs(integration_id, self._fingerprint, kombo_ids)
        if found:
            self._used(self._cache.timer())
        for kombo_id, (job, size) in found.items():
            self._cache.put(self._job_key(integration_id, epoch, kombo_id), job, size)
        return {kombo_id: job for kombo_id, (job, _) in found.items()}

    def _prime(self, integration_id: str, epoch: int, page: JobsPage) -> None:
        results = page["results"]
        if not results:
            return
        size = page["byte_size"] // len(results)
        for job in results:
            kombo_id = record_id(job)
            if kombo_id is not None:
                self._cache.put(self._job_key(integration_id, epoch, kombo_id), job, size)

    def _job_key(self, integration_id: str, epoch: int, kombo_id: str) -> Hashable:
        return (self._fingerprint, integration_id, epoch, "job", kombo_id)
