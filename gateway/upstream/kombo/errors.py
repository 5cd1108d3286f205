"""The failures of a Kombo call, as the client raises them (no contract codes here:
`gateway.upstream.failures` maps them)."""

from __future__ import annotations

import logging
import math
import ssl
import time

import httpx

logger = logging.getLogger("gateway.kombo")


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


class KomboHeldBack(KomboAPIError):
    """Not sent: Kombo answered 429 for this integration with a delay that has not passed
    yet (to this process, or to another worker or replica sharing Redis). Reads as Kombo's
    rate limit, which it is, with the time left as `retry_after`."""

    def __init__(self, seconds_left: float) -> None:
        super().__init__(
            429,
            code="PLATFORM.RATE_LIMIT_EXCEEDED",
            title="Held back by the gateway",
            message=(
                "Kombo asked the gateway to wait before calling this integration again "
                f"({seconds_left:.1f} s left)"
            ),
            retry_after=seconds_left,
        )


class KomboTransportError(KomboError):
    """No usable answer from Kombo: timeout, connection failure, a body cut short."""


class KomboCertificateError(KomboTransportError):
    """Kombo's TLS certificate was not accepted: an operator's problem (a proxy that
    intercepts TLS, a wrong `KOMBO_BASE_URL`, missing CA certificates), not a network
    blip, so it is named as such in errors, `/readyz` and the log."""


#: Seconds between two log lines about a refused certificate (every call fails alike).
_CERTIFICATE_LOG_INTERVAL = 60.0
_certificate_logged_at = -math.inf


def transport_error(exc: httpx.RequestError, what: str) -> KomboTransportError:
    """The error for a request that got no usable answer; a refused certificate says so
    (and is logged, at most once a minute) instead of being a bare `ConnectError`."""
    verification = certificate_failure(exc)
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


def certificate_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
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
