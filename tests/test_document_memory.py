"""Documents cost a worker bounded memory and time, whoever sends them and how many.

An attack probe sent 1,519 distinct ~250 KB documents from one token, within its rate
limit: the worker grew from 57 MB to 1.2 GB, because compiled projections (2,048 kept,
keyed by AST nodes and keeping them alive) held documents and their text long after
the document cache (512) had let them go. Here:

- unit tests: nothing keeps an evicted document's text alive; the prepared documents
  and the projections are bounded in bytes as well as entries, and keyed by digests;
- one bounded load test: a real `kombo-gateway serve` process, one token sending the
  worst documents it may at its full rate for 60 s while another token's caller keeps
  its latency, and the worker's memory stays under 300 MB.
"""

from __future__ import annotations

import asyncio
import gc
import http.client
import json
import statistics
import subprocess
import threading
import time
import urllib.parse
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from graphql import GraphQLError

from bench.queries import JOB_ALL_FIELDS, sandbox_job_ids
from gateway.config import Settings
from gateway.http.access import hash_token
from gateway.schema.build import build_schema
from gateway.schema.document_shape import ShapeLimits
from gateway.schema.operation import COST_BYTES, PreparedDocuments
from tests.support import gateway_process, status_bytes
from tests.test_projection import SOURCE_JOBS, context

#: Measures time and memory under load: `make test` runs it alone, after the rest.
pytestmark = pytest.mark.serial

#: The default document size limit (GATEWAY_MAX_DOCUMENT_BYTES), from its one source.
MAX_DOCUMENT_BYTES = Settings().max_document_bytes

# --- unit: what the caches keep -------------------------------------------------------------


def lookups(tag: str, count: int = 40) -> str:
    """A distinct document (`tag`) of `count` aliased look-ups, ~3 KB for 40."""
    ids = [job["id"] for job in SOURCE_JOBS[:count]]
    fields = "id komboId name status jobCode postUrl"
    body = " ".join(
        f'{tag}{n}: job(id: "{kombo_id}") {{ {fields} }}' for n, kombo_id in enumerate(ids)
    )
    return f"query {tag} {{ {body} }}"


@pytest.mark.parametrize("root", ["job", "jobs"])
def test_no_cache_keeps_an_evicted_document_or_its_text_alive(root: str):
    """The projections compiled for a document, the variables its directives read, and
    what a `jobs` selection reads outlived the document cache's entry, holding the
    document's nodes, its tokens and its text: 126 documents of 1 MB added 386 MB to a
    worker."""
    schema = build_schema()
    kombo_id = SOURCE_JOBS[0]["id"]
    field = f'job(id: "{kombo_id}")' if root == "job" else "jobs(first: 2) { nodes"
    close = "}" if root == "job" else "} }"
    query = (
        f"query Kept($on: Boolean!) {{ {field} {{ komboId name "
        f"stages @include(if: $on) {{ name }} {close} }}"
    )

    async def run() -> None:
        result = await schema.execute(
            query, variable_values={"on": True}, context_value=context(SOURCE_JOBS[:3])
        )
        assert result.errors is None and result.data is not None, result.errors

    asyncio.run(run())
    loc = schema.documents.document(query).loc
    assert loc is not None
    source = weakref.ref(loc.source)
    del loc
    # Push it out of the document cache (512 entries) with other documents.
    for n in range(600):
        schema.documents.document(f"{{ a{n}: __typename }}")
    gc.collect()
    assert source() is None, "something still holds the evicted document's text"


def test_the_document_cache_is_bounded_in_bytes_and_keyed_by_digests():
    documents = PreparedDocuments(
        rules=(),
        max_tokens=20_000,
        size=512,
        shape=ShapeLimits(max_fields=2_000, max_depth=15),
        max_document_bytes=48 * 1024,
        max_bytes=2_000_000,
    )
    texts = [lookups(f"d{n}") for n in range(40)]  # ~1,100 tokens each: ~0.7 MB by estimate
    for text in texts:
        documents.document(text)
    cache = documents.cache
    assert 0 < cache.bytes <= 2_000_000
    assert len(cache) < len(texts)  # bytes, not entries, bounded it
    assert all(isinstance(key, bytes) and len(key) == 16 for key in cache.keys())
    assert documents.document(texts[-1]) is documents.document(texts[-1])


