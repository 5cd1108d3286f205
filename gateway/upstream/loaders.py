"""Per-request batching of by-ID job look-ups into `GET /ats/jobs?ids=...` calls.

Usage (one `Loaders` per GraphQL request, built in `get_context` over the request's
`CachedKombo`; here over the sandbox, in memory)::

    >>> import asyncio, httpx
    >>> from gateway.config import SANDBOX_API_KEY, SANDBOX_INTEGRATION_IDS, Settings
    >>> from gateway.observability.metrics import GatewayMetrics
    >>> from gateway.sandbox.app import create_sandbox_app
    >>> from gateway.upstream.cache import CachedKombo, UpstreamCache
    >>> from gateway.upstream.kombo import KomboClient
    >>> http = httpx.AsyncClient(transport=httpx.ASGITransport(create_sandbox_app()))
    >>> settings = Settings(base_url="http://sandbox/v1")
    >>> client = KomboClient.from_settings(http, settings, api_key=SANDBOX_API_KEY)
    >>> kombo = CachedKombo(client, UpstreamCache.disabled(), fingerprint="example")

    >>> loaders = Loaders(kombo, GatewayMetrics(), max_calls=settings.isolation_calls)
    >>> async def resolve(*kombo_ids):  # resolvers of one request, all in one tick
    ...     jobs = loaders.jobs(SANDBOX_INTEGRATION_IDS[0])
    ...     return await asyncio.gather(*(jobs.load(kombo_id) for kombo_id in kombo_ids))
    >>> known, unknown = asyncio.run(resolve("FnCRC36mz7mUeEYy1Y2F7A6i", "0" * 24))
    >>> known["name"], unknown  # a job's dict, or None if Kombo has no such job
    ('Lead HR Generalist - Payroll', None)
    >>> asyncio.run(http.aclose())

Every `load` of one event-loop tick lands in one batch: duplicates collapse, IDs go
out in calls of at most 250, and answers come back in request order. Kombo answers
404 to the whole call when any ID is unknown and does not say which; `fetch_by_ids`
then isolates the unknown IDs by splitting, spending O(k log n) extra calls for k
unknown IDs among n, so they resolve to None while every other ID resolves.

Loaders live for one request only (their futures belong to its event loop and their
memo must not outlive it); anything that outlives a request is cached below them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiodataloader import DataLoader

from gateway.errors import BadUserInput
from gateway.observability.metrics import GatewayMetrics
from gateway.upstream.budget import CallBudgetSpent
from gateway.upstream.cache import CachedKombo
from gateway.upstream.kombo import MAX_PAGE_SIZE, JobLister, JobQuery, KomboAPIError, record_id

Job = dict[str, Any]
#: Unknown IDs found one by one (cheapest in calls) before switching to parallel splitting.
_SEQUENTIAL_SEARCHES = 3


class TooManyUnknownIds(BadUserInput):
    """An ID left unchecked: the request held more unknown IDs than the call budget covers."""


@dataclass
class Lookup:
    """What a batch of IDs resolved to: the jobs found, and IDs the budget left unchecked."""

    found: dict[str, Job] = field(default_factory=dict)
    unchecked: set[str] = field(default_factory=set)
    #: Why IDs were left unchecked when the request's own call budget ran out.
    budget_spent: CallBudgetSpent | None = None


async def fetch_by_ids(
    kombo: JobLister,
    integration_id: str,
    ids: Sequence[str],
    *,
    max_calls: int,
) -> Lookup:
    """The jobs with these IDs (deleted ones included) that exist, keyed by Kombo ID.

    `ids` must be distinct and at most 250. Unknown IDs are simply absent. Each unknown
    ID costs about log2(n) + 1 extra calls: binary search finds one (keeping what every
    successful half returned), then one call retries all that is left. Past a few
    unknown IDs the rest is split in parallel (more calls, far less waiting). At most
    `max_calls` calls are spent, so a request full of made-up IDs cannot turn into
    hundreds of Kombo calls; IDs still unresolved then come back in `unchecked`.
    """
    search = _Isolation(kombo, integration_id, max_calls)
    pending = list(ids)
    searches = 0
    try:
        while pending and not await search.fetch(pending):
            if searches == _SEQUENTIAL_SEARCHES:
                await search.split(pending)
                break
            try:
                unknown = await search.find_one_unknown(pending)
            except _BudgetSpent:
                # The search drops halves it has not resolved; they are still pending.
                search.unchecked.extend(i for i in pending if i not in search.found)
                raise
            pending = [i for i in pending if i not in search.found and i != unknown]
            searches += 1
    except _BudgetSpent:
        pass
    return Lookup(search.found, set(search.unchecked), search.budget_spent)


class _BudgetSpent(Exception):
    pass


class _Isolation:
    """One batch's search for unknown IDs, with its call budget."""

    def __init__(self, kombo: JobLister, integration_id: str, max_calls: int) -> None:
        self._kombo = kombo
        self._integration_id = integration_id
        self._calls_left = max_calls
        self.found: dict[str, Job] = {}
        self.unchecked: list[str] = []
        self.budget_spent: CallBudgetSpent | None = None

    async def fetch(self, ids: Sequence[str]) -> bool:
        """Fetch `ids` into `found`; False when Kombo answered 404 (some ID is unknown)."""
        if self._calls_left <= 0:
            self.unchecked.extend(i for i in ids if i not in self.found)
            raise _BudgetSpent
        self._calls_left -= 1
        query = JobQuery(ids=tuple(ids), include_deleted=True)
        try:
            page = await self._kombo.list_jobs(
                self._integration_id, query, page_size=max(len(ids), 1)
            )
        except KomboAPIError as error:
            if error.status == 404:
                return False
            raise
        except CallBudgetSpent as error:
            # The request's budget, not this batch's: the same outcome, its own reason.
            self.budget_spent = error
            self.unchecked.extend(i for i in ids if i not in self.found)
            raise _BudgetSpent from None
        for job in page["results"]:
            kombo_id = record_id(job)
            if kombo_id is not None:
                self.found[kombo_id] = job
        return True

    async def find_one_unknown(self, ids: Sequence[str]) -> str:
        """One unknown ID of `ids`, which are known to hold at least one.

        If the first half succeeds, an unknown ID must be in the second half, which
        then needs no call of its own. If it fails, the second half stays unresolved
        for the caller's next try.
        """
        while len(ids) > 1:
            head, tail = ids[: len(ids) // 2], ids[len(ids) // 2 :]
            ids = tail if await self.fetch(head) else head
        return ids[0]

    async def split(self, ids: Sequence[str]) -> None:
        """Resolve `ids`, known to hold an unknown ID, exploring both halves at once: the
        second half gets a call only when the first failed (else it must hold the
        unknown ID)."""
        if len(ids) <= 1:
            return
        head, tail = ids[: len(ids) // 2], ids[len(ids) // 2 :]
        try:
            head_ok = await self.fetch(head)
        except _BudgetSpent:
            self.unchecked.extend(tail)
            raise
        if head_ok:
            await self.split(tail)
            return

        async def resolve_tail() -> None:
            try:
                known = await self.fetch(tail)
            except _BudgetSpent:
                return
            if not known:
                await self.split(tail)

        results = await asyncio.gather(self.split(head), resolve_tail(), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, _BudgetSpent):
                raise result


class JobLoader(DataLoader[str, "Job | None"]):
    """Batches job look-ups by Kombo ID for one integration within one request.

    Jobs the process has cached (e.g. seen in a recent `jobs` page), then jobs another
    worker or replica primed in the shared cache, answer without a call; the rest go
    out together.
    """

    max_batch_size = MAX_PAGE_SIZE

    def __init__(
        self,
        kombo: CachedKombo,
        integration_id: str,
        metrics: GatewayMetrics,
        *,
        max_calls: int,
    ) -> None:
        #: The loader's own memo of this request (it forgets the keys of a failed batch).
        self._memo: dict[str, Any] = {}
        super().__init__(cache_map=self._memo)
        self._kombo = kombo
        self._integration_id = integration_id
        self._metrics = metrics
        self._max_calls = max_calls

    def load(self, key: str) -> Any:
        self._metrics.lookups.inc()
        if key in self._memo:  # answered by the loader's memo of this request
            self._metrics.lookups_coalesced.inc()
        return super().load(key)

    # aiodataloader fails the loads of keys whose result is an Exception; its types
    # don't say so, hence the ignore.
    async def batch_load_fn(  # type: ignore[override]
        self, keys: list[str]
    ) -> list[Job | None | BadUserInput]:
        unique = list(dict.fromkeys(keys))
        found: dict[str, Job] = {}
        for kombo_id in unique:
            job = self._kombo.cached_job(self._integration_id, kombo_id)
            if job is not None:
                found[kombo_id] = job
        missing = [kombo_id for kombo_id in unique if kombo_id not in found]
        if missing:  # primed by another worker or replica (Redis), if any
            found |= await self._kombo.shared_jobs(self._integration_id, missing)
            missing = [kombo_id for kombo_id in missing if kombo_id not in found]
        self._metrics.lookups_coalesced.inc(len(found))
        unchecked: set[str] = set()
        if missing:
            self._metrics.lookup_batch_size.observe(len(missing))
            lookup = await fetch_by_ids(
                self._kombo, self._integration_id, missing, max_calls=self._max_calls
            )
            found |= lookup.found
            unchecked = lookup.unchecked
        if not unchecked:
            return [found.get(key) for key in keys]
        if lookup.budget_spent is not None:
            refusal = TooManyUnknownIds(str(lookup.budget_spent))
        else:
            refusal = TooManyUnknownIds(
                f"Too many unknown job IDs in one request: {len(unchecked)} were left "
                "unchecked (Kombo answers 404 for a whole batch, so each unknown ID costs "
                "extra calls; GATEWAY_MAX_ISOLATION_CALLS)"
            )
        return [refusal if key in unchecked else found.get(key) for key in keys]


class Loaders:
    """The request's loaders, one per integration it touches (built on first use)."""

    def __init__(
        self,
        kombo: CachedKombo,
        metrics: GatewayMetrics,
        *,
        max_calls: int,
    ) -> None:
        self._kombo = kombo
        self._metrics = metrics
        self._max_calls = max_calls
        self._jobs: dict[str, JobLoader] = {}

    def jobs(self, integration_id: str) -> JobLoader:
        loader = self._jobs.get(integration_id)
        if loader is None:
            loader = JobLoader(
                self._kombo, integration_id, self._metrics, max_calls=self._max_calls
            )
            self._jobs[integration_id] = loader
        return loader
