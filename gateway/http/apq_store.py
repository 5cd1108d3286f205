"""Documents registered by automatic persisted queries (APQ), by the SHA-256 of their text.

Usage::

    store = ApqStore(link, keys, ttl=86_400.0)
    await store.put(sha256, text)     # after the hash was checked and the text validated
    text = await store.get(sha256)    # this worker's, else Redis's; None: not registered

Two levels, like the upstream cache: each worker keeps the documents it saw in a small
LRU bounded in bytes (a hash-only request then costs a dict lookup), and with
`GATEWAY_REDIS_URL` every worker and replica shares them in Redis (`<prefix>:apq:<hash>`,
`PX` = `GATEWAY_APQ_TTL`), so a document registered through one replica answers a
hash-only GET on another. Entries live at most `ttl` in either level: clients register
again after a miss, so the TTL bounds memory, not correctness.

What a text from Redis must prove: its SHA-256 is the key's, checked before it is used.
A value that does not match (written by something else under our prefix) is a miss, so
nothing in Redis can make a hash run another document than the one it names.

Cost to an attacker's requests: registering needs the text (hash checked, document
validated by the view first, each a request on the caller's rate limit); a hash-only
request for an unknown hash is one dict lookup and one Redis GET.
"""

from __future__ import annotations

import math
import time
from typing import Final

from redis.asyncio import Redis

from gateway.schema.bounded_cache import BoundedCache
from gateway.schema.trusted_documents import text_sha256
from gateway.sharing.keys import KeySpace
from gateway.sharing.link import RedisLink

#: Bytes of registered documents each worker keeps (by their UTF-8 size, plus a little
#: per entry): 1,000 documents of 8 KB. Past it, the least recently used leave; the
#: next request for one reads Redis, or gets PERSISTED_QUERY_NOT_FOUND and registers it
#: again.
APQ_MEMORY_BYTES: Final = 8 * 1024 * 1024
#: Documents kept per worker at most, whatever their size.
APQ_MEMORY_ENTRIES: Final = 10_000
_ENTRY_OVERHEAD: Final = 200


class ApqStore:
    """Registered documents: per worker, and shared through Redis when there is one."""

    def __init__(
        self,
        link: RedisLink | None,
        keys: KeySpace,
        *,
        ttl: float,
    ) -> None:
        self.link = link
        self.keys = keys
        self.ttl = ttl
        # Values: (text, monotonic time it expires).
        self._local: BoundedCache[str, tuple[str, float]] = BoundedCache(
            entries=APQ_MEMORY_ENTRIES, max_bytes=APQ_MEMORY_BYTES
        )

    async def get(self, sha256: str) -> str | None:
        """The text registered under `sha256` (lowercase hex), or None."""
        local = self._local.get(sha256)
        if local is not None:
            text, expires = local
            if time.monotonic() < expires:
                return text
            self._local.discard(sha256)
        if self.link is None:
            return None
        key = self.keys.apq(sha256)

        async def read(redis: Redis) -> bytes | None:
            value = await redis.get(key)
            return value if isinstance(value, bytes) else None

        raw = await self.link.run("apq_get", read, fallback=None)
        if raw is None:
            return None
        try:
            text = raw.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return None
        if text_sha256(text) != sha256:
            return None  # not what the hash names: never run it
        self._keep(sha256, text)
        return text

    async def put(self, sha256: str, text: str) -> None:
        """Register `text` under `sha256` (its checked hash) for `ttl` seconds."""
        self._keep(sha256, text)
        if self.link is None:
            return
        key, value = self.keys.apq(sha256), text.encode("utf-8", "surrogatepass")
        px = max(1, math.ceil(self.ttl * 1000))
        await self.link.run("apq_put", lambda redis: redis.set(key, value, px=px), fallback=None)

    def _keep(self, sha256: str, text: str) -> None:
        weight = len(text) + _ENTRY_OVERHEAD
        self._local.put(sha256, (text, time.monotonic() + self.ttl), weight)
