"""`gateway.schema.pagination`: cursors, their binding, `first`, and `read_connection` over a fake
Kombo.

`FakeKombo` (`tests.fake_kombo`) serves an in-memory list in upstream pages keyed by an
opaque Kombo cursor, so each test can count exactly which upstream pages a connection
request reads.
"""

from __future__ import annotations

import base64
import dataclasses
import math
from typing import Any

import pytest

from gateway.errors import BadUserInput
from gateway.schema.pagination import (
    DEFAULT_FIRST,
    Position,
    cursor_binding,
    cursor_key,
    decode_cursor,
    encode_cursor,
    read_connection,
    start_position,
    validate_first,
)
from gateway.upstream.kombo import JobQuery, JobsPage
from tests.fake_kombo import FakeKombo, cursor_at

KEY = cursor_key("the gateway's secret")
INTEGRATION = "personio:CBNMt7dSNCzBdnRTx87dev4E"
PARAMS = {"statuses": "OPEN,DRAFT", "include_deleted": "false", "name_contains": "Engineer"}
BINDING = cursor_binding(INTEGRATION, PARAMS, key=KEY)


def kombo_serving(items: list[dict[str, Any]], lookahead: bool = True) -> FakeKombo:
    return FakeKombo({INTEGRATION: items}, lookahead=lookahead)


def pages_read(kombo: FakeKombo) -> list[tuple[str | None, int | None]]:
    """(Kombo cursor, page size) of each upstream call, in order."""
    return [(call.cursor, call.page_size) for call in kombo.calls]


def jobs(n: int) -> list[dict[str, Any]]:
    return [{"id": f"job{i:021d}", "name": f"Job {i}"} for i in range(n)]


def ids(connection: dict[str, Any]) -> list[int]:
    return [int(node["id"][3:]) for node in connection["nodes"]]


async def request(
    kombo: FakeKombo, first: int | None = None, after: str | None = None
) -> dict[str, Any]:
    """One `jobs(first:, after:)` request, the way the resolver makes it."""
    count = validate_first(first)
    start = start_position(BINDING, after=after, first=count)

    async def fetch(cursor: str | None, page_size: int) -> JobsPage:
        return await kombo.list_jobs(INTEGRATION, JobQuery(), page_size=page_size, cursor=cursor)

    return await read_connection(fetch, start, count, binding=BINDING)


