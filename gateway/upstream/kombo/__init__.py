"""Kombo REST client for `GET /ats/jobs`: auth headers, parameter encoding, error envelope.

One module per seam: `query` (filters and their encoding), `page` (reading an answer),
`envelope` (Kombo's error body), `errors` (what a call raises), `client` (the calls);
this package re-exports what callers use.

Usage::

    async with httpx.AsyncClient(timeout=httpx.Timeout(30, connect=5)) as http:
        kombo = KomboClient(http, base_url="https://api.kombo.dev/v1", api_key=key)
        page = await kombo.list_jobs("personio:CBNM...", JobQuery(statuses=("OPEN",)))
        page["results"], page["next"]

Errors (this package knows nothing of GraphQL; `gateway.upstream.failures` maps them to
contract codes)::

    KomboError                  any failure of a Kombo call
    ├── KomboAPIError           Kombo answered with a non-200 status (envelope fields kept)
    │   └── KomboHeldBack           not sent: Kombo's 429 delay for the integration runs
    ├── KomboTransportError     no usable answer: timeout, connection failure, unreadable body
    │   └── KomboCertificateError   Kombo's TLS certificate was not accepted
    ├── KomboBadAnswer          an answer that is not what Kombo documents (not retried)
    │   └── KomboAnswerTooLarge     larger than `KOMBO_MAX_RESPONSE_BYTES`
    └── KomboRequestTooLong     the call's URL would pass what servers accept (not sent)

The caller owns the `httpx.AsyncClient` (one per process, pooled); the client only
borrows it, so tests can hand in a client whose transport talks to the sandbox.
"""

from gateway.upstream.kombo.client import (
    JOBS_PATH,
    RETRYABLE_BARE_STATUSES,
    RETRYABLE_CODES,
    JobLister,
    JobPageFetcher,
    KomboClient,
    retry_delay,
)
from gateway.upstream.kombo.envelope import (
    MAX_ENVELOPE_FIELD,
    REDACTED,
    api_error_from_response,
    redact,
    retry_after_seconds,
)
from gateway.upstream.kombo.errors import (
    KomboAnswerTooLarge,
    KomboAPIError,
    KomboBadAnswer,
    KomboCertificateError,
    KomboError,
    KomboHeldBack,
    KomboRequestTooLong,
    KomboTransportError,
)
from gateway.upstream.kombo.page import MAX_CURSOR_LENGTH, JobsPage, parse_jobs_page, record_id
from gateway.upstream.kombo.query import (
    MAX_PAGE_SIZE,
    MAX_QUERY_BYTES,
    JobQuery,
    encode_param,
    format_timestamp,
    query_string_length,
)

__all__ = [
    "JOBS_PATH",
    "MAX_CURSOR_LENGTH",
    "MAX_ENVELOPE_FIELD",
    "MAX_PAGE_SIZE",
    "MAX_QUERY_BYTES",
    "REDACTED",
    "RETRYABLE_BARE_STATUSES",
    "RETRYABLE_CODES",
    "JobLister",
    "JobPageFetcher",
    "JobQuery",
    "JobsPage",
    "KomboAPIError",
    "KomboAnswerTooLarge",
    "KomboBadAnswer",
    "KomboCertificateError",
    "KomboClient",
    "KomboError",
    "KomboHeldBack",
    "KomboRequestTooLong",
    "KomboTransportError",
    "api_error_from_response",
    "encode_param",
    "format_timestamp",
    "parse_jobs_page",
    "query_string_length",
    "record_id",
    "redact",
    "retry_after_seconds",
    "retry_delay",
]
