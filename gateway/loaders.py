"""Per-request batching of by-ID job look-ups into `GET /ats/jobs?ids=...` calls.

Usage (one `Loaders` per GraphQL request, built in `get_context`)::

    loaders = Loaders(kombo, integration_id)
    job = await loaders.jobs.load("26vafvWSRmbhNcxJYqjCzuJg")   # dict, or None if unknown

Every `load` of one event-loop tick lands in one batch: duplicates collapse, IDs go
out in calls of at most 250, and answers come back in request order. Kombo answers
404 to the whole call when any ID is unknown and does not say which; `fetch_by_ids`
then isolates the unknown IDs by splitting, spending O(k log n) extra calls for k
unknown IDs among n, so they resolve to None while every other ID resolves.

Loaders live for one request only (their futures belong to its event loop and their
memo must not outlive it); anything that outlives a request is cached below them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiodataloader import DataLoader

from gateway.cache import CachedKombo
from gateway.kombo import MAX_PAGE_SIZE, JobLister, JobQuery, KomboAPIError
from gateway.metrics import GatewayMetrics

Job = dict[str, Any]


async def fetch_by_ids(kombo: JobLister, integration_id: str, ids: Sequence[str]) -> dict[str, Job]:
    """The jobs with these IDs (deleted ones included) that exist, keyed by Kombo ID.

    `ids` must be distinct and at most 250. Unknown IDs are simply absent. Each
    unknown ID costs about log2(n) + 1 extra calls: binary search finds one (keeping
    what every successful half returned), then one call retries all that is left.
    """
    found: dict[str, Job] = {}
    pending = list(ids)
    while pending and not await _try_fetch(kombo, integration_id, pending, found):
        unknown = await _find_one_unknown(kombo, integration_id, pending, found)
        pending = [
            kombo_id for kombo_id in pending if kombo_id not in found and kombo_id != unknown
        ]
    return found


async def _try_fetch(
    kombo: JobLister, integration_id: str, ids: Sequence[str], found: dict[str, Job]
) -> bool:
    """Fetch `ids` into `found`; False when Kombo answered 404 (some ID is unknown)."""
    query = JobQuery(ids=tuple(ids), include_deleted=True)
    try:
        page = await kombo.list_jobs(integration_id, query, page_size=max(len(ids), 1))
    except KomboAPIError as error:
        if error.status == 404:
            return False
        raise
    for job in page["results"]:
        found[job["id"]] = job
    return True


async def _find_one_unknown(
    kombo: JobLister, integration_id: str, ids: Sequence[str], found: dict[str, Job]
) -> str:
    """One unknown ID of `ids`, which are known to hold at least one.

    If the first half succeeds, an unknown ID must be in the second half, which then
    needs no call of its own. If it fails, the second half stays unresolved for the
    caller's next try.
    """
    while len(ids) > 1:
        head, tail = ids[: len(ids) // 2], ids[len(ids) // 2 :]
        ids = tail if await _try_fetch(kombo, integration_id, head, found) else head
    return ids[0]


class JobLoader(DataLoader[str, "Job | None"]):
    """Batches job look-ups by Kombo ID for one integration within one request.

    Jobs the process has cached (e.g. seen in a recent `jobs` page) answer without a
    call; the rest go out together.
    """

    max_batch_size = MAX_PAGE_SIZE

    def __init__(self, kombo: CachedKombo, integration_id: str, metrics: GatewayMetrics) -> None:
        super().__init__()
        self._kombo = kombo
        self._integration_id = integration_id
        self._metrics = metrics
        self._seen: set[str] = set()

    def load(self, key: str) -> Any:
        self._metrics.lookups.inc()
        if key in self._seen:  # answered by the loader's memo of this request
            self._metrics.lookups_coalesced.inc()
        self._seen.add(key)
        return super().load(key)

    async def batch_load_fn(self, keys: list[str]) -> list[Job | None]:
        unique = list(dict.fromkeys(keys))
        found: dict[str, Job] = {}
        for kombo_id in unique:
            job = self._kombo.cached_job(self._integration_id, kombo_id)
            if job is not None:
                found[kombo_id] = job
        missing = [kombo_id for kombo_id in unique if kombo_id not in found]
        self._metrics.lookups_coalesced.inc(len(found))
        if missing:
            self._metrics.lookup_batch_size.observe(len(missing))
            found |= await fetch_by_ids(self._kombo, self._integration_id, missing)
        return [found.get(key) for key in keys]


class Loaders:
    """The request's loaders, one per integration it touches (built on first use)."""

    def __init__(self, kombo: CachedKombo, metrics: GatewayMetrics) -> None:
        self._kombo = kombo
        self._metrics = metrics
        self._jobs: dict[str, JobLoader] = {}

    def jobs(self, integration_id: str) -> JobLoader:
        loader = self._jobs.get(integration_id)
        if loader is None:
            loader = JobLoader(self._kombo, integration_id, self._metrics)
            self._jobs[integration_id] = loader
        return loader