def test_a_document_heavier_than_the_whole_cache_is_served_but_not_kept():
    documents = PreparedDocuments(
        rules=(),
        max_tokens=20_000,
        size=512,
        shape=ShapeLimits(max_fields=2_000, max_depth=15),
        max_document_bytes=48 * 1024,
        max_bytes=100_000,
    )
    text = lookups("heavy")
    assert documents.document(text) is not documents.document(text)
    assert len(documents.cache) == 0


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("{ " + "x " * 5_000 + "}", id="parsed"),
        pytest.param("{ " + "x " * 5_000, id="syntax-error"),
        pytest.param("{ " + "x " * 25_000 + "}", id="over-the-token-limit"),
    ],
)
def test_a_document_leaves_nothing_for_the_cycle_collector(text: str):
    """graphql-core links tokens both ways, and a syntax error's traceback held the
    parser: each document became garbage only the cycle collector frees, which the
    gateway runs rarely; a worker refusing documents of 20,000 tokens swung by 90 MB."""
    documents = PreparedDocuments(
        rules=(),
        max_tokens=20_000,
        size=1,
        shape=ShapeLimits(max_fields=2_000, max_depth=15),
        max_document_bytes=60_000,
    )
    gc.collect()
    gc.disable()
    try:
        try:
            documents.document(text)
        except GraphQLError:
            pass
        documents.document("{ other: __typename }")  # evicts the first
        unreachable = gc.collect()
    finally:
        gc.enable()
    assert unreachable < 100


# --- load: one token at its full rate against a real worker ---------------------------------

MAX_RSS = 300 * 1024 * 1024
ATTACK_SECONDS = 60.0
ATTACK_RATE = 50.0  # GATEWAY_RATE_LIMIT's default: the attacker's full rate
RATE_BURST = 100  # GATEWAY_RATE_BURST's default
ATTACKER_TOKEN = "attacker-token-0123456789"
VICTIM_TOKEN = "victim-token-0123456789ab"
VICTIM_QUERY = "query Victim { jobs(first: 5) { nodes { id name status } } }"
JOB_IDS = sandbox_job_ids(1_000)


@dataclass
class Gateway:
    port: int
    process: subprocess.Popen[bytes]

    def request(
        self, method: str, path: str, token: str, body: bytes | None = None, timeout: float = 30
    ) -> tuple[int, dict[str, Any]]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            connection.request(method, path, body, headers)
            response = connection.getresponse()
            payload = response.read()
            try:
                return response.status, json.loads(payload)
            except ValueError:
                return response.status, {}
        finally:
            connection.close()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """`kombo-gateway serve` (one worker, in its own process, on the embedded sandbox),
    default limits, two tokens."""
    tokens = [
        {"name": "attacker", "sha256": hash_token(ATTACKER_TOKEN), "integrations": "*"},
        {"name": "victim", "sha256": hash_token(VICTIM_TOKEN), "integrations": "*"},
    ]
    directory = tmp_path_factory.mktemp("gateway")
    with gateway_process(directory, env={"GATEWAY_TOKENS": json.dumps(tokens)}) as running:
        yield Gateway(int(running.url.rsplit(":", 1)[1]), running.process)


#: (method, path, body) of one request.
Sent = tuple[str, str, bytes | None]


