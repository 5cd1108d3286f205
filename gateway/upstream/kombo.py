"""Kombo REST client for `GET /ats/jobs`: auth headers, parameter encoding, error envelope.

Usage::

    async with httpx.AsyncClient(timeout=httpx.Timeout(30, connect=5)) as http:
        kombo = KomboClient(http, base_url="https://api.kombo.dev/v1", api_key=key)
        page = await kombo.list_jobs("personio:CBNM...", JobQuery(statuses=("OPEN",)))
        page["results"], page["next"]

Errors (this module knows nothing of GraphQL; `gateway.errors` maps these to contract codes)::

    KomboError                  any failure of a Kombo call
    ├── KomboAPIError           Kombo answered with a non-200 status (envelope fields kept)
    ├── KomboTransportError     no usable answer: timeout, connection failure, unreadable body
    │   └── KomboCertificateError   Kombo's TLS certificate was not accepted
    ├── KomboBadAnswer          an answer that is not what Kombo documents (not retried)
    │   └── KomboAnswerTooLarge     larger than `KOMBO_MAX_RESPONSE_BYTES`
    └── KomboRequestTooLong     the call's URL would pass what servers accept (not sent)

The caller owns the `httpx.AsyncClient` (one per process, pooled); the client only
borrows it, so tests can hand in a client whose transport talks to the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import email.utils
import logging
import math
import ssl
import time
import urllib.parse
import weakref
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol, TypedDict

import httpx
import msgspec
import orjson

from gateway.upstream.retry import DeadlineExceeded, RetryPolicy
from gateway.upstream.transport import ResponseTooLarge

logger = logging.getLogger("gateway.kombo")

JOBS_PATH = "/ats/jobs"
#: Kombo's page size limit for `GET /ats/jobs`.
MAX_PAGE_SIZE = 250
#: The longest query string a call may carry. Kombo's own limit is not documented; 8 KiB
#: is the common default of HTTP servers and proxies for a request line.
MAX_QUERY_BYTES = 8 * 1024
#: The longest `next` cursor taken from Kombo (its cursors are short base64 strings;
#: a longer one would make every cursor we issue, and every follow-up URL, that long).
MAX_CURSOR_LENGTH = 2048


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
        keys: frozenset[str] | None = None,
    ) -> JobsPage: ...


class JobPageFetcher(Protocol):
    """Anything that fetches a page from encoded parameters like `KomboClient.get_jobs_page`
    (what `CachedKombo` sits on: the client, or a fake of it in tests)."""

    async def get_jobs_page(
        self,
        integration_id: str,
        params: Mapping[str, str],
        *,
        deadline: float | None = None,
        keys: frozenset[str] | None = None,
        before_attempt: Callable[[], None] | None = None,
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
    """No usable answer from Kombo: timeout, connection failure, a body cut short."""


class KomboCertificateError(KomboTransportError):
    """Kombo's TLS certificate was not accepted: an operator's problem (a proxy that
    intercepts TLS, a wrong `KOMBO_BASE_URL`, missing CA certificates), not a network
    blip, so it is named as such in errors, `/readyz` and the log."""


#: Seconds between two log lines about a refused certificate (every call fails alike).
_CERTIFICATE_LOG_INTERVAL = 60.0
_certificate_logged_at = -math.inf


def _transport_error(exc: httpx.RequestError, what: str) -> KomboTransportError:
    """The error for a request that got no usable answer; a refused certificate says so
    (and is logged, at most once a minute) instead of being a bare `ConnectError`."""
    verification = _certificate_failure(exc)
    if verification is None:
        return KomboTransportError(f"{what} ({type(exc).__name__})")
    global _certificate_logged_at
    now = time.monotonic()
    if now - _certificate_logged_at >= _CERTIFICATE_LOG_INTERVAL:
        _certificate_logged_at = now
        logger.error(
            "Kombo's TLS certificate was not accepted (%s): check KOMBO_BASE_URL, and any "
            "proxy between the gateway and Kombo that intercepts TLS",
            getattr(verification, "verify_message", None) or verification,
        )
    return KomboCertificateError(f"{what}: its TLS certificate was not accepted")


def _certificate_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification error behind `exc` (the innermost: transports wrap
    it in errors of their own), if that is what it is."""
    seen: set[int] = set()
    found = None
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ssl.SSLCertVerificationError):
            found = cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return found


class KomboBadAnswer(KomboError):
    """Kombo answered, but not in the shape it documents (a page that is not a jobs page,
    a job without a string `id`). Not retried: asking again gets the same answer."""


class KomboAnswerTooLarge(KomboBadAnswer):
    """The answer passed the byte cap, as received or after decompression; reading stopped
    there, and nothing of it is used."""


