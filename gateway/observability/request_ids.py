"""Request ids: the caller's `X-Request-Id` when it is safe to echo, else a fresh one."""

from __future__ import annotations

import re
import uuid

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_HEADER_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")
# Safe in a header, a log line and a URL: nothing that could forge either.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_from(header_value: str | None) -> str:
    """The caller's request id when it is safe to echo, else a fresh one.

    Callers pass ids to correlate their logs with ours; an id with other characters
    (CR/LF, quotes, spaces) or over 128 characters is replaced, never cleaned up,
    so nothing the caller chose reaches a header or a log unless it is harmless.
    """
    if header_value is not None and _SAFE_REQUEST_ID.fullmatch(header_value):
        return header_value
    return uuid.uuid4().hex
