"""`gateway.schema.ids`: type-qualified global IDs and parsing of caller-supplied job IDs."""

from __future__ import annotations

import base64

import pytest

from gateway.errors import BadUserInput
from gateway.schema.ids import decode_global_id, global_id, parse_job_id, parse_job_ids

KOMBO_ID = "26vafvWSRmbhNcxJYqjCzuJg"
OTHER_ID = "3KbZk8D4sXq7mNpRtYwVhL2e"
# Short enough for any error message that quotes a caller's input.
MAX_MESSAGE = 200


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


@pytest.mark.parametrize(
    ("type_name", "kombo_id"),
    [
        pytest.param("Job", KOMBO_ID, id="job"),
        pytest.param("JobStage", KOMBO_ID, id="stage"),
        pytest.param("ScreeningQuestion", OTHER_ID, id="question"),
        pytest.param("Job", "a:b:c", id="colons-in-id"),
    ],
)
def test_global_id_round_trips(type_name: str, kombo_id: str) -> None:
    gid = global_id(type_name, kombo_id)

    assert decode_global_id(gid) == (type_name, kombo_id)
    assert kombo_id not in gid  # opaque


def test_global_ids_of_different_types_with_one_kombo_id_differ() -> None:
    types = ["Job", "JobStage", "ScreeningQuestion", "JobPosting", "HiringTeamMember"]
    ids = {global_id(type_name, KOMBO_ID) for type_name in types}

    assert len(ids) == len(types)
    assert KOMBO_ID not in ids


def test_global_ids_of_one_type_with_different_kombo_ids_differ() -> None:
    assert global_id("Job", KOMBO_ID) != global_id("Job", OTHER_ID)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("not base64!", id="not-base64"),
        pytest.param(b64("JobNoColon"), id="no-separator"),
        pytest.param(b64(":" + KOMBO_ID), id="no-type"),
        pytest.param(base64.b64encode(b"\xff\xfe:x").decode(), id="not-utf8"),
        pytest.param("Jöb", id="non-ascii"),
    ],
)
def test_decode_global_id_of_a_non_global_id_is_none(value: str) -> None:
    assert decode_global_id(value) is None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(KOMBO_ID, id="raw-kombo-id"),
        pytest.param(global_id("Job", KOMBO_ID), id="job-global-id"),
    ],
)
def test_parse_job_id_accepts_a_kombo_id_or_a_job_global_id(value: str) -> None:
    assert parse_job_id(value) == KOMBO_ID


@pytest.mark.parametrize(
    ("value", "mentions"),
    [
        pytest.param(KOMBO_ID[:23], "job ID", id="23-chars"),
        pytest.param(KOMBO_ID + "x", "job ID", id="25-chars"),
        pytest.param("", "job ID", id="empty"),
        pytest.param("hello world, not an id", "job ID", id="garbage"),
        pytest.param(KOMBO_ID[:12] + "-" + KOMBO_ID[13:], "job ID", id="24-with-dash"),
        pytest.param(" " + KOMBO_ID[1:], "job ID", id="24-with-space"),
        pytest.param("é" * 24, "job ID", id="24-non-ascii-letters"),
        pytest.param("２" * 24, "job ID", id="24-fullwidth-digits"),
        pytest.param("Jöb:" + KOMBO_ID, "job ID", id="non-ascii-garbage"),
        pytest.param(global_id("JobStage", KOMBO_ID), "JobStage", id="stage-global-id"),
        pytest.param(global_id("JobPosting", KOMBO_ID), "JobPosting", id="posting-global-id"),
        pytest.param(global_id("Job", "short"), "malformed", id="job-gid-short-kombo-id"),
        pytest.param(global_id("Job", KOMBO_ID + "x"), "malformed", id="job-gid-25-char-id"),
        pytest.param(global_id("Job", ""), "malformed", id="job-gid-empty-kombo-id"),
        pytest.param(global_id("Job", "é" * 24), "malformed", id="job-gid-non-ascii-id"),
    ],
)
def test_parse_job_id_rejects_malformed_ids_with_bad_user_input(value: str, mentions: str) -> None:
    with pytest.raises(BadUserInput) as info:
        parse_job_id(value)

    message = str(info.value)
    assert mentions in message
    assert len(message) <= MAX_MESSAGE


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("x" * 100_000, id="long-garbage"),
        pytest.param(KOMBO_ID * 1000, id="long-alphanumerics"),
        pytest.param(global_id("Job", "y" * 50_000), id="long-job-gid"),
        pytest.param(global_id("T" * 50_000, KOMBO_ID), id="long-type-name-gid"),
        pytest.param(global_id("Job\n" * 5_000 + "Stage", KOMBO_ID), id="multiline-type-gid"),
    ],
)
def test_very_long_ids_give_a_short_message(value: str) -> None:
    with pytest.raises(BadUserInput) as info:
        parse_job_id(value)

    assert len(str(info.value)) <= MAX_MESSAGE


def test_parse_job_ids_keeps_order_and_mixes_forms() -> None:
    values = [OTHER_ID, global_id("Job", KOMBO_ID), KOMBO_ID]

    assert parse_job_ids(values) == [OTHER_ID, KOMBO_ID, KOMBO_ID]


def test_parse_job_ids_fails_on_any_bad_id() -> None:
    with pytest.raises(BadUserInput, match="JobStage"):
        parse_job_ids([KOMBO_ID, global_id("JobStage", OTHER_ID)])
