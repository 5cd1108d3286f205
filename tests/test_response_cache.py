"""The response cache over real HTTP: every input of an answer is in its key (change one
alone: a miss, often another answer), what is not an input shares the entry, hits run
nothing, and the rules: errors never kept, `no-cache`, lifetime, bounds, rate, Redis.

Gateways are served by `serve(create_app(...))` over the session's sandbox; what the
response cache did is read from the gateway's own `/metrics`
(`gateway_response_cache_lookups_total{result}`), which every request moves by one.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import redis

from gateway.config import SANDBOX_API_KEY, Settings, TokenSpec
from gateway.http.access import hash_token
from gateway.http.app import create_app
from gateway.http.operations import Operation, Operations
from gateway.http.response_cache import ENTRY_OVERHEAD, ResponseCache
from gateway.http.response_key import ResponseKey
from gateway.observability.metrics import GatewayMetrics
from gateway.sharing.keys import KeySpace
from gateway.sharing.link import RedisLink
from gateway.sharing.shared_cache import SharedCache
from gateway.upstream.cache import UpstreamCache
from tests.conftest import INTEGRATION_A, INTEGRATION_B
from tests.redis_server import RedisServer, redis_server
from tests.support import Upstream, error_codes, serve

TOKEN_A, TOKEN_A_TOO, TOKEN_B, TOKEN_OPS = (
    "token-team-a-0123456789",
    "token-team-a-too-012345",
    "token-team-b-0123456789",
    "token-ops-0123456789ab",
)
TOKENS = (
    TokenSpec("team-a", hash_token(TOKEN_A), frozenset({INTEGRATION_A}), INTEGRATION_A),
    TokenSpec("team-a-too", hash_token(TOKEN_A_TOO), frozenset({INTEGRATION_A}), INTEGRATION_A),
    TokenSpec("team-b", hash_token(TOKEN_B), frozenset({INTEGRATION_B}), INTEGRATION_B),
    TokenSpec("ops", hash_token(TOKEN_OPS), None, None),
)

#: Two operations, so that `operationName` alone can change the answer.
DOCUMENT = (
    "query Jobs($first: Int!) { jobs(first: $first) { nodes { id name } } } "
    "query Names($first: Int!) { jobs(first: $first) { nodes { name } } }"
)
BASE_OPERATION: dict[str, Any] = {
    "query": DOCUMENT,
    "operationName": "Jobs",
    "variables": {"first": 2},
}
BASE_HEADERS = {"Authorization": f"Bearer {TOKEN_OPS}", "X-Integration-Id": INTEGRATION_A}


@dataclass(frozen=True)
class Ask:
    """One request: method, JSON body (POST) or query parameters (GET), headers."""

    body: Any = None
    params: dict[str, str] | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    method: str = "POST"
    #: Raw body bytes instead of `body` (to send JSON formatted another way).
    content: bytes | None = None


BASE = Ask(body=BASE_OPERATION, headers=BASE_HEADERS)


def _counter(text: str, name: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) + 1 :].split("} ")
            counts[labels.split('"')[1]] = int(float(value))
    return counts


@dataclass
class Gateway:
    """A served gateway, and what its response cache did."""

    url: str

    def metrics(self, name: str) -> Counter[str]:
        return _counter(httpx.get(f"{self.url}/metrics").text, name)

    def send(self, ask: Ask) -> httpx.Response:
        if ask.method == "GET":
            return httpx.get(
                f"{self.url}/graphql", params=ask.params, headers=ask.headers, timeout=30
            )
        if ask.content is not None:
            headers = {"Content-Type": "application/json", **ask.headers}
            return httpx.post(
                f"{self.url}/graphql", content=ask.content, headers=headers, timeout=30
            )
        return httpx.post(f"{self.url}/graphql", json=ask.body, headers=ask.headers, timeout=30)

    def ask(self, ask: Ask) -> tuple[str, httpx.Response]:
        """What the response cache did for this request (hit, shared_hit, miss, bypass,
        or `none`: not looked up), and the answer."""
        before = self.metrics("gateway_response_cache_lookups_total")
        response = self.send(ask)
        after = self.metrics("gateway_response_cache_lookups_total")
        moved = [result for result in after if after[result] != before[result]]
        assert len(moved) <= 1, moved
        return (moved[0] if moved else "none"), response

    def stored(self, ask: Ask) -> Ask:
        """Make sure `ask`'s answer is kept (asked until a hit), and return it."""
        self.send(ask)
        result, response = self.ask(ask)
        assert result == "hit", (result, response.text)
        return ask


def data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    if isinstance(body, list):
        return [item["data"] for item in body]
    assert "errors" not in body, body
    return body["data"]


