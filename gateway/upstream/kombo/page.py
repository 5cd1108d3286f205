"""Reading a `GET /ats/jobs` answer: the page as Kombo documents it, or a ValueError."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, TypedDict

import msgspec
import orjson

#: The longest `next` cursor taken from Kombo (its cursors are short base64 strings;
#: a longer one would make every cursor we issue, and every follow-up URL, that long).
MAX_CURSOR_LENGTH = 2048


class JobsPage(TypedDict):
    """`data` of a successful `GET /ats/jobs` answer: Kombo's job dicts, untouched,
    and the size of the body they came in (what caches account for)."""

    next: str | None
    results: list[dict[str, Any]]
    byte_size: int


def parse_jobs_page(content: bytes, keys: frozenset[str] | None = None) -> JobsPage:
    """A `GET /ats/jobs` body as a `JobsPage`; with `keys`, each job keeps only those keys.

    Why `keys`: building Python objects for a whole page is most of what a gateway pays
    for a large page (a 100-job page is ~360 KB of nested JSON). A caller that will read
    a few keys of each job, and keeps the page for nobody else, names them; the other
    keys are skipped, not built. `id` is always kept. A page of unusual shape (a job that
    is not an object, no `results`) is read in full, exactly as without `keys`.

    Raises:
        ValueError: the body is not a jobs page as Kombo documents it: not JSON, no `data`
            object, `results` not a list, `next` neither a string nor null (nor too long),
            or a job that is not an object with a string `id`.
    """
    data: Any = None
    if keys is not None:
        try:
            data = _page_decoder(keys | _ALWAYS_KEPT).decode(content)["data"]
        except (msgspec.DecodeError, KeyError):
            data = None  # read in full below: same result, or the same error
    if data is None:
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise ValueError("the body is not JSON") from exc
        data = body.get("data") if isinstance(body, dict) else None
    return _checked_page(data, len(content))


def _checked_page(data: Any, byte_size: int) -> JobsPage:
    """`data` as a `JobsPage`, once its shape is what Kombo documents. Raises ValueError."""
    if not isinstance(data, dict):
        raise ValueError("`data` is not an object")
    results, next_cursor = data.get("results"), data.get("next") or None
    if not isinstance(results, list):
        raise ValueError("`data.results` is not a list")
    if next_cursor is not None and (
        not isinstance(next_cursor, str) or len(next_cursor) > MAX_CURSOR_LENGTH
    ):
        raise ValueError(f"`data.next` is not a cursor of at most {MAX_CURSOR_LENGTH} characters")
    for record in results:
        if type(record) is not dict or type(record.get("id")) is not str:
            raise ValueError("a job in `data.results` is not an object with a string `id`")
    return {"next": next_cursor, "results": results, "byte_size": byte_size}


_ALWAYS_KEPT = frozenset({"id"})


#: `TypedDict` called with names known only at run time (mypy checks only literal ones).
_typed_dict: Any = TypedDict


@lru_cache(maxsize=256)
def _page_decoder(keys: frozenset[str]) -> msgspec.json.Decoder[Any]:
    """A decoder of Kombo's page envelope whose jobs keep `keys` (values as sent)."""
    job = _typed_dict("Job", dict.fromkeys(sorted(keys), Any), total=False)
    data = _typed_dict("Data", {"results": list[job], "next": Any}, total=False)  # type: ignore[valid-type]
    return msgspec.json.Decoder(_typed_dict("Page", {"data": data}))


def record_id(record: object) -> str | None:
    """A record's Kombo `id`, or None for a malformed record (one is served as sent,
    but never indexed by an ID it does not have)."""
    kombo_id = record.get("id") if isinstance(record, dict) else None
    return kombo_id if isinstance(kombo_id, str) else None
