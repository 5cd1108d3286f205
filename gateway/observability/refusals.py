"""Refused requests (401, 429) logged in aggregate rather than one line each.

Usage::

    summary = RefusalSummary(logging.getLogger("gateway.requests"))
    if summary.note(status=401, address="203.0.113.7"):
        logger.info("graphql request", ...)   # the first of a window: logged in full

Why: a client sending bad tokens or ignoring 429s can send thousands of requests a
second, each cheap to refuse; one log line each would cost more than the refusal and
flood the log shipper (a probe: 1,000 bad tokens, 428 KB of logs). The first refusal
of a window is logged as usual, so an operator sees a complete example with its
request id; the rest of the window becomes one `requests_refused` line with counts by
status and by client address, written when the window ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable

#: Seconds one summary covers.
WINDOW_SECONDS = 10.0
#: Statuses summarised instead of logged one by one.
SUMMARISED_STATUSES = frozenset({401, 429})
#: Addresses named in one summary line (the busiest); the others are only counted.
_NAMED_ADDRESSES = 10
#: Distinct addresses tracked per window: a flood from many addresses stays bounded.
_TRACKED_ADDRESSES = 1_000
_OTHER = "other"


class RefusalSummary:
    """Counts refusals per window and logs each window's counts once."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        window: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._window = WINDOW_SECONDS if window is None else window
        self._clock = clock
        self._window_end: float | None = None
        self._by_status: Counter[int] = Counter()
        self._by_address: Counter[str] = Counter()
        self._flush_handle: asyncio.TimerHandle | None = None

    def note(self, *, status: int, address: str | None) -> bool:
        """Record one refusal; True when the caller should log it in full (the first of
        a window), False when it is counted in the window's summary instead."""
        now = self._clock()
        if self._window_end is not None and now >= self._window_end:
            self.flush()
        if self._window_end is None:
            self._window_end = now + self._window
            self._schedule_flush()
            return True
        self._by_status[status] += 1
        key = address or "unknown"
        if key in self._by_address or len(self._by_address) < _TRACKED_ADDRESSES:
            self._by_address[key] += 1
        else:
            self._by_address[_OTHER] += 1
        return False

    def flush(self) -> None:
        """Log the open window's summary (if anything was counted) and close it."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._window_end = None
        if not self._by_status:
            return
        named = dict(self._by_address.most_common(_NAMED_ADDRESSES))
        self._logger.warning(
            "requests refused",
            extra={
                "event": "requests_refused",
                "window_seconds": self._window,
                "refused": sum(self._by_status.values()),
                "by_status": {str(status): n for status, n in sorted(self._by_status.items())},
                "by_address": named,
                "addresses": len(self._by_address),
            },
        )
        self._by_status.clear()
        self._by_address.clear()

    def _schedule_flush(self) -> None:
        """Write the summary when the window ends even if no refusal follows; outside an
        event loop (tests, sync callers) the next refusal after the window writes it."""
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(self._window, self.flush)
