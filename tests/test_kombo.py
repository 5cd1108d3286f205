"""`gateway.upstream.kombo`: the exact request KomboClient sends, and how it reads Kombo's answers.

Every test talks to the client through `httpx.MockTransport`, so what is asserted is
the request as it would leave the process and the answer as Kombo would send it.
"""

from __future__ import annotations

import asyncio
import email.utils
import gc
import traceback
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest

from gateway.config import Settings
from gateway.upstream.kombo import (
    JobQuery,
    JobsPage,
    KomboAnswerTooLarge,
    KomboAPIError,
    KomboBadAnswer,
    KomboClient,
    KomboError,
    KomboTransportError,
    retry_after_seconds,
    retry_delay,
)
from gateway.upstream.retry import RetryPolicy
from gateway.upstream.transport import ResponseTooLarge

API_KEY = "ks_prod_7hQ2mXsecretKEYvalue9pLw"
BASE_URL = "https://api.kombo.test/v1"
INTEGRATION = "personio:CBNMt7dSNCzBdnRTx87dev4E"
JOB_A = "26vafvWSRmbhNcxJYqjCzuJg"
JOB_B = "3KbZk8D4sXq7mNpRtYwVhL2e"

Handler = Callable[[httpx.Request], httpx.Response]


def page_body(results: list[dict[str, Any]] | None = None, next_: Any = None) -> bytes:
    return orjson.dumps({"status": "success", "data": {"next": next_, "results": results or []}})


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=page_body(), headers={"content-type": "application/json"})


class Recorder:
    """A MockTransport handler that records every request and answers with `respond`."""

    def __init__(self, respond: Handler = ok) -> None:
        self.respond = respond
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(request)

    @property
    def only(self) -> httpx.Request:
        assert len(self.requests) == 1, self.requests
        return self.requests[0]


async def list_jobs(
    handler: Handler,
    query: JobQuery | None = None,
    *,
    base_url: str = BASE_URL,
    page_size: int | None = None,
    cursor: str | None = None,
) -> JobsPage:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        # One attempt: these tests read how one answer is parsed (retries: test_retry.py).
        client = KomboClient(
            http,
            base_url=base_url,
            api_key=API_KEY,
            retry=RetryPolicy(attempts=1, attempt_timeout=30),
            max_concurrency=16,
            request_timeout=20,
        )
        return await client.list_jobs(
            INTEGRATION, query or JobQuery(), page_size=page_size, cursor=cursor
        )


def query_pairs(request: httpx.Request) -> list[tuple[str, str]]:
    """The query string percent-decoded, as a list so that repeated keys would show."""
    return parse_qsl(request.url.query.decode("ascii"), keep_blank_values=True, strict_parsing=True)


def sent_params(request: httpx.Request) -> dict[str, str]:
    pairs = query_pairs(request)
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), f"a parameter was repeated: {keys}"
    return dict(pairs)


async def sent_request(query: JobQuery | None = None, **kwargs: Any) -> httpx.Request:
    recorder = Recorder()
    await list_jobs(recorder, query, **kwargs)
    return recorder.only


async def raised(handler: Handler) -> KomboError:
    with pytest.raises(KomboError) as info:
        await list_jobs(handler)
    return info.value


async def raised_after_retries(handler: Handler) -> KomboError:
    """The error of a call whose client would retry what is worth retrying (no waits)."""

    async def no_wait(seconds: float) -> None:
        pass

    policy = RetryPolicy(attempts=4, attempt_timeout=30, sleep=no_wait)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = KomboClient(
            http,
            base_url=BASE_URL,
            api_key=API_KEY,
            retry=policy,
            max_concurrency=16,
            request_timeout=20,
        )
        with pytest.raises(KomboError) as info:
            await client.list_jobs(INTEGRATION, JobQuery())
    return info.value


def answer(
    status: int, body: bytes | str | None = None, headers: dict[str, str] | None = None
) -> Handler:
    content = body.encode() if isinstance(body, str) else (body or b"")
    return lambda request: httpx.Response(status, content=content, headers=headers)


