"""Object types over Kombo's job dicts.

Every object here resolves from the dict Kombo sent, as is: the schema is built with
a default resolver that reads `root.get(python_name)`, and Python field names are
Kombo's keys (`remote_id` -> `remoteId`), so a plain field costs one dict lookup and
no object is built per record or nested item. Only IDs, enums, non-null lists and
union members need resolvers of their own; each such field also declares what it reads
as a spec (`gateway.schema.fastpath.specs`), which the compiled fast path runs instead of
calling the resolver. A key missing upstream reads as null; keys we don't know are never
read.

Values of the wrong type are checked by the executor (`gateway.schema.fastpath.projection`):
a wrongly typed leaf is null with an UPSTREAM_ERROR, an object without a string `id`
is never served (no ID is invented), and a non-null list (`stages`, `hiringTeam`, ...)
that is not a list reads as empty, its unusable items left out, with an UPSTREAM_ERROR
at the list. So the resolvers here hand Kombo's values on unchanged where they cannot
use them (a list field returns a non-list as sent, for the executor to report), and
raise `WrongValueType` where they read a value themselves.
"""

from __future__ import annotations

from typing import Annotated, Any

import strawberry

from gateway.schema.context import Context
from gateway.schema.enums import (
    EmploymentType,
    HiringTeamRole,
    IntegrationFieldType,
    JobPostingStatus,
    JobPostingVisibility,
    JobStatus,
    JobVisibility,
    NumberDisplayType,
    RemoteWorkStatus,
    SalaryPeriod,
    SelectDisplayType,
    TextDisplayType,
    enum_field,
    enum_values,
    raw_field,
)
from gateway.schema.fastpath.specs import (
    GlobalIdSpec,
    KomboIdSpec,
    ListSpec,
    PreconditionSpec,
    QuestionsSpec,
    TypeTag,
    spec_metadata,
)
from gateway.schema.ids import JOB_TYPE, global_id
from gateway.schema.kombo_values import WrongValueType
from gateway.schema.scalars import JSON, DateTime

Record = dict[str, Any]


def _kombo_id(root: Record) -> str:
    kombo_id = root.get("id")
    if type(kombo_id) is not str:  # the executor serves no such object: never reached
        raise WrongValueType(kombo_id, "a string `id`")
    return kombo_id


def global_id_field(type_name: str) -> Any:
    """The `id` field: the type-qualified global ID of the record's Kombo `id`."""

    def resolve(root: Record) -> strawberry.ID:
        return strawberry.ID(global_id(type_name, _kombo_id(root)))

    return strawberry.field(
        resolver=resolve,
        description=f"Global ID: opaque, unique across types ({type_name}).",
        metadata=spec_metadata(GlobalIdSpec(type_name)),
    )


def kombo_id_field() -> Any:
    """The `komboId` field: Kombo's `id`, a string as sent (never `str()` of another value)."""

    def resolve(root: Record) -> str:
        return _kombo_id(root)

    return strawberry.field(
        resolver=resolve,
        description="The Kombo ID. Unique within its model only: "
        "a job and its stage may share one.",
        metadata=spec_metadata(KomboIdSpec()),
    )


def list_field(key: str) -> Any:
    """A non-null list field: Kombo's list, or an empty one when the key is missing or null.

    Any other value goes to the executor as sent: it reads as an empty list with an
    UPSTREAM_ERROR, and items that cannot be served are left out the same way.
    """

    def resolve(root: Record) -> Any:
        value = root.get(key)
        return [] if value is None else value

    return strawberry.field(resolver=resolve, metadata=spec_metadata(ListSpec(key)))


