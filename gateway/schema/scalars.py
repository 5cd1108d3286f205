"""The `DateTime` and `JSON` scalars.

`DateTime` goes out exactly as Kombo sent it (Kombo's strings are already ISO 8601
in UTC with milliseconds; re-formatting would only risk changing them), but only if it
is an ISO 8601 string: anything else Kombo sends (a number, a boolean, an object, some
other text) is refused, and the executor makes the field null with an UPSTREAM_ERROR.
It comes in as an ISO 8601 string, parsed to a `datetime` so the REST client can send
Kombo's own format. `JSON` is any JSON value, passed through.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NewType

import strawberry
from strawberry.scalars import JSON
from strawberry.types.scalar import ScalarDefinition

__all__ = ["JSON", "SCALAR_MAP", "DateTime", "parse_datetime"]


def parse_datetime(value: Any) -> datetime:
    """Parse an ISO 8601 input; a value without a zone is taken as UTC downstream.

    Raises:
        ValueError: not an ISO 8601 date or date-time (graphql-core turns this into
            a variable or argument error, coded BAD_USER_INPUT).
    """
    if not isinstance(value, str):
        raise ValueError("DateTime must be an ISO 8601 string, e.g. 2026-05-18T09:55:30.731Z")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"DateTime must be ISO 8601, e.g. 2026-05-18T09:55:30.731Z; got {value[:64]!r}"
        ) from None


#: Longer than any ISO 8601 date-time (`2026-05-18T09:55:30.731123+05:30` is 32).
_MAX_DATETIME_LENGTH = 64


def _serialize_datetime(value: Any) -> str:
    """`value` itself when it is an ISO 8601 string, as Kombo documents its date-times.

    Runs for every DateTime of every job: a type check and one C-level parse
    (`datetime.fromisoformat`, which on Python 3.11 reads Kombo's
    `2026-05-18T09:55:30.731Z`), ~0.2 µs; the parsed value is thrown away.

    Raises:
        ValueError: not a string, or not ISO 8601.
    """
    if type(value) is str and len(value) <= _MAX_DATETIME_LENGTH:
        datetime.fromisoformat(value)  # raises ValueError
        return value
    raise ValueError("DateTime must be an ISO 8601 string")


DateTime = NewType("DateTime", str)

#: Goes into `StrawberryConfig(scalar_map=...)`, Strawberry's typed way to declare scalars.
SCALAR_MAP: dict[object, ScalarDefinition] = {
    DateTime: strawberry.scalar(
        name="DateTime",
        description="An ISO 8601 date-time. Output exactly as Kombo sent it, e.g. "
        "`2026-05-18T09:55:30.731Z`; input without a zone is taken as UTC.",
        serialize=_serialize_datetime,
        parse_value=parse_datetime,
    )
}
