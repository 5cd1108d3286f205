"""The response cache: whole encoded GraphQL answers, found before anything executes.

Usage (one per process; the view looks up every cacheable request after admission)::

    cache = ResponseCache.from_settings(settings, metrics=metrics, shared=shared_cache)
    slot = cache.slot(response_key)              # `gateway.http.response_key.ResponseKey`
    found = await cache.get(slot)                # CachedAnswer, or None
    ...                                          # a miss: execute, encode
    cache.put(slot, body, digest, ttl=kombo.fresh_for())  # only answers without errors

A repeated operation (same document, operation name, variables, integration, credential,
caller; `response_key` lists every input) is then answered from its bytes: no parsing,
validation, resolvers or encoding, and no upstream cache lookups either.

Rules, and why:

- **Only answers without errors are kept** (the view decides): an error may be
  transient, or the caller's own budget's.
- **An entry lives no longer than the upstream answers it was built from**: its TTL is
  `CachedKombo.fresh_for()`, the cache TTL less the age of the oldest upstream entry
  the request used. It never serves data the upstream cache would have refetched. (An
  upstream entry read from Redis counts from when this process read it, as its own
  expiry does.) And it dies with them on Kombo's data-changed webhook: the
  integration's generation is in its key.
- **`Cache-Control: no-cache` bypasses it** (and the upstream cache): the request
  executes over fresh data, and its answer replaces the entry.
- **Bounded in bytes** (`GATEWAY_RESPONSE_CACHE_BYTES` per worker, LRU; 0 turns it
  off, as does `GATEWAY_CACHE_TTL=0`), and **one entry at most a sixteenth of it**, so
  one request cannot flush the cache with a single huge answer. An entry weighs its
  bytes plus `ENTRY_OVERHEAD` (the key, the tag, the objects), so a flood of tiny
  answers is bounded too.
- **Shared through Redis when configured** (level 2, like the upstream cache): a miss
  here reads `KeySpace.response` (in the integration's hash tag, with the generation
  and credential digest in the name), with Redis's `PX` set to the entry's own TTL; a
  value read back carries its expiry and the digest of its body, and is used only when
  both check out. Answers over `SharedCache`'s 2 MiB stay local. Without Redis, or
  while it is down, every worker keeps its own.

What one request costs with it: admission as before; then, over its operations (the
body the view parsed once, for Strawberry too), one SHA-256 (bounded by
`GATEWAY_MAX_DOCUMENT_BYTES` and `GATEWAY_MAX_BODY_BYTES`) and one dict lookup: under
10 us for a usual request. On a miss, with Redis, one GET; after executing, one more
digest of the answer (its ETag) and, with Redis, one SET. A hit sends the stored bytes.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from typing import Final

from gateway.config import Settings
from gateway.http.http_caching import body_digest, strong_etag
from gateway.http.response_key import ResponseKey
from gateway.observability.metrics import GatewayMetrics
from gateway.observability.request_stats import set_response_cache
from gateway.schema.bounded_cache import BoundedCache
from gateway.sharing.keys import KeySpace
from gateway.sharing.shared_cache import SharedCache

#: Bytes an entry is counted for beyond its body: the key, the tag, the objects.
ENTRY_OVERHEAD: Final = 512
#: One entry may take at most this share of the whole cache.
MAX_ENTRY_SHARE: Final = 16

#: A value in Redis: this marker, its expiry (Unix ms, 8 bytes), `body_digest`, the body.
_SHARED_MARKER: Final = b"kgw-answer:1:"
_SHARED_HEADER: Final = struct.Struct(">Q16s")
_LOOKUP_RESULTS: Final = ("hit", "shared_hit", "miss", "bypass")
_STORE_RESULTS: Final = ("kept", "errors", "too_large", "expired")


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """One kept answer: its bytes, their tag, and until when it may be served."""

    body: bytes
    etag: str
    #: When it expires, on the cache's timer (`time.monotonic()`).
    expires: float


@dataclass(frozen=True, slots=True)
class Slot:
    """Where one request's answer is kept: under its key's digest in this process, and
    under `shared_key` in Redis (None: not shared)."""

    digest: bytes
    shared_key: str | None


class ResponseCache:
    """Whole answers by request key: this process's LRU, then Redis."""

    def __init__(
        self,
        max_bytes: int,
        *,
        metrics: GatewayMetrics,
        shared: SharedCache | None = None,
        keys: KeySpace | None = None,
    ) -> None:
        self.enabled = max_bytes > 0
        #: The largest answer kept.
        self.max_entry_bytes = max_bytes // MAX_ENTRY_SHARE
        self._local = BoundedCache[bytes, CachedAnswer](
            entries=max(1, max_bytes // ENTRY_OVERHEAD), max_bytes=max(1, max_bytes)
        )
        self._shared = shared if self.enabled and keys is not None else None
        self._keys = keys
        lookups, stores = metrics.response_cache_lookups, metrics.response_cache_stores
        # Each labelled child found once: `labels()` costs a lock and a dict per call.
        self._lookups = {r: lookups.labels(result=r) for r in _LOOKUP_RESULTS}
        self._stores = {r: stores.labels(result=r) for r in _STORE_RESULTS}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        metrics: GatewayMetrics,
        shared: SharedCache | None = None,
        keys: KeySpace | None = None,
    ) -> ResponseCache:
        """The process's response cache as configured: off without an upstream cache,
        since its entries live no longer than the upstream answers they come from."""
        size = settings.response_cache_bytes if settings.cache_ttl > 0 else 0
        return cls(size, metrics=metrics, shared=shared, keys=keys)

    @property
    def kept(self) -> tuple[int, int]:
        """Answers this process keeps now, and the bytes they are counted for."""
        return len(self._local), self._local.bytes

    def slot(self, key: ResponseKey) -> Slot:
        """Where the answer to `key` is kept."""
        digest = key.digest()
        shared_key = None
        if (
            self._shared is not None
            and self._keys is not None
            and key.integration is not None
            and key.shared_generation is not None
        ):
            shared_key = self._keys.response(
                key.integration, key.shared_generation, key.credential, digest
            )
        # Level 1 pairs the digest with this process's epoch of the integration.
        return Slot(digest + key.generation.to_bytes(8, "big"), shared_key)

    async def get(self, slot: Slot) -> CachedAnswer | None:
        """The answer kept for `slot` and still fresh (counted: hit, shared_hit or miss)."""
        now = time.monotonic()
        found = self._local.get(slot.digest)
        if found is not None:
            if found.expires > now:
                self._count("hit")
                return found
            self._local.discard(slot.digest)
        if self._shared is not None and slot.shared_key is not None:
            raw = await self._shared.get(slot.shared_key, kind="response")
            found = self._read_shared(raw) if raw is not None else None
            if found is not None:
                self._keep(slot.digest, found)
                self._count("shared_hit")
                return found
        self._count("miss")
        return None

    def fresh_for(self, answer: CachedAnswer) -> float:
        """Seconds `answer` may still be served."""
        return answer.expires - time.monotonic()

    def bypassed(self) -> None:
        """Count a request that skipped the lookup (`Cache-Control: no-cache`)."""
        self._count("bypass")

    async def put(self, slot: Slot, body: bytes, digest: bytes, *, ttl: float) -> None:
        """Keep an answer without errors for `ttl` seconds (`body_digest(body)` is
        `digest`), unless it is too large or already expired."""
        if len(body) > self.max_entry_bytes:
            self._stored("too_large")
            return
        if ttl <= 0:
            self._stored("expired")
            return
        answer = CachedAnswer(body, strong_etag(digest), time.monotonic() + ttl)
        self._keep(slot.digest, answer)
        self._stored("kept")
        if self._shared is not None and slot.shared_key is not None:
            expires_ms = int((time.time() + ttl) * 1000)  # wall clock: other processes read it
            value = b"".join((_SHARED_MARKER, _SHARED_HEADER.pack(expires_ms, digest), body))
            await self._shared.put(slot.shared_key, value, ttl=ttl)  # not over MAX_VALUE_BYTES

    def not_kept(self) -> None:
        """Count an answer not offered because it had an error."""
        self._stored("errors")

    def _keep(self, digest: bytes, answer: CachedAnswer) -> None:
        self._local.put(digest, answer, weight=len(answer.body) + ENTRY_OVERHEAD)

    def _read_shared(self, raw: bytes) -> CachedAnswer | None:
        """A value from Redis, if it is one of ours, intact and not expired."""
        start = len(_SHARED_MARKER) + _SHARED_HEADER.size
        if not raw.startswith(_SHARED_MARKER) or len(raw) < start:
            return None
        expires_ms, digest = _SHARED_HEADER.unpack_from(raw, len(_SHARED_MARKER))
        left = expires_ms / 1000 - time.time()
        body = raw[start:]
        if left <= 0 or len(body) > self.max_entry_bytes or body_digest(body) != digest:
            return None
        return CachedAnswer(body, strong_etag(digest), time.monotonic() + left)

    def _count(self, result: str) -> None:
        self._lookups[result].inc()
        set_response_cache(result)

    def _stored(self, result: str) -> None:
        self._stores[result].inc()
