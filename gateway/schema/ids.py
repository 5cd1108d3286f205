"""Global IDs: opaque, type-qualified IDs over Kombo IDs, and parsing of caller-supplied IDs.

Usage::

    gid = global_id("Job", "26vafvWSRmbhNcxJYqjCzuJg")   # "Sm9iOjI2dmFm..."
    parse_job_id(gid)                                   # "26vafvWSRmbhNcxJYqjCzuJg"
    parse_job_id("26vafvWSRmbhNcxJYqjCzuJg")            # the same: raw Kombo IDs work too

Kombo IDs are unique within one model but not across models: a job and its stage
may share one. A global ID is base64 of `<GraphQL type>:<Kombo ID>` (the Relay
convention Strawberry also uses), so a job and a stage never share an `id`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence

from gateway.errors import BadUserInput

KOMBO_ID_LENGTH = 24
# Kombo IDs are 24 characters of base58; we accept any alphanumerics of that length
# so that a change of Kombo's alphabet cannot make us reject real IDs.
_KOMBO_ID = re.compile(r"[A-Za-z0-9]{24}")
JOB_TYPE = "Job"


def global_id(type_name: str, kombo_id: str) -> str:
    """The global ID of the object of GraphQL type `type_name` with Kombo ID `kombo_id`."""
    # binascii directly: this runs for every object of every response.
    return binascii.b2a_base64(f"{type_name}:{kombo_id}".encode(), newline=False).decode("ascii")


def is_kombo_id(value: str) -> bool:
    return _KOMBO_ID.fullmatch(value) is not None


def decode_global_id(value: str) -> tuple[str, str] | None:
    """Split a global ID into (type name, Kombo ID); None when it is not one."""
    try:
        decoded = base64.b64decode(value.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    type_name, sep, kombo_id = decoded.partition(":")
    if not sep or not type_name:
        return None
    return type_name, kombo_id


def parse_job_id(value: str) -> str:
    """The Kombo job ID behind a caller-supplied Kombo ID or Job global ID.

    Raises:
        BadUserInput: malformed, or the global ID of another type.
    """
    if is_kombo_id(value):
        return value
    decoded = decode_global_id(value)
    if decoded is None:
        raise BadUserInput(
            f"{_shown(value)} is not a job ID: expected a Kombo job ID "
            f"({KOMBO_ID_LENGTH} letters and digits) or a Job global ID"
        )
    type_name, kombo_id = decoded
    if type_name != JOB_TYPE:
        raise BadUserInput(f"{_shown(value)} is the ID of a {_shown(type_name)}, not of a Job")
    if not is_kombo_id(kombo_id):
        raise BadUserInput(f"{_shown(value)} is a Job global ID with a malformed Kombo ID")
    return kombo_id


def parse_job_ids(values: Sequence[str]) -> list[str]:
    """`parse_job_id` over a list, keeping order."""
    return [parse_job_id(value) for value in values]


def _shown(value: str) -> str:
    """The value quoted for an error message, cut short so a huge input can't bloat it."""
    return repr(value if len(value) <= 64 else value[:61] + "...")
