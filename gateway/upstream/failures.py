"""A failed Kombo call in the caller's terms: its contract code, message and extensions."""

from __future__ import annotations

import math
from typing import Any

from gateway.errors import Code, GatewayError
from gateway.upstream.kombo import KomboAPIError, KomboBadAnswer, KomboError, KomboRequestTooLong

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