def request_cost(sent: Sent) -> int:
    """What the gateway charges the request to the caller's rate (`PreparedDocuments.cost`,
    a full bucket at most): the attacker paces itself by it."""
    method, path, body = sent
    if body is not None:
        query = json.loads(body)["query"]
    else:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)["query"][0]
    size = len(query.encode())
    if size > MAX_DOCUMENT_BYTES:
        return 1
    return min(RATE_BURST, max(1, -(-size // COST_BYTES)))


def _pad(document: str, size: int) -> str:
    """`document` followed by a comment, `size` bytes in all (ASCII)."""
    return document + "\n#" + "p" * max(0, size - len(document) - 2)


def attack_documents(max_bytes: int) -> list[Callable[[int], Sent]]:
    """The worst documents the gateway still accepts, and some it refuses: each a
    function of a counter (every document distinct), giving (method, path, body)."""
    fragment = "fragment All on Job {" + JOB_ALL_FIELDS + "}"

    def post(query: str) -> Sent:
        return "POST", "/graphql", json.dumps({"query": query}).encode()

    def largest_valid(n: int) -> Sent:
        # 499 aliases x 4 fields, + `nodes` and its `id` = 1,998 fields, then as many
        # IDs as fit: the largest, widest document the limits let through.
        looks = " ".join(
            f'x{n}a{i}: job(id: "{JOB_IDS[i]}") {{ id name status }}' for i in range(499)
        )
        head = f"query L{n} {{ {looks} nodes(ids: ["
        ids, size = [], len(head) + 12
        for kombo_id in JOB_IDS[499:]:
            if size + len(kombo_id) + 3 > max_bytes:
                break
            ids.append(f'"{kombo_id}"')
            size += len(kombo_id) + 3
        return post(head + " ".join(ids) + "]) { id } }")

    def most_tokens(n: int) -> Sent:
        # 20,000 tokens (GATEWAY_MAX_TOKENS) lexed and parsed, then refused.
        return post(_pad(f"{{ q{n} " + "x " * 21_000, max_bytes)[:max_bytes])

    def invalid_at_the_end(n: int) -> Sent:
        body = f"{{ q{n}: __typename " + "__typename " * ((max_bytes - 40) // 11)
        return post(body[: max_bytes - 1] + "(")

    def compiles_most(n: int) -> Sent:
        # 15 aliases of every Job field through one fragment: 15 projections of ~21 KB.
        aliases = " ".join(f"c{n}_{i}: jobs(first: 1) {{ nodes {{ ...All }} }}" for i in range(15))
        return post(f"{{ {aliases} }} {fragment}")

    def union_aliases(n: int) -> Sent:
        # 250 aliases of a union with 9 members: past the projection's source limit.
        selection = " ".join(
            f"u{n}_{i}: screeningQuestions {{ format {{ __typename "
            "... on TextQuestionFormat { type displayType maxLength } } }"
            for i in range(250)
        )
        return post(f"{{ jobs(first: 1) {{ nodes {{ {selection} }} }} }}")

    def conflicting(n: int) -> Sent:
        # Same response name, different arguments: graphql-core compares every pair.
        pairs = " ".join(f'job(id: "{n}-{i}") {{ id }}' for i in range(900))
        return post(f"{{ {pairs} }}")

    def oversized(n: int) -> Sent:
        return post(_pad(f"{{ o{n}: __typename }}", max_bytes + 1))

    def far_oversized(n: int) -> Sent:
        return post("{ " + f"a{n}(" * 150_000)  # ~900 KB: under the body limit

    def oversized_get(n: int) -> Sent:
        # A query string arrives without the body limit: ~60 KB still reach the view.
        query = _pad(f"{{ g{n}: __typename }}", max_bytes + 10_000)
        return "GET", "/graphql?" + urllib.parse.urlencode({"query": query}), None

    def refused(n: int) -> Sent:
        return (oversized, far_oversized, oversized_get)[n % 3](n)

    heavy = [largest_valid, most_tokens, invalid_at_the_end, compiles_most, union_aliases]
    return [
        kind for pair in zip(heavy + [conflicting], [refused] * 6, strict=True) for kind in pair
    ]


class Attacker:
    """One token sending `kinds` of documents in turn, each distinct, at up to its rate
    (50/s), from a few connections at once; refused for its rate (429), it waits what
    `Retry-After` says and sends the same kind again, so that costly kinds get through
    whenever the gateway lets them: it spends all the rate the gateway grants it."""

    def __init__(self, gateway: Gateway, kinds: list[Callable[[int], Sent]]) -> None:
        self.gateway = gateway
        self.kinds = kinds
        self.outcomes: Counter[str] = Counter()
        self.errors: list[str] = []
        self.ticks: list[int] = [0]
        self.sent = 0
        self._lock = threading.Lock()
        self._next_send = 0.0
        self._stop_at = 0.0

    def run(self, seconds: float, on_tick: Callable[[], int], connections: int = 4) -> None:
        """Attack for `seconds`; `on_tick` is sampled every 50 ms meanwhile."""
        self._stop_at = self._next_send = time.monotonic()
        self._stop_at += seconds
        threads = [
            threading.Thread(target=self._connection, args=(offset,))
            for offset in range(connections)
        ]
        for thread in threads:
            thread.start()
        while time.monotonic() < self._stop_at:
            self.ticks.append(on_tick())
            time.sleep(0.05)
        for thread in threads:
            thread.join(timeout=120)

    def _wait_turn(self) -> bool:
        with self._lock:
            turn = max(self._next_send, time.monotonic())
            self._next_send = turn + 1 / ATTACK_RATE
        if turn >= self._stop_at:
            return False
        time.sleep(max(0.0, turn - time.monotonic()))
        return True

    def _connection(self, offset: int) -> None:
        index = offset
        while self._wait_turn():
            kind = self.kinds[index % len(self.kinds)]
            with self._lock:
                self.sent += 1
                n = self.sent
            method, path, body = kind(n)
            try:
                status, answer = self.gateway.request(method, path, ATTACKER_TOKEN, body)
            except OSError as exc:
                self.errors.append(f"{kind.__name__}: {exc!r}")
                continue
            errors = answer.get("errors") or []
            codes = sorted({str(e.get("extensions", {}).get("code")) for e in errors})
            self.outcomes[f"{kind.__name__}: {status} {','.join(codes)}"] += 1
            if status == 429:
                retry_after = errors[0]["extensions"]["retryAfter"]
                with self._lock:
                    self._next_send = max(self._next_send, time.monotonic() + retry_after)
            else:
                index += 1


@dataclass
class Victim:
    """Sends VICTIM_QUERY one request after another (well within its rate), timing each."""

    gateway: Gateway
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        body = json.dumps({"query": VICTIM_QUERY}).encode()
        headers = {"Authorization": f"Bearer {VICTIM_TOKEN}", "Content-Type": "application/json"}
        connection = http.client.HTTPConnection("127.0.0.1", self.gateway.port, timeout=30)
        deadline = time.monotonic() + 300  # bounded even if never stopped
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                started = time.perf_counter()
                connection.request("POST", "/graphql", body, headers)
                response = connection.getresponse()
                answer = json.loads(response.read())
                elapsed = time.perf_counter() - started
                if response.status != 200 or answer.get("errors"):
                    self.failures.append(f"{response.status}: {answer}")
                else:
                    self.latencies.append(elapsed)
                time.sleep(0.04)
        finally:
            connection.close()

    def measure(self, seconds: float) -> list[float]:
        """Latencies of the requests sent over the next `seconds`."""
        start = len(self.latencies)
        time.sleep(seconds)
        return self.latencies[start:]

    def stop(self) -> None:
        self._stop.set()


def test_a_token_sending_the_worst_documents_at_its_full_rate_costs_others_little(
    gateway: Gateway,
):
    pid = gateway.process.pid
    started_rss = status_bytes(pid, "VmRSS")
    for _ in range(3):  # warm: the victim's document prepared, its projections compiled
        assert (
            gateway.request(
                "POST", "/graphql", VICTIM_TOKEN, json.dumps({"query": VICTIM_QUERY}).encode()
            )[0]
            == 200
        )
    victim = Victim(gateway)
    victim_thread = threading.Thread(target=victim.run)
    victim_thread.start()
    kinds = attack_documents(MAX_DOCUMENT_BYTES)
    try:
        idle_before = victim.measure(8.0)

        attacker = Attacker(gateway, kinds)
        start = len(victim.latencies)
        attacker.run(ATTACK_SECONDS, on_tick=lambda: status_bytes(pid, "VmRSS"))
        under_attack = victim.latencies[start:]
        idle_after = victim.measure(8.0)
    finally:
        victim.stop()
        victim_thread.join(timeout=60)
    hwm = status_bytes(pid, "VmHWM")
    outcomes, peak_rss = attacker.outcomes, max(attacker.ticks)
    idle = max(statistics.median(idle_before), statistics.median(idle_after))
    loaded = statistics.median(under_attack)
    print(
        f"\nattacker: {attacker.sent} requests in {ATTACK_SECONDS:g} s: "
        + "; ".join(f"{k} x{v}" for k, v in sorted(outcomes.items()))
        + f"\nvictim p50: idle {statistics.median(idle_before) * 1000:.2f} / "
        f"{statistics.median(idle_after) * 1000:.2f} ms, under attack {loaded * 1000:.2f} ms "
        f"({len(under_attack)} requests, p90 "
        f"{statistics.quantiles(under_attack, n=10)[-1] * 1000:.1f} ms)"
        f"\nworker RSS: {started_rss >> 20} MB before, peak {peak_rss >> 20} MB, "
        f"VmHWM {hwm >> 20} MB"
    )
    assert victim.failures == []
    assert attacker.errors == []
    # The attack happened: every kind of document was prepared (or refused for its size).
    for kind in kinds:
        assert any(key.startswith(f"{kind.__name__}: 200") for key in outcomes), kind.__name__
    assert outcomes["refused: 200 GRAPHQL_PARSE_FAILED"] >= 20
    assert 0 < peak_rss < MAX_RSS and 0 < hwm < MAX_RSS
    assert len(under_attack) >= 300
    assert loaded <= 2 * idle
