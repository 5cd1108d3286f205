"""`KomboClient`: calls `GET /ats/jobs` with the gateway's key, retries what Kombo calls
safe to retry, and caps the calls in flight per integration."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import weakref
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Protocol

import httpx

from gateway.config import Settings
from gateway.sharing.backoff import SharedBackoff
from gateway.upstream.kombo.envelope import api_error_from_response, redacted
from gateway.upstream.kombo.errors import (
    KomboAnswerTooLarge,
    KomboAPIError,
    KomboBadAnswer,
    KomboCertificateError,
    KomboHeldBack,
    KomboRequestTooLong,
    KomboTransportError,
    transport_error,
)
from gateway.upstream.kombo.page import JobsPage, parse_jobs_page
from gateway.upstream.kombo.query import MAX_QUERY_BYTES, JobQuery, query_string_length
from gateway.upstream.retry import DeadlineExceeded, RetryPolicy
from gateway.upstream.transport import ResponseTooLarge

JOBS_PATH = "/ats/jobs"


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
        retry: RetryPolicy,
        max_concurrency: int,
        request_timeout: float,
        on_retry: Callable[[BaseException], None] | None = None,
        span: Callable[[str, Mapping[str, str]], AbstractContextManager[None]] | None = None,
        backoff: SharedBackoff | None = None,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._jobs_url = self._base_url + JOBS_PATH
        self._api_key = api_key
        self._auth = f"Bearer {api_key}"
        self._retry = retry
        self._max_concurrency = max_concurrency
        self._request_timeout = request_timeout
        self._on_retry = on_retry
        #: Kombo's "wait" per integration, held by every call (and, through Redis, by
        #: every worker and replica); None: each call honours only its own answers.
        self._backoff = backoff
        #: Opens a tracing span around each attempt (the app passes OpenTelemetry's).
        self._span = span or (lambda integration, params: contextlib.nullcontext())
        #: One concurrency cap per integration, alive while a call holds or awaits it:
        #: integrations a caller names come and go, and must not pile up.
        self._slots: weakref.WeakValueDictionary[str, asyncio.Semaphore] = (
            weakref.WeakValueDictionary()
        )

    @classmethod
    def from_settings(
        cls,
        http: httpx.AsyncClient,
        settings: Settings,
        *,
        api_key: str,
        on_retry: Callable[[BaseException], None] | None = None,
        span: Callable[[str, Mapping[str, str]], AbstractContextManager[None]] | None = None,
        backoff: SharedBackoff | None = None,
    ) -> KomboClient:
        """The client as the settings configure it (base URL, retries, caps, deadline)."""
        return cls(
            http,
            base_url=settings.base_url,
            api_key=api_key,
            retry=RetryPolicy(
                attempts=settings.retry_attempts, attempt_timeout=settings.read_timeout
            ),
            max_concurrency=settings.max_concurrency,
            request_timeout=settings.request_timeout,
            on_retry=on_retry,
            span=span,
            backoff=backoff,
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
            raise transport_error(exc, "could not reach Kombo") from None
        if response.status_code != 200:
            raise redacted(api_error_from_response(response), self._api_key)

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
            await self._hold_if_asked(integration_id, deadline)
            timeout = min(timeout, deadline - self._retry.clock())
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

    async def _hold_if_asked(self, integration_id: str, deadline: float) -> None:
        """Wait while Kombo's last 429 for this integration asks for quiet (learnt by this
        process, or by another sharing Redis); raises KomboHeldBack, sending nothing,
        when the quiet lasts past `deadline`. Waiting spends no attempt."""
        if self._backoff is None:
            return
        left = await self._backoff.remaining(integration_id)
        if left <= 0:
            return
        if self._retry.clock() + left >= deadline:
            raise KomboHeldBack(left)
        await self._retry.sleep(left)

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
            raise transport_error(exc, "no usable answer from Kombo") from None
        if response.status_code != 200:
            error = redacted(api_error_from_response(response), self._api_key)
            if error.status == 429 and error.retry_after and self._backoff is not None:
                await self._backoff.hold(integration_id, error.retry_after)
            raise error
        try:
            return parse_jobs_page(response.content, keys)
        except ValueError as exc:
            raise KomboBadAnswer(
                f"Kombo answered 200 with a body that is not a jobs page: {exc}"
            ) from None