def envelope(**error: Any) -> bytes:
    return orjson.dumps({"status": "error", "error": error})


# --- the request ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url",
    [
        pytest.param(BASE_URL, id="plain"),
        pytest.param(BASE_URL + "/", id="trailing-slash"),
    ],
)
async def test_request_is_a_get_of_ats_jobs_under_the_base_url(base_url: str) -> None:
    request = await sent_request(base_url=base_url)

    assert request.method == "GET"
    assert request.url.scheme == "https"
    assert request.url.host == "api.kombo.test"
    assert request.url.path == "/v1/ats/jobs"


async def test_request_carries_bearer_key_integration_and_accept_headers() -> None:
    request = await sent_request()

    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["X-Integration-Id"] == INTEGRATION
    assert request.headers["Accept"] == "application/json"


async def test_unset_filters_send_no_query_parameters_at_all() -> None:
    request = await sent_request(JobQuery())

    assert query_pairs(request) == []
    assert str(request.url) == f"{BASE_URL}/ats/jobs"


async def test_every_filter_is_sent_under_kombos_name_with_kombos_encoding() -> None:
    query = JobQuery(
        ids=(JOB_A, JOB_B),
        remote_ids=("32", "req 7/b"),
        job_codes=("ENG-1",),
        post_url="https://jobs.example.com/apply?job=7&src=kombo",
        status="OPEN",
        statuses=("OPEN", "DRAFT"),
        employment_types=("FULL_TIME", "PART_TIME"),
        visibilities=("PUBLIC", "UNLISTED"),
        remote_created_after=datetime(2024, 1, 2, tzinfo=UTC),
        name_contains="Engineer & Co = 100%",
        updated_after=datetime(2025, 3, 4, 5, 6, 7, 891_234, tzinfo=UTC),
        include_deleted=True,
        ignore_unsupported_filters=False,
    )

    request = await sent_request(query, page_size=250, cursor="eyJvZmZzZXQiOjI1MH0+/=")

    assert sent_params(request) == {
        "ids": f"{JOB_A},{JOB_B}",
        "remote_ids": "32,req 7/b",
        "job_codes": "ENG-1",
        "post_url": "https://jobs.example.com/apply?job=7&src=kombo",
        "status": "OPEN",
        "statuses": "OPEN,DRAFT",
        "employment_types": "FULL_TIME,PART_TIME",
        "visibilities": "PUBLIC,UNLISTED",
        "remote_created_after": "2024-01-02T00:00:00.000Z",
        "name_contains": "Engineer & Co = 100%",
        "updated_after": "2025-03-04T05:06:07.891Z",
        "include_deleted": "true",
        "ignore_unsupported_filters": "false",
        "page_size": "250",
        "cursor": "eyJvZmZzZXQiOjI1MH0+/=",
    }


@pytest.mark.parametrize(
    ("query", "name", "value"),
    [
        pytest.param(JobQuery(ids=(JOB_A, JOB_B)), "ids", f"{JOB_A},{JOB_B}", id="ids"),
        pytest.param(JobQuery(ids=(JOB_A,)), "ids", JOB_A, id="ids-one"),
        pytest.param(JobQuery(remote_ids=("a", "b")), "remote_ids", "a,b", id="remote_ids"),
        pytest.param(JobQuery(job_codes=("a", "b")), "job_codes", "a,b", id="job_codes"),
        pytest.param(
            JobQuery(statuses=("OPEN", "CLOSED", "ARCHIVED")),
            "statuses",
            "OPEN,CLOSED,ARCHIVED",
            id="statuses",
        ),
        pytest.param(
            JobQuery(employment_types=("CONTRACT", "INTERNSHIP")),
            "employment_types",
            "CONTRACT,INTERNSHIP",
            id="employment_types",
        ),
        pytest.param(
            JobQuery(visibilities=("INTERNAL", "CONFIDENTIAL")),
            "visibilities",
            "INTERNAL,CONFIDENTIAL",
            id="visibilities",
        ),
    ],
)
async def test_a_list_filter_is_one_comma_joined_parameter(
    query: JobQuery, name: str, value: str
) -> None:
    request = await sent_request(query)

    assert query_pairs(request) == [(name, value)]