class KomboRequestTooLong(KomboError):
    """The call was not sent: its query string would be longer than `MAX_QUERY_BYTES`."""


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


def parse_jobs_page(content: bytes, keys: frozenset[str] | None = None) -> JobsPage:
    """A `GET /ats/jobs` body as a `JobsPage`; with `keys`, each job keeps only those keys.

    Why `keys`: building Python objects for a whole page is most of what a gateway pays
    for a large page (a 100-job page is ~360 KB of nested JSON). A caller that will read
    a few keys of each job, and keeps the page for nobody else, names them; the other
    keys are skipped, not built. `id` is always kept. A page of unusual shape (a job that
    is not an object, no `results`) is read in full, exactly as without `keys`.

    Raises:
        ValueError: the body is not a jobs page as Kombo documents it: not JSON, no `data`
            object, `results` not a list, `next` neither a string nor null (nor too long),
            or a job that is not an object with a string `id`.
    """
    data: Any = None
    if keys is not None:
        try:
            data = _page_decoder(keys | _ALWAYS_KEPT).decode(content)["data"]
        except (msgspec.DecodeError, KeyError):
            data = None  # read in full below: same result, or the same error
    if data is None:
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise ValueError("the body is not JSON") from exc
        data = body.get("data") if isinstance(body, dict) else None
    return _checked_page(data, len(content))


def _checked_page(data: Any, byte_size: int) -> JobsPage:
    """`data` as a `JobsPage`, once its shape is what Kombo documents. Raises ValueError."""
    if not isinstance(data, dict):
        raise ValueError("`data` is not an object")
    results, next_cursor = data.get("results"), data.get("next") or None
    if not isinstance(results, list):
        raise ValueError("`data.results` is not a list")
    if next_cursor is not None and (
        not isinstance(next_cursor, str) or len(next_cursor) > MAX_CURSOR_LENGTH
    ):
        raise ValueError(f"`data.next` is not a cursor of at most {MAX_CURSOR_LENGTH} characters")
    for record in results:
        if type(record) is not dict or type(record.get("id")) is not str:
            raise ValueError("a job in `data.results` is not an object with a string `id`")
    return {"next": next_cursor, "results": results, "byte_size": byte_size}


_ALWAYS_KEPT = frozenset({"id"})


#: `TypedDict` called with names known only at run time (mypy checks only literal ones).
_typed_dict: Any = TypedDict


@lru_cache(maxsize=256)
def _page_decoder(keys: frozenset[str]) -> msgspec.json.Decoder[Any]:
    """A decoder of Kombo's page envelope whose jobs keep `keys` (values as sent)."""
    job = _typed_dict("Job", dict.fromkeys(sorted(keys), Any), total=False)
    data = _typed_dict("Data", {"results": list[job], "next": Any}, total=False)  # type: ignore[valid-type]
    return msgspec.json.Decoder(_typed_dict("Page", {"data": data}))


def record_id(record: object) -> str | None:
    """A record's Kombo `id`, or None for a malformed record (one is served as sent,
    but never indexed by an ID it does not have)."""
    kombo_id = record.get("id") if isinstance(record, dict) else None
    return kombo_id if isinstance(kombo_id, str) else None


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


#: Kombo codes its docs call safe to retry (the concurrency limit asks for backoff).
RETRYABLE_CODES = frozenset(
    {
        "PLATFORM.RATE_LIMIT_EXCEEDED",
        "PLATFORM.CONCURRENCY_LIMIT_EXCEEDED",
        "REMOTE.RATE_LIMIT_EXCEEDED",
        "REMOTE.SERVICE_UNAVAILABLE",
    }
)
#: Statuses worth retrying when the answer carries no code (load balancers, gateways).
RETRYABLE_BARE_STATUSES = frozenset({429, 502, 503, 504})


def retry_delay(error: BaseException) -> float | None:
    """How long Kombo asked us to wait before retrying `error`; None: never retry it.

    The code decides before the status: a 503 carrying `INTEGRATION.SETUP_SYNC_PENDING`
    (Kombo's answer before 2026-05-19) is not retried, a bare 503 is.
    """
    if isinstance(error, KomboCertificateError):
        return None  # the same certificate is refused again
    if isinstance(error, KomboTransportError):
        return 0.0  # GET is idempotent: a timeout or a dropped connection may be retried
    if not isinstance(error, KomboAPIError):
        return None
    if error.code is not None:
        retryable = error.code in RETRYABLE_CODES
    else:
        retryable = error.status in RETRYABLE_BARE_STATUSES
    if not retryable:
        return None
    return error.retry_after or 0.0


