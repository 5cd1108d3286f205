"""Deterministic, Kombo-shaped jobs data for the sandbox.

Why generated rather than a fixture file: the gateway needs realistic volume (1,200 jobs to
paginate, benchmark and cache) plus every awkward case Kombo can send (pass-through enum
strings, partial objects, old record shapes, unknown question formats). A seeded
`random.Random` gives both, identically on every run and machine, without a wall clock.

Usage::

    data = dataset()[SANDBOX_INTEGRATION_IDS[0]]
    data.jobs[0].job["name"]        # the job object exactly as served
    data.jobs[0].encoded            # its orjson bytes, what pages are assembled from
    data.by_id["5SVaVXcvZzn5DWHZg4oARmr3"]

Each `JobRecord` also carries the values the filters read, pre-parsed, and one hidden
value that is never emitted: `nested_changed_at_us`, the last time the job's nested data
(stages, questions, postings, hiring team) changed. Kombo's `updated_after` sees such
changes even though they do not move `changed_at`.

Records never change: a sandbox app that changes a job (`gateway.sandbox.changes`) serves
a copy made by `changed_record`, in a copy of its integration made by `with_records`.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import Any, Final

import orjson

from gateway.config import SANDBOX_INTEGRATION_IDS

JSONObject = dict[str, Any]

#: Kombo IDs are 24 characters of this alphabet (base58: no 0, O, I, l).
BASE58_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_TABLE: Final = bytes(ord(BASE58_ALPHABET[b % 58]) for b in range(256))
KOMBO_ID_LENGTH: Final = 24

#: What `GET /v1/check-api-key` reports for the sandbox key.
SANDBOX_ENVIRONMENT_ID: Final = "B7z4ChwZ3k9SoyXQnNxq3Lps"
SANDBOX_CUSTOMER_ID: Final = "9pTfWQm2gHcLxvRr6ZsJdE4a"

EMPLOYMENT_TYPES: Final = ("FULL_TIME", "PART_TIME", "CONTRACT", "SEASONAL", "INTERNSHIP")
JOB_STATUSES: Final = ("OPEN", "CLOSED", "DRAFT", "ARCHIVED")
VISIBILITIES: Final = ("PUBLIC", "INTERNAL", "UNLISTED", "CONFIDENTIAL")
REMOTE_WORK_STATUSES: Final = ("REMOTE", "HYBRID", "TEMPORARY", "ON_SITE")
SALARY_PERIODS: Final = ("YEAR", "MONTH", "TWO_WEEKS", "WEEK", "DAY", "HOUR")
HIRING_TEAM_ROLES: Final = ("RECRUITER", "HIRING_MANAGER", "COORDINATOR", "SOURCER", "INTERVIEWER")

_MS_PER_DAY: Final = 86_400_000
_START_MS: Final = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)
_CREATED_UNTIL_MS: Final = int(datetime(2026, 5, 1, tzinfo=UTC).timestamp() * 1000)
#: "Now" in the sandbox's world: no generated change is later than this.
_END_MS: Final = int(datetime(2026, 5, 20, tzinfo=UTC).timestamp() * 1000)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job as served, plus the pre-parsed values the `/ats/jobs` filters compare.

    Pre-parsing at build time keeps per-request filtering to plain comparisons; the
    old-shape records that lack optional keys read as null here, as the gateway must.
    """

    job: Mapping[str, Any]
    encoded: bytes
    id: str
    remote_id: str
    name_folded: str | None
    job_code: str | None
    post_url: str | None
    status: str | None
    employment_type: str | None
    visibility: str | None
    remote_created_day: date | None
    changed_at_us: int
    nested_changed_at_us: int
    deleted: bool


@dataclass(frozen=True, slots=True)
class IntegrationData:
    """All jobs of one sandbox integration, in generation (= response) order."""

    integration_id: str
    tool: str
    jobs: tuple[JobRecord, ...]
    by_id: Mapping[str, JobRecord]
    #: Filters this connector cannot apply (Kombo: they match nothing unless
    #: `ignore_unsupported_filters=true`, which drops them).
    unsupported_filters: frozenset[str]


def kombo_id(integration_id: str, remote_id: str) -> str:
    """Kombo-style ID: derived from (integration, remote ID) only, never from the model.

    As in real Kombo, a job and a stage with the same remote ID in one integration
    therefore share an ID, while the same remote ID in another integration does not.
    """
    digest = hashlib.blake2b(
        f"{integration_id}\x1f{remote_id}".encode(),
        digest_size=KOMBO_ID_LENGTH,
        person=b"kombo-sandbox",
    ).digest()
    return digest.translate(_BASE58_TABLE).decode("ascii")


def log_url(*parts: str) -> str:
    """A deterministic Kombo dashboard log link for an error response (same parts, same URL)."""
    return "https://app.kombo.dev/logs/" + kombo_id("sandbox-logs", "/".join(parts))


