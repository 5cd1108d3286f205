"""A Kombo-compatible REST server for `GET /v1/ats/jobs`, in the spirit of Stripe's stripe-mock.

Why it exists: the gateway's tests, its key-less "embedded sandbox" mode and the benchmarks
all need an upstream that behaves like Kombo (auth, error envelopes, filters, cursors, rate
limit headers) without network access or a real key. Kombo facts it follows are in
`shared/kombo/jobs-api.md`; where Kombo leaves a behaviour open, the choice made here is the
strict one, so a gateway that passes against the sandbox does not rely on leniency.

Routes::

    GET    /v1/ats/jobs           Kombo's jobs list (filters, cursor pagination)
    GET    /v1/check-api-key      200 with a valid key, 401 otherwise
    GET    /healthz               {"status": "ok"}
    GET    /_sandbox/requests     log of /v1 requests since the last reset (never the key)
    DELETE /_sandbox/requests     reset that log
    GET|POST|DELETE /_sandbox/faults   queued faults (test-only; see `gateway.sandbox.faults`)
    GET|POST|DELETE /_sandbox/chaos    seeded random failures and latency for load tests
    POST   /_sandbox/jobs/changes      change jobs in memory (see `gateway.sandbox.changes`),
                                       then send Kombo's `data-changed` webhook
    GET|POST|DELETE /_sandbox/webhooks where webhooks go, with what secret, and the recent
                                       deliveries (see `gateway.sandbox.webhooks`)

Faults are applied in `_KomboEdge`, the middleware every `/v1` request passes through, after
authentication; a faulted request is logged with the status it got (0 when dropped).

Changed jobs, the webhook target and deliveries belong to one app (`SandboxState`), like the
request log: a `kombo-gateway sandbox` process has one; tests make as many as they need.

This module imports nothing of the gateway except `gateway.config`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import hmac
import itertools
import math
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Final
from urllib.parse import parse_qsl

import anyio
import orjson
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.config import SANDBOX_API_KEY
from gateway.sandbox.changes import JobStore, job_change_routes
from gateway.sandbox.data import (
    EMPLOYMENT_TYPES,
    JOB_STATUSES,
    KOMBO_ID_LENGTH,
    SANDBOX_CUSTOMER_ID,
    SANDBOX_ENVIRONMENT_ID,
    VISIBILITIES,
    IntegrationData,
    JobRecord,
    dataset,
    epoch_us,
    log_url,
)
from gateway.sandbox.faults import (
    SERVER_SEND_KEY,
    ControlError,
    FaultInjector,
    control_routes,
    drop_connection,
)
from gateway.sandbox.webhooks import (
    WebhookSender,
    WebhookTarget,
    webhook_routes,
    webhook_target,
)

RATE_LIMIT: Final = 300
RATE_LIMIT_WINDOW_SECONDS: Final = 60.0
DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 250

_JSON: Final = "application/json"


# --------------------------------------------------------------------------------------------
# Errors: Kombo's envelope
# --------------------------------------------------------------------------------------------


class KomboError(Exception):
    """An error response in Kombo's envelope; `title` is the fixed label, `message` specific."""

    def __init__(self, status: int, code: str, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.title = title
        self.message = message


def _input_invalid(message: str) -> KomboError:
    return KomboError(400, "PLATFORM.INPUT_INVALID", "Invalid input", message)


def _not_found(message: str) -> KomboError:
    return KomboError(404, "PLATFORM.INPUT_INVALID", "Not found", message)


def _authentication_invalid(message: str) -> KomboError:
    return KomboError(401, "PLATFORM.AUTHENTICATION_INVALID", "Authentication failed", message)


def _integration_not_found(message: str) -> KomboError:
    return KomboError(404, "PLATFORM.INTEGRATION_NOT_FOUND", "Integration not found", message)


def _error_response(error: KomboError, log: str) -> Response:
    details = {"code": error.code, "title": error.title, "message": error.message}
    body = {"status": "error", "error": {**details, "log_url": log}}
    return Response(orjson.dumps(body), status_code=error.status, media_type=_JSON)


# --------------------------------------------------------------------------------------------
# Shared state: request log and rate-limit windows
# --------------------------------------------------------------------------------------------


class RequestLog:
    """What reached `/v1`, in order, for tests that count upstream calls.

    A lock (not just the event loop) guards it because the sandbox may also be driven from
    other threads, e.g. a test thread reading the log while uvicorn serves.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._entries.append(entry)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class RateLimiter:
    """Kombo-like `ratelimit-*` bookkeeping per key in fixed windows; it never rejects.

    The gateway reads these headers to pace itself; enforcing them would make unrelated
    tests flaky, so a future fault (429) is the way to exercise the limit.
    """

    def __init__(
        self,
        limit: int = RATE_LIMIT,
        window_seconds: float = RATE_LIMIT_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}

    def hit(self, bucket: str) -> tuple[int, int]:
        """Count one request; returns (remaining, whole seconds until the window resets)."""
        with self._lock:
            now = self._clock()
            start, count = self._windows.get(bucket, (now, 0))
            if now - start >= self.window_seconds:
                start, count = now, 0
            self._windows[bucket] = (start, count + 1)
            if len(self._windows) > 10_000:
                self._forget_expired(now)
        reset = max(0, math.ceil(start + self.window_seconds - now))
        return max(0, self.limit - count - 1), reset

    def _forget_expired(self, now: float) -> None:
        expired = [k for k, (s, _) in self._windows.items() if now - s >= self.window_seconds]
        for bucket in expired:
            del self._windows[bucket]


@dataclass
class SandboxState:
    """Per-app mutable state, so two sandbox apps in one process never share a log."""

    log: RequestLog = field(default_factory=RequestLog)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    faults: FaultInjector = field(default_factory=FaultInjector)
    jobs: JobStore = field(default_factory=JobStore)
    webhooks: WebhookSender = field(default_factory=WebhookSender)
    _sequence: Callable[[], int] = field(default_factory=lambda: itertools.count(1).__next__)

    def next_log_url(self) -> str:
        """A fresh, deterministic log URL (one per error, like Kombo's logs)."""
        return log_url("request", str(self._sequence()))

    def error_response(self, error: KomboError) -> Response:
        """Kombo's envelope with a fresh log URL."""
        return _error_response(error, self.next_log_url())


# --------------------------------------------------------------------------------------------
# The /v1 edge: rate-limit headers, authentication, request log
# --------------------------------------------------------------------------------------------


def _is_v1(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def _bucket(authorization: str | None) -> str:
    """Rate-limit bucket per presented credential; hashed so no key sits in memory maps."""
    if authorization is None:
        return "anonymous"
    return hashlib.sha256(authorization.encode()).hexdigest()[:32]


def _authentication_problem(authorization: str | None) -> str | None:
    """Why the Authorization header does not authenticate, or None when it does."""
    if not authorization:
        return "Missing Authorization header. Send 'Authorization: Bearer <API key>'."
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return "Malformed Authorization header. Send 'Authorization: Bearer <API key>'."
    if not hmac.compare_digest(token.strip().encode(), SANDBOX_API_KEY.encode()):
        return "The API key is invalid, expired or belongs to another environment."
    return None


def _log_entry(scope: Scope, headers: Headers, status: int) -> dict[str, Any]:
    """A request-log entry; by construction it holds no header other than the integration."""
    query = scope["query_string"].decode("latin-1")
    return {
        "method": scope["method"],
        "path": scope["path"],
        "query": query,
        "params": dict(parse_qsl(query, keep_blank_values=True)),
        "integration": headers.get("x-integration-id"),
        "status": status,
    }


class _KomboEdge:
    """ASGI middleware for `/v1`: what Kombo does before and after any endpoint runs."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_v1(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        authorization = headers.get("authorization")
        remaining, reset = self.state.limiter.hit(_bucket(authorization))
        # Set on every response; a fault's own headers are added later and win.
        edge_headers = {
            "ratelimit-limit": str(self.state.limiter.limit),
            "ratelimit-remaining": str(remaining),
            "ratelimit-reset": str(reset),
        }
        log_extra: dict[str, Any] = {}

        async def send_with_edge(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                for name, value in edge_headers.items():
                    response_headers[name] = value
                # Logged before the response leaves, so a client that got it sees the entry.
                entry = _log_entry(scope, headers, message["status"])
                self.state.log.record({**entry, **log_extra})
            await send(message)

        problem = _authentication_problem(authorization)
        if problem is not None:
            response = self.state.error_response(_authentication_invalid(problem))
            await response(scope, receive, send_with_edge)
            return
        faults = self.state.faults
        plan = None
        if not faults.idle:
            plan = faults.plan(scope["path"], headers.get("x-integration-id"), _query_lists(scope))
        if plan is None:
            await self.app(scope, receive, send_with_edge)
            return
        if plan.delay_seconds > 0:
            await anyio.sleep(plan.delay_seconds)
        fault = plan.fault
        if fault is None:  # chaos latency only
            await self.app(scope, receive, send_with_edge)
            return
        log_extra["fault"] = plan.source
        if fault.drop_connection:
            entry = _log_entry(scope, headers, 0)
            self.state.log.record({**entry, **log_extra, "dropped": True})
            await drop_connection(scope, receive)
            return
        edge_headers.update(fault.headers)
        canned = fault.response(self.state.next_log_url)
        await (self.app if canned is None else canned)(scope, receive, send_with_edge)


def _query_lists(scope: Scope) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    query = scope["query_string"].decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(name, []).append(value)
    return params


# --------------------------------------------------------------------------------------------
# Query parameters of GET /v1/ats/jobs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobFilters:
    """Validated, canonical filters: lists are sorted and deduplicated, so equal meaning
    gives an equal (hashable) value, which keys the selection cache and the cursor binding.
    Field names are Kombo's parameter names."""

    ids: tuple[str, ...] | None = None
    remote_ids: tuple[str, ...] | None = None
    job_codes: tuple[str, ...] | None = None
    post_url: str | None = None
    name_contains: str | None = None
    status: str | None = None
    statuses: tuple[str, ...] | None = None
    employment_types: tuple[str, ...] | None = None
    visibilities: tuple[str, ...] | None = None
    remote_created_after: date | None = None
    updated_after_us: int | None = None
    include_deleted: bool = False
    ignore_unsupported_filters: bool = False


@dataclass(frozen=True, slots=True)
class JobQuery:
    filters: JobFilters
    page_size: int
    cursor: str | None


_PAGE_SIZE_RE: Final = re.compile(r"[0-9]{1,6}")
_ENUM_LISTS: Final = {
    "statuses": JOB_STATUSES,
    "employment_types": EMPLOYMENT_TYPES,
    "visibilities": VISIBILITIES,
}


def parse_job_query(params: QueryParams) -> JobQuery:
    """Validate every known parameter (unknown ones are ignored, as Kombo does).

    Raises:
        KomboError: 400 `PLATFORM.INPUT_INVALID` naming the bad parameter.
    """
    filters = JobFilters(
        ids=_id_list(params),
        remote_ids=_list(params, "remote_ids"),
        job_codes=_list(params, "job_codes"),
        post_url=params.get("post_url"),
        name_contains=params.get("name_contains"),
        status=_enum_value(params, "status", JOB_STATUSES),
        statuses=_enum_list(params, "statuses"),
        employment_types=_enum_list(params, "employment_types"),
        visibilities=_enum_list(params, "visibilities"),
        remote_created_after=_day(params, "remote_created_after"),
        updated_after_us=_instant_us(params, "updated_after"),
        include_deleted=_boolean(params, "include_deleted"),
        ignore_unsupported_filters=_boolean(params, "ignore_unsupported_filters"),
    )
    return JobQuery(filters, _page_size(params), params.get("cursor"))


def _list(params: QueryParams, name: str) -> tuple[str, ...] | None:
    """One comma-joined parameter (`%2C` arrives already decoded); empty means "no filter"."""
    raw = params.get(name)
    if raw is None:
        return None
    items = tuple(sorted({item for item in raw.split(",") if item}))
    return items or None


def _id_list(params: QueryParams) -> tuple[str, ...] | None:
    ids = _list(params, "ids")
    for kombo_id in ids or ():
        if len(kombo_id) != KOMBO_ID_LENGTH:
            raise _input_invalid(
                f"Invalid ID {kombo_id!r} in query parameter 'ids': "
                f"Kombo IDs are exactly {KOMBO_ID_LENGTH} characters long."
            )
    return ids


def _enum_value(params: QueryParams, name: str, allowed: Sequence[str]) -> str | None:
    value = params.get(name)
    if value is not None and value not in allowed:
        raise _input_invalid(_enum_message(name, value, allowed))
    return value


def _enum_list(params: QueryParams, name: str) -> tuple[str, ...] | None:
    allowed = _ENUM_LISTS[name]
    values = _list(params, name)
    for value in values or ():
        if value not in allowed:
            raise _input_invalid(_enum_message(name, value, allowed))
    return values


def _enum_message(name: str, value: str, allowed: Sequence[str]) -> str:
    return (
        f"Invalid value {value!r} for query parameter '{name}'. "
        f"Allowed values: {', '.join(allowed)}."
    )


def _boolean(params: QueryParams, name: str) -> bool:
    value = params.get(name)
    if value is None:
        return False
    if value not in ("true", "false"):
        raise _input_invalid(f"Query parameter '{name}' must be 'true' or 'false', got {value!r}.")
    return value == "true"


def _page_size(params: QueryParams) -> int:
    raw = params.get("page_size")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    if not _PAGE_SIZE_RE.fullmatch(raw) or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise _input_invalid(
            f"Query parameter 'page_size' must be an integer from 1 to {MAX_PAGE_SIZE}, "
            f"got {raw!r}."
        )
    return int(raw)


def _timestamp(params: QueryParams, name: str) -> datetime | None:
    """ISO 8601 (with `Z`, an offset, or none meaning UTC; with or without fractions)."""
    raw = params.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise _input_invalid(
            f"Query parameter '{name}' must be an ISO 8601 timestamp such as "
            f"'2026-05-18T09:55:30.731Z', got {raw!r}."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _day(params: QueryParams, name: str) -> date | None:
    """Kombo documents `remote_created_after` at day granularity: only the UTC day counts."""
    moment = _timestamp(params, name)
    return None if moment is None else moment.date()


def _instant_us(params: QueryParams, name: str) -> int | None:
    moment = _timestamp(params, name)
    return None if moment is None else epoch_us(moment)


# --------------------------------------------------------------------------------------------
# Selecting jobs
# --------------------------------------------------------------------------------------------

_Predicate = Callable[[JobRecord], bool]


def select_jobs(data: IntegrationData, filters: JobFilters) -> tuple[JobRecord, ...]:
    """The jobs matching `filters`, in generation order.

    Cached for the generated data, which never changes; an integration with changed jobs
    (`gateway.sandbox.changes`) is a copy, filtered on every request (it is rare, and a
    cache would have to be dropped on each change).
    """
    if data is dataset().get(data.integration_id):
        return _select(data.integration_id, filters)
    return _filter(data, filters)


@functools.lru_cache(maxsize=1024)
def _select(integration_id: str, filters: JobFilters) -> tuple[JobRecord, ...]:
    return _filter(dataset()[integration_id], filters)


def _filter(data: IntegrationData, filters: JobFilters) -> tuple[JobRecord, ...]:
    effective = _drop_unsupported(data, filters)
    if effective is None:
        return ()
    predicates = _predicates(effective)
    return tuple(job for job in data.jobs if all(check(job) for check in predicates))


def _drop_unsupported(data: IntegrationData, filters: JobFilters) -> JobFilters | None:
    """Kombo's unsupported-filter rule: match nothing, or drop them when asked to ignore."""
    used = [name for name in sorted(data.unsupported_filters) if getattr(filters, name)]
    if not used:
        return filters
    if not filters.ignore_unsupported_filters:
        return None
    dropped: dict[str, Any] = dict.fromkeys(used)
    return replace(filters, **dropped)


def _predicates(f: JobFilters) -> list[_Predicate]:
    """One check per given parameter: parameters AND, values inside a list OR."""
    checks: list[_Predicate] = []
    if not f.include_deleted:
        checks.append(lambda job: not job.deleted)
    for attribute, values in (
        ("id", f.ids),
        ("remote_id", f.remote_ids),
        ("job_code", f.job_codes),
        ("status", f.statuses),
        ("employment_type", f.employment_types),
        ("visibility", f.visibilities),
    ):
        if values is not None:
            checks.append(_member_of(attribute, frozenset(values)))
    if f.status is not None:
        checks.append(_member_of("status", frozenset({f.status})))
    if f.post_url is not None:
        checks.append(_member_of("post_url", frozenset({f.post_url})))
    checks.extend(_text_and_time_predicates(f))
    return checks


def _member_of(attribute: str, allowed: frozenset[str]) -> _Predicate:
    return lambda job: getattr(job, attribute) in allowed


def _text_and_time_predicates(f: JobFilters) -> list[_Predicate]:
    checks: list[_Predicate] = []
    if f.name_contains is not None:
        needle = f.name_contains.casefold()
        checks.append(lambda job: job.name_folded is not None and needle in job.name_folded)
    if f.remote_created_after is not None:
        day = f.remote_created_after
        checks.append(
            lambda job: job.remote_created_day is not None and job.remote_created_day >= day
        )
    if f.updated_after_us is not None:
        after = f.updated_after_us
        checks.append(lambda job: max(job.changed_at_us, job.nested_changed_at_us) > after)
    return checks


def _check_ids_exist(data: IntegrationData, ids: tuple[str, ...] | None) -> None:
    """Kombo fails the whole request when any ID is unknown, without saying which."""
    if ids and any(kombo_id not in data.by_id for kombo_id in ids):
        raise _not_found(
            "At least one of the IDs in query parameter 'ids' does not exist in this integration."
        )


# --------------------------------------------------------------------------------------------
# Cursors and pages
# --------------------------------------------------------------------------------------------

_CURSOR_RE: Final = re.compile(r"([0-9]{1,9})\.([0-9a-f]{16})")


def cursor_fingerprint(integration_id: str, query: JobQuery) -> str:
    """Short hash of everything a cursor is only valid with: integration, filters, page size."""
    canonical = repr((integration_id, query.page_size, query.filters))
    return hashlib.blake2b(canonical.encode(), digest_size=8).hexdigest()


def encode_cursor(offset: int, fingerprint: str) -> str:
    """Opaque to clients: base64url of the next offset and the fingerprint."""
    return base64.urlsafe_b64encode(f"{offset}.{fingerprint}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, fingerprint: str) -> int:
    """The offset a cursor continues at.

    Raises:
        KomboError: 400 when the cursor is malformed or was issued for other parameters.
    """
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    match = _CURSOR_RE.fullmatch(text)
    if match is None:
        raise _input_invalid("Query parameter 'cursor' is malformed. Copy it from 'data.next'.")
    if not hmac.compare_digest(match.group(2), fingerprint):
        raise _input_invalid(
            "The cursor was issued for other filters or another page_size: send the same "
            "parameters as the request that returned it."
        )
    return int(match.group(1))


def render_page(jobs: Sequence[JobRecord], next_cursor: str | None) -> bytes:
    """Assemble the page from each job's pre-encoded bytes (no per-request serialisation)."""
    return b"".join(
        (
            b'{"status":"success","data":{"next":',
            orjson.dumps(next_cursor),
            b',"results":[',
            b",".join(job.encoded for job in jobs),
            b"]}}",
        )
    )


# --------------------------------------------------------------------------------------------
# Endpoints
# --------------------------------------------------------------------------------------------


class _Endpoints:
    """Request handlers; authentication already happened in `_KomboEdge`."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def list_jobs(self, request: Request) -> Response:
        try:
            data = _integration(request, self.state.jobs)
            query = parse_job_query(request.query_params)
            _check_ids_exist(data, query.filters.ids)
            fingerprint = cursor_fingerprint(data.integration_id, query)
            offset = decode_cursor(query.cursor, fingerprint) if query.cursor else 0
        except KomboError as error:
            return self.state.error_response(error)
        jobs = select_jobs(data, query.filters)
        end = offset + query.page_size
        next_cursor = encode_cursor(end, fingerprint) if end < len(jobs) else None
        return Response(render_page(jobs[offset:end], next_cursor), media_type=_JSON)

    async def check_api_key(self, request: Request) -> Response:
        body = {
            "status": "success",
            "data": {"environment_id": SANDBOX_ENVIRONMENT_ID, "customer_id": SANDBOX_CUSTOMER_ID},
        }
        return Response(orjson.dumps(body), media_type=_JSON)

    async def unknown_route(self, request: Request) -> Response:
        message = f"There is no endpoint {request.method} {request.url.path}."
        return self.state.error_response(_not_found(message))

    async def requests(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.state.log.clear()
            return Response(status_code=204)
        body = {"requests": self.state.log.snapshot()}
        return Response(orjson.dumps(body), media_type=_JSON)

    async def healthz(self, request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type=_JSON)


def _integration(request: Request, jobs: JobStore) -> IntegrationData:
    integration_id = request.headers.get("x-integration-id")
    if not integration_id:
        raise _input_invalid(
            "Missing X-Integration-Id header: send the ID of the integration to read from."
        )
    data = jobs.integration(integration_id)
    if data is None:
        raise _integration_not_found(
            f"No integration with ID {integration_id!r} exists in this environment."
        )
    return data


class _SandboxApp(Starlette):
    """Starlette that remembers the server's own `send` for the request, so a fault can
    find uvicorn's transport and drop the connection (Starlette's middleware wraps `send`)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[SERVER_SEND_KEY] = send
        await super().__call__(scope, receive, send)


def create_sandbox_app(
    *, webhook_url: str | None = None, webhook_secret: str | None = None
) -> Starlette:
    """A fresh sandbox ASGI app with its own request log, rate-limit windows, faults, job
    changes and webhook target.

    With `webhook_url` and `webhook_secret` (both or neither), a job change sends Kombo's
    signed `data-changed` there from the start, as `POST /_sandbox/webhooks` would set up.

    Raises:
        ValueError: only one of the two given, or either invalid (the message never
            contains the secret).
    """
    state = SandboxState(webhooks=WebhookSender(_startup_target(webhook_url, webhook_secret)))
    endpoints = _Endpoints(state)
    routes = [
        Route("/v1/ats/jobs", endpoints.list_jobs, methods=["GET"]),
        Route("/v1/check-api-key", endpoints.check_api_key, methods=["GET"]),
        Route("/v1/{rest:path}", endpoints.unknown_route),
        Route("/healthz", endpoints.healthz, methods=["GET"]),
        Route("/_sandbox/requests", endpoints.requests, methods=["GET", "DELETE"]),
        *control_routes(state.faults),
        *job_change_routes(state.jobs, state.webhooks),
        *webhook_routes(state.webhooks),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await state.webhooks.aclose()  # no delivery outlives the server (when lifespan runs)

    middleware = [Middleware(_KomboEdge, state=state)]
    app = _SandboxApp(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.sandbox = state
    dataset()  # build the data now, not inside the first request
    return app


def _startup_target(url: str | None, secret: str | None) -> WebhookTarget | None:
    if url is None and secret is None:
        return None
    if url is None or secret is None:
        raise ValueError("webhook_url and webhook_secret go together: give both or neither")
    try:
        return webhook_target(url, secret)
    except ControlError as error:
        raise ValueError(f"webhook: {error}") from None


__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "RATE_LIMIT",
    "JobFilters",
    "JobQuery",
    "KomboError",
    "RateLimiter",
    "RequestLog",
    "SandboxState",
    "create_sandbox_app",
    "cursor_fingerprint",
    "decode_cursor",
    "encode_cursor",
    "parse_job_query",
    "render_page",
    "select_jobs",
]