class KomboClient:
    """Calls Kombo's `GET /ats/jobs` with the gateway's key.

    One instance per process and credential; concurrent requests share the borrowed
    `httpx.AsyncClient`'s pool. Each call retries what Kombo calls safe to retry
    (`retry_delay`) within the caller's deadline, and at most `max_concurrency`
    calls per integration are in flight, so the gateway never provokes Kombo's
    concurrency limit.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str,
        retry: RetryPolicy | None = None,
        max_concurrency: int = 16,
        request_timeout: float = 20.0,
        on_retry: Callable[[BaseException], None] | None = None,
        span: Callable[[str, Mapping[str, str]], AbstractContextManager[None]] | None = None,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._jobs_url = self._base_url + JOBS_PATH
        self._api_key = api_key
        self._auth = f"Bearer {api_key}"
        self._retry = retry or RetryPolicy()
        self._max_concurrency = max_concurrency
        self._request_timeout = request_timeout
        self._on_retry = on_retry
        #: Opens a tracing span around each attempt (the app passes OpenTelemetry's).
        self._span = span or (lambda integration, params: contextlib.nullcontext())
        #: One concurrency cap per integration, alive while a call holds or awaits it:
        #: integrations a caller names come and go, and must not pile up.
        self._slots: weakref.WeakValueDictionary[str, asyncio.Semaphore] = (
            weakref.WeakValueDictionary()
        )

    @property
    def concurrency_caps(self) -> int:
        """How many integrations have a concurrency cap alive (a call holds or awaits it)."""
        return len(self._slots)

    def with_key(self, api_key: str) -> KomboClient:
        """The same client (pool, concurrency caps, retries) calling with another key:
        a caller's own key in pass-through mode."""
        other = copy.copy(self)
        other._api_key = api_key
        other._auth = f"Bearer {api_key}"
        return other

    async def check_api_key(self, *, timeout: float = 5.0) -> None:
        """Ask Kombo whether the key works (`GET /check-api-key`, no integration needed).

        Raises:
            KomboAPIError: Kombo rejected it.
            KomboTransportError: no usable answer.
        """
        try:
            response = await self._http.get(
                self._base_url + "/check-api-key",
                headers={"Authorization": self._auth, "Accept": "application/json"},
                timeout=timeout,
            )
        except ResponseTooLarge:
            raise KomboAnswerTooLarge("Kombo's answer was larger than allowed") from None
        except httpx.RequestError as exc:
            raise _transport_error(exc, "could not reach Kombo") from None
        if response.status_code != 200:
            raise _redacted(api_error_from_response(response), self._api_key)

    async def list_jobs(
        self,
        integration_id: str,
        query: JobQuery,
        *,
        page_size: int | None = None,
        cursor: str | None = None,
        keys: frozenset[str] | None = None,
    ) -> JobsPage:
        """Fetch one page of jobs (with `keys`, each job keeps only those: see
        `parse_jobs_page`).

        Kombo requires the same filters and page size on every follow-up page, so
        callers re-send `query` and `page_size` with `cursor`.

        Raises:
            KomboAPIError: Kombo answered with an error status.
            KomboTransportError: no usable answer.
        """
        params = query.page_params(page_size, cursor)
        return await self.get_jobs_page(integration_id, params, keys=keys)

    @staticmethod
    def check_query_length(params: Mapping[str, str]) -> None:
        """Raises KomboRequestTooLong when these parameters make too long a query string."""
        # Percent-encoding at most triples a value: most calls need no encoding to know.
        if sum(len(key) + len(value) + 2 for key, value in params.items()) * 3 <= MAX_QUERY_BYTES:
            return
        length = query_string_length(params)
        if length > MAX_QUERY_BYTES:
            raise KomboRequestTooLong(
                f"the filter makes a Kombo URL with a {length}-byte query string; "
                f"at most {MAX_QUERY_BYTES} bytes are sent"
            )

    async def get_jobs_page(
        self,
        integration_id: str,
        params: Mapping[str, str],
        *,
        deadline: float | None = None,
        keys: frozenset[str] | None = None,
        before_attempt: Callable[[], None] | None = None,
    ) -> JobsPage:
        """Fetch one page with already-encoded parameters (see `JobQuery.page_params`),
        retrying until `deadline` (a `time.monotonic()` instant; default: the client's
        request timeout from now). `keys`: see `parse_jobs_page`. `before_attempt` runs
        before each attempt, retries included; what it raises ends the call (a caller's
        budget of calls).

        Raises:
            KomboRequestTooLong: the parameters are too long to send; nothing was sent.
        """
        self.check_query_length(params)
        if deadline is None:
            deadline = self._retry.clock() + self._request_timeout

        async def attempt(timeout: float) -> JobsPage:
            if before_attempt is not None:
                before_attempt()
            with self._span(integration_id, params):
                return await self._get_once(integration_id, params, timeout, keys)

        try:
            return await self._retry.run(
                attempt, deadline=deadline, retry_after=retry_delay, on_retry=self._on_retry
            )
        except DeadlineExceeded as exc:
            raise KomboTransportError(str(exc)) from None

    async def _get_once(
        self,
        integration_id: str,
        params: Mapping[str, str],
        timeout: float,
        keys: frozenset[str] | None = None,
    ) -> JobsPage:
        headers = {
            "Authorization": self._auth,
            "X-Integration-Id": integration_id,
            "Accept": "application/json",
        }
        slot = self._slots.get(integration_id)
        if slot is None:
            slot = self._slots[integration_id] = asyncio.Semaphore(self._max_concurrency)
        try:
            async with asyncio.timeout(timeout):
                async with slot:
                    # The attempt's deadline is the `asyncio.timeout` above; per-phase
                    # limits (connect, read, pool) stay the client's own.
                    response = await self._http.get(self._jobs_url, params=params, headers=headers)
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise KomboTransportError(
                f"Kombo did not answer in time ({type(exc).__name__})"
            ) from None
        except ResponseTooLarge:
            raise KomboAnswerTooLarge("Kombo's answer was larger than allowed") from None
        except httpx.DecodingError:
            # The body as sent cannot be decoded (corrupt gzip, a coding we did not ask
            # for): asking again gets the same body. A body cut short is a ReadError.
            raise KomboBadAnswer("Kombo's answer could not be decoded") from None
        except httpx.RequestError as exc:
            # Connection failures (also a pooled keep-alive connection Kombo closed just
            # before reuse), and bodies that fail to decode (e.g. corrupt gzip).
            raise _transport_error(exc, "no usable answer from Kombo") from None
        if response.status_code != 200:
            raise _redacted(api_error_from_response(response), self._api_key)
        try:
            return parse_jobs_page(response.content, keys)
        except ValueError as exc:
            raise KomboBadAnswer(
                f"Kombo answered 200 with a body that is not a jobs page: {exc}"
            ) from None


