"""`FakeKombo`: the Kombo client, in memory, for tests below HTTP.

It has both faces the gateway calls: `list_jobs` (`JobLister`: what pagination and
`fetch_by_ids` call) and `get_jobs_page` (`JobPageFetcher`: what `CachedKombo` sits on).
Every call is recorded; the fake can be told to fail or to hold its answers::

    kombo = FakeKombo({INTEGRATION: [{"id": "26vafvWSRmbhNcxJYqjCzuJg", "name": "Engineer"}]})
    cached = CachedKombo(kombo, UpstreamCache.disabled(), fingerprint="test")
    page = await cached.list_jobs(INTEGRATION, JobQuery(), page_size=10)
    [call] = kombo.calls  # call.integration_id, call.query, call.page_size, call.keys ...
    kombo.fail(KomboAPIError(503))  # the next call raises it
    gate = kombo.hold()  # calls wait until `gate.set()`

Like Kombo: pages of `page_size` jobs (100 when not given, 1 to 250) linked by opaque
`next` cursors; `ids` answers 404 for the whole call when any ID is unknown; an unknown
integration, or a cursor Kombo did not issue, is an error. Each answer is freshly decoded
JSON, as from Kombo. Unlike Kombo: filters other than `ids` are recorded, not applied
(tests of filtering use the sandbox), and jobs are served as given, malformed ones too
(tests of hostile data need that; the real client would refuse a job without an `id`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import orjson

from gateway.upstream.kombo import (
    MAX_PAGE_SIZE,
    JobLister,
    JobPageFetcher,
    JobQuery,
    JobsPage,
    KomboAPIError,
    record_id,
)

Job = dict[str, Any]
#: Kombo's page size when a call names none.
DEFAULT_PAGE_SIZE = 100
#: Real cursors are base64; this one ends with the characters they may carry, and with the
#: separator of the gateway's own cursors, so that no code may split them on it.
_CURSOR_END = ":k/+="


def cursor_at(offset: int) -> str:
    """The `next` cursor `FakeKombo` sends for the page that starts at job `offset`."""
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode() + _CURSOR_END


def offset_of(cursor: str) -> int | None:
    """The offset a cursor of `cursor_at` names; None for any other string."""
    if not cursor.endswith(_CURSOR_END):
        return None
    try:
        payload = json.loads(base64.b64decode(cursor.removesuffix(_CURSOR_END), validate=True))
    except (binascii.Error, ValueError):
        return None
    offset = payload.get("offset") if isinstance(payload, dict) else None
    return offset if type(offset) is int and offset >= 0 else None


@dataclass(frozen=True)
class Call:
    """One call the fake answered (or failed), as the gateway made it."""

    integration_id: str
    query: JobQuery
    page_size: int | None = None
    cursor: str | None = None
    #: The job keys the caller said it reads (see `parse_jobs_page`).
    keys: frozenset[str] | None = None

    @property
    def params(self) -> dict[str, str]:
        """The query parameters of the call, as `KomboClient` sends them."""
        return self.query.page_params(self.page_size, self.cursor)


class FakeKombo:
    """Serves `jobs` (lists by integration ID) like Kombo's `GET /ats/jobs`, through the
    client's methods.

    With `lookahead` (Kombo's usual), a last page that is full has `next: null`; without it,
    every full page has a `next`, and the page after the last full one is empty.
    """

    def __init__(
        self, jobs: Mapping[str, Sequence[Job]] | None = None, *, lookahead: bool = True
    ) -> None:
        #: The fake's own lists (of the same job dicts: a test may change a job, or add one,
        #: to change what later answers hold).
        self.jobs: dict[str, list[Job]] = {key: list(value) for key, value in (jobs or {}).items()}
        self.lookahead = lookahead
        #: Every call, in order; the failed and the held ones too.
        self.calls: list[Call] = []
        self._failures: list[BaseException] = []
        self._always: BaseException | None = None
        self._gate: asyncio.Event | None = None

    def fail(self, error: BaseException, *, times: int | None = 1) -> None:
        """The next `times` calls (None: every call from now on) raise `error`."""
        if times is None:
            self._always = error
        else:
            self._failures.extend([error] * times)

    def hold(self) -> asyncio.Event:
        """Calls from now on wait (once recorded) until the event returned is set."""
        self._gate = asyncio.Event()
        return self._gate

    async def list_jobs(
        self,
        integration_id: str,
        query: JobQuery,
        *,
        page_size: int | None = None,
        cursor: str | None = None,
        keys: frozenset[str] | None = None,
    ) -> JobsPage:
        return await self._answer(Call(integration_id, query, page_size, cursor, keys))

    async def get_jobs_page(
        self,
        integration_id: str,
        params: Mapping[str, str],
        *,
        deadline: float | None = None,
        keys: frozenset[str] | None = None,
        before_attempt: Callable[[], None] | None = None,
    ) -> JobsPage:
        if before_attempt is not None:
            before_attempt()  # what it raises ends the call before anything is sent
        page_size = params.get("page_size")
        call = Call(
            integration_id,
            query_of(params),
            None if page_size is None else int(page_size),
            params.get("cursor"),
            keys,
        )
        assert call.params == dict(params), f"not parameters a `JobQuery` encodes: {params}"
        return await self._answer(call)

    async def _answer(self, call: Call) -> JobsPage:
        self.calls.append(call)
        if self._gate is not None:
            await self._gate.wait()
        if self._failures:
            raise self._failures.pop(0)
        if self._always is not None:
            raise self._always
        jobs = self.jobs.get(call.integration_id)
        if jobs is None:
            raise KomboAPIError(404, code="PLATFORM.INTEGRATION_NOT_FOUND")
        if call.query.ids is not None:
            wanted = set(call.query.ids)
            if not wanted <= {record_id(job) for job in jobs}:
                # Kombo does not say which ID is unknown.
                raise KomboAPIError(404, code="PLATFORM.INPUT_INVALID")
            jobs = [job for job in jobs if record_id(job) in wanted]
        page_size = DEFAULT_PAGE_SIZE if call.page_size is None else call.page_size
        offset = 0 if call.cursor is None else offset_of(call.cursor)
        if offset is None or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise KomboAPIError(400, code="PLATFORM.INPUT_INVALID")
        results = jobs[offset : offset + page_size]
        end = offset + len(results)
        more = end < len(jobs) if self.lookahead else len(results) == page_size
        data = {"next": cursor_at(end) if more else None, "results": results}
        body = orjson.dumps({"status": "success", "data": data})
        decoded = orjson.loads(body)["data"]
        return {"next": decoded["next"], "results": decoded["results"], "byte_size": len(body)}


_HINTS = typing.get_type_hints(JobQuery)


def query_of(params: Mapping[str, str]) -> JobQuery:
    """The `JobQuery` whose `to_params` these are (`page_size` and `cursor` left out)."""
    values: dict[str, Any] = {}
    for spec in fields(JobQuery):
        raw = params.get(spec.name)
        if raw is None:
            continue
        kinds = typing.get_args(_HINTS[spec.name])
        if any(typing.get_origin(kind) is tuple for kind in kinds):
            values[spec.name] = tuple(raw.split(","))
        elif bool in kinds:
            values[spec.name] = raw == "true"
        elif datetime in kinds:
            values[spec.name] = datetime.fromisoformat(raw)
        else:
            values[spec.name] = raw
    return JobQuery(**values)


def _conforms(fake: FakeKombo) -> tuple[JobLister, JobPageFetcher]:
    """Type-checks that the fake has both faces of the client (mypy tests/fake_kombo.py)."""
    return fake, fake