@pytest.mark.parametrize(
    ("query", "name", "value"),
    [
        pytest.param(JobQuery(include_deleted=True), "include_deleted", "true", id="deleted-true"),
        pytest.param(
            JobQuery(include_deleted=False), "include_deleted", "false", id="deleted-false"
        ),
        pytest.param(
            JobQuery(ignore_unsupported_filters=True),
            "ignore_unsupported_filters",
            "true",
            id="ignore-true",
        ),
        pytest.param(
            JobQuery(ignore_unsupported_filters=False),
            "ignore_unsupported_filters",
            "false",
            id="ignore-false",
        ),
    ],
)
async def test_booleans_are_lowercase_and_false_is_sent_not_dropped(
    query: JobQuery, name: str, value: str
) -> None:
    request = await sent_request(query)

    assert query_pairs(request) == [(name, value)]


@pytest.mark.parametrize(
    ("when", "sent"),
    [
        pytest.param(
            datetime(2024, 1, 2, 3, 4, 5, 123_456, tzinfo=UTC),
            "2024-01-02T03:04:05.123Z",
            id="utc-microseconds-cut-to-ms",
        ),
        pytest.param(
            datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05.000Z", id="utc-no-ms"
        ),
        pytest.param(
            datetime(2024, 1, 2, 3, 4, 5, 999_999, tzinfo=UTC),
            "2024-01-02T03:04:05.999Z",
            id="utc-never-rolls-over-to-1000ms",
        ),
        pytest.param(
            datetime(2024, 6, 1, 9, 30, 0, 250_000, tzinfo=timezone(timedelta(hours=2))),
            "2024-06-01T07:30:00.250Z",
            id="aware-plus-2h",
        ),
        pytest.param(
            datetime(2024, 12, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
            "2025-01-01T01:30:00.000Z",
            id="aware-minus-5h30-crosses-year",
        ),
        pytest.param(
            datetime(2024, 2, 29, 23, 59, 59, 1_000), "2024-02-29T23:59:59.001Z", id="naive-is-utc"
        ),
        pytest.param(
            datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000Z", id="year-1-four-digits"
        ),
    ],
)
async def test_timestamps_are_sent_as_utc_with_milliseconds(when: datetime, sent: str) -> None:
    request = await sent_request(JobQuery(updated_after=when, remote_created_after=when))

    assert sent_params(request) == {"updated_after": sent, "remote_created_after": sent}


@pytest.mark.parametrize(
    ("page_size", "cursor", "expected"),
    [
        pytest.param(None, None, {}, id="neither"),
        pytest.param(25, None, {"page_size": "25"}, id="page-size"),
        pytest.param(None, "abc", {"cursor": "abc"}, id="cursor"),
        pytest.param(
            250, "a+b/c=d&e", {"page_size": "250", "cursor": "a+b/c=d&e"}, id="both-verbatim"
        ),
    ],
)
async def test_page_size_and_cursor_are_sent_only_when_given(
    page_size: int | None, cursor: str | None, expected: dict[str, str]
) -> None:
    request = await sent_request(JobQuery(statuses=("OPEN",)), page_size=page_size, cursor=cursor)

    assert sent_params(request) == {"statuses": "OPEN", **expected}


# --- successful answers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("next_", "expected"),
    [
        pytest.param("eyJwIjoyfQ==", "eyJwIjoyfQ==", id="cursor"),
        pytest.param(None, None, id="null"),
        pytest.param("", None, id="empty-string"),
    ],
)
async def test_page_next_is_the_cursor_or_none_at_the_end(
    next_: str | None, expected: str | None
) -> None:
    jobs: list[dict[str, Any]] = [
        {"id": JOB_A, "name": "Backend Engineer", "some_future_field": {"x": 1}},
        {"id": JOB_B, "name": None},
    ]
    body = page_body(jobs, next_)

    page = await list_jobs(answer(200, body))

    assert page == {"next": expected, "results": jobs, "byte_size": len(body)}


