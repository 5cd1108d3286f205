"""`POST /webhooks/kombo` over real HTTP: a signed `data-changed` makes the next query
refetch (the sandbox's request log counts Kombo calls), in another gateway process too
when Redis is configured; everything else changes nothing. Then the signature check and
the event reading on their own."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import logging
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.config import SANDBOX_API_KEY, Settings, TokenSpec
from gateway.errors import BadUserInput
from gateway.http.access import hash_token
from gateway.http.app import create_app
from gateway.http.webhook_signature import (
    SIGNATURE_HEADER,
    WEBHOOK_PATH,
    expected_signatures,
    signature_matches,
)
from gateway.http.webhooks import MAX_BODY_BYTES, DataChanged, read_event
from tests.conftest import INTEGRATION_A, INTEGRATION_B
from tests.redis_server import RedisServer, redis_server
from tests.support import GraphQLClient, Upstream, gateway_process, serve

SECRET = "whsec_" + "k" * 32
PAGE = "{ jobs(first: 5) { nodes { id komboId name } } }"
LOOKUP = "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Job { id name } } }"


def sign(body: bytes, encoding: str = "base64url", secret: str = SECRET) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {
        "hex": digest.hex(),
        "HEX": digest.hex().upper(),
        "base64": base64.b64encode(digest).decode(),
        "base64url": base64.urlsafe_b64encode(digest).decode(),
        "base64url-unpadded": base64.urlsafe_b64encode(digest).decode().rstrip("="),
    }[encoding]


def data_changed(
    integration: str = INTEGRATION_A,
    models: tuple[str, ...] = ("ats_jobs",),
    *,
    event_id: str | None = None,
    kind: str = "data-changed",
) -> bytes:
    return orjson.dumps(
        {
            "id": event_id or f"evt_{uuid.uuid4().hex}",
            "type": kind,
            "data": {
                "integration_id": integration,
                "integration_tool": integration.split(":")[0],
                "integration_category": "ATS",
                "changed_models": [{"name": name} for name in models],
            },
        }
    )


def post(url: str, body: bytes, signature: str | None = "sign", **headers: str) -> httpx.Response:
    if signature == "sign":
        signature = sign(body)
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return httpx.post(f"{url}{WEBHOOK_PATH}", content=body, headers=headers, timeout=10)


@pytest.fixture
def cached(gateway_settings: Settings) -> Iterator[GraphQLClient]:
    """A fresh gateway with a 60 s cache and the webhook secret (the session gateway
    runs with the cache off and no secret)."""
    settings = dataclasses.replace(gateway_settings, cache_ttl=60, webhook_secret=SECRET)
    with serve(create_app(settings)) as url:
        yield GraphQLClient(url)


def cached_twice(gateway: GraphQLClient, upstream: Upstream) -> list[dict[str, Any]]:
    """The page, asked twice: one Kombo call (the second is a cache hit)."""
    jobs: list[dict[str, Any]] = gateway.data(PAGE)["jobs"]["nodes"]
    assert gateway.data(PAGE)["jobs"]["nodes"] == jobs
    assert upstream.count() == 1
    return jobs


# --- a signed data-changed ------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["hex", "HEX", "base64", "base64url", "base64url-unpadded"])
def test_a_signed_webhook_makes_the_next_query_refetch(
    cached: GraphQLClient, upstream: Upstream, encoding: str
):
    jobs = cached_twice(cached, upstream)
    body = data_changed()
    answer = post(cached.url, body, sign(body, encoding))
    assert answer.status_code == 200 and answer.json() == {"status": "invalidated"}
    assert cached.data(PAGE)["jobs"]["nodes"] == jobs
    assert upstream.count() == 2
    # The jobs primed by the old page went with it: a look-up asks Kombo, once.
    ids = [job["id"] for job in jobs[:2]]
    post(cached.url, data_changed())
    assert len(cached.data(LOOKUP, {"ids": ids})["nodes"]) == 2
    assert upstream.count() == 3
    cached.data(LOOKUP, {"ids": ids})
    assert upstream.count() == 3


def test_any_ats_model_counts(cached: GraphQLClient, upstream: Upstream):
    cached_twice(cached, upstream)
    answer = post(cached.url, data_changed(models=("hris_employees", "ats_job_postings")))
    assert answer.json() == {"status": "invalidated"}
    cached.data(PAGE)
    assert upstream.count() == 2


# --- what changes nothing -----------------------------------------------------------------


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("wrong", id="wrong"),
        pytest.param("other-secret", id="other-secret"),
        pytest.param("altered-body", id="altered-body"),
        pytest.param("truncated", id="truncated"),
        pytest.param("sha256=", id="prefixed"),
    ],
)
def test_a_bad_signature_is_401_and_changes_nothing(
    cached: GraphQLClient, upstream: Upstream, signature: str | None
):
    cached_twice(cached, upstream)
    body = data_changed()
    header = {
        None: None,
        "": "",
        "wrong": base64.b64encode(secrets.token_bytes(32)).decode(),
        "other-secret": sign(body, secret="whsec_other"),
        "altered-body": sign(data_changed()),  # a valid signature of another event
        "truncated": sign(body)[:-2],
        "sha256=": "sha256=" + sign(body, "hex"),
    }[signature]
    answer = post(cached.url, body, header)
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    cached.data(PAGE)
    assert upstream.count() == 1


def test_a_repeated_event_is_harmless(cached: GraphQLClient, upstream: Upstream):
    cached_twice(cached, upstream)
    body = data_changed()
    assert post(cached.url, body).json() == {"status": "invalidated"}
    cached.data(PAGE)
    assert upstream.count() == 2
    for _ in range(3):  # Kombo redelivers: 200, nothing more
        answer = post(cached.url, body)
        assert answer.status_code == 200 and answer.json() == {"status": "repeated"}
    cached.data(PAGE)
    assert upstream.count() == 2


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(data_changed(INTEGRATION_B), id="another-integration"),
        pytest.param(data_changed(models=("hris_employees",)), id="no-ats-model"),
        pytest.param(data_changed(models=()), id="no-model"),
        pytest.param(data_changed(kind="sync-finished"), id="another-type"),
        pytest.param(b'{"type": "something-new"}', id="unknown-event"),
    ],
)
def test_a_webhook_for_other_data_changes_nothing_here(
    cached: GraphQLClient, upstream: Upstream, body: bytes
):
    cached_twice(cached, upstream)
    answer = post(cached.url, body)
    assert answer.status_code == 200
    assert answer.json()["status"] in ("invalidated", "ignored")  # B's: invalidated, for B
    cached.data(PAGE)
    assert upstream.count() == 1


def test_the_endpoint_is_404_without_a_secret(gateway_url: str):
    body = data_changed()
    answer = post(gateway_url, body)
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert WEBHOOK_PATH not in answer.text  # not listed among the paths that exist


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b"[1, 2]", id="a-list"),
        pytest.param(b'{"id": "e", "type": "data-changed", "data": {}}', id="no-integration"),
        pytest.param(
            b'{"type": "data-changed", "data": {"integration_id": "a:b", "changed_models": []}}',
            id="no-event-id",
        ),
        pytest.param(
            b'{"id": "e", "type": "data-changed", "data": {"integration_id": "a:b",'
            b' "changed_models": "ats_jobs"}}',
            id="models-not-a-list",
        ),
    ],
)
def test_malformed_json_with_a_valid_signature_is_400(
    cached: GraphQLClient, upstream: Upstream, body: bytes
):
    cached_twice(cached, upstream)
    answer = post(cached.url, body)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    cached.data(PAGE)
    assert upstream.count() == 1


def test_a_body_over_the_cap_is_413(cached: GraphQLClient):
    body = data_changed(models=("ats_jobs",) * (MAX_BODY_BYTES // 10))
    assert len(body) > MAX_BODY_BYTES
    assert post(cached.url, body).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused while reading
        yield body

    answer = httpx.post(
        f"{cached.url}{WEBHOOK_PATH}", content=chunks(), headers={SIGNATURE_HEADER: sign(body)}
    )
    assert answer.status_code == 413


def test_only_post_is_answered(cached: GraphQLClient):
    answer = httpx.get(f"{cached.url}{WEBHOOK_PATH}")
    assert answer.status_code == 405 and answer.headers["Allow"] == "POST"


# --- exposure: no token, its own limit, no secret anywhere ------------------------------------


def test_no_gateway_token_and_not_the_callers_rate_limit_but_a_limit_of_its_own(
    gateway_settings: Settings, upstream: Upstream
):
    token = "gw_" + "t" * 40
    settings = dataclasses.replace(
        gateway_settings,
        cache_ttl=60,
        webhook_secret=SECRET,
        tokens=(TokenSpec("web", hash_token(token), None),),
        rate_limit=0.01,
        rate_burst=1,
        webhook_rate_limit=0.3,  # a burst of 3, then one every 3.3 s
    )
    with serve(create_app(settings)) as url:
        statuses = [post(url, data_changed()).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = post(url, data_changed())
        assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert int(refused.headers["Retry-After"]) >= 1
        # The callers' limit is untouched: the one request its burst allows still passes.
        graphql = httpx.post(
            f"{url}/graphql",
            json={"query": "{ __typename }"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert graphql.status_code == 200


def test_the_secret_and_the_signature_never_reach_answers_or_logs(
    cached: GraphQLClient, caplog: pytest.LogCaptureFixture
):
    body = data_changed()
    with caplog.at_level(logging.DEBUG):
        answers = [
            post(cached.url, body),
            post(cached.url, body, "bad-" + SECRET),
            post(cached.url, b"{", sign(b"{")),
        ]
        metrics = httpx.get(f"{cached.url}/metrics").text
    assert [answer.status_code for answer in answers] == [200, 401, 400]
    text = "".join(answer.text for answer in answers) + caplog.text
    assert SECRET not in text and sign(body) not in text
    assert sign(body, "hex") not in text
    lines = [r for r in caplog.records if r.name == "gateway.webhooks"]
    assert [getattr(r, "outcome", None) for r in lines] == [
        "invalidated",
        "bad_signature",
        "malformed",
    ]
    assert 'gateway_webhooks_total{outcome="invalidated"} 1.0' in metrics
    assert 'gateway_webhooks_total{outcome="bad_signature"} 1.0' in metrics


# --- two gateway processes, one Redis -------------------------------------------------------


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def test_a_webhook_to_one_replica_makes_the_other_refetch(
    sandbox_url: str, shared_redis: RedisServer, upstream: Upstream, tmp_path: Path
):
    env = {
        "KOMBO_API_KEY": SANDBOX_API_KEY,
        "KOMBO_BASE_URL": f"{sandbox_url}/v1",
        "KOMBO_INTEGRATION_ID": INTEGRATION_A,
        "KOMBO_WEBHOOK_SECRET": SECRET,
        "GATEWAY_CACHE_TTL": "60",
        "GATEWAY_RATE_LIMIT": "0",
        "GATEWAY_REDIS_URL": shared_redis.url,
        "GATEWAY_REDIS_PREFIX": "hooks",
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        gateway_process(tmp_path / "a", env=env) as a,
        gateway_process(tmp_path / "b", env=env) as b,
    ):
        upstream.reset()
        jobs = GraphQLClient(a.url).data(PAGE)["jobs"]["nodes"]
        replica = GraphQLClient(b.url)
        assert replica.data(PAGE)["jobs"]["nodes"] == jobs  # B: from Redis (level 2)
        replica.data(PAGE)  # B: from its own cache (level 1)
        ids = [job["id"] for job in jobs]
        replica.data(LOOKUP, {"ids": ids})  # B: primed jobs
        assert upstream.count() == 1

        body = data_changed()
        assert post(a.url, body).json() == {"status": "invalidated"}
        time.sleep(0.1)  # the announcement's way to B (pub/sub: a millisecond or so)
        # B's next query reaches Kombo: neither its level 1 nor Redis's old entries answer.
        assert replica.data(PAGE)["jobs"]["nodes"] == jobs
        assert upstream.count() == 2
        # ... and then both are fresh and shared again: A's next query is from Redis.
        GraphQLClient(a.url).data(PAGE)
        assert upstream.count() == 2
        # Kombo redelivers to B: the replicas agree it was handled.
        assert post(b.url, body).json() == {"status": "repeated"}
        replica.data(PAGE)
        assert upstream.count() == 2


# --- the signature and the event on their own -----------------------------------------------


BODY = b'{"id":"evt_1","type":"data-changed"}'


@pytest.mark.parametrize("encoding", ["hex", "HEX", "base64", "base64url", "base64url-unpadded"])
def test_every_accepted_encoding_matches(encoding: str):
    assert signature_matches(sign(BODY, encoding), SECRET, BODY)
    assert signature_matches(f"  {sign(BODY, encoding)} ", SECRET, BODY)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "x",
        sign(BODY, secret="other"),
        sign(BODY + b" "),  # re-serialised JSON is another body
        sign(BODY)[:-2],  # [:-1] drops only the padding: still valid
        sign(BODY) + "A",
        "é" * 44,
        "\x00" * 64,
    ],
)
def test_anything_else_does_not(header: str | None):
    assert not signature_matches(header, SECRET, BODY)


def test_every_encoding_is_compared_with_compare_digest_whatever_matched(
    monkeypatch: pytest.MonkeyPatch,
):
    """Constant time: one `hmac.compare_digest` per accepted encoding, every time, so
    neither where a guess goes wrong nor which encoding it is in shows in the timing."""
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    expected = expected_signatures(SECRET, BODY)
    for header in (sign(BODY, "hex"), sign(BODY, "base64url-unpadded"), "wrong"):
        compared.clear()
        signature_matches(header, SECRET, BODY)
        assert [b for _, b in compared] == list(expected)


def test_an_event_is_read_for_what_the_gateway_needs():
    assert read_event(data_changed(event_id="e1", models=("hris_x", "ats_users"))) == (
        DataChanged("e1", INTEGRATION_A, ats_changed=True)
    )
    assert read_event(data_changed(event_id="e2", models=("hris_x",))) == DataChanged(
        "e2", INTEGRATION_A, ats_changed=False
    )
    assert read_event(data_changed(kind="sync-finished")) is None
    with pytest.raises(BadUserInput):
        read_event(b"null")