@strawberry.interface(description="An object with a global ID, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID


@strawberry.type(description="Where a job is located. Every member may be null.")
class JobLocation:
    city: str | None
    country: str | None = strawberry.field(
        description="ISO 3166-1 alpha-2 code where Kombo can derive one, else as the ATS sent it."
    )
    raw: str | None = strawberry.field(description="The full address string, when one exists.")
    state: str | None
    street_1: str | None
    street_2: str | None
    zip_code: str | None


@strawberry.type(description="A raw ATS field the customer chose to pass through.")
class IntegrationField:
    id: strawberry.ID = global_id_field("IntegrationField")
    kombo_id: str = kombo_id_field()
    key: str | None = strawberry.field(description="The field's key in the ATS.")
    type: IntegrationFieldType | None = enum_field("type", IntegrationFieldType)
    value: JSON | None
    label: str | None


@strawberry.type(description="An application stage of a job.")
class JobStage:
    id: strawberry.ID = global_id_field("JobStage")
    kombo_id: str = kombo_id_field()
    remote_id: str | None
    name: str | None
    index: int | None = strawberry.field(description="Position, where the ATS orders stages.")


@strawberry.type(description="An answer option of a select question.")
class QuestionOption:
    id: strawberry.ID = global_id_field("QuestionOption")
    kombo_id: str = kombo_id_field()
    remote_id: str | None
    name: str | None


_FORMAT_TYPE_DESCRIPTION = "Kombo's format type, as sent."

# Each member's `is_type_of` is a `TypeTag` on Kombo's `format.type`: the standard path
# asks each member in turn, the compiled one looks the type up once.


@strawberry.type
class TextQuestionFormat:
    type: str = strawberry.field(description=_FORMAT_TYPE_DESCRIPTION)
    display_type: TextDisplayType | None = enum_field("display_type", TextDisplayType)
    max_length: int | None = strawberry.field(description="Null means no limit.")
    is_type_of = TypeTag("type", "TEXT")


@strawberry.type
class NumberQuestionFormat:
    type: str = strawberry.field(description=_FORMAT_TYPE_DESCRIPTION)
    display_type: NumberDisplayType | None = enum_field("display_type", NumberDisplayType)
    min: float | None
    max: float | None
    is_type_of = TypeTag("type", "NUMBER")


@strawberry.type
class SingleSelectQuestionFormat:
    type: str = strawberry.field(description=_FORMAT_TYPE_DESCRIPTION)
    display_type: SelectDisplayType | None = enum_field("display_type", SelectDisplayType)
    options: list[QuestionOption] = list_field("options")
    is_type_of = TypeTag("type", "SINGLE_SELECT")


@strawberry.type
class MultiSelectQuestionFormat:
    type: str = strawberry.field(description=_FORMAT_TYPE_DESCRIPTION)
    options: list[QuestionOption] = list_field("options")
    is_type_of = TypeTag("type", "MULTI_SELECT")


@strawberry.type
class BooleanQuestionFormat:
    type: str = strawberry.field(description=_FORMAT_TYPE_DESCRIPTION)
    is_type_of = TypeTag("type", "BOOLEAN")


@strawberry.type
class DateQuestionFormat:
    type: str = strawberry.field(description=_FORMAT_TYPE_DESCRIPTION)
    is_type_of = TypeTag("type", "DATE")


@strawberry.type
class FileQuestionFormat:
    type: str = strawberry.field(description=_FORMAT_TYPE_DESCRIPTION)
    accepted_mime_types: list[str] | None
    max_file_size_bytes: int | None
    is_type_of = TypeTag("type", "FILE")


@strawberry.type(description="A static text block (use the question's title and description).")
class InformationQuestionFormat:
    type: str = strawberry.field(description=_FORMAT_TYPE_DESCRIPTION)
    is_type_of = TypeTag("type", "INFORMATION")


#: Format types with a union member of their own (read from their tags, so the two
#: cannot drift apart); any other type string is Unknown.
KNOWN_FORMAT_TYPES = frozenset(
    str(member.is_type_of.tag)
    for member in (
        TextQuestionFormat,
        NumberQuestionFormat,
        SingleSelectQuestionFormat,
        MultiSelectQuestionFormat,
        BooleanQuestionFormat,
        DateQuestionFormat,
        FileQuestionFormat,
        InformationQuestionFormat,
    )
)


def _resolve_unknown_raw(root: Record) -> Any:
    if root.get("type") == "UNKNOWN":
        return root.get("raw_question")
    return root


@strawberry.type(description="Kombo's UNKNOWN format, or a format type this API does not know yet.")
class UnknownQuestionFormat:
    type: str = strawberry.field(description=_FORMAT_TYPE_DESCRIPTION)
    raw: JSON | None = strawberry.field(
        resolver=_resolve_unknown_raw,
        description="For UNKNOWN: the ATS's original question definition (`raw_question`). "
        "For a type this API does not know: the whole format object as Kombo sent it.",
    )
    is_type_of = TypeTag("type", None, others=KNOWN_FORMAT_TYPES)


ScreeningQuestionFormat = Annotated[
    TextQuestionFormat
    | NumberQuestionFormat
    | SingleSelectQuestionFormat
    | MultiSelectQuestionFormat
    | BooleanQuestionFormat
    | DateQuestionFormat
    | FileQuestionFormat
    | InformationQuestionFormat
    | UnknownQuestionFormat,
    strawberry.union(
        "ScreeningQuestionFormat",
        description="How a question is answered; one member per Kombo format type.",
    ),
]


def _resolve_precondition_question(root: Record, info: strawberry.Info[Context, None]) -> Any:
    wanted = root.get("precondition_question_id")
    if wanted is None:
        return None
    for question in info.context.question_siblings.get(id(root), ()):
        if type(question) is dict and question.get("id") == wanted:
            return question
    return None


def _resolve_precondition_options(root: Record) -> Any:
    options = root.get("precondition_options")
    if type(options) is not list:
        return options  # null, or a value the executor reports
    # Kombo sends option IDs, or [true]/[false] for BOOLEAN preconditions; any other item
    # is left out by the executor, with an error.
    return [("true" if o else "false") if type(o) is bool else o for o in options]


@strawberry.type(description="A question candidates answer when applying.")
class ScreeningQuestion:
    id: strawberry.ID = global_id_field("ScreeningQuestion")
    kombo_id: str = kombo_id_field()
    remote_id: str | None
    title: str | None
    description: str | None = strawberry.field(description="Extra guidance; may contain HTML.")
    format: ScreeningQuestionFormat | None = strawberry.field(
        description="Null when Kombo sent no format."
    )
    index: int | None = strawberry.field(description="Suggested display order.")
    required: bool | None
    precondition_question_id: str | None = strawberry.field(
        description="Kombo ID of the question this one depends on, as sent."
    )
    precondition_question: ScreeningQuestion | None = strawberry.field(
        resolver=_resolve_precondition_question,
        metadata=spec_metadata(PreconditionSpec("precondition_question_id")),
        description="The question this one depends on, from the same job. Show this question "
        "only when that question's answer is in `preconditionOptions`.",
    )
    precondition_options: list[str] | None = strawberry.field(
        resolver=_resolve_precondition_options,
        description='Option Kombo IDs, or "true"/"false" for BOOLEAN preconditions.',
    )


@strawberry.type(description="A posting of a job on a job board or career page.")
class JobPosting:
    id: strawberry.ID = global_id_field("JobPosting")
    kombo_id: str = kombo_id_field()
    remote_id: str | None
    title: str | None
    description_html: str | None
    status: JobPostingStatus | None = enum_field("status", JobPostingStatus)
    status_raw: str | None = raw_field("status")
    visibility: JobPostingVisibility | None = enum_field("visibility", JobPostingVisibility)
    visibility_raw: str | None = raw_field("visibility")
    url: str | None = strawberry.field(description="Public posting URL hosted by the ATS.")
    remote_data: JSON | None


_HIRING_TEAM_ROLES = enum_values(HiringTeamRole)


def _resolve_hiring_team_roles(root: Record) -> Any:
    """The mapped roles. Unmapped strings are left out here (Kombo's pass-through, not an
    error); a role that is no string stays in, for the executor to leave out and report."""
    roles = root.get("hiring_team_roles")
    if type(roles) is not list:
        return [] if roles is None else roles
    return [role for role in roles if type(role) is not str or role in _HIRING_TEAM_ROLES]


def _resolve_hiring_team_roles_raw(root: Record) -> Any:
    """Every role as sent; one that is no string is left out by the executor, reported."""
    roles = root.get("hiring_team_roles")
    return [] if roles is None else roles


@strawberry.type(description="An ATS user who works on the job.")
class HiringTeamMember:
    id: strawberry.ID = global_id_field("HiringTeamMember")
    kombo_id: str = kombo_id_field()
    remote_id: str | None
    first_name: str | None
    last_name: str | None
    email: str | None = strawberry.field(description="Null when the ATS value is not an email.")
    hiring_team_roles: list[HiringTeamRole] = strawberry.field(
        resolver=_resolve_hiring_team_roles, description="The roles this API knows."
    )
    hiring_team_roles_raw: list[str] = strawberry.field(
        resolver=_resolve_hiring_team_roles_raw, description="Every role, as Kombo sent it."
    )


def _resolve_screening_questions(root: Record, info: strawberry.Info[Context, None]) -> Any:
    questions = root.get("screening_questions")
    if type(questions) is not list:
        return [] if questions is None else questions  # the executor reports a non-list
    siblings = info.context.question_siblings
    for question in questions:
        if type(question) is dict and question.get("precondition_question_id") is not None:
            siblings[id(question)] = questions
    return questions


_UNMAPPED = "Null when Kombo sent a value this API does not know: see `{}`."


@strawberry.federation.type(
    keys=["id", "komboId"], description="A job (requisition) in the ATS, as Kombo unifies it."
)
class Job(Node):
    id: strawberry.ID = global_id_field(JOB_TYPE)
    kombo_id: str = kombo_id_field()
    remote_id: str | None = strawberry.field(
        description="The ATS's own ID; may be composite. Not a good primary key."
    )
    name: str | None
    job_code: str | None = strawberry.field(description="Human-readable requisition code.")
    description: str | None = strawberry.field(description="Usually HTML.")
    confidential: bool | None = strawberry.field(deprecation_reason="Use `visibility`.")
    weekly_hours: float | None
    employment_type: EmploymentType | None = enum_field("employment_type", EmploymentType)
    employment_type_raw: str | None = raw_field("employment_type")
    status: JobStatus | None = enum_field("status", JobStatus)
    status_raw: str | None = raw_field("status")
    visibility: JobVisibility | None = enum_field("visibility", JobVisibility)
    visibility_raw: str | None = raw_field("visibility")
    category: str | None
    department: str | None
    post_url: str | None = strawberry.field(description="Public posting URL hosted by the ATS.")
    remote_url: str | None = strawberry.field(description="Link to the job inside the ATS UI.")
    experience_level: str | None
    remote_work_status: RemoteWorkStatus | None = enum_field("remote_work_status", RemoteWorkStatus)
    remote_work_status_raw: str | None = raw_field("remote_work_status")
    salary_amount: float | None
    salary_amount_from: float | None
    salary_amount_to: float | None
    salary_currency: str | None = strawberry.field(description="Usually ISO 4217.")
    salary_period: SalaryPeriod | None = enum_field("salary_period", SalaryPeriod)
    salary_period_raw: str | None = raw_field("salary_period")
    location: JobLocation | None
    custom_fields: JSON | None
    integration_fields: list[IntegrationField] = list_field("integration_fields")
    opened_at: DateTime | None
    closed_at: DateTime | None = strawberry.field(
        description="A past close date, or a planned one still in the future."
    )
    remote_created_at: DateTime | None
    remote_updated_at: DateTime | None
    contact_id: str | None = strawberry.field(deprecation_reason="Use `hiringTeam`.")
    remote_data: JSON | None = strawberry.field(
        description="Raw ATS payload keyed by source path, when enabled for the integration."
    )
    changed_at: DateTime | None = strawberry.field(
        description="Last change of this job's own fields (nested changes don't move it)."
    )
    remote_deleted_at: DateTime | None = strawberry.field(
        description="Set when the job disappeared from the ATS."
    )
    stages: list[JobStage] = list_field("stages")
    screening_questions: list[ScreeningQuestion] = strawberry.field(
        resolver=_resolve_screening_questions,
        metadata=spec_metadata(QuestionsSpec("screening_questions")),
    )
    job_postings: list[JobPosting] = list_field("job_postings")
    hiring_team: list[HiringTeamMember] = list_field("hiring_team")

    @classmethod
    def is_type_of(cls, obj: Any, _info: Any) -> bool:
        # Job is the only Node and the only entity: a Node or entity field returns job dicts.
        return isinstance(obj, dict)

    @classmethod
    async def resolve_reference(
        cls, info: strawberry.Info[Context, None], **representation: Any
    ) -> Record | None:
        """Federation `_entities`: a Job by either key, through the request's batched loader.

        Strawberry passes the representation raw, in GraphQL names (`komboId`), with
        `id` still the global ID string; `GatewaySchema.entities_resolver` has checked
        that one of them is a string.
        """
        key = "komboId" if "komboId" in representation else "id"
        job: Record | None = await info.context.load_job(representation[key])
        return job


@strawberry.type(description="An edge of a `JobConnection`.")
class JobEdge:
    cursor: str = strawberry.field(
        description="Opaque; pass as `after` to get the jobs that follow this one."
    )
    node: Job


@strawberry.federation.type(shareable=True, description="Relay page information.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="False only when the list has ended.")
    has_previous_page: bool = strawberry.field(description="True when `after` was given.")
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="A page of jobs (Relay cursor connection).")
class JobConnection:
    edges: list[JobEdge]
    nodes: list[Job]
    page_info: PageInfo
