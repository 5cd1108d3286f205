"""`gateway.upstream.loaders`: isolating unknown IDs in few calls, batch order and size."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from gateway.observability.metrics import GatewayMetrics
from gateway.upstream.cache import CachedKombo, UpstreamCache
from gateway.upstream.kombo import KomboAPIError
from gateway.upstream.loaders import JobLoader, fetch_by_ids
from tests.fake_kombo import FakeKombo


def kombo_without(unknown: set[str], candidates: list[str]) -> FakeKombo:
    """Kombo knowing every candidate but `unknown` (its `ids` filter: 404 for the whole call
    if any ID is unknown)."""
    return FakeKombo(
        {"i": [{"id": kombo_id} for kombo_id in candidates if kombo_id not in unknown]}
    )


def sent_ids(kombo: FakeKombo) -> list[tuple[str, ...]]:
    """The IDs of each call, once checked that every call asks for them all, deleted jobs
    included, in one page."""
    sent = []
    for call in kombo.calls:
        assert call.query.ids is not None and call.query.include_deleted is True
        assert call.page_size is not None and call.page_size >= len(call.query.ids)
        sent.append(call.query.ids)
    return sent


def ids(count: int) -> list[str]:
    return [f"{i:024d}" for i in range(count)]


async def test_two_unknown_among_fifty_never_cost_more_than_fifteen_calls():
    candidates = ids(50)
    for a, b in itertools.combinations(range(50), 2):
        unknown = {candidates[a], candidates[b]}
        kombo = kombo_without(unknown, candidates)
        lookup = await fetch_by_ids(kombo, "i", candidates, max_calls=100)
        assert set(lookup.found) == set(candidates) - unknown
        assert not lookup.unchecked
        assert len(sent_ids(kombo)) <= 15, (a, b)


@pytest.mark.parametrize(("total", "unknown"), [(250, 1), (250, 5), (250, 12), (7, 7)])
async def test_unknown_ids_cost_about_log_n_calls_each(total: int, unknown: int):
    rng = random.Random(total * 1000 + unknown)
    candidates = ids(total)
    made_up = set(rng.sample(candidates, unknown))
    kombo = kombo_without(made_up, candidates)
    lookup = await fetch_by_ids(kombo, "i", candidates, max_calls=1000)
    assert set(lookup.found) == set(candidates) - made_up
    assert not lookup.unchecked
    # One at a time for the first few, then both halves explored at once.
    assert len(sent_ids(kombo)) <= 1.6 * unknown * (math.ceil(math.log2(total)) + 1) + 1


async def test_the_call_budget_bounds_a_batch_of_made_up_ids():
    candidates = ids(250)
    kombo = kombo_without(set(candidates[::2]), candidates)  # half of them unknown
    lookup = await fetch_by_ids(kombo, "i", candidates, max_calls=40)
    assert len(sent_ids(kombo)) <= 40
    # Nothing is misreported: what was found exists, the rest is known unknown or unchecked.
    assert set(lookup.found) <= set(candidates[1::2])
    assert lookup.unchecked
    assert not lookup.unchecked & set(lookup.found)


async def test_a_spent_budget_never_reports_an_existing_id_as_unknown():
    """Every ID is found, proven unknown, or left unchecked (an error, never a null)."""
    rng = random.Random(5)
    for _ in range(600):
        candidates = ids(rng.randint(2, 40))
        unknown = set(rng.sample(candidates, rng.randint(1, len(candidates))))
        kombo = kombo_without(unknown, candidates)
        budget = rng.randint(1, 12)
        lookup = await fetch_by_ids(kombo, "i", candidates, max_calls=budget)
        assert len(sent_ids(kombo)) <= budget
        existing = set(candidates) - unknown
        assert existing <= set(lookup.found) | lookup.unchecked, (candidates, budget)
        assert set(lookup.found) <= existing


async def test_all_known_costs_one_call():
    kombo = kombo_without(set(), ids(250))
    lookup = await fetch_by_ids(kombo, "i", ids(250), max_calls=100)
    assert len(lookup.found) == 250 and len(sent_ids(kombo)) == 1


async def test_other_errors_propagate():
    kombo = kombo_without(set(), ids(3))
    kombo.fail(KomboAPIError(503), times=None)

    with pytest.raises(KomboAPIError):
        await fetch_by_ids(kombo, "i", ids(3), max_calls=100)


async def test_loader_batches_in_order_with_duplicates_and_at_most_250_per_call():
    kombo = kombo_without({"9" * 24}, [*ids(300), "9" * 24])
    cached = CachedKombo(kombo, UpstreamCache.disabled(), fingerprint="f")
    loader = JobLoader(cached, "i", GatewayMetrics(), max_calls=100)
    wanted = ids(300) + ids(10) + ["9" * 24]
    results = await loader.load_many(wanted)
    assert [job and job["id"] for job in results] == [*ids(300), *ids(10), None]
    calls = sent_ids(kombo)
    assert all(len(call) <= 250 for call in calls)
    # The first 250 distinct IDs go out together, in request order, each once.
    assert calls[0] == tuple(ids(250))


async def test_a_look_up_retried_after_a_failed_batch_is_not_counted_as_coalesced():
    kombo = kombo_without(set(), ["a" * 24])
    kombo.fail(KomboAPIError(503, code="REMOTE.SERVICE_UNAVAILABLE"))
    metrics = GatewayMetrics()
    cached = CachedKombo(kombo, UpstreamCache.disabled(), fingerprint="f")
    loader = JobLoader(cached, "i", metrics, max_calls=100)
    with pytest.raises(KomboAPIError):
        await loader.load("a" * 24)
    assert (await loader.load("a" * 24))["id"] == "a" * 24  # a real second call
    assert (await loader.load("a" * 24))["id"] == "a" * 24  # this one is memoized
    assert len(sent_ids(kombo)) == 2
    assert metrics.registry.get_sample_value("gateway_lookups_coalesced_total") == 1