async def test_page_without_next_key_is_the_last_page() -> None:
    body = orjson.dumps({"status": "success", "data": {"results": []}})

    page = await list_jobs(answer(200, body))

    assert page == {"next": None, "results": [], "byte_size": len(body)}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("<html><body>OK</body></html>", id="html"),
        pytest.param("", id="empty"),
        pytest.param('{"status": "success", "data": {"next": null, "res', id="truncated-json"),
        pytest.param('{"status": "success"}', id="no-data"),
        pytest.param('{"status": "success", "data": {"next": null}}', id="no-results"),
        pytest.param('{"status": "success", "data": {"results": null}}', id="null-results"),
        pytest.param('{"status": "success", "data": "jobs"}', id="data-not-object"),
        pytest.param("[1, 2, 3]", id="json-array"),
    ],
)
async def test_a_200_that_is_not_a_jobs_page_is_a_bad_answer_never_retried(body: str) -> None:
    recorder = Recorder(answer(200, body))

    error = await raised_after_retries(recorder)

    assert type(error) is KomboBadAnswer
    assert len(recorder.requests) == 1  # asking again gets the same answer


# --- error answers -------------------------------------------------------------------------


async def test_error_envelope_fields_are_kept_as_sent() -> None:
    body = envelope(
        code="PLATFORM.RATE_LIMIT_EXCEEDED",
        title="Rate limit exceeded",
        message="You have exceeded the rate limit of 300 requests per minute.",
        log_url="https://app.kombo.dev/env/logs/req_4f2",
    )

    error = await raised(answer(429, body, {"Retry-After": "12"}))

    assert isinstance(error, KomboAPIError)
    assert error.status == 429
    assert error.code == "PLATFORM.RATE_LIMIT_EXCEEDED"
    assert error.title == "Rate limit exceeded"
    assert error.message == "You have exceeded the rate limit of 300 requests per minute."
    assert error.log_url == "https://app.kombo.dev/env/logs/req_4f2"
    assert error.retry_after == 12.0


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        pytest.param(
            400,
            envelope(code=None, title=None, message="Something went wrong.", log_url=None),
            (None, None, "Something went wrong.", None),
            id="minimal-envelope-nulls",
        ),
        pytest.param(
            404,
            envelope(message="The following IDs do not exist: x"),
            (None, None, "The following IDs do not exist: x", None),
            id="envelope-without-code-key",
        ),
        pytest.param(
            409,
            envelope(code="INTEGRATION.SETUP_SYNC_PENDING", title="Setup sync pending"),
            ("INTEGRATION.SETUP_SYNC_PENDING", "Setup sync pending", None, None),
            id="no-message-or-log-url",
        ),
        pytest.param(
            500,
            envelope(code=42, title=["x"], message={"m": 1}, log_url=7),
            (None, None, None, None),
            id="non-string-fields",
        ),
        pytest.param(
            503,
            "<html><head><title>503 Service Temporarily Unavailable</title></head>"
            "<body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>",
            (None, None, None, None),
            id="load-balancer-html-503",
        ),
        pytest.param(502, "", (None, None, None, None), id="empty-body"),
        pytest.param(
            500, '{"status": "error", "error": "boom"}', (None, None, None, None), id="error-str"
        ),
        pytest.param(401, "[]", (None, None, None, None), id="json-array"),
    ],
)
async def test_error_envelope_is_read_leniently(
    status: int, body: bytes | str, expected: tuple[str | None, ...]
) -> None:
    error = await raised(answer(status, body))

    assert isinstance(error, KomboAPIError)
    assert error.status == status
    assert (error.code, error.title, error.message, error.log_url) == expected
    assert error.retry_after is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Retry-After": "3"}, 3.0, id="retry-after"),
        pytest.param({"ratelimit-reset": "57", "ratelimit-remaining": "0"}, 57.0, id="reset"),
        pytest.param({}, None, id="none"),
    ],
)
async def test_api_error_carries_the_retry_delay_from_the_response(
    headers: dict[str, str], expected: float | None
) -> None:
    error = await raised(answer(429, envelope(code="PLATFORM.RATE_LIMIT_EXCEEDED"), headers))

    assert isinstance(error, KomboAPIError)
    assert error.retry_after == expected


