"""`gateway.schema.context` (which integration a request uses) and `view.wants_fresh_data`."""

from __future__ import annotations

import pytest

from gateway.errors import BadUserInput, Code
from gateway.http.view import wants_fresh_data
from gateway.observability.metrics import GatewayMetrics
from gateway.schema.context import INTEGRATION_HEADER, Context, requested_integration
from gateway.upstream.cache import CachedKombo, UpstreamCache
from gateway.upstream.loaders import Loaders
from tests.fake_kombo import FakeKombo

DEFAULT = "personio:CBNMt7dSNCzBdnRTx87dev4E"
OTHER = "greenhouse:8mS2vY5f3bW8dJ4hZ3kTqL9p"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(OTHER, OTHER, id="header"),
        pytest.param(None, None, id="no-header"),
        pytest.param(f"  {OTHER}\t", OTHER, id="surrounding-whitespace-stripped"),
        pytest.param(f"{OTHER}\n", OTHER, id="trailing-newline-stripped"),
        pytest.param("a:b", "a:b", id="shortest"),
        pytest.param("sap-success_factors.v2:Ab_-9", "sap-success_factors.v2:Ab_-9", id="punct"),
        pytest.param(f"{'t' * 64}:{'i' * 128}", f"{'t' * 64}:{'i' * 128}", id="longest"),
    ],
)
def test_requested_integration(header: str | None, expected: str | None):
    assert requested_integration(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="only-whitespace"),
        pytest.param("personioCBNMt7dSNCzBdnRTx87dev4E", id="no-colon"),
        pytest.param(":abc123", id="no-tool"),
        pytest.param("workday:", id="no-id"),
        pytest.param("personio:CBN:Mt7", id="two-colons"),
        pytest.param("personio: CBNMt7dSNCzBdnRTx87dev4E", id="space-after-colon"),
        pytest.param("person io:CBNMt7dSNCzBdnRTx87dev4E", id="space-in-tool"),
        pytest.param("personio:CBNMt7d SNCzBdnRTx87dev4E", id="space-in-id"),
        pytest.param(f"{'t' * 65}:abc", id="tool-too-long"),
        pytest.param(f"personio:{'i' * 129}", id="id-too-long"),
        pytest.param("a" * 10_000 + ":" + "b" * 10_000, id="very-long"),
        pytest.param("personio:CBNMt7dSNCzBdnRTx87dévE", id="non-ascii-letter"),
        pytest.param("personio:CBNMt7dSNCzBdnRTx87dev٤", id="non-ascii-digit"),
        pytest.param("personio:CBNMt7dSNCzBdnRTx87dev4E\u200b", id="zero-width-space"),
        pytest.param("personio:abc\r\nX-Evil: 1", id="header-injection"),
        pytest.param("personio:abc\x00", id="nul"),
        pytest.param("../../admin:abc", id="path-traversal"),
        pytest.param("personio:abc/../../jobs", id="path-in-id"),
        pytest.param("personio:abc?ids=1&x=", id="query-string"),
        pytest.param("personio:abc' OR '1'='1", id="sql-like"),
        pytest.param("personio:<script>alert(1)</script>", id="html"),
        pytest.param("personio:abc,greenhouse:def", id="two-integrations"),
    ],
)
def test_a_malformed_header_is_bad_user_input(header: str):
    with pytest.raises(BadUserInput) as caught:
        requested_integration(header)
    assert caught.value.code is Code.BAD_USER_INPUT
    message = str(caught.value)
    assert INTEGRATION_HEADER in message
    assert header.strip() == "" or header.strip() not in message


def make_context(integration_id: str | None, problem: str | None = None) -> Context:
    kombo = CachedKombo(FakeKombo(), UpstreamCache.disabled(), fingerprint="fp")
    return Context(
        kombo=kombo,
        loaders=Loaders(kombo, GatewayMetrics(), max_calls=100),
        integration_id=integration_id,
        max_ids=1_000,
        integration_problem=problem,
    )


def test_require_integration_returns_the_chosen_integration():
    assert make_context(requested_integration(OTHER)).require_integration() == OTHER


def test_require_integration_surfaces_the_header_problem():
    with pytest.raises(BadUserInput) as refused:
        requested_integration("not an integration")
    context = make_context(None, str(refused.value))
    with pytest.raises(BadUserInput) as caught:
        context.require_integration()
    assert str(caught.value) == str(refused.value)
    assert caught.value.code is Code.BAD_USER_INPUT


def test_a_header_problem_wins_over_an_integration():
    with pytest.raises(BadUserInput, match="bad header"):
        make_context(DEFAULT, "bad header").require_integration()


def test_no_integration_is_bad_user_input_naming_the_header():
    with pytest.raises(BadUserInput) as caught:
        make_context(None).require_integration()
    assert caught.value.code is Code.BAD_USER_INPUT
    assert INTEGRATION_HEADER in str(caught.value)
    assert "KOMBO_INTEGRATION_ID" in str(caught.value)


@pytest.mark.parametrize(
    ("cache_control", "fresh"),
    [
        pytest.param("no-cache", True, id="no-cache"),
        pytest.param("NO-CACHE", True, id="upper-case"),
        pytest.param("No-Cache", True, id="mixed-case"),
        pytest.param("max-age=0", True, id="max-age-0"),
        pytest.param("no-cache, max-age=10", True, id="no-cache-among-others"),
        pytest.param("max-age=10,no-cache", True, id="no-cache-last-no-space"),
        pytest.param("  no-cache  ", True, id="padded"),
        pytest.param("max-age=10", False, id="max-age-10"),
        pytest.param("", False, id="empty"),
        pytest.param(None, False, id="absent"),
        pytest.param("no-store", False, id="no-store"),
        pytest.param("no-transform", False, id="no-transform"),
        pytest.param("x-no-cache", False, id="similar-token"),
    ],
)
def test_wants_fresh_data(cache_control: str | None, fresh: bool):
    assert wants_fresh_data(cache_control) is fresh
