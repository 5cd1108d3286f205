"""`BoundedCache`: the one LRU the schema's caches are built on (prepared documents, compiled
projectors, the variables a document's directives read, what a `jobs` selection reads),
and the HTTP side's response cache.

Usage::

    cache = BoundedCache[bytes, str](entries=512, max_bytes=64 << 20)
    cache.put(b"key", "value", weight=1_000)   # evicts the least recently used
    cache.get(b"key")                          # "value", now the most recent (None if absent)
    cache.discard(b"key")                      # gone (if it was there)
    len(cache), cache.bytes                    # what it keeps: entries, estimated bytes

Why bounded twice: each of these caches is filled from what callers send, so neither bound
alone holds its memory. Entries alone did not: compiled projectors kept documents of 1 MB
each, and 126 of them added 386 MB to a worker (`tests/test_document_memory.py`). Bytes
alone would let a flood of tiny entries grow the cache's own bookkeeping without end. So
every entry is put with its weight (an estimate in bytes, made by its owner, which knows
what it keeps alive), and the least recently used entries leave until both bounds hold.
An entry weighing more than `max_bytes` alone is not kept (and replaces nothing).

Locking: one policy for every cache, every call (reads included) takes the cache's lock.
cachetools' LRU reorders its entries on a read, so a read is a write; a lock-free read
racing an eviction could leave the order holding a key the data no longer has. The
gateway runs each worker's requests on one event loop, so the lock is never contended
there: it costs one uncontended acquire per call (~0.1 us), and keeps the totals exact
for any caller running schemas from threads (`execute_sync`).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Generic, TypeVar, overload

from cachetools import LRUCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")


def _weight(item: tuple[object, int]) -> int:
    return item[1]


class BoundedCache(Generic[K, V]):
    """An LRU bounded in entries and in the bytes its entries are said to weigh (see the
    module docstring). Thread-safe: every call takes the cache's lock."""

    def __init__(self, *, entries: int, max_bytes: int) -> None:
        #: Entries kept at most, and their summed weights at most.
        self.entries = entries
        self.max_bytes = max_bytes
        # cachetools bounds the bytes (`getsizeof`); `put` bounds the entries.
        self._lru: LRUCache[K, tuple[V, int]] = LRUCache(maxsize=max_bytes, getsizeof=_weight)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Entries kept now."""
        return len(self._lru)

    @property
    def bytes(self) -> int:
        """The summed weights of the entries kept now."""
        return int(self._lru.currsize)

    def keys(self) -> list[K]:
        """The keys kept now, least recently used first (a copy)."""
        with self._lock:
            return list(self._lru)

    @overload
    def get(self, key: K) -> V | None: ...
    @overload
    def get(self, key: K, default: D) -> V | D: ...

    def get(self, key: K, default: object = None) -> object:
        """The value at `key` (then the most recently used), or `default`."""
        with self._lock:
            try:
                return self._lru[key][0]
            except KeyError:
                return default

    def discard(self, key: K) -> None:
        """Forget `key`, if kept (an entry its owner found expired)."""
        with self._lock:
            self._lru.pop(key, None)

    def put(self, key: K, value: V, weight: int) -> None:
        """Keep `value` at `key` (replacing what was there), then evict to the bounds."""
        with self._lock:
            lru = self._lru
            try:
                lru[key] = (value, weight)
            except ValueError:  # heavier than the whole cache: not kept
                lru.pop(key, None)
                return
            while len(lru) > self.entries:
                lru.popitem()