# --- retry_after_seconds -------------------------------------------------------------------

NOW = datetime(2025, 10, 21, 7, 28, 0, tzinfo=UTC).timestamp()


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(NOW + seconds_from_now, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Retry-After": "120"}, 120.0, id="seconds"),
        pytest.param({"Retry-After": "0"}, 0.0, id="zero"),
        pytest.param({"Retry-After": "1.5"}, 1.5, id="fractional"),
        pytest.param({"Retry-After": "-5"}, 0.0, id="negative-clamped"),
        pytest.param({"Retry-After": http_date(30)}, 30.0, id="http-date-future"),
        pytest.param({"Retry-After": http_date(-30)}, 0.0, id="http-date-past"),
        pytest.param({"Retry-After": "9", "ratelimit-reset": "57"}, 9.0, id="retry-after-wins"),
        pytest.param({"ratelimit-reset": "57"}, 57.0, id="reset-fallback"),
        pytest.param({"Retry-After": "soon", "ratelimit-reset": "4"}, 4.0, id="garbage-then-reset"),
        pytest.param({"Retry-After": ""}, None, id="empty"),
        pytest.param({"Retry-After": "soon"}, None, id="garbage"),
        pytest.param({"Retry-After": "Wed, 99 Foo 2025 77:00:00 GMT"}, None, id="bad-date"),
        pytest.param({"Retry-After": "inf"}, None, id="retry-after-inf"),
        pytest.param({"Retry-After": "nan"}, None, id="retry-after-nan"),
        pytest.param({"Retry-After": "1e999"}, None, id="retry-after-overflow"),
        pytest.param({"ratelimit-reset": "later"}, None, id="reset-garbage"),
        pytest.param({"ratelimit-reset": "inf"}, None, id="reset-inf"),
        pytest.param({"ratelimit-reset": "-1"}, 0.0, id="reset-negative-clamped"),
        pytest.param({}, None, id="no-headers"),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(httpx.Headers(headers), now=NOW) == expected


# --- transport failures --------------------------------------------------------------------


def raising(exc_type: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("[Errno 111] Connection refused", request=request)

    return handler


class _CorruptGzip(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"this is not gzip data"


def corrupt_gzip(request: httpx.Request) -> httpx.Response:
    headers = {"content-encoding": "gzip", "content-type": "application/json"}
    return httpx.Response(200, headers=headers, stream=_CorruptGzip())


@pytest.mark.parametrize(
    "handler",
    [
        pytest.param(raising(httpx.ConnectError), id="connect-error"),
        pytest.param(raising(httpx.ConnectTimeout), id="connect-timeout"),
        pytest.param(raising(httpx.ReadTimeout), id="read-timeout"),
        pytest.param(raising(httpx.PoolTimeout), id="pool-timeout"),
        pytest.param(raising(httpx.ReadError), id="read-error"),
        pytest.param(raising(httpx.RemoteProtocolError), id="remote-protocol-error"),
    ],
)
async def test_no_usable_answer_is_a_transport_error(handler: Handler) -> None:
    with pytest.raises(KomboTransportError):
        await list_jobs(handler)


async def test_an_undecodable_body_is_a_bad_answer_never_retried() -> None:
    """Corrupt gzip: the body as sent cannot be decoded, and asking again gets the same."""
    recorder = Recorder(corrupt_gzip)

    error = await raised_after_retries(recorder)

    assert type(error) is KomboBadAnswer
    assert len(recorder.requests) == 1


def too_large(request: httpx.Request) -> httpx.Response:
    raise ResponseTooLarge("the answer passed the cap of 16777216 bytes", request=request)


async def test_an_answer_over_the_byte_cap_is_too_large_and_never_retried() -> None:
    recorder = Recorder(too_large)

    error = await raised_after_retries(recorder)

    assert type(error) is KomboAnswerTooLarge
    assert isinstance(error, KomboBadAnswer)
    assert retry_delay(error) is None
    assert len(recorder.requests) == 1


async def test_an_over_the_cap_answer_to_the_key_check_is_too_large() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(too_large)) as http:
        client = KomboClient.from_settings(http, Settings(base_url=BASE_URL), api_key=API_KEY)
        with pytest.raises(KomboAnswerTooLarge):
            await client.check_api_key()


async def test_a_transport_error_is_still_retried() -> None:
    """The control for the two tests above: the same client retries a dropped connection."""
    recorder = Recorder(raising(httpx.ReadError))

    error = await raised_after_retries(recorder)

    assert type(error) is KomboTransportError
    assert len(recorder.requests) == 4


# --- the API key stays secret --------------------------------------------------------------


@pytest.mark.parametrize(
    "handler",
    [
        pytest.param(raising(httpx.ConnectError), id="connect-error"),
        pytest.param(raising(httpx.ReadTimeout), id="read-timeout"),
        pytest.param(answer(200, "<html>not json</html>"), id="non-json-200"),
        pytest.param(
            answer(401, envelope(code="PLATFORM.AUTHENTICATION_INVALID", message="Invalid key")),
            id="401-envelope",
        ),
        pytest.param(answer(503, "<html>503</html>"), id="lb-503"),
        pytest.param(
            answer(
                429,
                envelope(
                    code="PLATFORM.RATE_LIMIT_EXCEEDED",
                    title="Rate limited",
                    message="Too many requests",
                    log_url="https://app.kombo.dev/logs/1",
                ),
                {"Retry-After": "5"},
            ),
            id="429-envelope",
        ),
    ],
)
async def test_api_key_never_appears_in_errors(handler: Handler) -> None:
    error = await raised(handler)

    rendered = [
        str(error),
        repr(error),
        repr(error.args),
        "".join(traceback.format_exception(error)),
    ]
    for text in rendered:
        assert API_KEY not in text
    assert error.__cause__ is None


async def test_the_clients_connect_timeout_holds_for_each_call():
    """A call is bounded by its attempt deadline, but must not stretch the client's
    connect limit to it: an unreachable Kombo fails in seconds, not after the deadline."""
    seen = Recorder()
    timeout = httpx.Timeout(30, connect=5, pool=30)
    async with httpx.AsyncClient(transport=httpx.MockTransport(seen), timeout=timeout) as http:
        settings = Settings(base_url=BASE_URL, request_timeout=12)
        client = KomboClient.from_settings(http, settings, api_key=API_KEY)
        await client.list_jobs(INTEGRATION, JobQuery())
    assert seen.only.extensions["timeout"]["connect"] == 5


async def test_concurrency_caps_of_idle_integrations_are_not_kept():
    answering, release = asyncio.Event(), asyncio.Event()

    async def held(request: httpx.Request) -> httpx.Response:
        answering.set()
        await release.wait()
        return ok(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(held)) as http:
        client = KomboClient.from_settings(http, Settings(base_url=BASE_URL), api_key=API_KEY)
        release.set()
        for n in range(50):
            await client.list_jobs(f"personio:{n}", JobQuery())
        gc.collect()
        assert client.concurrency_caps == 0
        # While a call holds its cap, the cap is there.
        answering.clear()
        release.clear()
        call = asyncio.create_task(client.list_jobs(INTEGRATION, JobQuery()))
        await answering.wait()
        assert client.concurrency_caps == 1
        release.set()
        await call
        del call
        gc.collect()
        assert client.concurrency_caps == 0