async def walk(kombo: FakeKombo, first: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Follow `endCursor` while `hasNextPage`: (connections, every edge in order)."""
    connections = [await request(kombo, first)]
    while connections[-1]["page_info"]["has_next_page"]:
        connections.append(await request(kombo, first, connections[-1]["page_info"]["end_cursor"]))
    return connections, [edge for c in connections for edge in c["edges"]]


def assert_connection_is_consistent(connection: dict[str, Any]) -> None:
    edges, page_info = connection["edges"], connection["page_info"]
    assert [edge["node"] for edge in edges] == connection["nodes"]
    assert page_info["start_cursor"] == (edges[0]["cursor"] if edges else None)
    assert page_info["end_cursor"] == (edges[-1]["cursor"] if edges else None)


# --- cursors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "position",
    [
        pytest.param(Position(None, 50, 3), id="first-page-mid"),
        pytest.param(Position(None, 1, 1), id="page-size-1"),
        pytest.param(Position(cursor_at(500), 250, 0), id="page-boundary"),
        pytest.param(Position(cursor_at(10), 250, 250), id="max-skip"),
        pytest.param(Position("a:b:c:d", 10, 9), id="kombo-cursor-with-colons"),
    ],
)
def test_cursor_round_trips(position: Position) -> None:
    cursor = encode_cursor(BINDING, position)

    assert decode_cursor(BINDING, cursor) == position
    assert "=" not in cursor
    assert cursor == base64.urlsafe_b64encode(base64.urlsafe_b64decode(cursor + "==")).decode(
        "ascii"
    ).rstrip("=")  # URL-safe: fits in a query string unescaped


def raw_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode("ascii").rstrip("=")


VALID = encode_cursor(BINDING, Position(cursor_at(300), 100, 42))


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("", id="empty"),
        pytest.param("not a cursor!", id="garbage"),
        pytest.param("🙂", id="emoji"),
        pytest.param(raw_cursor("hello"), id="base64-of-words"),
        pytest.param(base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(), id="not-utf8"),
        pytest.param(raw_cursor(f"1:ten:0:{BINDING.digest}:"), id="page-size-not-int"),
        pytest.param(raw_cursor(f"1:10:x:{BINDING.digest}:"), id="skip-not-int"),
        pytest.param(raw_cursor(f"1:10:0:{BINDING.digest}"), id="missing-field"),
        pytest.param(raw_cursor(f"3:10:0:{BINDING.digest}:"), id="version-3"),
        pytest.param(raw_cursor(f"0:10:0:{BINDING.digest}:"), id="version-0"),
        pytest.param(raw_cursor(f"1:0:0:{BINDING.digest}:"), id="page-size-0"),
        pytest.param(raw_cursor(f"1:-5:0:{BINDING.digest}:"), id="page-size-negative"),
        pytest.param(raw_cursor(f"1:251:0:{BINDING.digest}:"), id="page-size-251"),
        pytest.param(raw_cursor(f"1:10:-1:{BINDING.digest}:"), id="skip-negative"),
        pytest.param(raw_cursor(f"1:250:251:{BINDING.digest}:"), id="skip-251"),
        pytest.param(raw_cursor(f"1:10:11:{BINDING.digest}:"), id="skip-beyond-its-page-size"),
        pytest.param(VALID[:-1], id="truncated-1"),
        pytest.param(VALID[:-2], id="truncated-2"),
        pytest.param(VALID[:-3], id="truncated-3"),
        pytest.param(VALID[:-8], id="truncated-8"),
        pytest.param(VALID[: len(VALID) // 2], id="truncated-half"),
        pytest.param(VALID + "AAAA", id="extended"),
    ],
)
def test_decode_rejects_malformed_cursors(cursor: str) -> None:
    with pytest.raises(BadUserInput, match="cursor"):
        decode_cursor(BINDING, cursor)


@pytest.mark.parametrize(
    ("integration", "params"),
    [
        pytest.param("greenhouse:8mJ4sVvB3Ut3PqCbA9z7WkRn", PARAMS, id="other-integration"),
        pytest.param(INTEGRATION, {**PARAMS, "statuses": "OPEN"}, id="other-filter-value"),
        pytest.param(INTEGRATION, {**PARAMS, "remote_ids": "7"}, id="extra-filter"),
        pytest.param(INTEGRATION, {}, id="no-filter"),
    ],
)
def test_decode_rejects_a_cursor_of_another_filter_or_integration(
    integration: str, params: dict[str, str]
) -> None:
    with pytest.raises(BadUserInput) as info:
        decode_cursor(cursor_binding(integration, params, key=KEY), VALID)

    assert "filter" in str(info.value)


def test_a_cursor_rebound_without_the_key_is_refused_as_not_ours() -> None:
    """A client that knows the format (but not the key) rewrites a cursor for another
    integration: the checksum it can compute is not the keyed one."""
    other = cursor_binding("greenhouse:8mJ4sVvB3Ut3PqCbA9z7WkRn", PARAMS, key=KEY)
    guessed_key = cursor_key("")
    forged = encode_cursor(
        dataclasses.replace(other, key=guessed_key), Position(cursor_at(300), 100, 42)
    )

    with pytest.raises(BadUserInput, match="not a cursor issued by this API"):
        decode_cursor(other, forged)


def test_cursors_of_another_key_are_refused() -> None:
    """Another credential (or secret) issued it: not a cursor of ours."""
    theirs = cursor_binding(INTEGRATION, PARAMS, key=cursor_key("another key"))
    cursor = encode_cursor(theirs, Position(None, 10, 3))

    with pytest.raises(BadUserInput, match="not a cursor issued by this API"):
        decode_cursor(BINDING, cursor)


# --- cursor_binding ------------------------------------------------------------------------


def test_binding_is_independent_of_parameter_order() -> None:
    reversed_params = dict(reversed(list(PARAMS.items())))

    assert list(reversed_params) != list(PARAMS)
    assert cursor_binding(INTEGRATION, reversed_params, key=KEY) == BINDING


def test_binding_differs_by_integration() -> None:
    assert cursor_binding("greenhouse:8mJ4sVvB3Ut3PqCbA9z7WkRn", PARAMS, key=KEY) != BINDING


@pytest.mark.parametrize("name", list(PARAMS))
def test_binding_differs_by_any_parameter_value(name: str) -> None:
    assert cursor_binding(INTEGRATION, {**PARAMS, name: PARAMS[name] + "x"}, key=KEY) != BINDING


@pytest.mark.parametrize(
    ("left", "right"),
    [
        pytest.param({}, {"name_contains": ""}, id="absent-vs-empty"),
        pytest.param({"remote_ids": "7"}, {"job_codes": "7"}, id="same-value-other-name"),
        pytest.param(
            {"name_contains": "x\npost_url=y"},
            {"name_contains": "x", "post_url": "y"},
            id="newline-in-value",
        ),
    ],
)
def test_different_filters_never_share_a_binding(
    left: dict[str, str], right: dict[str, str]
) -> None:
    assert cursor_binding(INTEGRATION, left, key=KEY) != cursor_binding(INTEGRATION, right, key=KEY)


# --- validate_first ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        pytest.param(None, DEFAULT_FIRST, id="default"),
        pytest.param(0, 0, id="zero"),
        pytest.param(1, 1, id="one"),
        pytest.param(250, 250, id="max"),
    ],
)
def test_validate_first(first: int | None, expected: int) -> None:
    assert validate_first(first) == expected
    assert DEFAULT_FIRST == 50


@pytest.mark.parametrize("first", [pytest.param(251, id="251"), pytest.param(-1, id="-1")])
def test_validate_first_rejects_out_of_range(first: int) -> None:
    with pytest.raises(BadUserInput, match="first"):
        validate_first(first)


# --- read_connection: from the head of the list --------------------------------------------


@pytest.mark.parametrize(
    ("n", "first", "expected", "has_next", "calls"),
    [
        pytest.param(0, 0, [], False, [(None, 1)], id="first-0-empty-list"),
        pytest.param(5, 0, [], True, [(None, 1)], id="first-0-non-empty-list"),
        pytest.param(0, 10, [], False, [(None, 10)], id="empty-list"),
        pytest.param(25, 10, list(range(10)), True, [(None, 10)], id="first-page"),
        pytest.param(120, None, list(range(50)), True, [(None, 50)], id="default-first"),
        pytest.param(7, 10, list(range(7)), False, [(None, 10)], id="short-list"),
        pytest.param(10, 10, list(range(10)), False, [(None, 10)], id="exactly-one-page"),
        pytest.param(250, 250, list(range(250)), False, [(None, 250)], id="max-page"),
    ],
)
async def test_first_request(
    n: int,
    first: int | None,
    expected: list[int],
    has_next: bool,
    calls: list[tuple[str | None, int]],
) -> None:
    kombo = kombo_serving(jobs(n))

    connection = await request(kombo, first)

    assert ids(connection) == expected
    assert connection["page_info"]["has_next_page"] is has_next
    assert connection["page_info"]["has_previous_page"] is False
    assert pages_read(kombo) == calls
    assert_connection_is_consistent(connection)


# --- read_connection: continuing after an edge ---------------------------------------------


def at(offset: int) -> str:
    """Kombo's cursor for the page starting at `offset`."""
    return cursor_at(offset)


@pytest.mark.parametrize(
    ("n", "chain", "after", "first", "expected", "has_next", "calls"),
    [
        pytest.param(
            30, 10, 3, 4, list(range(4, 8)), True, [(None, 10)], id="mid-page-within-page"
        ),
        pytest.param(
            30, 10, 6, 5, list(range(7, 12)), True, [(None, 10), (at(10), 10)], id="mid-page-spill"
        ),
        pytest.param(
            50,
            10,
            4,
            25,
            list(range(5, 30)),
            True,
            [(None, 10), (at(10), 10), (at(20), 10)],
            id="spans-3-upstream-pages",
        ),
        pytest.param(
            30, 10, 9, 10, list(range(10, 20)), True, [(at(10), 10)], id="after-page-boundary"
        ),
        pytest.param(
            30, 10, 13, 250, list(range(14, 30)), False, [(at(10), 10), (at(20), 10)], id="to-end"
        ),
        pytest.param(25, 10, 19, 10, list(range(20, 25)), False, [(at(20), 10)], id="last-page"),
        pytest.param(25, 10, 22, 2, [23, 24], False, [(at(20), 10)], id="exactly-to-the-end"),
        pytest.param(25, 10, 24, 10, [], False, [(at(20), 10)], id="after-the-last-edge"),
        pytest.param(30, 10, 14, 0, [], True, [(at(10), 10)], id="first-0-mid-list"),
        pytest.param(30, 10, 0, 1, [1], True, [(None, 10)], id="after-the-first-edge"),
    ],
)
async def test_continuing_after_an_edge(
    n: int,
    chain: int,
    after: int,
    first: int,
    expected: list[int],
    has_next: bool,
    calls: list[tuple[str | None, int]],
) -> None:
    kombo = kombo_serving(jobs(n))
    _, edges = await walk(kombo, chain)
    kombo.calls.clear()

    connection = await request(kombo, first, edges[after]["cursor"])

    assert ids(connection) == expected
    assert connection["page_info"]["has_next_page"] is has_next
    assert connection["page_info"]["has_previous_page"] is True
    assert pages_read(kombo) == calls
    assert_connection_is_consistent(connection)


async def test_end_cursor_at_an_upstream_page_boundary_resumes_at_kombos_next_cursor() -> None:
    kombo = kombo_serving(jobs(50))
    page = await request(kombo, 10)  # upstream page size 10
    spanning = await request(kombo, 25, page["edges"][4]["cursor"])  # items 5..29
    end_cursor = spanning["page_info"]["end_cursor"]

    assert decode_cursor(BINDING, end_cursor) == Position(at(30), 10, 0)
    kombo.calls.clear()
    following = await request(kombo, 10, end_cursor)
    assert ids(following) == list(range(30, 40))
    assert pages_read(kombo) == [(at(30), 10)]  # one fetch, no re-read of the page before


@pytest.mark.parametrize("first", [4, 12])
@pytest.mark.parametrize(
    ("n", "lookahead"),
    [
        pytest.param(23, True, id="23-lookahead"),
        pytest.param(23, False, id="23-no-lookahead"),
        pytest.param(25, True, id="25-full-last-page-lookahead"),
        pytest.param(25, False, id="25-full-last-page-no-lookahead"),
    ],
)
async def test_every_edge_cursor_resumes_right_after_its_edge(
    n: int, lookahead: bool, first: int
) -> None:
    kombo = kombo_serving(jobs(n), lookahead)
    _, edges = await walk(kombo, 5)
    assert len(edges) == n

    for index, edge in enumerate(edges):
        connection = await request(kombo, first, edge["cursor"])

        left = n - 1 - index
        assert ids(connection) == list(range(index + 1, index + 1 + min(first, left)))
        # Only a Kombo that sends `next` on a full last page leaves the end unknown, and only
        # when the page stops exactly at that page's last item.
        unknown_end = not lookahead and n % 5 == 0 and left == first
        assert connection["page_info"]["has_next_page"] is (left > first or unknown_end), index
        assert connection["page_info"]["has_previous_page"] is True


async def test_edge_cursors_are_distinct() -> None:
    _, edges = await walk(kombo_serving(jobs(40)), 7)

    cursors = [edge["cursor"] for edge in edges]
    assert len(set(cursors)) == len(cursors) == 40


async def test_empty_upstream_page_in_the_middle_is_skipped_without_a_gap() -> None:
    pages = {None: ([0, 1, 2], "p2"), "p2": ([], "p3"), "p3": ([3, 4], "p4"), "p4": ([5], None)}
    calls: list[str | None] = []

    async def fetch(cursor: str | None, page_size: int) -> JobsPage:
        calls.append(cursor)
        numbers, next_ = pages[cursor]
        results = [{"id": f"job{i:021d}"} for i in numbers]
        return {"next": next_, "results": results, "byte_size": 0}

    connection = await read_connection(fetch, Position(None, 3, 0), 5, binding=BINDING)

    assert ids(connection) == [0, 1, 2, 3, 4]
    assert connection["page_info"]["has_next_page"] is True
    assert calls == [None, "p2", "p3"]
    assert decode_cursor(BINDING, connection["page_info"]["end_cursor"]) == Position("p4", 3, 0)


# --- walking a whole list ------------------------------------------------------------------


@pytest.mark.parametrize("lookahead", [pytest.param(True, id="lookahead"), False])
@pytest.mark.parametrize("first", [1, 3, 7, 50, 100, 128, 200, 250])
async def test_walking_1000_items_costs_one_upstream_call_per_page(
    first: int, lookahead: bool
) -> None:
    n = 1000
    kombo = kombo_serving(jobs(n), lookahead)

    connections, edges = await walk(kombo, first)

    # No duplicates, no gaps, in order.
    assert [int(edge["node"]["id"][3:]) for edge in edges] == list(range(n))
    # Exactly `first` edges per page until the list ends.
    sizes = [len(c["edges"]) for c in connections]
    assert all(size == first for size in sizes[: n // first])
    # One upstream call per page, all with the chain's page size. A Kombo that cannot
    # see the end sends `next` on a full last page: one more (empty) page shows the end.
    extra = 0 if lookahead or n % first else 1
    assert len(kombo.calls) == math.ceil(n / first) + extra
    assert len(connections) == math.ceil(n / first) + extra
    assert {page_size for _, page_size in pages_read(kombo)} == {first}
    assert [cursor for cursor, _ in pages_read(kombo)] == [None] + [
        at(offset) for offset in range(first, n + extra * first, first)
    ]
    assert [c["page_info"]["has_previous_page"] for c in connections] == [False] + [True] * (
        len(connections) - 1
    )
    assert connections[-1]["page_info"]["has_next_page"] is False
