"""`JobFilter`, and its translation into Kombo's query (`kombo.JobQuery`).

Empty lists: an empty enum list means "any value", as in Kombo, so it is not sent.
An empty `ids`, `remoteIds` or `jobCodes` list matches nothing; `to_job_query`
reports that as `None` and the caller answers without an upstream call (sending it
to Kombo would drop the filter and return every job, the opposite of what was asked).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

import strawberry

from gateway.errors import BadUserInput
from gateway.schema.enums import EmploymentType, JobStatus, JobVisibility
from gateway.schema.ids import parse_job_ids
from gateway.schema.scalars import DateTime
from gateway.upstream.kombo import JobQuery

UNSET = strawberry.UNSET
_T = TypeVar("_T")


@strawberry.input(description="Filters: different fields AND, values inside one list OR.")
class JobFilter:
    ids: list[strawberry.ID] | None = strawberry.field(
        default=UNSET, description="Kombo job IDs or Job global IDs."
    )
    remote_ids: list[str] | None = strawberry.field(
        default=UNSET, description="The ATS's own job IDs."
    )
    job_codes: list[str] | None = strawberry.field(default=UNSET, description="Requisition codes.")
    post_url: str | None = strawberry.field(default=UNSET, description="Public posting URL.")
    status: JobStatus | None = strawberry.field(
        default=UNSET, deprecation_reason="Use `statuses`. Still forwarded to Kombo as `status`."
    )
    statuses: list[JobStatus] | None = strawberry.field(default=UNSET)
    employment_types: list[EmploymentType] | None = strawberry.field(default=UNSET)
    visibilities: list[JobVisibility] | None = strawberry.field(default=UNSET)
    remote_created_after: DateTime | None = strawberry.field(
        default=UNSET, description="Jobs created in the ATS on or after this day."
    )
    name_contains: str | None = strawberry.field(default=UNSET, description="Keyword in `name`.")
    updated_after: DateTime | None = strawberry.field(
        default=UNSET,
        description="Jobs that changed after this instant, including changes to their "
        "stages, screening questions, postings and hiring team.",
    )
    include_deleted: bool | None = strawberry.field(
        default=UNSET, description="Also return jobs deleted in the ATS (`remoteDeletedAt` set)."
    )
    ignore_unsupported_filters: bool | None = strawberry.field(
        default=UNSET,
        description="Drop filters the ATS cannot provide instead of matching nothing.",
    )


def list_arguments(job_filter: JobFilter | None) -> list[tuple[str, Sequence[object]]]:
    """The filter's list fields that were given, by GraphQL name (for size limits)."""
    if job_filter is None:
        return []
    lists = {
        "ids": job_filter.ids,
        "remoteIds": job_filter.remote_ids,
        "jobCodes": job_filter.job_codes,
        "statuses": job_filter.statuses,
        "employmentTypes": job_filter.employment_types,
        "visibilities": job_filter.visibilities,
    }
    return [(name, values) for name, values in lists.items() if isinstance(values, list)]


def to_job_query(job_filter: JobFilter | None) -> JobQuery | None:
    """The Kombo query for `job_filter`; None when the filter can match nothing.

    Raises:
        BadUserInput: a malformed ID, or a value Kombo's comma-joined lists can't carry.
    """
    if job_filter is None:
        return JobQuery()
    ids = _given(job_filter.ids)
    remote_ids = _given(job_filter.remote_ids)
    job_codes = _given(job_filter.job_codes)
    if any(values is not None and not values for values in (ids, remote_ids, job_codes)):
        return None
    return JobQuery(
        ids=None if ids is None else tuple(dict.fromkeys(parse_job_ids(ids))),
        remote_ids=_list_param("remoteIds", remote_ids),
        job_codes=_list_param("jobCodes", job_codes),
        post_url=_given(job_filter.post_url),
        status=_enum_value(_given(job_filter.status)),
        statuses=_enum_list(_given(job_filter.statuses)),
        employment_types=_enum_list(_given(job_filter.employment_types)),
        visibilities=_enum_list(_given(job_filter.visibilities)),
        remote_created_after=_datetime(_given(job_filter.remote_created_after)),
        name_contains=_given(job_filter.name_contains),
        updated_after=_datetime(_given(job_filter.updated_after)),
        include_deleted=_given(job_filter.include_deleted),
        ignore_unsupported_filters=_given(job_filter.ignore_unsupported_filters),
    )


def _given(value: _T | None) -> _T | None:
    """None for both an omitted input field (UNSET) and an explicit null."""
    return None if value is UNSET else value


def _list_param(name: str, values: Sequence[str] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    for value in values:
        if "," in value:
            raise BadUserInput(
                f"`{name}` values cannot contain a comma (Kombo joins list values with commas): "
                f"{value[:64]!r}"
            )
    return tuple(dict.fromkeys(values))


def _enum_value(value: enum.Enum | None) -> str | None:
    return None if value is None else str(value.value)


def _enum_list(values: Sequence[enum.Enum] | None) -> tuple[str, ...] | None:
    if not values:
        return None
    return tuple(dict.fromkeys(str(value.value) for value in values))


def _datetime(value: object) -> datetime | None:
    # The DateTime scalar parses inputs to datetimes; the annotation says str for clients.
    return value if isinstance(value, datetime) else None