def query_string_length(params: Mapping[str, str]) -> int:
    """Bytes of the query string these parameters encode to (as httpx encodes them)."""
    return len(urllib.parse.urlencode(params, quote_via=urllib.parse.quote))


REDACTED = "[redacted]"


def redact(text: str, secret: str) -> str:
    """`text` with `secret` (as is, or percent-encoded) replaced."""
    if not secret:
        return text
    for form in {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}:
        text = text.replace(form, REDACTED)
    return text


def _redacted(error: KomboAPIError, secret: str) -> KomboAPIError:
    """Every string Kombo sent back, and the error's own text, without the key: should
    Kombo ever echo it (in a message, a code, a log URL), it goes no further."""
    for name in ("code", "title", "message", "log_url"):
        value = getattr(error, name)
        if value:
            setattr(error, name, redact(value, secret))
    error.args = (redact(str(error.args[0]), secret),)
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
    code = _str_or_none(error.get("code"))
    # `ratelimit-reset` times Kombo's own window: it says when to retry only when Kombo's
    # limit is what failed (not the remote ATS's, not a 503).
    kombo_limited = response.status_code == 429 and code in (None, "PLATFORM.RATE_LIMIT_EXCEEDED")
    return KomboAPIError(
        response.status_code,
        code=code,
        title=_str_or_none(error.get("title")),
        message=_str_or_none(error.get("message")),
        log_url=_str_or_none(error.get("log_url")),
        retry_after=retry_after_seconds(response.headers, rate_limited=kombo_limited),
    )


def retry_after_seconds(
    headers: Mapping[str, str], *, rate_limited: bool = True, now: float | None = None
) -> float | None:
    """Seconds to wait from `Retry-After` (seconds or HTTP date), else, for a rate-limit
    answer, `ratelimit-reset` (Kombo sends it on every answer; on a 503 it says nothing
    about when the service is back)."""
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
    reset = headers.get("ratelimit-reset") if rate_limited else None
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


#: The most characters of one envelope field passed on (a hostile or broken answer may
#: carry megabytes in `message`; callers and logs get the start of it).
MAX_ENVELOPE_FIELD = 1_000


def _str_or_none(value: object) -> str | None:
    """A string field of the envelope, cut to `MAX_ENVELOPE_FIELD` characters; an empty
    string counts as missing."""
    if not isinstance(value, str) or not value:
        return None
    return value if len(value) <= MAX_ENVELOPE_FIELD else value[:MAX_ENVELOPE_FIELD] + "…"
