"""Kombo's answers in the cache every worker and replica shares (level 2), and one
Kombo call for identical requests across them.

Usage (one per process, inside `UpstreamCache`; `CachedKombo` calls it on a miss of the
process's own cache)::

    shared = SharedPages(
        SharedCache(link, ...), SharedFlights(link, keys), keys, Generations(link, keys)
    )
    page = await shared.page(integration, fingerprint, params, fetch, refresh=False, deadline=d)
    jobs = await shared.jobs(integration, fingerprint, ["id1", "id2"])   # primed by pages

A page is read from Redis; failing that, the process that wins the lease fetches it
from Kombo and shares it (and each of its jobs, so another replica's by-ID look-ups
find them), while the others wait for it to land, up to their request's deadline. A
value read back is checked like an answer from Kombo (`parse_jobs_page`): what is in
Redis is trusted no more than what comes over the network. Failures are never shared.

Every key holds the integration's generation (`gateway.sharing.generations`): after
Kombo's data-changed webhook raised it, nothing stored before is read again. While the
generation cannot be read, Redis is left out (the page is fetched, nothing is shared):
a key with an old generation could serve what the webhook dropped.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson

from gateway.sharing.generations import Generations
from gateway.sharing.in_flight import SharedFlights
from gateway.sharing.keys import KeySpace
from gateway.sharing.shared_cache import SharedCache
from gateway.upstream.kombo import JOBS_PATH, JobsPage, parse_jobs_page, record_id

Job = dict[str, Any]


def encode_page(jobs: Sequence[bytes], next_cursor: object) -> bytes:
    """A page as Kombo's own body (`parse_jobs_page` reads it back), from its jobs each
    already encoded by orjson: the very bytes `orjson.dumps` makes of the whole page."""
    return b'{"data":{"results":[%b],"next":%b}}' % (b",".join(jobs), orjson.dumps(next_cursor))


class SharedPages:
    """Pages and primed jobs in Redis, with the lease on fetching a page."""

    def __init__(
        self,
        cache: SharedCache,
        flights: SharedFlights,
        keys: KeySpace,
        generations: Generations,
    ) -> None:
        self.cache = cache
        self.flights = flights
        self.keys = keys
        self.generations = generations

    def page_key(
        self, integration_id: str, generation: int, fingerprint: str, params: Mapping[str, str]
    ) -> str:
        canonical = JOBS_PATH + "?" + urllib.parse.urlencode(sorted(params.items()))
        return self.keys.page(integration_id, generation, fingerprint, canonical)

    async def page(
        self,
        integration_id: str,
        fingerprint: str,
        params: Mapping[str, str],
        fetch: Callable[[], Awaitable[JobsPage]],
        *,
        refresh: bool,
        deadline: float,
    ) -> JobsPage:
        """The page for these parameters: shared, landed by another process, or fetched
        (and then shared). `refresh`: fetch, whatever is shared, and share the result."""
        generation = await self.generations.shared(integration_id)
        if generation is None:
            return await fetch()
        key = self.page_key(integration_id, generation, fingerprint, params)
        if not refresh:
            found = _page_or_none(await self.cache.get(key, kind="page"))
            if found is not None:
                return found
            lease = await self.flights.claim(key)
            if lease.held:
                # Another process may have landed it between our read and our claim.
                found = _page_or_none(await self.cache.read(key))
                if found is not None:
                    await self.flights.landed(key, lease)
                    return found
            else:
                landed = await self.flights.wait(
                    key, read=lambda: self.cache.read(key), deadline=deadline
                )
                found = _page_or_none(landed)
                if found is not None:
                    return found
                # The holder failed, died, or outlasted our patience: fetch ourselves.
                lease = await self.flights.claim(key)
        else:
            lease = await self.flights.claim(key)
        async with self.flights.holding(key, lease):
            page = await fetch()
            await self._share(key, integration_id, generation, fingerprint, page)
        return page

    async def jobs(
        self, integration_id: str, fingerprint: str, kombo_ids: Sequence[str]
    ) -> dict[str, tuple[Job, int]]:
        """The jobs among `kombo_ids` that some process primed (one MGET), each with its
        size in bytes."""
        generation = await self.generations.shared(integration_id)
        if generation is None:
            return {}
        keys = [
            self.keys.job(integration_id, generation, fingerprint, kombo_id)
            for kombo_id in kombo_ids
        ]
        found: dict[str, tuple[Job, int]] = {}
        for kombo_id, raw in zip(
            kombo_ids, await self.cache.get_many(keys, kind="job"), strict=True
        ):
            job = _job_or_none(raw, kombo_id)
            if job is not None and raw is not None:
                found[kombo_id] = (job, len(raw))
        return found

    async def _share(
        self, key: str, integration_id: str, generation: int, fingerprint: str, page: JobsPage
    ) -> None:
        """The page under `key` and each of its jobs under its own key, in one round
        trip; each job encoded once, for both."""
        encoded = [orjson.dumps(job) for job in page["results"]]
        items = {key: encode_page(encoded, page["next"])}
        for job, body in zip(page["results"], encoded, strict=True):
            kombo_id = record_id(job)
            if kombo_id is not None:
                items[self.keys.job(integration_id, generation, fingerprint, kombo_id)] = body
        await self.cache.put_many(items)


def _page_or_none(raw: bytes | None) -> JobsPage | None:
    if raw is None:
        return None
    try:
        return parse_jobs_page(raw)
    except ValueError:
        return None  # not a page (a foreign or damaged value): a miss


def _job_or_none(raw: bytes | None, kombo_id: str) -> Job | None:
    if raw is None:
        return None
    try:
        job = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    # The ID it was stored under must be the job's own: a value under another job's key
    # would answer a look-up with the wrong job.
    if type(job) is not dict or job.get("id") != kombo_id:
        return None
    return job