def format_timestamp(epoch_ms: int) -> str:
    """Kombo's timestamp format: UTC with milliseconds, e.g. `2026-05-18T09:55:30.731Z`."""
    moment = datetime.fromtimestamp(epoch_ms // 1000, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{epoch_ms % 1000:03d}Z"


def epoch_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime: exact, cheap to compare."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def changed_record(record: JobRecord, fields: Mapping[str, Any], changed_ms: int) -> JobRecord:
    """`record` with `fields` set, as Kombo serves a job that was edited in the ATS.

    `changed_at` and `remote_updated_at` move to `changed_ms`, so `updated_after` sees the
    edit; the hidden nested-change time stays. A new record (records are frozen and shared
    by every sandbox app), encoded and pre-parsed again like a generated one.
    """
    job = {**record.job, **fields}
    job["remote_updated_at"] = job["changed_at"] = format_timestamp(changed_ms)
    return _record(job, record.nested_changed_at_us // 1000)


def with_records(data: IntegrationData, records: Mapping[str, JobRecord]) -> IntegrationData:
    """`data` with the jobs named in `records` (by Kombo ID) replaced, order unchanged."""
    jobs = tuple(records.get(job.id, job) for job in data.jobs)
    by_id = MappingProxyType({job.id: job for job in jobs})
    return replace(data, jobs=jobs, by_id=by_id)


@functools.cache
def dataset() -> Mapping[str, IntegrationData]:
    """Every sandbox integration's data, keyed by integration ID; built once per process."""
    built = {spec.integration_id: _build_integration(spec) for spec in _SPECS}
    return MappingProxyType(built)


# --------------------------------------------------------------------------------------------
# Integration specs: what differs between the two connectors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Spec:
    """Knobs of one generated integration; the index rules place the rare cases."""

    integration_id: str
    tool: str
    seed: int
    job_count: int
    remote_id: Callable[[int], str]
    careers_url: str
    ats_url: str
    stages: tuple[tuple[str, str], ...]
    first_stages: tuple[str, ...]
    final_stages: tuple[str, ...]
    inactive_stage: str
    is_deleted: Callable[[int], bool]
    has_unknown_format: Callable[[int], bool]
    has_null_format: Callable[[int], bool]
    has_unmapped_role: Callable[[int], bool]
    has_extra_key: Callable[[int], bool]
    is_old_shape: Callable[[int], bool]
    provides_job_code: bool
    mwd_share: float
    overrides: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    unsupported_filters: frozenset[str] = frozenset()


_GREENHOUSE_REMOTE_IDS: Final = {0: "118", 1: "7", 2: "96"}

_GREENHOUSE: Final = _Spec(
    integration_id=SANDBOX_INTEGRATION_IDS[0],
    tool="greenhouse",
    seed=20260518,
    job_count=1200,
    remote_id=lambda i: _GREENHOUSE_REMOTE_IDS.get(i, str(1000 + i)),
    careers_url="https://careers.example-shop.de/jobs/",
    ats_url="https://example-shop.greenhouse.io/sdash/",
    stages=(
        ("1", "Application Review"),
        ("2", "Phone Screen"),
        ("3", "Technical Interview"),
        ("4", "Hiring Manager Interview"),
        ("5", "Phone Screen (old process)"),
        ("6", "Take-Home Assignment"),
        ("7", "New Applicant"),
        ("8", "Video Call"),
        ("9", "Onsite Interview"),
        ("10", "Reference Check"),
        ("11", "Offer"),
        ("12", "Hired"),
    ),
    first_stages=("1", "7"),
    final_stages=("11", "12"),
    inactive_stage="5",
    is_deleted=lambda i: i % 31 == 2,
    has_unknown_format=lambda i: i % 173 == 20,
    has_null_format=lambda i: i % 211 == 50,
    has_unmapped_role=lambda i: i % 347 == 45,
    has_extra_key=lambda i: i in (41, 640),
    is_old_shape=lambda i: i in (88, 901),
    provides_job_code=True,
    mwd_share=0.25,
    overrides={
        0: {
            "name": "Senior Backend Engineer (Python)",
            "department": "Engineering - Platform",
            "employment_type": "FULL_TIME",
        },
        1: {
            "name": "Werkstudent Customer Operations (m/w/d)",
            "department": "Customer Success",
            "employment_type": "Werkstudent",
            "first_stage": "7",
        },
        2: {"name": "Office Manager (m/w/d)", "department": "Operations", "location": None},
    },
)

_PERSONIO: Final = _Spec(
    integration_id=SANDBOX_INTEGRATION_IDS[1],
    tool="personio",
    seed=20260519,
    job_count=60,
    remote_id=lambda i: str(1523400 + 3 * i),
    careers_url="https://example-shop.jobs.personio.de/job/",
    ats_url="https://example-shop.personio.de/recruiting/positions/",
    stages=(
        ("81230", "Unassigned"),
        ("81231", "Screening"),
        ("81232", "Interview 1"),
        ("81233", "Interview 2"),
        ("81234", "Offer"),
        ("81235", "Accepted"),
        ("81239", "Assessment Center (archived)"),
    ),
    first_stages=("81230",),
    final_stages=("81234", "81235"),
    inactive_stage="81239",
    is_deleted=lambda i: i % 11 == 2,
    has_unknown_format=lambda i: i == 30,
    has_null_format=lambda i: i == 31,
    has_unmapped_role=lambda i: i == 12,
    has_extra_key=lambda i: False,
    is_old_shape=lambda i: False,
    provides_job_code=False,
    mwd_share=0.8,
    overrides={5: {"employment_type": "Werkstudent"}, 6: {"employment_type": "Freelance"}},
    unsupported_filters=frozenset({"job_codes", "post_url"}),
)

_SPECS: Final = (_GREENHOUSE, _PERSONIO)


# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Family:
    department: str
    category: str | None
    code: str
    area: str
    titles: tuple[str, ...]
    specialisations: tuple[str, ...]


_FAMILIES: Final = (
    _Family(
        "Engineering - Platform",
        "Information Technology",
        "ENG",
        "Engineering",
        ("Backend Engineer", "Platform Engineer", "Site Reliability Engineer", "Data Engineer"),
        ("(Python)", "(Go)", "(Kotlin)", "- Payments", "- Search", ""),
    ),
    _Family(
        "Engineering - Product",
        "Information Technology",
        "ENG",
        "Software Development",
        ("Frontend Engineer", "Full-Stack Engineer", "Mobile Engineer", "QA Engineer"),
        ("(React)", "(TypeScript)", "(iOS)", "(Android)", "- Checkout", ""),
    ),
    _Family(
        "Data & Analytics",
        "Information Technology",
        "DAT",
        "Data & Analytics",
        ("Data Analyst", "Data Scientist", "Analytics Engineer", "Machine Learning Engineer"),
        ("(SQL)", "- Pricing", "- Recommendations", ""),
    ),
    _Family(
        "Product",
        "Product Management",
        "PRD",
        "Product",
        ("Product Manager", "Product Designer", "UX Researcher"),
        ("- Growth", "- Marketplace", "- Mobile", ""),
    ),
    _Family(
        "Marketing",
        "Marketing",
        "MKT",
        "Marketing",
        ("Performance Marketing Manager", "Content Marketing Manager", "Brand Manager"),
        ("DACH", "- Social Media", "- CRM", ""),
    ),
    _Family(
        "Sales",
        "Sales",
        "SAL",
        "Sales",
        ("Account Executive", "Sales Development Representative", "Key Account Manager"),
        ("DACH", "Nordics", "UK&I", "- Enterprise", ""),
    ),
    _Family(
        "Customer Success",
        "Customer Service",
        "CS",
        "Customer Operations",
        ("Customer Success Manager", "Support Specialist", "Customer Operations Associate"),
        ("(German speaking)", "(French speaking)", "- Enterprise", ""),
    ),
    _Family(
        "Finance",
        "Finance",
        "FIN",
        "Finance",
        ("Accountant", "Financial Controller", "FP&A Analyst"),
        ("- Group Reporting", "- Tax", ""),
    ),
    _Family(
        "People",
        "Human Resources",
        "HR",
        "People & Culture",
        ("Recruiter", "People Partner", "HR Generalist"),
        ("(Tech)", "- Payroll", ""),
    ),
    _Family(
        "Operations",
        "Administration",
        "ADM",
        "Office Management",
        ("Office Manager", "Facility Coordinator", "Executive Assistant"),
        ("Hamburg", "Berlin", ""),
    ),
    _Family(
        "Logistics",
        None,
        "LOG",
        "Logistics",
        ("Warehouse Associate", "Logistics Planner", "Fulfilment Team Lead"),
        ("- Night Shift", "Leipzig", ""),
    ),
)

_SENIORITIES: Final = (
    ("Junior", "Junior"),
    ("", "Mid-level"),
    ("", None),
    ("Senior", "Senior"),
    ("Senior", "IC3"),
    ("Staff", "IC5"),
    ("Lead", "Lead"),
)

# (city, country, state, street, zip): full addresses Kombo could parse.
_PLACES: Final = (
    ("Berlin", "DE", "Berlin", "Rosenthaler Straße 40", "10178"),
    ("Hamburg", "DE", "Hamburg", "Großer Burstah 21", "20457"),
    ("München", "DE", "Bayern", "Sonnenstraße 19", "80331"),
    ("Köln", "DE", "Nordrhein-Westfalen", "Hohenzollernring 72", "50672"),
    ("Leipzig", "DE", "Sachsen", "Zschochersche Straße 48", "04229"),
    ("Wien", "AT", "Wien", "Mariahilfer Straße 77", "1060"),
    ("Zürich", "CH", "Zürich", "Hardstrasse 201", "8005"),
    ("Amsterdam", "NL", "Noord-Holland", "Herengracht 182", "1016 BR"),
    ("London", "GB", "England", "20 Farringdon Road", "EC1M 3HE"),
    ("New York", "US", "NY", "114 5th Avenue", "10011"),
    ("Barcelona", "ES", "Cataluña", "Carrer de Pallars 193", "08005"),
)

_PARTIAL_PLACES: Final = (
    {"country": "DE", "raw": "Remote (Germany)"},
    {"country": "Deutschland", "raw": "Deutschlandweit"},
    {"city": "Berlin", "raw": "Berlin or remote"},
    {"raw": "Anywhere in the EU"},
)

_FIRST_NAMES: Final = tuple(
    "Miriam Jonas Lea Tobias Aylin Felix Sophie Mehmet Clara Lukas Hannah Noah Emilia Paul "
    "Zeynep Jan Marie Elias Ida Finn".split()
)
_LAST_NAMES: Final = tuple(
    "Köhler Albrecht Yıldız Brandt Schäfer Nowak Weiß Becker Öztürk Hoffmann Kowalski Richter "
    "Neumann Jansen Fischer Meyer Wagner".split()
)
_ASCII_EMAIL: Final = str.maketrans({"ö": "oe", "ä": "ae", "ü": "ue", "ß": "ss", "ı": "i"})

# (remote id, label in the ATS, Kombo's unified type or None when unmapped)
_JOB_ROLES: Final = (
    ("r-1", "Recruiter", "RECRUITER"),
    ("r-2", "Hiring Manager", "HIRING_MANAGER"),
    ("r-4", "Interview Coordinator", "COORDINATOR"),
    ("r-5", "Sourcer", "SOURCER"),
    ("r-6", "Interviewer", "INTERVIEWER"),
    ("r-9", "Job Admin", "ADMIN"),
    ("r-12", "Talent Scout", None),
    ("r-14", "Fachbereichsleitung", None),
)
_UNMAPPED_ROLE: Final = ("r-15", "HR Business Partner", None)
#: A role string Kombo's hiring_team_roles enum does not know (deliberate pass-through).
UNMAPPED_HIRING_TEAM_ROLE: Final = "HR_BUSINESS_PARTNER"

_INTEGRATION_FIELDS: Final = (
    ("custom_attribute_5512", "CUSTOM", "Werkstudent (max. 20h)", "Vertragsart"),
    ("budget", "DEFAULT", {"approved": True, "approver_id": 41}, None),
    ("requisition_priority", "CUSTOM", 2, "Priority"),
    ("office_ids", "DEFAULT", [4012, 4013], "Offices"),
    ("is_evergreen", "CUSTOM", False, "Evergreen requisition"),
    ("headcount", "DEFAULT", 1.5, None),
)

_MIME_SETS: Final = (
    ["application/pdf"],
    ["application/pdf", "image/jpeg", "image/png"],
    ["application/pdf", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"],
    None,
)

_SLUG_RE: Final = re.compile(r"[^a-z0-9]+")


# --------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------


def _build_integration(spec: _Spec) -> IntegrationData:
    builder = _JobBuilder(spec)
    records = tuple(builder.record(i) for i in range(spec.job_count))
    return IntegrationData(
        integration_id=spec.integration_id,
        tool=spec.tool,
        jobs=records,
        by_id=MappingProxyType({record.id: record for record in records}),
        unsupported_filters=spec.unsupported_filters,
    )


def _record(job: JSONObject, nested_changed_at_ms: int) -> JobRecord:
    """Freeze a finished job: encode it once and pre-parse what the filters read."""
    name = job.get("name")
    created = job.get("remote_created_at")
    changed_us = _timestamp_us(job["changed_at"])
    return JobRecord(
        job=job,
        encoded=orjson.dumps(job),
        id=job["id"],
        remote_id=job["remote_id"],
        name_folded=name.casefold() if isinstance(name, str) else None,
        job_code=job.get("job_code"),
        post_url=job.get("post_url"),
        status=job.get("status"),
        employment_type=job.get("employment_type"),
        visibility=job.get("visibility"),
        remote_created_day=datetime.fromisoformat(created).date() if created else None,
        changed_at_us=changed_us,
        nested_changed_at_us=nested_changed_at_ms * 1000,
        deleted=job.get("remote_deleted_at") is not None,
    )


def _timestamp_us(value: str) -> int:
    return epoch_us(datetime.fromisoformat(value))


def _slug(text: str) -> str:
    return _SLUG_RE.sub("-", text.casefold()).strip("-")


def _weighted(rng: random.Random, table: tuple[tuple[Any, int], ...]) -> Any:
    values = [value for value, _ in table]
    weights = [weight for _, weight in table]
    return rng.choices(values, weights)[0]


_EMPLOYMENT_WEIGHTS: Final = (
    ("FULL_TIME", 60),
    ("PART_TIME", 12),
    ("CONTRACT", 8),
    ("SEASONAL", 3),
    ("INTERNSHIP", 6),
    (None, 4),
    ("Werkstudent", 4),
    ("Freelance", 2),
)
_STATUS_WEIGHTS: Final = (
    ("OPEN", 55),
    ("CLOSED", 20),
    ("DRAFT", 8),
    ("ARCHIVED", 10),
    (None, 2),
    ("On hold", 2),
)
_VISIBILITY_WEIGHTS: Final = (
    ("PUBLIC", 60),
    ("INTERNAL", 15),
    ("UNLISTED", 10),
    ("CONFIDENTIAL", 5),
    (None, 3),
    ("Referral only", 2),
)
_REMOTE_WEIGHTS: Final = (
    ("ON_SITE", 35),
    ("HYBRID", 35),
    ("REMOTE", 15),
    ("TEMPORARY", 4),
    (None, 8),
    ("Flexible", 3),
)
_PERIOD_WEIGHTS: Final = (
    ("YEAR", 70),
    ("MONTH", 12),
    ("TWO_WEEKS", 3),
    ("WEEK", 3),
    ("DAY", 4),
    ("HOUR", 5),
    ("QUARTER", 2),
    (None, 1),
)
_POSTING_STATUS: Final = {"OPEN": "ACTIVE", "DRAFT": "DRAFT", "CLOSED": "INACTIVE"}
_POSTING_VISIBILITY: Final = {"PUBLIC": "PUBLIC", "INTERNAL": "INTERNAL", "UNLISTED": "UNLISTED"}


class _JobBuilder:
    """Generates one integration's jobs in order from a single seeded RNG."""

    def __init__(self, spec: _Spec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self._question_seq = 0
        self._code_seq: dict[tuple[str, int], int] = {}
        self._stage_names = dict(spec.stages)
        self._users = [self._user(n) for n in range(1, 41)]

    def kid(self, remote_id: str) -> str:
        return kombo_id(self.spec.integration_id, remote_id)

    # -- the job ------------------------------------------------------------------------------

    def record(self, i: int) -> JobRecord:
        job, nested_ms = self.job(i)
        return _record(job, nested_ms)

    def job(self, i: int) -> tuple[JSONObject, int]:
        """One job object in Kombo's field order, plus its hidden nested-change time."""
        spec, rng = self.spec, self.rng
        override = spec.overrides.get(i, {})
        rid = spec.remote_id(i)
        family = rng.choice(_FAMILIES)
        if "department" in override:
            family = next(f for f in _FAMILIES if f.department == override["department"])
        employment = override.get("employment_type", _weighted(rng, _EMPLOYMENT_WEIGHTS))
        name, experience = self._name(family, employment)
        name = override.get("name", name)
        status = _weighted(rng, _STATUS_WEIGHTS)
        visibility = _weighted(rng, _VISIBILITY_WEIGHTS)
        times = self._times(status, spec.is_deleted(i))
        post_url = self._post_url(rid, name, status, visibility)
        team = self._hiring_team(unmapped=spec.has_unmapped_role(i))
        job: JSONObject = {
            "id": self.kid(rid),
            "remote_id": rid,
            "name": name,
            "job_code": self._job_code(family, times["created"]),
            "description": self._description(family, name),
            "confidential": self._confidential(visibility),
            "weekly_hours": self._weekly_hours(employment),
            "employment_type": employment,
            "status": status,
            "visibility": visibility,
            "category": family.category,
            "department": family.department if rng.random() > 0.04 else None,
            "post_url": post_url,
            "experience_level": experience,
            "remote_work_status": _weighted(rng, _REMOTE_WEIGHTS),
            **self._salary(employment),
            "location": override.get("location", self._location()),
            "custom_fields": self._custom_fields(family),
            "integration_fields": self._integration_fields(rid),
            "remote_url": spec.ats_url + rid if rng.random() > 0.05 else None,
            "opened_at": _fmt(times["opened"]),
            "closed_at": _fmt(times["closed"]),
            "remote_created_at": _fmt(times["created"]),
            "remote_updated_at": _fmt(times["updated"]),
            "contact_id": _contact_id(team),
            "remote_data": self._remote_data(rid, name, status),
            "changed_at": _fmt(times["changed"]),
            "remote_deleted_at": _fmt(times["deleted"]),
            "stages": self._stages(override.get("first_stage"), force=spec.is_old_shape(i)),
            "screening_questions": self._questions(i),
            "job_postings": self._postings(rid, name, status, visibility, post_url),
            "hiring_team": team,
        }
        self._apply_quirks(i, job)
        return job, times["nested"]

    def _apply_quirks(self, i: int, job: JSONObject) -> None:
        """Rare shapes the gateway must tolerate: extra keys and old (pre-SDK) records."""
        if self.spec.has_extra_key(i):
            job["beta_score"] = 3
        if self.spec.is_old_shape(i):
            del job["remote_url"]
            del job["stages"][0]["status"]

    def _name(self, family: _Family, employment: str | None) -> tuple[str, str | None]:
        rng = self.rng
        title = rng.choice(family.titles)
        if employment == "Werkstudent":
            name, experience = f"Werkstudent {family.area}", "Student"
        elif employment == "INTERNSHIP":
            name, experience = f"{rng.choice(('Intern', 'Praktikum'))} {family.area}", "Intern"
        elif employment == "Freelance":
            name, experience = f"Freelance {title}", None
        elif employment == "SEASONAL":
            name, experience = f"Seasonal {title}", "Entry level"
        else:
            prefix, experience = rng.choice(_SENIORITIES)
            specialisation = rng.choice(family.specialisations)
            name = " ".join(part for part in (prefix, title, specialisation) if part)
        if rng.random() < self.spec.mwd_share:
            name += " (m/w/d)"
        return name, experience

    def _job_code(self, family: _Family, created_ms: int) -> str | None:
        if not self.spec.provides_job_code or self.rng.random() < 0.08:
            return None
        year = datetime.fromtimestamp(created_ms // 1000, tz=UTC).year
        key = (family.code, year)
        self._code_seq[key] = self._code_seq.get(key, 0) + 1
        return f"{family.code}-{year}-{self._code_seq[key]:03d}"

    def _description(self, family: _Family, name: str) -> str | None:
        if self.rng.random() < 0.03:
            return None
        perks = self.rng.sample(
            ["30 days of vacation", "Job ticket", "Learning budget", "Hybrid work", "Pension plan"],
            k=2,
        )
        return (
            f"<p>Join our {family.department} team as <strong>{name}</strong>.</p>"
            f"<ul><li>{perks[0]}</li><li>{perks[1]}</li></ul>"
        )

    def _confidential(self, visibility: str | None) -> bool | None:
        if self.rng.random() < 0.05:
            return None
        return visibility == "CONFIDENTIAL"

    def _weekly_hours(self, employment: str | None) -> float | None:
        if employment in ("FULL_TIME", "SEASONAL"):
            return self.rng.choice([40, 40, 38.5, 39])
        if employment in ("PART_TIME", "Werkstudent"):
            return self.rng.choice([17.5, 20, 25, 30])
        return None

    def _post_url(self, rid: str, name: str, status: Any, visibility: Any) -> str | None:
        if status == "DRAFT" or visibility not in ("PUBLIC", "UNLISTED"):
            return None
        return f"{self.spec.careers_url}{rid}-{_slug(name)}"

    def _salary(self, employment: str | None) -> JSONObject:
        rng = self.rng
        keys = ("salary_amount", "salary_amount_from", "salary_amount_to")
        roll = rng.random()
        if roll < 0.35:
            empty: JSONObject = dict.fromkeys(keys)
            return {**empty, "salary_currency": None, "salary_period": None}
        currency = rng.choice(["EUR", "EUR", "EUR", "USD", "GBP", "CHF"])
        amounts: tuple[float | None, float | None, float | None]
        if employment in ("Werkstudent", "INTERNSHIP"):
            amounts = (rng.choice([14.5, 16.5, 18]), None, None)
            period: Any = "HOUR"
        else:
            low = rng.randrange(38, 110) * 1000
            amounts = (None, low, low + rng.randrange(8, 30) * 1000)
            if roll < 0.5:
                amounts = (low, None, None)
            period = _weighted(rng, _PERIOD_WEIGHTS)
        return {
            **dict(zip(keys, amounts, strict=True)),
            "salary_currency": currency,
            "salary_period": period,
        }

    def _location(self) -> JSONObject | None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.08:
            return None
        keys = ("city", "country", "raw", "state", "street_1", "street_2", "zip_code")
        if roll < 0.18:
            return {**dict.fromkeys(keys), **rng.choice(_PARTIAL_PLACES)}
        city, country, state, street, zip_code = rng.choice(_PLACES)
        street_2 = "3. OG" if rng.random() < 0.1 else None
        raw = f"{street}, {zip_code} {city}, {country}"
        values = (city, country, raw, state, street, street_2, zip_code)
        return dict(zip(keys, values, strict=True))

    def _custom_fields(self, family: _Family) -> JSONObject | None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.05:
            return None
        if roll < 0.15:
            return {}
        candidates: JSONObject = {
            "cost_center": f"DE-{family.code}-{rng.randrange(100, 400)}",
            "headcount_budgeted": rng.random() < 0.8,
            "office_days_per_week": rng.randrange(0, 5),
            "bonus_share": rng.choice([0.1, 0.15, None]),
            "tags": rng.sample(["urgent", "evergreen", "backfill", "new-role"], k=2),
            "approval": {"level": rng.randrange(1, 4), "approved_by": "u-41"},
        }
        chosen = rng.sample(sorted(candidates), k=rng.randrange(1, len(candidates) + 1))
        return {key: candidates[key] for key in sorted(chosen)}

    def _integration_fields(self, rid: str) -> list[JSONObject]:
        if self.rng.random() > 0.15:
            return []
        picked = self.rng.sample(_INTEGRATION_FIELDS, k=self.rng.randrange(1, 4))
        return [
            {
                "id": self.kid(f"{rid}:{key}"),
                "key": key,
                "type": kind,
                "value": value,
                "label": label,
            }
            for key, kind, value, label in picked
        ]

    def _remote_data(self, rid: str, name: str, status: Any) -> JSONObject | None:
        if self.rng.random() > 0.08:
            return None
        raw: JSONObject = {
            "id": int(rid),
            "name": name,
            "status": str(status).lower(),
            "keyed_custom_fields": {"level": {"name": "Level", "value": "L3"}},
            "openings": [{"id": int(rid) * 10, "status": "open"}],
        }
        return {f"/jobs/{rid}": raw}

    def _times(self, status: Any, deleted: bool) -> dict[str, Any]:
        """Creation, update, change, open/close, deletion and nested-change instants (ms)."""
        rng = self.rng
        created = rng.randrange(_START_MS, _CREATED_UNTIL_MS)
        updated = rng.randrange(created, _END_MS) if rng.random() > 0.08 else None
        changed = min(_END_MS, (updated or created) + rng.randrange(0, 3 * _MS_PER_DAY))
        opened = None
        if status != "DRAFT":
            opened = created + rng.randrange(0, min(10 * _MS_PER_DAY, changed - created + 1))
        closed = None
        if status in ("CLOSED", "ARCHIVED"):
            closed = rng.randrange(opened or created, changed + 1)
        elif status == "OPEN" and rng.random() < 0.2:
            closed = _END_MS + rng.randrange(10, 200) * _MS_PER_DAY  # a planned close date
        if rng.random() < 0.3:
            nested = min(_END_MS, changed + rng.randrange(60_000, 20 * _MS_PER_DAY))
        else:
            nested = rng.randrange(created, changed + 1)
        return {
            "created": created,
            "updated": updated,
            "changed": changed,
            "opened": opened,
            "closed": closed,
            "deleted": changed if deleted else None,
            "nested": nested,
        }

    # -- nested lists -------------------------------------------------------------------------

    def _stages(self, first: str | None, *, force: bool) -> list[JSONObject]:
        spec, rng = self.spec, self.rng
        if not force and first is None and rng.random() < 0.05:
            return []
        ordered = [first or rng.choice(spec.first_stages)]
        excluded = {*spec.first_stages, *spec.final_stages, spec.inactive_stage}
        middle = [rid for rid, _ in spec.stages if rid not in excluded]
        ordered += sorted(rng.sample(middle, k=rng.randrange(1, 4)), key=middle.index)
        ordered += list(spec.final_stages[: rng.randrange(1, len(spec.final_stages) + 1)])
        unordered = rng.random() < 0.03  # an ATS that does not order its stages
        stages = [self._stage(rid, None if unordered else n) for n, rid in enumerate(ordered)]
        if rng.random() < 0.12:
            inactive = self._stage(spec.inactive_stage, None)
            inactive.update(status="INACTIVE", custom_fields={"archived_by": "workflow-2025"})
            stages.append(inactive)
        return stages

    def _stage(self, rid: str, index: int | None) -> JSONObject:
        status = "ACTIVE" if self.rng.random() > 0.03 else None
        return {
            "id": self.kid(rid),
            "remote_id": rid,
            "name": self._stage_names[rid],
            "status": status,
            "custom_fields": None,
            "index": index,
        }

    def _questions(self, i: int) -> list[JSONObject]:
        rng = self.rng
        bundles = rng.sample(_BUNDLES, k=rng.choice([0, 0, 1, 2, 2, 3, 4]))
        questions = [q for bundle in bundles for q in bundle(self)]
        if self.spec.has_unknown_format(i):
            questions.append(self._unlisted_format_question())
        if self.spec.has_null_format(i):
            questions.append(self.question("Anything else you would like to tell us?", None))
        unindexed = rng.random() < 0.05
        for n, question in enumerate(questions):
            question["index"] = None if unindexed else n
        return questions

    def question(
        self,
        title: str,
        fmt: JSONObject | None,
        *,
        category: str | None = None,
        required: bool | None = True,
        description: str | None = None,
        precondition: tuple[JSONObject, list[Any]] | None = None,
    ) -> JSONObject:
        """One screening question; `precondition` is (the question it depends on, options)."""
        self._question_seq += 1
        rid = f"q-{self._question_seq}"
        parent, options = precondition if precondition else (None, None)
        return {
            "id": self.kid(rid),
            "remote_id": rid,
            "title": title,
            "description": description,
            "format": fmt,
            "category": category,
            "index": None,
            "required": required,
            "precondition_question_id": parent["id"] if parent else None,
            "precondition_options": options,
        }

    def options(self, names: tuple[str, ...], *, nameless_last: bool = False) -> list[JSONObject]:
        """Select options; with `nameless_last` the last has no remote ID (name-only tools)."""
        prefix = f"opt-{self._question_seq + 1}"
        result = []
        for n, name in enumerate(names):
            remote = None if nameless_last and n == len(names) - 1 else f"{prefix}-{n}"
            result.append(
                {"id": self.kid(remote or f"{prefix}#{name}"), "remote_id": remote, "name": name}
            )
        return result

    def _unlisted_format_question(self) -> JSONObject:
        unlisted: list[JSONObject] = [
            {"type": "SIGNATURE", "pen_color": "#000000"},
            {"type": "VIDEO_RESPONSE", "max_duration_seconds": 120},
        ]
        fmt = self.rng.choice(unlisted)
        return self.question("Please confirm the declaration of consent", fmt)

    def _postings(
        self, rid: str, name: str, status: Any, visibility: Any, post_url: str | None
    ) -> list[JSONObject]:
        rng = self.rng
        count = rng.choice([0, 1, 1, 1, 1, 2])
        postings = []
        for n in range(1, count + 1):
            prid = f"{rid}-p{n}"
            internal = n == 2
            posting_status = _POSTING_STATUS.get(status) if rng.random() > 0.03 else None
            posting: JSONObject = {
                "id": self.kid(prid),
                "remote_id": prid,
                "title": f"{name} - internal referral" if internal else name,
                "description_html": None if rng.random() < 0.1 else f"<p>{name}</p>",
                "status": posting_status,
                "visibility": "INTERNAL" if internal else _POSTING_VISIBILITY.get(visibility),
                "url": None if internal or post_url is None else f"{post_url}?ref=p{n}",
                "remote_data": None,
            }
            if rng.random() < 0.1:
                posting["remote_data"] = {f"/job_posts/{prid}": {"id": prid, "live": True}}
            postings.append(posting)
        return postings

    def _user(self, n: int) -> JSONObject:
        rng = self.rng
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        address = f"{first}.{last}@example-shop.de".lower().translate(_ASCII_EMAIL)
        email = address if rng.random() > 0.1 else None
        rid = f"u-{n}"
        return {
            "id": self.kid(rid),
            "remote_id": rid,
            "first_name": first,
            "last_name": last,
            "email": email,
        }

    def _hiring_team(self, *, unmapped: bool) -> list[JSONObject]:
        """0-3 members; `unmapped` forces one member carrying an unmapped role string."""
        rng = self.rng
        size = rng.choice([0, 1, 2, 2, 3])
        users = rng.sample(self._users, k=max(size, 1 if unmapped else 0))
        team = [self._member(user, lead=n) for n, user in enumerate(users)]
        if unmapped:
            role_id, label, _ = _UNMAPPED_ROLE
            team[0]["hiring_team_roles"].append(UNMAPPED_HIRING_TEAM_ROLE)
            team[0]["job_roles"].append(_job_role(role_id, label, None))
        return team

    def _member(self, user: JSONObject, *, lead: int) -> JSONObject:
        rng = self.rng
        roles: list[tuple[str, str, str | None]]
        roles = [_JOB_ROLES[lead % 2]] if lead < 2 else [rng.choice(_JOB_ROLES[2:5])]
        if rng.random() < 0.3:
            extra = rng.choice(_JOB_ROLES)
            if extra not in roles:
                roles.append(extra)
        mapped = [unified for _, _, unified in roles if unified in HIRING_TEAM_ROLES]
        return {
            **user,
            "hiring_team_roles": mapped,
            "job_roles": [_job_role(rid, label, unified) for rid, label, unified in roles],
        }


def _fmt(epoch_ms: int | None) -> str | None:
    return None if epoch_ms is None else format_timestamp(epoch_ms)


def _job_role(remote_id: str, label: str, unified: str | None) -> JSONObject:
    return {"remote_id": remote_id, "remote_label": label, "unified_type": unified, "scope": "JOB"}


def _contact_id(team: list[JSONObject]) -> str | None:
    """Kombo's deprecated contact: the first recruiter on the team, if any."""
    for member in team:
        if "RECRUITER" in member["hiring_team_roles"]:
            return str(member["id"])
    return None


# --------------------------------------------------------------------------------------------
# Screening-question bundles: related questions (with their preconditions) come together
# --------------------------------------------------------------------------------------------


def _motivation(b: _JobBuilder) -> list[JSONObject]:
    display = b.rng.choice(["MULTI_LINE", "SINGLE_LINE", None])
    fmt = {"type": "TEXT", "display_type": display, "max_length": b.rng.choice([2000, 500, None])}
    return [b.question("Why do you want to join us?", fmt, description="A few sentences.")]


def _experience(b: _JobBuilder) -> list[JSONObject]:
    display = b.rng.choice(["SLIDER", "FIELD", None])
    low, high = (0, 30) if display == "SLIDER" else (None, None)
    fmt = {"type": "NUMBER", "display_type": display, "min": low, "max": high}
    return [b.question("How many years of professional experience do you have?", fmt)]


def _visa(b: _JobBuilder) -> list[JSONObject]:
    parent = b.question("Will you need visa sponsorship to work here?", {"type": "BOOLEAN"})
    fmt = {"type": "TEXT", "display_type": "SINGLE_LINE", "max_length": 120}
    child = b.question(
        "Which residence permit do you hold?", fmt, required=False, precondition=(parent, [True])
    )
    return [parent, child]


def _driving(b: _JobBuilder) -> list[JSONObject]:
    parent = b.question("Do you hold a valid driving licence (class B)?", {"type": "BOOLEAN"})
    child = b.question(
        "Would you obtain one within six months?",
        {"type": "BOOLEAN"},
        precondition=(parent, [False]),
    )
    return [parent, child]


def _notice_period(b: _JobBuilder) -> list[JSONObject]:
    options = b.options(
        ("Available immediately", "Up to 3 months", "More than 3 months"), nameless_last=True
    )
    display = b.rng.choice(["DROPDOWN", "RADIO", None])
    fmt = {"type": "SINGLE_SELECT", "display_type": display, "options": options}
    parent = b.question("What is your notice period?", fmt)
    child_fmt = {"type": "NUMBER", "display_type": "FIELD", "min": 0, "max": 52}
    child = b.question(
        "How many weeks exactly?",
        child_fmt,
        required=False,
        precondition=(parent, [options[1]["id"], options[2]["id"]]),
    )
    return [parent, child]


def _languages(b: _JobBuilder) -> list[JSONObject]:
    options = b.options(("German", "English", "French", "Other"), nameless_last=True)
    parent = b.question(
        "Which languages do you speak fluently?",
        {"type": "MULTI_SELECT", "options": options},
        description="Select all that apply.",
    )
    child_fmt = {"type": "TEXT", "display_type": None, "max_length": 80}
    child = b.question(
        "Which other language?", child_fmt, precondition=(parent, [options[3]["id"]])
    )
    return [parent, child]


def _start_date(b: _JobBuilder) -> list[JSONObject]:
    return [b.question("What is your earliest possible start date?", {"type": "DATE"})]


def _documents(b: _JobBuilder) -> list[JSONObject]:
    fmt = {
        "type": "FILE",
        "accepted_mime_types": b.rng.choice(_MIME_SETS),
        "max_file_size_bytes": b.rng.choice([10_485_760, 5_242_880, None]),
    }
    return [b.question("Please upload your CV", fmt, description="PDF preferred.")]


def _privacy(b: _JobBuilder) -> list[JSONObject]:
    text = "<p>We store your application data for six months after the process ends.</p>"
    return [b.question("Privacy notice", {"type": "INFORMATION"}, required=None, description=text)]


def _signature(b: _JobBuilder) -> list[JSONObject]:
    raw = {
        "id": b.rng.randrange(100, 9999),
        "field_type": "signature_pad",
        "mandatory": True,
        "settings": {"pen_color": "#000000"},
    }
    fmt = {"type": "UNKNOWN", "raw_question": raw}
    return [b.question("Please sign the declaration of consent", fmt)]


def _contact(b: _JobBuilder) -> list[JSONObject]:
    email = b.question("Your private email address", {"type": "TEXT", "display_type": "EMAIL"})
    url = {"type": "TEXT", "display_type": "URL", "max_length": None}
    return [email, b.question("Link to your portfolio or GitHub profile", url, required=False)]


def _diversity(b: _JobBuilder) -> list[JSONObject]:
    veteran = b.options(("I am a protected veteran", "I am not a protected veteran", "Decline"))
    eeo = b.question(
        "Veteran status",
        {"type": "SINGLE_SELECT", "display_type": "RADIO", "options": veteran},
        category="EEO",
        required=False,
    )
    gender = b.options(("Woman", "Man", "Non-binary / diverse", "Prefer not to say"))
    demo = b.question(
        "How would you describe your gender?",
        {"type": "SINGLE_SELECT", "display_type": "DROPDOWN", "options": gender},
        category="DEMOGRAPHIC",
        required=False,
    )
    return [eeo, demo]


_BUNDLES: Final[tuple[Callable[[_JobBuilder], list[JSONObject]], ...]] = (
    _motivation,
    _experience,
    _visa,
    _driving,
    _notice_period,
    _languages,
    _start_date,
    _documents,
    _privacy,
    _signature,
    _contact,
    _diversity,
)
