"""Relay cursor connections over Kombo's page cursors.

Every edge gets its own opaque cursor naming the position *after* that edge:
(Kombo page cursor, upstream page size, items to skip in that page). Resuming
from the middle of an upstream page re-fetches that page and skips; an edge that
ends an upstream page points straight at Kombo's `next` cursor, so walking a list
with `first: N` costs one upstream call per N items.

Kombo requires the same filters and page size on every follow-up page, so a chain
keeps the page size it started with (the `first` of its first request) and every
cursor is bound to a digest of the integration and the upstream filter parameters:
reusing it elsewhere is a `BAD_USER_INPUT`, found before any upstream call.

Digests and checksums are keyed (BLAKE2b with a key, a MAC) with a secret the
gateway's replicas share (`cursor_key`): a client cannot rewrite a cursor for another
integration or filter, nor make one up; such a cursor is refused before any call.

Usage::

    binding = cursor_binding(integration, query.to_params(), key=cursor_key(secret))
    start = start_position(binding, after=after, first=first)
    connection = await read_connection(fetch_page, start, first, binding=binding)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.errors import BadUserInput
from gateway.upstream.kombo import MAX_PAGE_SIZE, JobsPage

DEFAULT_FIRST = 50
MAX_FIRST = MAX_PAGE_SIZE
_VERSION = "2"

#: Fetches one upstream page: (Kombo cursor or None, page size) -> page.
FetchPage = Callable[[str | None, int], Awaitable[JobsPage]]


def cursor_key(secret: str) -> bytes:
    """The MAC key for cursors, from a secret every replica has (by default the Kombo
    key: nothing more to configure, and a cursor never works with another credential)."""
    return hashlib.blake2b(secret.encode(), digest_size=32, person=b"kgw-cursor").digest()


@dataclass(frozen=True, slots=True)
class CursorBinding:
    """What a cursor is valid for (a keyed digest) and the key its checksum uses."""

    key: bytes
    digest: str


@dataclass(frozen=True, slots=True)
class Position:
    """A place in an upstream list: skip `skip` items of the page at `kombo_cursor`."""

    kombo_cursor: str | None
    page_size: int
    skip: int


def cursor_binding(integration_id: str, params: Mapping[str, str], *, key: bytes) -> CursorBinding:
    """What a cursor is valid for: the integration and the filters, digested with `key`.

    JSON keeps the encoding unambiguous whatever the filter values contain.
    """
    canonical = json.dumps([integration_id, sorted(params.items())], separators=(",", ":"))
    return CursorBinding(key, _digest(key, canonical, 9))


def _digest(key: bytes, text: str, size: int) -> str:
    digest = hashlib.blake2b(text.encode(), digest_size=size, key=key).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")


def encode_cursor(binding: CursorBinding, position: Position) -> str:
    """An opaque cursor; its keyed checksum makes an altered or made-up one fail to decode."""
    body = f"{position.page_size}:{position.skip}:{binding.digest}:{position.kombo_cursor or ''}"
    raw = f"{_VERSION}:{_digest(binding.key, body, 12)}:{body}"
    return base64.urlsafe_b64encode(raw.encode()).decode("ascii").rstrip("=")


def decode_cursor(binding: CursorBinding, cursor: str) -> Position:
    """The position a cursor names.

    Raises:
        BadUserInput: the cursor is malformed or was issued for another filter or integration.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
        version, checksum, body = raw.split(":", 2)
        page_size, skip, cursor_binding_, kombo_cursor = body.split(":", 3)
        position = Position(kombo_cursor or None, int(page_size), int(skip))
    except (binascii.Error, UnicodeError, ValueError):
        raise BadUserInput("`after` is not a cursor issued by this API") from None
    if (
        version != _VERSION
        or not hmac.compare_digest(checksum, _digest(binding.key, body, 12))
        or not 1 <= position.page_size <= MAX_PAGE_SIZE
        or not 0 <= position.skip <= position.page_size
    ):
        raise BadUserInput("`after` is not a cursor issued by this API")
    if cursor_binding_ != binding.digest:
        raise BadUserInput(
            "`after` was issued for another filter or integration: "
            "send the same `filter` (and integration) as the request that returned it"
        )
    return position


def validate_first(first: int | None) -> int:
    """`first` with its default applied.

    Raises:
        BadUserInput: outside 0..250.
    """
    if first is None:
        return DEFAULT_FIRST
    if not 0 <= first <= MAX_FIRST:
        raise BadUserInput(f"`first` must be between 0 and {MAX_FIRST}, got {first}")
    return first


def start_position(binding: CursorBinding, *, after: str | None, first: int) -> Position:
    """Where a connection request starts: after the `after` edge, or at the list's head
    with a new chain whose upstream page size is `first` (at least 1)."""
    if after is not None:
        return decode_cursor(binding, after)
    return Position(None, max(first, 1), 0)


async def read_connection(
    fetch: FetchPage,
    start: Position,
    first: int,
    *,
    binding: CursorBinding,
    with_edges: bool = True,
) -> dict[str, Any]:
    """Read `first` items from `start`, spanning upstream pages as needed.

    Returns the connection as the dict the schema's `JobConnection` reads:
    `edges` (`cursor`, `node`), `nodes` and `page_info`. Without `with_edges` (the
    query selected no `edges`) only the two cursors `page_info` names are encoded.
    """
    edges: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    positions: list[Position] = []
    position = start
    page_size = start.page_size
    # Bounds the walk even if Kombo kept answering empty pages that have a `next`.
    budget = first // page_size + 3
    has_next = False
    while budget:
        budget -= 1
        page = await fetch(position.kombo_cursor, page_size)
        results, next_cursor = page["results"], page["next"]
        end = min(len(results), position.skip + first - len(nodes))
        for index in range(position.skip, end):
            job = results[index]
            if index + 1 == len(results) and next_cursor:
                after = Position(next_cursor, page_size, 0)
            else:
                after = Position(position.kombo_cursor, page_size, index + 1)
            nodes.append(job)
            positions.append(after)
        if len(nodes) >= first:
            has_next = end < len(results) or next_cursor is not None
            break
        if next_cursor is None:
            has_next = False
            break
        position = Position(next_cursor, page_size, 0)
        has_next = True
    if with_edges:
        edges = [
            {"cursor": encode_cursor(binding, after), "node": job}
            for job, after in zip(nodes, positions, strict=True)
        ]
        start_cursor = edges[0]["cursor"] if edges else None
        end_cursor = edges[-1]["cursor"] if edges else None
    else:
        start_cursor = encode_cursor(binding, positions[0]) if positions else None
        end_cursor = encode_cursor(binding, positions[-1]) if positions else None
    return {
        "edges": edges,
        "nodes": nodes,
        "page_info": {
            "has_next_page": has_next,
            "has_previous_page": start.kombo_cursor is not None or start.skip > 0,
            "start_cursor": start_cursor,
            "end_cursor": end_cursor,
        },
    }
