"""Credentials sent to wear the gateway down: bad tokens by the thousand, and headers
sent twice so that two readers could disagree on who is calling.

Over real HTTP; a trusted proxy's `X-Forwarded-For` stands in for distinct client
addresses.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import time

import httpx
import pytest

from gateway.config import Settings, TokenSpec
from gateway.http.access import KOMBO_KEY_HEADER, hash_token
from gateway.http.app import create_app
from gateway.http.observability import REQUEST_LOGGER
from gateway.observability import refusals
from gateway.schema.context import INTEGRATION_HEADER
from tests.conftest import INTEGRATION_A
from tests.support import Upstream, error_codes, serve

GOOD = "kgw_good-token"
QUERY = {"query": "{ jobs(first: 1) { nodes { id } } }"}


@pytest.fixture
def guarded(gateway_settings: Settings) -> Settings:
    return dataclasses.replace(
        gateway_settings,
        tokens=(TokenSpec("web", hash_token(GOOD), None),),
        auth_failure_limit=5,
        trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),),
    )


def post(url: str, token: str, address: str, **headers: str) -> httpx.Response:
    sent = {"authorization": f"Bearer {token}", "x-forwarded-for": address, **headers}
    return httpx.post(f"{url}/graphql", json=QUERY, headers=sent)


def test_an_address_sending_bad_tokens_is_refused_before_authentication(
    guarded: Settings, upstream: Upstream
):
    """1,000 bad tokens were each checked and answered at ~1,900/s: after the allowance,
    the address gets a cheap 429 until it refills, whatever it sends; others don't."""
    with serve(create_app(guarded)) as url:
        first = [post(url, f"bad-{i}", "198.51.100.1").status_code for i in range(5)]
        limited = post(url, "bad-5", "198.51.100.1")
        good_from_there = post(url, GOOD, "198.51.100.1")
        good_elsewhere = post(url, GOOD, "198.51.100.2")

    assert first == [401] * 5
    assert limited.status_code == 429
    assert error_codes(limited.json()) == ["RATE_LIMITED"]
    assert "GATEWAY_AUTH_FAILURE_LIMIT" in limited.json()["errors"][0]["message"]
    assert int(limited.headers["retry-after"]) >= 1
    assert good_from_there.status_code == 429
    assert good_elsewhere.status_code == 200 and "errors" not in good_elsewhere.json()
    assert upstream.count() == 1


def test_good_tokens_never_spend_the_failure_allowance(guarded: Settings):
    with serve(create_app(guarded)) as url:
        statuses = {post(url, GOOD, "198.51.100.1").status_code for _ in range(20)}
    assert statuses == {200}


@pytest.fixture
def window(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(refusals, "WINDOW_SECONDS", 1.0)
    return 1.0


def test_refusals_are_logged_in_aggregate(
    guarded: Settings, window: float, caplog: pytest.LogCaptureFixture
):
    """1,000 bad tokens wrote 428 KB of logs, one line each: now the first refusal of a
    window is logged in full and the rest as one summary line per window."""
    settings = dataclasses.replace(guarded, auth_failure_limit=50)
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger=REQUEST_LOGGER), serve(create_app(settings)) as url:
        with httpx.Client(base_url=url) as client:
            statuses = [
                client.post(
                    "/graphql",
                    json=QUERY,
                    headers={
                        "authorization": f"Bearer bad-{i}",
                        "x-forwarded-for": f"198.51.100.{i % 3}",
                    },
                ).status_code
                for i in range(300)
            ]
            ok = post(url, GOOD, "203.0.113.9")
        elapsed = time.monotonic() - started
        time.sleep(window * 2)  # the last window's summary is written when it ends

    assert set(statuses) == {401, 429} and ok.status_code == 200
    lines = [r for r in caplog.records if r.name == REQUEST_LOGGER]
    single = [r for r in lines if getattr(r, "event", None) == "graphql_request"]
    summaries = [r for r in lines if getattr(r, "event", None) == "requests_refused"]
    assert [r.status for r in single if r.status == 200] == [200]  # type: ignore[attr-defined]
    refused_alone = [r for r in single if r.status in (401, 429)]  # type: ignore[attr-defined]
    assert 1 <= len(refused_alone) <= elapsed / window + 2  # the first of each window
    assert len(summaries) <= elapsed / window + 2
    counted = sum(r.refused for r in summaries)  # type: ignore[attr-defined]
    assert counted + len(refused_alone) == 300
    by_status = sum(r.by_status.get("401", 0) for r in summaries)  # type: ignore[attr-defined]
    assert by_status > 0
    addresses = {a for r in summaries for a in r.by_address}  # type: ignore[attr-defined]
    assert addresses <= {"198.51.100.0", "198.51.100.1", "198.51.100.2"}


@pytest.mark.parametrize(
    "name, values",
    [
        ("authorization", [f"Bearer {GOOD}", "Bearer other"]),
        ("authorization", ["Bearer other", f"Bearer {GOOD}"]),
        (INTEGRATION_HEADER, [INTEGRATION_A, "personio:someoneelse1234"]),
        (KOMBO_KEY_HEADER, ["ks_dev_abcdefgh", "ks_dev_ijklmnop"]),
    ],
)
def test_a_credential_or_integration_header_sent_twice_is_refused(
    guarded: Settings, upstream: Upstream, name: str, values: list[str]
):
    """`Authorization: a` then `: b` was refused but `b` then `a` served: the first won.
    A proxy in front may have checked the other one; which is meant is unknowable."""
    headers = [("x-forwarded-for", "198.51.100.7"), ("content-type", "application/json")]
    if name != "authorization":
        headers.append(("authorization", f"Bearer {GOOD}"))
    headers += [(name, value) for value in values]
    with serve(create_app(guarded)) as url:
        response = httpx.post(f"{url}/graphql", json=QUERY, headers=headers)
    assert response.status_code == 400
    assert error_codes(response.json()) == ["BAD_USER_INPUT"]
    assert name.lower() in response.json()["errors"][0]["message"].lower()
    assert upstream.count() == 0
