"""Kombo's error envelope: read leniently, with the key redacted and fields capped."""

from __future__ import annotations

import email.utils
import math
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from gateway.upstream.kombo.errors import KomboAPIError

REDACTED = "[redacted]"


def redact(text: str, secret: str) -> str:
    """`text` with `secret` (as is, or percent-encoded) replaced."""
    if not secret:
        return text
    for form in {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}:
        text = text.replace(form, REDACTED)
    return text


def redacted(error: KomboAPIError, secret: str) -> KomboAPIError:
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
