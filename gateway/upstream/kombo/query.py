"""Kombo's filters for `GET /ats/jobs` and their encoding as query parameters."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime

#: Kombo's page size limit for `GET /ats/jobs`.
MAX_PAGE_SIZE = 250
#: The longest query string a call may carry. Kombo's own limit is not documented; 8 KiB
#: is the common default of HTTP servers and proxies for a request line.
MAX_QUERY_BYTES = 8 * 1024


@dataclass(frozen=True, slots=True)
class JobQuery:
    """Kombo's filters for `GET /ats/jobs`, in Kombo's own names and semantics.

    Lists OR their values, different filters AND. `None` means "not set"; the
    caller decides what an empty list means before building a query.
    """

    ids: tuple[str, ...] | None = None
    remote_ids: tuple[str, ...] | None = None
    job_codes: tuple[str, ...] | None = None
    post_url: str | None = None
    status: str | None = None
    statuses: tuple[str, ...] | None = None
    employment_types: tuple[str, ...] | None = None
    visibilities: tuple[str, ...] | None = None
    remote_created_after: datetime | None = None
    name_contains: str | None = None
    updated_after: datetime | None = None
    include_deleted: bool | None = None
    ignore_unsupported_filters: bool | None = None

    def to_params(self) -> dict[str, str]:
        """Encode as Kombo query parameters: lists comma-joined, booleans lowercase,
        timestamps `YYYY-MM-DDTHH:mm:ss.sssZ`. Unset filters are left out, so two
        equal queries always give equal parameters (the cache and cursors rely on it).
        """
        params: dict[str, str] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            if value is not None:
                params[spec.name] = encode_param(value)
        return params

    def page_params(
        self, page_size: int | None = None, cursor: str | None = None
    ) -> dict[str, str]:
        """`to_params` plus the page to fetch: what one `GET /ats/jobs` sends."""
        params = self.to_params()
        if page_size is not None:
            params["page_size"] = str(page_size)
        if cursor is not None:
            params["cursor"] = cursor
        return params


def encode_param(value: object) -> str:
    """Encode one query parameter value the way Kombo documents it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, tuple | list):
        return ",".join(str(item) for item in value)
    return str(value)


def format_timestamp(value: datetime) -> str:
    """Kombo's timestamp format: UTC with milliseconds. A naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def query_string_length(params: Mapping[str, str]) -> int:
    """Bytes of the query string these parameters encode to (as httpx encodes them)."""
    return len(urllib.parse.urlencode(params, quote_via=urllib.parse.quote))
