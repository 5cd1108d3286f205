"""The benchmark's fixed GraphQL queries (`bench.inprocess`, `bench.e2e`, `bench.run`).

Usage::

    from bench.queries import ALL_FIELDS_250, FIVE_FIELDS_100, LOOKUPS_60, JOB_BY_ID_10

Job IDs come from the sandbox's deterministic data (`gateway.sandbox.data.dataset()`),
integration `INTEGRATION` (1,200 jobs), so the by-ID queries name jobs that exist and
resolve in one upstream call each.
"""

from __future__ import annotations

from typing import Final

from gateway.config import SANDBOX_INTEGRATION_IDS
from gateway.sandbox.data import dataset

#: The sandbox integration every query reads (the gateway's default in the bench).
INTEGRATION: Final = SANDBOX_INTEGRATION_IDS[0]

#: Every field of `Job`, with all nested objects and every member of the question-format
#: union: the selection of `tests/test_job_fields.py` (ALL_FIELDS).
JOB_ALL_FIELDS: Final = """
      __typename id komboId remoteId name jobCode description confidential weeklyHours
      employmentType employmentTypeRaw status statusRaw visibility visibilityRaw
      category department postUrl remoteUrl experienceLevel
      remoteWorkStatus remoteWorkStatusRaw
      salaryAmount salaryAmountFrom salaryAmountTo salaryCurrency salaryPeriod salaryPeriodRaw
      location { city country raw state street1 street2 zipCode }
      customFields
      integrationFields { id komboId key type value label }
      openedAt closedAt remoteCreatedAt remoteUpdatedAt contactId remoteData changedAt
      remoteDeletedAt
      stages { id komboId remoteId name index }
      screeningQuestions {
        id komboId remoteId title description index required
        preconditionQuestionId preconditionOptions
        preconditionQuestion { komboId title }
        format {
          __typename
          ... on TextQuestionFormat { type displayType maxLength }
          ... on NumberQuestionFormat { type numberDisplay: displayType min max }
          ... on SingleSelectQuestionFormat {
            type selectDisplay: displayType options { id komboId remoteId name }
          }
          ... on MultiSelectQuestionFormat { type options { id komboId remoteId name } }
          ... on BooleanQuestionFormat { type }
          ... on DateQuestionFormat { type }
          ... on FileQuestionFormat { type acceptedMimeTypes maxFileSizeBytes }
          ... on InformationQuestionFormat { type }
          ... on UnknownQuestionFormat { type raw }
        }
      }
      jobPostings {
        id komboId remoteId title descriptionHtml status statusRaw visibility visibilityRaw url
        remoteData
      }
      hiringTeam { id komboId remoteId firstName lastName email hiringTeamRoles hiringTeamRolesRaw }
"""

#: Ten scalar fields of a job, for the by-ID queries.
JOB_TEN_FIELDS: Final = (
    "id komboId remoteId name jobCode status employmentType postUrl remoteCreatedAt changedAt"
)

ALL_FIELDS_250: Final = (
    "query AllFields250 {\n  jobs(first: 250) {\n    pageInfo { hasNextPage endCursor }\n"
    "    nodes {" + JOB_ALL_FIELDS + "    }\n  }\n}\n"
)

FIVE_FIELDS_100: Final = (
    "query FiveFields100 {\n  jobs(first: 100) { nodes { id komboId name status postUrl } }\n}\n"
)

#: How many `job(id:)` look-ups LOOKUPS_60 makes, and which sandbox jobs they name
#: (every 20th job, so the IDs spread over the whole integration).
LOOKUP_COUNT: Final = 60
_LOOKUP_STRIDE: Final = 20


def sandbox_job_ids(count: int, stride: int = 1, start: int = 0, live: bool = False) -> list[str]:
    """Kombo IDs of `count` sandbox jobs of INTEGRATION, every `stride`-th in data order from
    index `start`; with `live`, those not deleted only."""
    records = dataset()[INTEGRATION].jobs[start::stride]
    ids = [record.id for record in records if not (live and record.deleted)][:count]
    if len(ids) != count:
        raise ValueError(
            f"the sandbox has {len(ids)} jobs from {start} at stride {stride}, not {count}"
        )
    return ids


def lookups_query(ids: list[str], fields: str = JOB_TEN_FIELDS) -> str:
    """One operation with a `job(id:)` alias per ID (`j0`, `j1`, ...)."""
    lines = [f'  j{n}: job(id: "{kombo_id}") {{ {fields} }}' for n, kombo_id in enumerate(ids)]
    return "query Lookups {\n" + "\n".join(lines) + "\n}\n"


LOOKUP_IDS: Final = sandbox_job_ids(LOOKUP_COUNT, _LOOKUP_STRIDE)
LOOKUPS_60: Final = lookups_query(LOOKUP_IDS)

#: The job JOB_BY_ID_10 reads: the integration's first.
JOB_BY_ID: Final = sandbox_job_ids(1)[0]
JOB_BY_ID_10: Final = f'query JobById10 {{\n  job(id: "{JOB_BY_ID}") {{ {JOB_TEN_FIELDS} }}\n}}\n'

#: name -> query, in report order.
QUERIES: Final[dict[str, str]] = {
    "ALL_FIELDS_250": ALL_FIELDS_250,
    "FIVE_FIELDS_100": FIVE_FIELDS_100,
    "LOOKUPS_60": LOOKUPS_60,
    "JOB_BY_ID_10": JOB_BY_ID_10,
}

#: What each query is, for report tables.
DESCRIPTIONS: Final[dict[str, str]] = {
    "ALL_FIELDS_250": "250 jobs, all fields",
    "FIVE_FIELDS_100": "100 jobs, 5 scalar fields",
    "LOOKUPS_60": "60 `job(id:)` look-ups, 10 fields",
    "JOB_BY_ID_10": "1 job by ID, 10 fields",
}