@pytest.fixture(scope="module")
def settings(gateway_settings: Settings) -> Settings:
    return dataclasses.replace(gateway_settings, tokens=TOKENS, cache_ttl=30)


@pytest.fixture(scope="module")
def gateway(settings: Settings) -> Iterator[Gateway]:
    with serve(create_app(settings)) as url:
        yield Gateway(url)


# --- every input of an answer is in the key --------------------------------------------------


def _with(**changes: Any) -> Callable[[Ask], Ask]:
    return lambda ask: dataclasses.replace(ask, **changes)


def _operation(**changes: Any) -> Callable[[Ask], Ask]:
    return lambda ask: dataclasses.replace(ask, body={**ask.body, **changes})


def _headers(**changes: str) -> Callable[[Ask], Ask]:
    return lambda ask: dataclasses.replace(
        ask, headers={**ask.headers, **{k.replace("_", "-"): v for k, v in changes.items()}}
    )


#: (what changes, how, whether the answer differs too)
INPUTS = [
    pytest.param(_operation(query=DOCUMENT.replace("id name", "id komboId name")), True, id="doc"),
    pytest.param(_operation(query=DOCUMENT + " "), False, id="document-text-as-sent"),
    pytest.param(_operation(operationName="Names"), True, id="operation-name"),
    pytest.param(_operation(variables={"first": 3}), True, id="variables"),
    pytest.param(_operation(extensions={"client": "web"}), False, id="extensions"),
    pytest.param(lambda ask: dataclasses.replace(ask, body=[ask.body]), True, id="batch-shape"),
    pytest.param(_headers(X_Integration_Id=INTEGRATION_B), True, id="integration"),
    pytest.param(_headers(Authorization=f"Bearer {TOKEN_A}"), False, id="caller"),
]


@pytest.mark.parametrize(("change", "differs"), INPUTS)
def test_changing_one_input_alone_is_a_miss(
    gateway: Gateway, change: Callable[[Ask], Ask], differs: bool
):
    base = gateway.stored(BASE)
    _, first = gateway.ask(base)
    result, other = gateway.ask(change(base))
    assert result == "miss"
    assert (data(other) != data(first)) is differs
    # And the changed request has an entry of its own, which the base never gets.
    assert gateway.ask(change(base))[0] == "hit"
    assert gateway.ask(base)[1].content == first.content


def test_each_credential_has_its_own_entries(settings: Settings, upstream: Upstream):
    with serve(create_app(dataclasses.replace(settings, tokens=(), key_passthrough=True))) as url:
        gateway = Gateway(url)
        mine = dataclasses.replace(BASE, headers={"X-Kombo-Api-Key": SANDBOX_API_KEY})
        gateway.stored(mine)
        upstream.reset()
        theirs = dataclasses.replace(BASE, headers={"X-Kombo-Api-Key": "ks_dev_somebody_else_42"})
        result, response = gateway.ask(theirs)
        assert result == "miss"
        # Its own call, refused by Kombo: never the other key's kept answer.
        assert error_codes(response.json()) == ["UNAUTHENTICATED"]
        assert upstream.count() == 1


def test_the_integrations_generation_is_in_the_key(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
):
    base = gateway.stored(BASE)
    epoch = UpstreamCache.generation
    # What Kombo's data-changed webhook does (tests/test_webhooks.py sends real ones):
    # raise the integration's epoch.
    monkeypatch.setattr(UpstreamCache, "generation", lambda self, i: epoch(self, i) + 1000)
    assert gateway.ask(base)[0] == "miss"
    assert gateway.ask(base)[0] == "hit"
    monkeypatch.setattr(
        UpstreamCache,
        "generation",
        lambda self, i: epoch(self, i) + 1000 + 1000 * (i == INTEGRATION_B),
    )
    assert gateway.ask(base)[0] == "hit"  # only B's generation rose: A's entries stand


# --- what is not an input shares the entry -------------------------------------------------


def _as_get(ask: Ask) -> Ask:
    params = {
        "query": ask.body["query"],
        "operationName": ask.body["operationName"],
        "variables": orjson.dumps(ask.body["variables"]).decode(),
    }
    return dataclasses.replace(ask, method="GET", body=None, params=params)


NOT_INPUTS = [
    pytest.param(_as_get, id="GET-instead-of-POST"),
    pytest.param(_headers(Accept="application/graphql-response+json"), id="accept"),
    pytest.param(_headers(Accept="text/html"), id="accept-html"),
    pytest.param(_headers(X_Request_Id="another-request-0001"), id="request-id"),
    pytest.param(
        lambda ask: dataclasses.replace(
            ask, content=orjson.dumps(ask.body, option=orjson.OPT_INDENT_2)
        ),
        id="json-formatting",
    ),
]


