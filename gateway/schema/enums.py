"""GraphQL enums, and fields that read Kombo's open enums without ever failing.

Kombo passes a value it cannot map through as the original string (e.g.
`employment_type: "Werkstudent"`). An enum field therefore resolves to the enum
value when Kombo's string is one of ours and to null otherwise, while its `...Raw`
sibling always holds the string as sent. A value that is no string at all is Kombo's
error, not a pass-through: both fields are null with an UPSTREAM_ERROR::

    employment_type: EmploymentType | None = enum_field("employment_type", EmploymentType)
    employment_type_raw: str | None = raw_field("employment_type")
"""

from __future__ import annotations

import enum
from typing import Any

import strawberry

from gateway.schema.fastpath.specs import EnumSpec, KeySpec, spec_metadata
from gateway.schema.kombo_values import WrongValueType


@strawberry.enum(description="Kind of employment. Unmapped upstream values: see `...Raw`.")
class EmploymentType(enum.Enum):
    FULL_TIME = "FULL_TIME"
    PART_TIME = "PART_TIME"
    CONTRACT = "CONTRACT"
    SEASONAL = "SEASONAL"
    INTERNSHIP = "INTERNSHIP"


@strawberry.enum(description="Job status. Check it together with `visibility` before publishing.")
class JobStatus(enum.Enum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"
    DRAFT = "DRAFT"
    ARCHIVED = "ARCHIVED"


@strawberry.enum(description="Who can see and apply to a job.")
class JobVisibility(enum.Enum):
    PUBLIC = strawberry.enum_value("PUBLIC", description="Listed on job boards, open to all.")
    INTERNAL = strawberry.enum_value("INTERNAL", description="Only the company's employees.")
    UNLISTED = strawberry.enum_value("UNLISTED", description="Anyone with the link can apply.")
    CONFIDENTIAL = strawberry.enum_value(
        "CONFIDENTIAL", description="No one can apply; only invited ATS users can see it."
    )


@strawberry.enum(description="Where the work happens.")
class RemoteWorkStatus(enum.Enum):
    REMOTE = "REMOTE"
    HYBRID = "HYBRID"
    TEMPORARY = "TEMPORARY"
    ON_SITE = "ON_SITE"


@strawberry.enum(description="The period a salary amount covers (not the pay frequency).")
class SalaryPeriod(enum.Enum):
    YEAR = "YEAR"
    MONTH = "MONTH"
    TWO_WEEKS = "TWO_WEEKS"
    WEEK = "WEEK"
    DAY = "DAY"
    HOUR = "HOUR"


@strawberry.enum
class JobPostingStatus(enum.Enum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    DRAFT = "DRAFT"


@strawberry.enum
class JobPostingVisibility(enum.Enum):
    PUBLIC = "PUBLIC"
    INTERNAL = "INTERNAL"
    UNLISTED = "UNLISTED"


@strawberry.enum
class HiringTeamRole(enum.Enum):
    RECRUITER = "RECRUITER"
    HIRING_MANAGER = "HIRING_MANAGER"
    COORDINATOR = "COORDINATOR"
    SOURCER = "SOURCER"
    INTERVIEWER = "INTERVIEWER"


@strawberry.enum(description="DEFAULT: a built-in ATS field; CUSTOM: a user-defined one.")
class IntegrationFieldType(enum.Enum):
    DEFAULT = "DEFAULT"
    CUSTOM = "CUSTOM"


@strawberry.enum(description="How to render a text answer; null means a single-line input.")
class TextDisplayType(enum.Enum):
    SINGLE_LINE = "SINGLE_LINE"
    MULTI_LINE = "MULTI_LINE"
    EMAIL = "EMAIL"
    URL = "URL"


@strawberry.enum(description="How to render a number answer; null means FIELD.")
class NumberDisplayType(enum.Enum):
    SLIDER = "SLIDER"
    FIELD = "FIELD"


@strawberry.enum
class SelectDisplayType(enum.Enum):
    DROPDOWN = "DROPDOWN"
    RADIO = "RADIO"


def enum_values(enum_type: type[enum.Enum]) -> frozenset[str]:
    """Kombo strings that map onto `enum_type`."""
    return frozenset(member.value for member in enum_type)


def enum_field(key: str, enum_type: type[enum.Enum]) -> Any:
    """A field reading Kombo's `key` as `enum_type`: null when Kombo sent a value we don't know.

    It returns Kombo's string itself, which graphql-core serializes by value: no enum
    member is built per record. A value that is no string raises `WrongValueType`
    (null with an UPSTREAM_ERROR).
    """
    allowed = enum_values(enum_type)

    def resolve(root: dict[str, Any]) -> Any:
        value = root.get(key)
        if type(value) is str:
            return value if value in allowed else None
        if value is None:
            return None
        raise WrongValueType(value, "a string")

    return strawberry.field(resolver=resolve, metadata=spec_metadata(EnumSpec(key, allowed)))


def raw_field(key: str) -> Any:
    """A field returning Kombo's `key` as sent (the `...Raw` sibling of an enum field)."""

    def resolve(root: dict[str, Any]) -> Any:
        return root.get(key)

    return strawberry.field(resolver=resolve, metadata=spec_metadata(KeySpec(key)))
