"""Changing sandbox jobs at run time, as an edit in the ATS would, then Kombo's webhook.

Why: the generated data never changes, so nothing could show that the gateway notices
when Kombo's data does (`updated_after`, webhook-driven cache invalidation). This control
changes jobs of one sandbox app in memory (a restart brings the generated data back),
moves their `changed_at` and `remote_updated_at` to now as Kombo would, and then has
`gateway.sandbox.webhooks` send one `data-changed` per integration that changed.

Control route (no authentication; the sandbox is a test tool)::

    POST /_sandbox/jobs/changes  {"changes": [{"id": "<Kombo job ID>", "set": {FIELD: value}},
                                              ...]}
      -> 200 {"jobs": [JOB, ...],
              "events": [{"id": "<event id>", "integration_id": "..."}, ...]}

`jobs` has each named job as `GET /v1/ats/jobs` now serves it, in the order given;
`events` the webhooks that will be sent (none when no webhook is configured or nothing
changed). A job may be in any integration; the ID alone finds it.

FIELD (every value may also be null, as in Kombo)::

    name, job_code, description, category, department, post_url, experience_level,
    remote_url, salary_currency                      a string
    confidential                                     true or false
    weekly_hours, salary_amount, salary_amount_from, salary_amount_to    a number
    employment_type, status, visibility, remote_work_status, salary_period
                                                     one of Kombo's values for the field
    remote_deleted_at                                an ISO 8601 timestamp (deletes the
                                                     job) or null (restores it)

Input is checked as a whole, and nothing changes on any error: 400 `{"error": "..."}` for
bad input (not JSON, unknown keys or fields, wrong types, 1 to 1,000 changes), 404
`{"error": "..."}` naming the first unknown job ID. A job whose named fields already hold
the given values does not change, and sends nothing: Kombo only reports real changes.
A changed job's new `changed_at` is now, or 1 ms after its previous one if that is later,
so every change is visible to `updated_after`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.sandbox.data import (
    EMPLOYMENT_TYPES,
    JOB_STATUSES,
    REMOTE_WORK_STATUSES,
    SALARY_PERIODS,
    VISIBILITIES,
    IntegrationData,
    JobRecord,
    changed_record,
    dataset,
    epoch_us,
    format_timestamp,
    with_records,
)
from gateway.sandbox.faults import ControlError, bad_request, json_body, only_keys
from gateway.sandbox.webhooks import PendingEvent, WebhookSender

MAX_CHANGES: Final = 1000
MAX_STRING_LENGTH: Final = 100_000

_STRING_FIELDS: Final = frozenset(
    {
        "name",
        "job_code",
        "description",
        "category",
        "department",
        "post_url",
        "experience_level",
        "remote_url",
        "salary_currency",
    }
)
_NUMBER_FIELDS: Final = frozenset(
    {"weekly_hours", "salary_amount", "salary_amount_from", "salary_amount_to"}
)
_ENUM_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "employment_type": EMPLOYMENT_TYPES,
    "status": JOB_STATUSES,
    "visibility": VISIBILITIES,
    "remote_work_status": REMOTE_WORK_STATUSES,
    "salary_period": SALARY_PERIODS,
}
SETTABLE_FIELDS: Final = frozenset(
    {*_STRING_FIELDS, *_NUMBER_FIELDS, *_ENUM_FIELDS, "confidential", "remote_deleted_at"}
)
_JSON: Final = "application/json"
_MISSING: Final = object()


# --------------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobChange:
    """Set `fields` (validated, in Kombo's form) on the job with Kombo ID `job_id`."""

    job_id: str
    fields: Mapping[str, Any]


def parse_changes(payload: Any) -> list[JobChange]:
    """`{"changes": [{"id": ..., "set": {...}}, ...]}`, validated as a whole.

    Raises:
        ControlError: naming the first problem.
    """
    only_keys(payload, frozenset({"changes"}), "the request body")
    changes = payload.get("changes")
    if not isinstance(changes, list) or not 1 <= len(changes) <= MAX_CHANGES:
        raise ControlError(f"'changes' must be a list of 1 to {MAX_CHANGES} change objects.")
    return [_parse_change(item, f"changes[{n}]") for n, item in enumerate(changes)]


def _parse_change(raw: Any, where: str) -> JobChange:
    only_keys(raw, frozenset({"id", "set"}), where)
    job_id = raw.get("id")
    if not isinstance(job_id, str) or not job_id:
        raise ControlError(f"{where}.id must be the Kombo ID of a job (a string).")
    fields = raw.get("set")
    if not isinstance(fields, dict) or not fields:
        raise ControlError(f"{where}.set must be an object naming at least one field.")
    only_keys(fields, SETTABLE_FIELDS, f"{where}.set")
    values = {
        name: _field_value(name, value, f"{where}.set.{name}") for name, value in fields.items()
    }
    return JobChange(job_id, values)


def _field_value(name: str, value: Any, where: str) -> Any:
    """The value as Kombo serves it; null is valid for every settable field."""
    if value is None:
        return None
    if name in _STRING_FIELDS:
        if not isinstance(value, str) or len(value) > MAX_STRING_LENGTH:
            raise ControlError(f"{where} must be a string (at most {MAX_STRING_LENGTH:,}) or null.")
        return value
    if name in _NUMBER_FIELDS:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ControlError(f"{where} must be a number or null.")
        return value
    if name in _ENUM_FIELDS:
        allowed = _ENUM_FIELDS[name]
        if value not in allowed:
            raise ControlError(f"{where} must be null or one of: {', '.join(allowed)}.")
        return value
    if name == "confidential":
        if not isinstance(value, bool):
            raise ControlError(f"{where} must be true, false or null.")
        return value
    return _kombo_timestamp(value, where)


def _kombo_timestamp(value: Any, where: str) -> str:
    """An ISO 8601 timestamp in Kombo's form (UTC, milliseconds, `Z`); naive means UTC."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise ControlError(
            f"{where} must be an ISO 8601 timestamp such as '2026-05-18T09:55:30.731Z', or null."
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_timestamp(epoch_us(moment) // 1000)


# --------------------------------------------------------------------------------------------
# The jobs one sandbox app serves
# --------------------------------------------------------------------------------------------


class UnknownJob(LookupError):
    """A change names a job that no integration of the sandbox has (answered with 404)."""


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome of a batch: each named job as now served, and what changed."""

    jobs: tuple[JobRecord, ...]
    changed: tuple[IntegrationData, ...]  # each integration with a changed job, once


class JobStore:
    """The generated data plus this app's changes, so two sandbox apps never share an edit.

    Integrations nobody changed are served from the shared `dataset()` (and its selection
    cache); a changed one is a copy with the changed records swapped in. A lock makes each
    batch atomic against concurrent batches (requests read a whole integration at once).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed: dict[str, IntegrationData] = {}

    def integration(self, integration_id: str) -> IntegrationData | None:
        """The integration's data as this app serves it now; None when there is none."""
        return self._changed.get(integration_id) or dataset().get(integration_id)

    def apply(self, changes: Sequence[JobChange], now_ms: int) -> Applied:
        """Apply every change or none.

        Raises:
            UnknownJob: naming the first ID no integration has.
        """
        with self._lock:
            owners = [self._owner(change.job_id) for change in changes]
            records: dict[str, dict[str, JobRecord]] = {}
            touched: dict[str, IntegrationData] = {}
            served: list[JobRecord] = []
            for change, data in zip(changes, owners, strict=True):
                replaced = records.setdefault(data.integration_id, {})
                current = replaced.get(change.job_id, data.by_id[change.job_id])
                updated = _changed(current, change.fields, now_ms)
                if updated is not current:
                    replaced[change.job_id] = updated
                    touched.setdefault(data.integration_id, data)
                served.append(updated)
            for integration_id, data in touched.items():
                self._changed[integration_id] = with_records(data, records[integration_id])
            return Applied(tuple(served), tuple(self._changed[i] for i in touched))

    def _owner(self, job_id: str) -> IntegrationData:
        for integration_id in dataset():
            data = self.integration(integration_id)
            if data is not None and job_id in data.by_id:
                return data
        raise UnknownJob(f"No sandbox integration has a job with ID {job_id!r}.")


def _changed(record: JobRecord, fields: Mapping[str, Any], now_ms: int) -> JobRecord:
    """`record` with `fields` set, or `record` itself when they already hold those values."""
    if all(record.job.get(name, _MISSING) == value for name, value in fields.items()):
        return record
    return changed_record(record, fields, max(now_ms, record.changed_at_us // 1000 + 1))


# --------------------------------------------------------------------------------------------
# Control route
# --------------------------------------------------------------------------------------------


def job_change_routes(store: JobStore, webhooks: WebhookSender) -> list[Route]:
    """`POST /_sandbox/jobs/changes` (see the module docstring)."""

    async def change_jobs(request: Request) -> Response:
        try:
            applied = store.apply(parse_changes(await json_body(request)), _now_ms())
        except ControlError as error:
            return bad_request(str(error))
        except UnknownJob as error:
            body = orjson.dumps({"error": str(error)})
            return Response(body, status_code=404, media_type=_JSON)
        events = _prepare_events(webhooks, applied.changed)
        # A background task runs once the response went out: the webhooks follow the answer.
        sending = BackgroundTask(webhooks.dispatch, events)
        return Response(_answer(applied, events), media_type=_JSON, background=sending)

    return [Route("/_sandbox/jobs/changes", change_jobs, methods=["POST"])]


def _prepare_events(
    webhooks: WebhookSender, changed: Sequence[IntegrationData]
) -> list[PendingEvent]:
    prepared = (webhooks.prepare(data.integration_id, data.tool) for data in changed)
    return [event for event in prepared if event is not None]


def _answer(applied: Applied, events: Sequence[PendingEvent]) -> bytes:
    """`{"jobs": [...], "events": [...]}`, the jobs from their pre-encoded bytes."""
    announced = [
        {"id": event.delivery.event_id, "integration_id": event.delivery.integration_id}
        for event in events
    ]
    jobs = b",".join(record.encoded for record in applied.jobs)
    return b'{"jobs":[' + jobs + b'],"events":' + orjson.dumps(announced) + b"}"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


__all__ = [
    "MAX_CHANGES",
    "SETTABLE_FIELDS",
    "Applied",
    "JobChange",
    "JobStore",
    "UnknownJob",
    "job_change_routes",
    "parse_changes",
]