@pytest.mark.parametrize("same", NOT_INPUTS)
def test_what_changes_no_answer_shares_the_entry(gateway: Gateway, same: Callable[[Ask], Ask]):
    base = gateway.stored(BASE)
    _, first = gateway.ask(base)
    result, response = gateway.ask(same(base))
    assert result == "hit"
    assert response.content == first.content


def test_a_tokens_default_integration_and_naming_it_share_an_entry(gateway: Gateway):
    named = gateway.stored(Ask(body=BASE_OPERATION, headers={"Authorization": f"Bearer {TOKEN_A}"}))
    assert named.headers.get("X-Integration-Id") is None
    spelled = _headers(X_Integration_Id=INTEGRATION_A)(named)
    assert gateway.ask(spelled)[0] == "hit"


# --- a hit runs nothing; tenants stay apart -----------------------------------------------


def test_a_hit_runs_nothing_and_calls_no_one(gateway: Gateway, upstream: Upstream):
    base = gateway.stored(BASE)
    upstream.reset()
    before = gateway.metrics("gateway_cache_lookups_total")
    for _ in range(3):
        assert gateway.ask(base)[0] == "hit"
    assert gateway.metrics("gateway_cache_lookups_total") == before  # no resolver ran
    assert upstream.count() == 0


def test_another_tenant_never_reads_a_kept_answer(gateway: Gateway):
    mine = gateway.stored(Ask(body=BASE_OPERATION, headers={"Authorization": f"Bearer {TOKEN_A}"}))
    _, kept = gateway.ask(mine)
    theirs = Ask(body=BASE_OPERATION, headers={"Authorization": f"Bearer {TOKEN_B}"})
    result, response = gateway.ask(theirs)
    assert result == "miss"
    ids = {job["id"] for job in data(response)["jobs"]["nodes"]}
    assert ids.isdisjoint(job["id"] for job in data(kept)["jobs"]["nodes"])
    # And asking for A's integration is refused before any lookup.
    refused = _headers(X_Integration_Id=INTEGRATION_A)(theirs)
    result, response = gateway.ask(refused)
    assert (result, response.status_code) == ("none", 403)


# --- errors, no-cache, lifetime --------------------------------------------------------------


def test_answers_with_errors_are_never_kept(gateway: Gateway):
    broken = Ask(
        body={"query": '{ ok: jobs(first: 1) { nodes { id } } bad: job(id: "nope") { id } }'},
        headers=BASE_HEADERS,
    )
    for _ in range(2):
        result, response = gateway.ask(broken)
        assert result == "miss"
        assert error_codes(response.json()) == ["BAD_USER_INPUT"]
    assert gateway.metrics("gateway_response_cache_stores_total")["errors"] >= 2


def test_no_cache_bypasses_the_entry_and_refreshes_it(gateway: Gateway, upstream: Upstream):
    base = gateway.stored(_operation(variables={"first": 4})(BASE))
    upstream.reset()
    fresh = _headers(Cache_Control="no-cache")(base)
    result, response = gateway.ask(fresh)
    assert result == "bypass"
    assert upstream.count() == 1  # fresh data from Kombo, not the kept answer
    result, again = gateway.ask(base)
    assert (result, again.content) == ("hit", response.content)  # what no-cache fetched
    assert upstream.count() == 1


def test_an_entry_lives_no_longer_than_the_upstream_answers_it_was_built_from(
    settings: Settings, upstream: Upstream
):
    ttl = 3.0
    with serve(create_app(dataclasses.replace(settings, cache_ttl=ttl))) as url:
        gateway = Gateway(url)
        page = Ask(body={"query": "{ jobs(first: 5) { nodes { id } } }"}, headers=BASE_HEADERS)
        kombo_id = data(gateway.send(page))["jobs"]["nodes"][0]["id"]
        fetched = time.monotonic()
        time.sleep(1.5)
        # Answered from the job the page primed 1.5 s ago: kept for the 1.5 s it has left.
        lookup = Ask(
            body={
                "query": "query($id: ID!) { job(id: $id) { id } }",
                "variables": {"id": kombo_id},
            },
            headers=BASE_HEADERS,
        )
        upstream.reset()
        assert gateway.ask(lookup)[0] == "miss"
        assert gateway.ask(lookup)[0] == "hit"
        assert upstream.count() == 0
        time.sleep(max(0.0, fetched + ttl + 0.2 - time.monotonic()))
        # A full TTL from when it was built would still hold it; its data has expired.
        assert gateway.ask(lookup)[0] == "miss"
        assert upstream.count() == 1


