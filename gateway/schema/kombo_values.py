"""`WrongValueType`: a value of Kombo's that is not of its field's type, and `json_kind`,
which names a JSON value's type in its messages.

Raised by the scalars' strict checks and by resolvers of the data types, reported by the
executor (`gateway.schema.fastpath.projection`) as an UPSTREAM_ERROR naming the field. A
module of its own so that the data types raise it without importing the executor.
"""

from __future__ import annotations

from typing import Any


class WrongValueType(Exception):
    """A value of Kombo's is not of its field's type. Raised by serializers' strict checks
    and by resolvers; the executor reports it as `UpstreamDataError` naming the field."""

    def __init__(self, value: Any, expected: str) -> None:
        super().__init__(f"expected {expected}, got {json_kind(value)}")


def json_kind(value: Any) -> str:
    """What a JSON value is, in a few words (never the value: it may be huge)."""
    kind = _KINDS.get(type(value))
    return kind if kind is not None else f"a {type(value).__name__}"


_KINDS = {
    type(None): "null",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
}
