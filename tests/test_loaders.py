"""`gateway.upstream.loaders`: isolating unknown IDs in few calls, batch order and size."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

import pytest

from gateway.observability.metrics import GatewayMetrics
from gateway.upstream.cache import CachedKombo, UpstreamCache
from gateway.upstream.kombo import JobQuery, KomboAPIError
from gateway.upstream.loaders import JobLoader, fetch_by_ids


class CountingKombo:
    """Answers like Kombo's `ids` filter: 404 for the whole call if any ID is unknown."""

    def __init__(self, unknown: set[str]) -> None:
        self.unknown = unknown
        self.calls: list[tuple[str, ...]] = []

    async def list_jobs(self, integration_id: str, query: JobQuery, *, page_size: int) -> Any:
        assert query.ids is not None and query.include_deleted is True
        assert page_size >= len(query.ids)
        self.calls.append(query.ids)
        if self.unknown & set(query.ids):
            raise KomboAPIError(404, code="PLATFORM.INPUT_INVALID")
        return {
            "next": None,
            "results": [{"id": kombo_id} for kombo_id in query.ids],
            "byte_size": 1,
        }

    async def get_jobs_page(self, integration_id: str, params: dict[str, str], **_: object) -> Any:
        """What `CachedKombo` calls: the same answers, from encoded parameters."""
        query = JobQuery(ids=tuple(params["ids"].split(",")), include_deleted=True)
        return await self.list_jobs(integration_id, query, page_size=int(params["page_size"]))


def ids(count: int) -> list[str]:
    return [f"{i:024d}" for i in range(count)]


async def test_two_unknown_among_fifty_never_cost_more_than_fifteen_calls():
    candidates = ids(50)
    for a, b in itertools.combinations(range(50), 2):
        kombo = CountingKombo({candidates[a], candidates[b]})
        lookup = await fetch_by_ids(kombo, "i", candidates)  # type: ignore[arg-type]
        assert set(lookup.found) == set(candidates) - kombo.unknown
        assert not lookup.unchecked
        assert len(kombo.calls) <= 15, (a, b)


@pytest.mark.parametrize(("total", "unknown"), [(250, 1), (250, 5), (250, 12), (7, 7)])
async def test_unknown_ids_cost_about_log_n_calls_each(total: int, unknown: int):
    rng = random.Random(total * 1000 + unknown)
    candidates = ids(total)
    kombo = CountingKombo(set(rng.sample(candidates, unknown)))
    lookup = await fetch_by_ids(kombo, "i", candidates, max_calls=1000)  # type: ignore[arg-type]
    assert set(lookup.found) == set(candidates) - kombo.unknown
    assert not lookup.unchecked
    # One at a time for the first few, then both halves explored at once.
    assert len(kombo.calls) <= 1.6 * unknown * (math.ceil(math.log2(total)) + 1) + 1


async def test_the_call_budget_bounds_a_batch_of_made_up_ids():
    candidates = ids(250)
    kombo = CountingKombo(set(candidates[::2]))  # half of them unknown
    lookup = await fetch_by_ids(kombo, "i", candidates, max_calls=40)  # type: ignore[arg-type]
    assert len(kombo.calls) <= 40
    # Nothing is misreported: what was found exists, the rest is known unknown or unchecked.
    assert set(lookup.found) <= set(candidates[1::2])
    assert lookup.unchecked
    assert not lookup.unchecked & set(lookup.found)


async def test_a_spent_budget_never_reports_an_existing_id_as_unknown():
    """Every ID is found, proven unknown, or left unchecked (an error, never a null)."""
    rng = random.Random(5)
    for _ in range(600):
        candidates = ids(rng.randint(2, 40))
        kombo = CountingKombo(set(rng.sample(candidates, rng.randint(1, len(candidates)))))
        budget = rng.randint(1, 12)
        lookup = await fetch_by_ids(kombo, "i", candidates, max_calls=budget)  # type: ignore[arg-type]
        assert len(kombo.calls) <= budget
        existing = set(candidates) - kombo.unknown
        assert existing <= set(lookup.found) | lookup.unchecked, (candidates, budget)
        assert set(lookup.found) <= existing


async def test_all_known_costs_one_call():
    kombo = CountingKombo(set())
    lookup = await fetch_by_ids(kombo, "i", ids(250))  # type: ignore[arg-type]
    assert len(lookup.found) == 250 and len(kombo.calls) == 1


async def test_other_errors_propagate():
    class Failing(CountingKombo):
        async def list_jobs(self, *args: Any, **kwargs: Any) -> Any:
            raise KomboAPIError(503)

    with pytest.raises(KomboAPIError):
        await fetch_by_ids(Failing(set()), "i", ids(3))  # type: ignore[arg-type]


async def test_loader_batches_in_order_with_duplicates_and_at_most_250_per_call():
    kombo = CountingKombo({"9" * 24})
    cached = CachedKombo(kombo, UpstreamCache(ttl=0), fingerprint="f")  # type: ignore[arg-type]
    loader = JobLoader(cached, "i", GatewayMetrics())
    wanted = ids(300) + ids(10) + ["9" * 24]
    results = await loader.load_many(wanted)
    assert [job and job["id"] for job in results] == [*ids(300), *ids(10), None]
    assert all(len(call) <= 250 for call in kombo.calls)
    # The first 250 distinct IDs go out together, in request order, each once.
    assert kombo.calls[0] == tuple(ids(250))


async def test_a_look_up_retried_after_a_failed_batch_is_not_counted_as_coalesced():
    class FailingOnce(CountingKombo):
        async def list_jobs(self, integration_id: str, query: JobQuery, *, page_size: int) -> Any:
            if not self.calls:
                self.calls.append(query.ids or ())
                raise KomboAPIError(503, code="REMOTE.SERVICE_UNAVAILABLE")
            return await super().list_jobs(integration_id, query, page_size=page_size)

    kombo = FailingOnce(set())
    metrics = GatewayMetrics()
    cached = CachedKombo(kombo, UpstreamCache(0), fingerprint="f")  # type: ignore[arg-type]
    loader = JobLoader(cached, "i", metrics)
    with pytest.raises(KomboAPIError):
        await loader.load("a" * 24)
    assert (await loader.load("a" * 24))["id"] == "a" * 24  # a real second call
    assert (await loader.load("a" * 24))["id"] == "a" * 24  # this one is memoized
    assert len(kombo.calls) == 2
    assert metrics.registry.get_sample_value("gateway_lookups_coalesced_total") == 1