def test_with_the_upstream_cache_off_nothing_is_kept(gateway_url: str):
    gateway = Gateway(gateway_url)  # the session's gateway: GATEWAY_CACHE_TTL=0
    ask = Ask(body={"query": "{ jobs(first: 1) { nodes { id } } }"})
    assert [gateway.ask(ask)[0] for _ in range(2)] == ["none", "none"]


# --- bounds, cost, rate -------------------------------------------------------------------


def test_an_answer_over_the_per_entry_cap_is_not_kept(settings: Settings):
    # 64 KiB in all: one answer may take 4 KiB.
    with serve(create_app(dataclasses.replace(settings, response_cache_bytes=64 * 1024))) as url:
        gateway = Gateway(url)
        big = Ask(
            body={"query": "{ jobs(first: 50) { nodes { id name description } } }"},
            headers=BASE_HEADERS,
        )
        assert len(gateway.send(big).content) > 4 * 1024
        assert gateway.ask(big)[0] == "miss"
        assert gateway.metrics("gateway_response_cache_stores_total")["too_large"] == 2
        small = Ask(body={"query": "{ jobs(first: 1) { nodes { id } } }"}, headers=BASE_HEADERS)
        gateway.stored(small)


def _key(n: int) -> ResponseKey:
    operation = Operation(f"{{ n{n}: __typename }}", None, None, None)
    return ResponseKey(
        Operations((operation,), batch=False),
        integration=INTEGRATION_A,
        credential="fp",
        caller=None,
        generation=0,
        deployment="deployment",
    )


async def test_the_cache_holds_its_byte_bound_dropping_the_least_recently_used():
    cache = ResponseCache(64 * 1024, metrics=GatewayMetrics())
    slots = [cache.slot(_key(n)) for n in range(200)]
    for n, slot in enumerate(slots):
        await cache.put(slot, b"x" * (1000 + n), b"0" * 16, ttl=30)
    entries, size = cache.kept
    assert size <= 64 * 1024
    assert entries >= 64 * 1024 // (ENTRY_OVERHEAD + 1200)
    assert await cache.get(slots[-1]) is not None
    assert await cache.get(slots[0]) is None


async def test_a_flood_of_tiny_answers_is_bounded_too():
    cache = ResponseCache(64 * 1024, metrics=GatewayMetrics())
    for n in range(2_000):
        await cache.put(cache.slot(_key(n)), b"{}", b"0" * 16, ttl=30)
    entries, size = cache.kept
    assert size <= 64 * 1024 and entries <= 64 * 1024 // ENTRY_OVERHEAD


def test_a_kept_answer_costs_the_callers_rate_like_the_request(settings: Settings):
    limited = dataclasses.replace(settings, rate_limit=0.001, rate_burst=4)
    with serve(create_app(limited)) as url:
        gateway = Gateway(url)
        batch = Ask(body=[BASE_OPERATION] * 3, headers=BASE_HEADERS)
        assert gateway.ask(batch)[0] == "miss"  # 3 of the 4 requests the bucket holds
        result, response = gateway.ask(batch)  # a hit of 3 operations: 3 more
        assert (result, response.status_code) == ("hit", 429)
        assert error_codes(response.json()) == ["RATE_LIMITED"]


# --- with Redis: shared by every replica ---------------------------------------------------


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def replicas(
    settings: Settings, shared_redis: RedisServer
) -> Iterator[tuple[Gateway, Gateway, Gateway]]:
    """A and B configured alike, C with introspection off; one Redis, emptied."""
    shared_redis.flush()
    alike = dataclasses.replace(settings, redis_url=shared_redis.url, redis_prefix="rc")
    other = dataclasses.replace(alike, introspection=False)
    with (
        serve(create_app(alike)) as a,
        serve(create_app(alike)) as b,
        serve(create_app(other)) as c,
    ):
        yield Gateway(a), Gateway(b), Gateway(c)


def response_keys(server: RedisServer) -> list[bytes]:
    client = redis.Redis.from_url(server.url)
    try:
        return sorted(client.scan_iter(match="rc:*:response:*"))
    finally:
        client.close()


def test_with_redis_an_answer_kept_by_one_replica_answers_the_others(
    replicas: tuple[Gateway, Gateway, Gateway], upstream: Upstream
):
    a, b, _ = replicas
    result, kept = a.ask(BASE)
    assert result == "miss"
    upstream.reset()
    result, shared = b.ask(BASE)
    assert (result, shared.content) == ("shared_hit", kept.content)
    assert b.ask(BASE)[0] == "hit"  # now in B's own cache too
    assert upstream.count() == 0


