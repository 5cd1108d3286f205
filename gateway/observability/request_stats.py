"""Per-request stats: what one request did, gathered as it runs and logged once at its end.

Usage::

    count("cache_hits")          # anywhere; a no-op outside a request
    set_integration("personio:X")

The HTTP side (`gateway.http.observability`) puts a `RequestStats` in the
`current_request` context variable for every request; lower layers add to it without
knowing whether anyone observes them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal, get_args

#: The counters lower layers may bump with `count`.
Counted = Literal["upstream_calls", "upstream_errors", "retries", "cache_hits", "cache_misses"]
_COUNTED: frozenset[str] = frozenset(get_args(Counted))


@dataclass(slots=True)
class RequestStats:
    """What one request did, gathered as it runs and logged once at its end.

    Shared by reference: tasks a request spawns copy the context variable, not the
    object, so their counts land here too.
    """

    request_id: str
    operation_name: str | None = None
    integration: str | None = None
    #: The name of the access token the caller used (never the token itself).
    client: str | None = None
    #: The client's address (the connection's peer, or a trusted proxy's forward).
    address: str | None = None
    upstream_calls: int = 0
    upstream_errors: int = 0
    retries: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    #: What the response cache did for it: hit, shared_hit, miss or bypass (None: not
    #: looked up, e.g. the cache is off or the request is not cacheable).
    response_cache: str | None = None
    error_codes: list[str] = field(default_factory=list)
    #: The persisted documents it ran, each as (name for the log line, metrics label):
    #: a trusted document's id twice, or `apq:<sha256>` and `apq`.
    documents: list[tuple[str, str | None]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)


#: The stats of the request being served, or None outside of one (start-up, tests).
current_request: ContextVar[RequestStats | None] = ContextVar("current_request", default=None)


def current_stats() -> RequestStats | None:
    """The current request's stats, or None when no request is being observed."""
    return current_request.get()


def count(field: Counted, n: int = 1) -> None:
    """Add `n` to a counter of the current request; a no-op outside a request.

    An unknown name raises even then, so a typo fails in every test, observed or not.
    """
    if field not in _COUNTED:
        raise ValueError(f"not a request counter: {field!r}")
    stats = current_request.get()
    if stats is not None:
        setattr(stats, field, getattr(stats, field) + n)


def record_error_codes(codes: Iterable[str]) -> None:
    """Remember the contract codes of the errors the current request answers with."""
    stats = current_request.get()
    if stats is not None:
        stats.error_codes.extend(codes)


def set_operation(name: str | None) -> None:
    """Name the GraphQL operation the current request runs (for its log line)."""
    stats = current_request.get()
    if stats is not None:
        stats.operation_name = name


def set_documents(documents: list[tuple[str, str | None]]) -> None:
    """Name the persisted documents the current request runs (log line and metrics)."""
    stats = current_request.get()
    if stats is not None:
        stats.documents = documents


def set_integration(integration: str | None) -> None:
    """Name the Kombo integration the current request uses (for its log line)."""
    stats = current_request.get()
    if stats is not None:
        stats.integration = integration


def set_client(name: str | None) -> None:
    """Name the access token the current request came with (never pass the token)."""
    stats = current_request.get()
    if stats is not None:
        stats.client = name


def set_response_cache(result: str) -> None:
    """Say what the response cache did for the current request (for its log line)."""
    stats = current_request.get()
    if stats is not None:
        stats.response_cache = result


def set_address(address: str | None) -> None:
    """Name the client address of the current request (for summaries of refusals)."""
    stats = current_request.get()
    if stats is not None:
        stats.address = address
