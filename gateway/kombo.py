"""Kombo REST client for `GET /ats/jobs`: auth headers, parameter encoding, error envelope.

Usage::

    async with httpx.AsyncClient(timeout=httpx.Timeout(30, connect=5)) as http:
        kombo = KomboClient(http, base_url="https://api.kombo.dev/v1", api_key=key)
        page = await kombo.list_jobs("personio:CBNM...", JobQuery(statuses=("OPEN",)))
        page["results"], page["next"]

Errors (this module knows nothing of GraphQL; `gateway.errors` maps these to contract codes)::

    KomboError                  any failure of a Kombo call
    ├── KomboAPIError           Kombo answered with a non-200 status (envelope fields kept)
    └── KomboTransportError     no usable answer: timeout, connection failure, unreadable body

The caller owns the `httpx.AsyncClient` (one per process, pooled); the client only
borrows it, so tests can hand in a client whose transport talks to the sandbox.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Protocol, TypedDict

import httpx
import orjson

JOBS_PATH = "/ats/jobs"
#: Kombo's page size limit for `GET /ats/jobs`.
MAX_PAGE_SIZE = 250


class JobsPage(TypedDict):
    """`data` of a successful `GET /ats/jobs` answer: Kombo's job dicts, untouched,
    and the size of the body they came in (what caches account for)."""

    next: str | None
    results: list[dict[str, Any]]
    byte_size: int


class JobLister(Protocol):
    """Anything that lists jobs like `KomboClient.list_jobs` (the client, or a cache over it)."""

    async def list_jobs(
        self,
        integration_id: str,
        query: JobQuery,
        *,
        page_size: int | None = None,
        cursor: str | None = None,
    ) -> JobsPage: ...


class KomboError(Exception):
    """Base of every failure of a Kombo call."""


class KomboAPIError(KomboError):
    """Kombo answered with an error status; the envelope's fields are kept as sent.

    `code` is Kombo's machine key (e.g. `PLATFORM.RATE_LIMIT_EXCEEDED`) and may be
    None: load-balancer pages and old error bodies carry no envelope. Branch on
    `code` first and on `status` only when `code` is missing, as Kombo asks.
    """

    def __init__(
        self,
        status: int,
        *,
        code: str | None = None,
        title: str | None = None,
        message: str | None = None,
        log_url: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.title = title
        self.message = message
        self.log_url = log_url
        #: Seconds until a retry may succeed, from `Retry-After` or `ratelimit-reset`.
        self.retry_after = retry_after
        super().__init__(f"Kombo answered HTTP {status} ({code or 'no code'}): {message or title}")


class KomboTransportError(KomboError):
    """No usable answer from Kombo: timeout, connection failure or a body that is not JSON."""


@dataclass(frozen=True, slots=True)
class JobQuery:
    """Kombo's filters for `GET /ats/jobs`, in Kombo's own names and semantics.

    Lists OR their values, different filters AND. `None` means "not set"; the
    caller decides what an empty list means before building a query.
    """

    ids: tuple[str, ...] | None = None
    remote_ids: tuple[str, ...] | None = None
    job_codes: tuple[str, ...] | None = None
    post_url: str | None = None
    status: str | None = None
    statuses: tuple[str, ...] | None = None
    employment_types: tuple[str, ...] | None = None
    visibilities: tuple[str, ...] | None = None
    remote_created_after: datetime | None = None
    name_contains: str | None = None
    updated_after: datetime | None = None
    include_deleted: bool | None = None
    ignore_unsupported_filters: bool | None = None

    def to_params(self) -> dict[str, str]:
        """Encode as Kombo query parameters: lists comma-joined, booleans lowercase,
        timestamps `YYYY-MM-DDTHH:mm:ss.sssZ`. Unset filters are left out, so two
        equal queries always give equal parameters (the cache and cursors rely on it).
        """
        params: dict[str, str] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            if value is not None:
                params[spec.name] = encode_param(value)
        return params

    def page_params(
        self, page_size: int | None = None, cursor: str | None = None
    ) -> dict[str, str]:
        """`to_params` plus the page to fetch: what one `GET /ats/jobs` sends."""
        params = self.to_params()
        if page_size is not None:
            params["page_size"] = str(page_size)
        if cursor is not None:
            params["cursor"] = cursor
        return params


def encode_param(value: object) -> str:
    """Encode one query parameter value the way Kombo documents it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, tuple | list):
        return ",".join(str(item) for item in value)
    return str(value)