def test_replicas_configured_differently_share_no_answer(
    replicas: tuple[Gateway, Gateway, Gateway],
):
    a, _, c = replicas
    assert a.ask(BASE)[0] == "miss"
    assert c.ask(BASE)[0] == "miss"  # GATEWAY_INTROSPECTION differs: another deployment


def test_a_damaged_shared_answer_is_not_served(
    replicas: tuple[Gateway, Gateway, Gateway], shared_redis: RedisServer
):
    a, b, _ = replicas
    _, kept = a.ask(BASE)
    [key] = response_keys(shared_redis)
    client = redis.Redis.from_url(shared_redis.url)
    try:
        value = client.get(key)
        assert isinstance(value, bytes) and value.endswith(kept.content)
        client.set(key, value.replace(b'"name"', b'"nope"', 1), px=30_000)
    finally:
        client.close()
    result, answer = b.ask(BASE)
    assert result == "miss"
    assert answer.content == kept.content


def test_shared_answers_hold_no_secret_in_their_names_and_expire_with_their_data(
    replicas: tuple[Gateway, Gateway, Gateway], shared_redis: RedisServer
):
    a, _, _ = replicas
    a.ask(BASE)
    [key] = response_keys(shared_redis)
    for secret in (TOKEN_OPS, "ops", SANDBOX_API_KEY, "jobs", "Jobs"):
        assert secret.encode() not in key.split(b"}", 1)[1]
    assert key.startswith(f"rc:{{{INTEGRATION_A}}}:response:0:".encode())
    client = redis.Redis.from_url(shared_redis.url)
    try:
        ttl_ms = client.pttl(key)
    finally:
        client.close()
    assert 0 < ttl_ms <= 30_000


# --- the key, as a function ---------------------------------------------------------------


def test_the_key_tells_every_input_apart():
    base = _key(0)
    operation = base.operations.items[0]
    variants = [
        dataclasses.replace(base, integration=INTEGRATION_B),
        dataclasses.replace(base, integration=None),
        dataclasses.replace(base, credential="fp2"),
        dataclasses.replace(base, caller="web"),
        dataclasses.replace(base, caller=""),
        dataclasses.replace(base, deployment="other"),
        dataclasses.replace(base, operations=Operations((operation,), batch=True)),
        dataclasses.replace(base, operations=Operations((operation, operation), batch=True)),
    ]
    for change in (
        {"query": operation.query + " "},
        {"operation_name": "N"},
        {"operation_name": ""},
        {"variables": {}},
        {"variables": {"a": 1}},
        {"extensions": {}},
    ):
        changed = dataclasses.replace(operation, **change)
        variants.append(dataclasses.replace(base, operations=Operations((changed,), False)))
    digests = {key.digest() for key in [base, *variants]}
    assert len(digests) == len(variants) + 1
    assert all(len(digest) == 32 for digest in digests)
    assert _key(0).digest() == base.digest()  # and the same inputs, the same key


async def test_the_generations_name_the_slots_not_the_digest():
    """The process's epoch names the level-1 slot and Redis's generation the level-2 key:
    epochs are each process's own, so a shared key built from one could meet another
    process's equal epoch of older data."""
    metrics = GatewayMetrics()
    # Naming slots talks to no Redis: the link never connects.
    link = RedisLink.from_url("redis://127.0.0.1:1/0", timeout=0.1, metrics=metrics)
    shared = SharedCache(link, ttl=30, metrics=metrics)
    cache = ResponseCache(64 * 1024, metrics=metrics, shared=shared, keys=KeySpace("t"))
    base = dataclasses.replace(_key(0), integration=INTEGRATION_A, shared_generation=7)
    slot = cache.slot(base)
    assert cache.slot(dataclasses.replace(base, generation=1)).digest != slot.digest
    assert cache.slot(dataclasses.replace(base, generation=1)).shared_key == slot.shared_key
    assert cache.slot(dataclasses.replace(base, shared_generation=8)).shared_key != slot.shared_key
    assert cache.slot(dataclasses.replace(base, shared_generation=None)).shared_key is None
    await link.aclose()


def test_the_key_of_a_request_at_the_body_cap_is_one_pass(settings: Settings):
    huge = {"ids": ["x" * 1000] * (settings.max_body_bytes // 1010)}
    operation = Operation("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", None, huge, None)
    key = dataclasses.replace(_key(0), operations=Operations((operation,), batch=False))
    started = time.perf_counter()
    assert len(key.digest()) == 32
    assert time.perf_counter() - started < 0.5  # ~1 ms: linear, nothing more
