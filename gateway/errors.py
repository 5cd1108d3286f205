"""Error classes and the contract code each one maps to (`extensions.code`).

    GatewayError                      raised by gateway code; carries its code
    ├── BadUserInput                  BAD_USER_INPUT: bad arguments, ID, cursor, no integration
    ├── Unauthenticated               UNAUTHENTICATED
    ├── Forbidden                     FORBIDDEN
    ├── RateLimited                   RATE_LIMITED: the gateway's own per-caller limit
    ├── UpstreamDataError             UPSTREAM_ERROR: one value Kombo sent has the wrong type
    ├── PersistedQueryError           a request's persisted document (contract section 10):
    │                                 PERSISTED_QUERY_NOT_FOUND | _NOT_SUPPORTED |
    │                                 _HASH_MISMATCH | _NOT_IN_LIST
    └── UpstreamFailure               (gateway.upstream.failures) wraps a KomboError:
                                      UNAUTHENTICATED | FORBIDDEN | RATE_LIMITED |
                                      UPSTREAM_UNAVAILABLE | UPSTREAM_ERROR
                                      (KomboRequestTooLong: BAD_USER_INPUT)
    budget.CallBudgetSpent            BAD_USER_INPUT: the request's Kombo calls are spent

    graphql-core phases (no Python class of ours):
        syntax error            GRAPHQL_PARSE_FAILED
        validation error        GRAPHQL_VALIDATION_FAILED
        variable coercion       BAD_USER_INPUT
    anything else               INTERNAL_SERVER_ERROR, message masked

`gateway.schema.error_codes.code_error` applies this table to a `GraphQLError` in place.
An error that came from Kombo also gets `extensions.kombo` = {code, title, message,
logUrl, httpStatus}. This module imports nothing of GraphQL or of the Kombo client, so
every side of the gateway can raise these.
"""

from __future__ import annotations

import enum
import math
from typing import Any

INTERNAL_MESSAGE = "Internal server error"


class Code(enum.StrEnum):
    """The contract's error codes."""

    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    RATE_LIMITED = "RATE_LIMITED"
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    UPSTREAM_ERROR = "UPSTREAM_ERROR"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
    PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
    PERSISTED_QUERY_NOT_IN_LIST = "PERSISTED_QUERY_NOT_IN_LIST"


class GatewayError(Exception):
    """An error whose message is safe to show to the caller, with its contract code."""

    code: Code = Code.INTERNAL_SERVER_ERROR
    #: The HTTP status when this error refuses a whole request; None: the code's usual one.
    http_status: int | None = None

    def extensions(self) -> dict[str, Any]:
        return {"code": str(self.code)}


class BadUserInput(GatewayError):
    code = Code.BAD_USER_INPUT


class Unauthenticated(GatewayError):
    code = Code.UNAUTHENTICATED


class Forbidden(GatewayError):
    code = Code.FORBIDDEN


class UpstreamDataError(GatewayError):
    """A value Kombo sent is not of the type Kombo documents for its field: the field is
    null with this error, the rest of the answer stands."""

    code = Code.UPSTREAM_ERROR


class RateLimited(GatewayError):
    """The caller exceeded the gateway's own request rate limit."""

    code = Code.RATE_LIMITED

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def extensions(self) -> dict[str, Any]:
        return {**super().extensions(), "retryAfter": max(1, math.ceil(self.retry_after))}


class PersistedQueryError(GatewayError):
    """A request's persisted document cannot be run (contract section 10).

    The messages of NOT_FOUND and NOT_SUPPORTED are Apollo's own words, and those two
    answer HTTP 200: Apollo Client's persisted-queries link matches either the message
    or the code, then retries with the document's text (or stops hashing), and older
    links read only the message of a 200 answer.
    """


class PersistedQueryNotFound(PersistedQueryError):
    code = Code.PERSISTED_QUERY_NOT_FOUND
    http_status = 200

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotFound")


class PersistedQueryNotSupported(PersistedQueryError):
    code = Code.PERSISTED_QUERY_NOT_SUPPORTED
    http_status = 200

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotSupported")


class PersistedQueryHashMismatch(PersistedQueryError):
    code = Code.PERSISTED_QUERY_HASH_MISMATCH
    http_status = 400


class PersistedQueryNotInList(PersistedQueryError):
    code = Code.PERSISTED_QUERY_NOT_IN_LIST
    http_status = 400