def format_timestamp(value: datetime) -> str:
    """Kombo's timestamp format: UTC with milliseconds. A naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class KomboClient:
    """Calls Kombo's `GET /ats/jobs` with the gateway's key.

    One instance per process and credential; it is stateless apart from the
    borrowed `httpx.AsyncClient`, so concurrent requests share its connection pool.
    """

    def __init__(self, http: httpx.AsyncClient, *, base_url: str, api_key: str) -> None:
        self._http = http
        self._jobs_url = base_url.rstrip("/") + JOBS_PATH
        self._api_key = api_key
        self._auth = f"Bearer {api_key}"

    async def list_jobs(
        self,
        integration_id: str,
        query: JobQuery,
        *,
        page_size: int | None = None,
        cursor: str | None = None,
    ) -> JobsPage:
        """Fetch one page of jobs.

        Kombo requires the same filters and page size on every follow-up page, so
        callers re-send `query` and `page_size` with `cursor`.

        Raises:
            KomboAPIError: Kombo answered with an error status.
            KomboTransportError: no usable answer.
        """
        return await self.get_jobs_page(integration_id, query.page_params(page_size, cursor))

    async def get_jobs_page(self, integration_id: str, params: Mapping[str, str]) -> JobsPage:
        """Fetch one page with already-encoded parameters (see `JobQuery.to_params`)."""
        headers = {
            "Authorization": self._auth,
            "X-Integration-Id": integration_id,
            "Accept": "application/json",
        }
        try:
            response = await self._http.get(self._jobs_url, params=params, headers=headers)
        except httpx.TimeoutException as exc:
            raise KomboTransportError(
                f"Kombo did not answer in time ({type(exc).__name__})"
            ) from None
        except httpx.RequestError as exc:
            # Connection failures, and bodies that fail to decode (e.g. corrupt gzip).
            raise KomboTransportError(
                f"no usable answer from Kombo ({type(exc).__name__})"
            ) from None
        if response.status_code != 200:
            raise _redacted(api_error_from_response(response), self._api_key)
        try:
            body = orjson.loads(response.content)
            data = body["data"]
            return {
                "next": data.get("next") or None,
                "results": list(data["results"]),
                "byte_size": len(response.content),
            }
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise KomboTransportError(
                "Kombo answered 200 with a body that is not a jobs page"
            ) from None


def _redacted(error: KomboAPIError, secret: str) -> KomboAPIError:
    """Defence in depth: should Kombo ever echo the key in an error, it goes no further."""
    for name in ("title", "message"):
        value = getattr(error, name)
        if value and secret in value:
            setattr(error, name, value.replace(secret, "[redacted]"))
    if secret in error.args[0]:
        error.args = (error.args[0].replace(secret, "[redacted]"),)
    return error


def api_error_from_response(response: httpx.Response) -> KomboAPIError:
    """Parse Kombo's error envelope leniently: any field may be missing, the body may be HTML."""
    error: Mapping[str, Any] = {}
    try:
        body = orjson.loads(response.content)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
    except orjson.JSONDecodeError:
        pass
    return KomboAPIError(
        response.status_code,
        code=_str_or_none(error.get("code")),
        title=_str_or_none(error.get("title")),
        message=_str_or_none(error.get("message")),
        log_url=_str_or_none(error.get("log_url")),
        retry_after=retry_after_seconds(response.headers),
    )


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from `Retry-After` (seconds or HTTP date), else `ratelimit-reset`."""
    raw = headers.get("retry-after")
    if raw:
        try:
            seconds = float(raw)
        except ValueError:
            when = _http_date(raw)
            if when is not None:
                current = time.time() if now is None else now
                return max(0.0, when - current)
        else:
            if math.isfinite(seconds):
                return max(0.0, seconds)
    reset = headers.get("ratelimit-reset")
    if reset:
        try:
            seconds = float(reset)
        except ValueError:
            return None
        if math.isfinite(seconds):
            return max(0.0, seconds)
    return None


def _http_date(value: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, OverflowError):
        return None


def _str_or_none(value: object) -> str | None:
    """A string field of the envelope; an empty string counts as missing."""
    return value if isinstance(value, str) and value else None
