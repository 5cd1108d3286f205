"""Error classes and the contract code each one maps to (`extensions.code`).

    GatewayError                      raised by gateway code; carries its code
    ├── BadUserInput                  BAD_USER_INPUT: bad arguments, ID, cursor, no integration
    ├── Unauthenticated               UNAUTHENTICATED
    ├── Forbidden                     FORBIDDEN
    ├── RateLimited                   RATE_LIMITED: the gateway's own per-caller limit
    ├── UpstreamDataError             UPSTREAM_ERROR: one value Kombo sent has the wrong type
    └── UpstreamFailure               wraps a kombo.KomboError, see `upstream_code`:
                                      UNAUTHENTICATED | FORBIDDEN | RATE_LIMITED |
                                      UPSTREAM_UNAVAILABLE | UPSTREAM_ERROR
                                      (KomboRequestTooLong: BAD_USER_INPUT)
    budget.CallBudgetSpent            BAD_USER_INPUT: the request's Kombo calls are spent

    graphql-core phases (no Python class of ours):
        syntax error            GRAPHQL_PARSE_FAILED
        validation error        GRAPHQL_VALIDATION_FAILED
        variable coercion       BAD_USER_INPUT
    anything else               INTERNAL_SERVER_ERROR, message masked

`code_error` applies this table to a `GraphQLError` in place. An error that came
from Kombo also gets `extensions.kombo` = {code, title, message, logUrl, httpStatus}.
"""

from __future__ import annotations

import enum
import logging
import math
from typing import Any

from graphql import GraphQLError

from gateway.upstream.budget import CallBudgetSpent
from gateway.upstream.kombo import KomboAPIError, KomboBadAnswer, KomboError, KomboRequestTooLong

logger = logging.getLogger("gateway.errors")

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


class Phase(enum.Enum):
    """Where in a GraphQL request an error arose; decides codes for graphql-core's own errors."""

    PARSE = "parse"
    VALIDATION = "validation"
    EXECUTION = "execution"


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


# Kombo codes that decide the contract code on their own (Kombo: branch on the code first).
_CODE_BY_KOMBO_CODE: dict[str, Code] = {
    "PLATFORM.AUTHENTICATION_INVALID": Code.UNAUTHENTICATED,
    "PLATFORM.INTEGRATION_NOT_FOUND": Code.FORBIDDEN,
    "PLATFORM.RATE_LIMIT_EXCEEDED": Code.RATE_LIMITED,
    "PLATFORM.CONCURRENCY_LIMIT_EXCEEDED": Code.RATE_LIMITED,
    "REMOTE.RATE_LIMIT_EXCEEDED": Code.RATE_LIMITED,
    "REMOTE.SERVICE_UNAVAILABLE": Code.UPSTREAM_UNAVAILABLE,
    "PLATFORM.TASK_TIMED_OUT": Code.UPSTREAM_UNAVAILABLE,
}
# Codes too generic to decide anything: the HTTP status decides instead.
_GENERIC_KOMBO_CODES = frozenset({"PLATFORM.UNKNOWN_ERROR"})


def upstream_code(error: KomboError) -> Code:
    """The contract code for a failed Kombo call."""
    if isinstance(error, KomboRequestTooLong):
        return Code.BAD_USER_INPUT
    if isinstance(error, KomboBadAnswer):
        return Code.UPSTREAM_ERROR
    if not isinstance(error, KomboAPIError):  # a transport failure
        return Code.UPSTREAM_UNAVAILABLE
    if error.code is not None and error.code not in _GENERIC_KOMBO_CODES:
        return _CODE_BY_KOMBO_CODE.get(error.code, Code.UPSTREAM_ERROR)
    if error.status == 401:
        return Code.UNAUTHENTICATED
    if error.status == 403:
        return Code.FORBIDDEN
    if error.status == 429:
        return Code.RATE_LIMITED
    if error.status >= 500:
        return Code.UPSTREAM_UNAVAILABLE
    return Code.UPSTREAM_ERROR


class UpstreamFailure(GatewayError):
    """A Kombo call failed; the message and extensions say how, in the caller's terms."""

    def __init__(self, error: KomboError) -> None:
        self.error = error
        self.code = upstream_code(error)
        super().__init__(_upstream_message(self.code, error))

    def extensions(self) -> dict[str, Any]:
        extensions = super().extensions()
        error = self.error
        if isinstance(error, KomboAPIError):
            if self.code is Code.RATE_LIMITED and error.retry_after is not None:
                extensions["retryAfter"] = math.ceil(error.retry_after)
            extensions["kombo"] = {
                "code": error.code,
                "title": error.title,
                "message": error.message,
                "logUrl": error.log_url,
                "httpStatus": error.status,
            }
        return extensions


_UPSTREAM_MESSAGES = {
    Code.UNAUTHENTICATED: "Kombo rejected the gateway's credentials",
    Code.FORBIDDEN: "The integration cannot be used with these credentials",
    Code.RATE_LIMITED: "Kombo's rate limit was exceeded",
    Code.UPSTREAM_UNAVAILABLE: "Kombo is unavailable",
}


def _upstream_message(code: Code, error: KomboError) -> str:
    if isinstance(error, KomboRequestTooLong):
        return f"The filter is too long for Kombo: {error}"
    if isinstance(error, KomboBadAnswer):
        return f"Kombo sent an answer the gateway cannot use: {error}"
    if isinstance(error, KomboAPIError):
        detail = error.message or error.title or f"HTTP {error.status}"
        return f"{_UPSTREAM_MESSAGES.get(code, 'Kombo returned an error')}: {detail}"
    return f"{_UPSTREAM_MESSAGES[Code.UPSTREAM_UNAVAILABLE]}: {error}"


def code_error(error: GraphQLError, phase: Phase) -> None:
    """Give `error` its contract code (and mask it if it is a bug), in place."""
    original = _root_cause(error)
    if isinstance(original, CallBudgetSpent):
        original = BadUserInput(str(original))
        error.message = str(original)
    if isinstance(original, KomboError):
        original = UpstreamFailure(original)
        error.message = str(original)
    if isinstance(original, GatewayError):
        error.extensions = {**(error.extensions or {}), **original.extensions()}
        return
    if error.path is None:
        # Not raised while resolving a field: the request itself is at fault (its text,
        # its variables, a literal a scalar refused), whatever exception says so.
        code = {
            Phase.PARSE: Code.GRAPHQL_PARSE_FAILED,
            Phase.VALIDATION: Code.GRAPHQL_VALIDATION_FAILED,
            Phase.EXECUTION: Code.BAD_USER_INPUT,
        }[phase]
        error.extensions = {**(error.extensions or {}), "code": str(code)}
        return
    # Raised while resolving a field, and not by us on purpose: a bug. Log it, mask it.
    if original is not None:
        exc_info = (type(original), original, original.__traceback__)
        logger.error("unexpected error at %s", error.path, exc_info=exc_info)
    else:
        logger.error("unexpected error at %s: %s", error.path, error.message)
    error.message = INTERNAL_MESSAGE
    error.extensions = {"code": str(Code.INTERNAL_SERVER_ERROR)}


def _root_cause(error: GraphQLError) -> BaseException | None:
    """The first non-GraphQL exception behind `error` (graphql-core wraps errors in errors)."""
    cause = error.original_error
    while isinstance(cause, GraphQLError):
        cause = cause.original_error
    return cause
