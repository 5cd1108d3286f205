"""`BoundedCache`: both bounds hold, the least recently used leaves first."""

from __future__ import annotations

import threading

from gateway.schema.bounded_cache import BoundedCache


def test_the_entry_bound_evicts_the_least_recently_used():
    cache = BoundedCache[str, int](entries=2, max_bytes=1_000)
    cache.put("a", 1, 10)
    cache.put("b", 2, 10)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3, 10)
    assert cache.keys() == ["a", "c"]
    assert (len(cache), cache.bytes) == (2, 20)


def test_the_byte_bound_evicts_until_the_weights_fit():
    cache = BoundedCache[str, int](entries=100, max_bytes=100)
    for n in range(5):
        cache.put(f"k{n}", n, 30)
    assert cache.keys() == ["k2", "k3", "k4"]
    assert cache.bytes == 90


def test_a_value_heavier_than_the_cache_is_not_kept_and_replaces_nothing():
    cache = BoundedCache[str, str](entries=10, max_bytes=100)
    cache.put("key", "light", 10)
    cache.put("key", "heavy", 101)
    assert cache.get("key") is None
    assert (len(cache), cache.bytes) == (0, 0)


def test_discard_forgets_an_entry_and_its_weight():
    cache = BoundedCache[str, str](entries=10, max_bytes=100)
    cache.put("a", "x", 40)
    cache.put("b", "y", 10)
    cache.discard("a")
    cache.discard("never-there")
    assert cache.keys() == ["b"] and cache.bytes == 10


def test_putting_again_reweighs_the_entry():
    cache = BoundedCache[str, str](entries=10, max_bytes=100)
    cache.put("old", "x", 40)
    cache.put("key", "v", 10)
    cache.put("key", "v", 70)  # grew: the other entry leaves
    assert cache.keys() == ["key"]
    assert cache.bytes == 70


def test_get_tells_a_kept_none_from_a_missing_key():
    cache = BoundedCache[str, int | None](entries=10, max_bytes=100)
    cache.put("none", None, 1)
    missing = object()
    assert cache.get("none", missing) is None
    assert cache.get("other", missing) is missing


def test_the_totals_stay_exact_under_threads():
    cache = BoundedCache[int, int](entries=50, max_bytes=2_000)

    def work(offset: int) -> None:
        for n in range(2_000):
            cache.put((n * 7 + offset) % 300, n, 1 + n % 60)
            cache.get((n * 3 + offset) % 300)

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) <= 50
    assert cache.bytes <= 2_000
    assert len(cache) == len(cache.keys())
