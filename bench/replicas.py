"""Two gateway replicas, with and without Redis: Kombo calls, throughput, and what a
level-2 (Redis) hit costs against a level-1 hit and an upstream call.

Usage::

    python -m bench.replicas [--quick]          # the tables (markdown) on stdout

Why: with `GATEWAY_REDIS_URL` unset every replica keeps its own cache, so N replicas
make up to N times the Kombo calls for the same data; with it they share a level-2
cache and their in-flight calls (issue 12). This section shows both effects on the
same workload, and that the in-process cache (L1) did not get dearer for it.

What it does (all on 127.0.0.1; every wait and every run is bounded in time):

1. starts the sandbox (`python -m gateway sandbox`) and one `redis-server` (free
   loopback port, `--save "" --appendonly no`);
2. twice, without and then with `GATEWAY_REDIS_URL` (fresh processes, empty Redis):
   starts gateways A and B (`python -m gateway serve --workers 1`, `GATEWAY_CACHE_TTL=300`,
   `GATEWAY_RATE_LIMIT=0`, `GATEWAY_RESPONSE_CACHE_BYTES=0`: the upstream cache's
   tiers are measured, not whole answers), resets the sandbox's request log, and sends `REQUESTS`
   requests drawn (seeded) from `DISTINCT` queries, each costing one distinct Kombo call
   when cold and never answered by another query's jobs, alternately to A and B at
   concurrency `CONCURRENCY`; Kombo calls are the sandbox log's entries;
3. then, on B, sequentially and interleaved so host noise hits all alike, a 100-job
   page with every field: an L1 hit (a page B already holds), an L2 hit (a variant
   primed through A, asked once on B; with Redis only) and an upstream call (a variant
   nobody asked yet); then a block of L1 hits alone while Redis's command counters
   are read, to show that an L1 hit sends Redis nothing.

The load generator is asyncio + aiohttp in this process (the bodies differ per request):
it shares the 2 cores with both gateways, the sandbox and Redis, so req/s are this
host's, not a replica's capacity. The sandbox answers at once; Kombo takes tens to
hundreds of milliseconds, which is what the saved calls are worth in production.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import sys
import time
from collections import Counter
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import aiohttp
import httpx
import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bench.load import (
    HOST,
    STARTUP_TIMEOUT_S,
    Child,
    Children,
    SetupError,
    cpu_seconds,
    gateway_env,
    gateway_metrics,
    metric_samples,
    percentile,
    reset_sandbox_log,
    run_section,
    sandbox_log,
    section_main,
    start_sandbox,
    two_free_ports,
    wait_ready,
)
from bench.queries import JOB_ALL_FIELDS, JOB_TEN_FIELDS, sandbox_job_ids
from bench.report import host_busy_seconds, table, targets_table, verdict, wait_for_quiet
from gateway.http.serving import free_port

CONCURRENCY: Final = 16
REQUESTS: Final = 2_000
#: Distinct queries of the workload: half pages, half by-ID look-ups.
DISTINCT: Final = 100
SEED: Final = 12
#: Target: Kombo calls with Redis at most this multiple of the distinct queries.
MAX_CALLS_RATIO: Final = 1.2
CACHE_TTL_S: Final = 300
REQUEST_TIMEOUT_S: Final = 30.0
#: Upper bound of one phase (start, workload, tiers), far above a healthy run.
PHASE_TIMEOUT_S: Final = 300.0
#: Look-ups name jobs at or after this index of the integration's data: the workload's
#: pages (at most 100 jobs, filtered or not; the 100th OPEN job is at index 186) never
#: reach them, so no page primes them and each look-up costs a call of its own.
LOOKUP_START: Final = 700
LOOKUP_STRIDE: Final = 9
PAGE_STEP: Final = 4
#: What `run_replicas` may raise when the section cannot be set up or run.
FAILURES: Final = (SetupError, httpx.HTTPError, RedisError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class Sizes:
    """What `--quick` shortens. Not the workload: its Kombo-call target is defined on
    REQUESTS requests over DISTINCT queries, and it takes only seconds."""

    #: Samples per tier (L1, L2, upstream) of the 100-job page.
    tier_samples: int


FULL: Final = Sizes(tier_samples=40)
QUICK: Final = Sizes(tier_samples=15)

#: The interleaved tiers, then L1 hits sent back to back (alone, so nothing else's
#: garbage or writes land in them: the cleanest comparison with and without Redis).
TIERS: Final = ("L1 hit", "L2 hit", "upstream call")
L1_ALONE: Final = "L1 hit, back to back"


# --------------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------------


#: The workload's three documents: clients send variables, so each gateway parses and
#: validates each document once, as it would in production.
PAGE_QUERY: Final = (
    "query Page($first: Int!) { jobs(first: $first) { nodes { id komboId name status postUrl } } }"
)
OPEN_PAGE_QUERY: Final = (
    "query OpenPage($first: Int!) { jobs(first: $first, filter: { statuses: [OPEN] }) "
    "{ nodes { id komboId name status postUrl } } }"
)
JOB_QUERY: Final = f"query Job($id: ID!) {{ job(id: $id) {{ {JOB_TEN_FIELDS} }} }}"


def page_bodies(count: int) -> list[bytes]:
    """`count` job pages, each one distinct Kombo request of at most 100 jobs: `first` in
    steps of PAGE_STEP, without a filter and then with `statuses: [OPEN]`."""
    half = (count + 1) // 2
    return [
        orjson.dumps(
            {
                "query": PAGE_QUERY if n < half else OPEN_PAGE_QUERY,
                "variables": {"first": PAGE_STEP * (n % half + 1)},
            }
        )
        for n in range(count)
    ]


def lookup_bodies(count: int) -> list[bytes]:
    """`count` look-ups of jobs that exist and are not deleted, from LOOKUP_START on."""
    try:
        ids = sandbox_job_ids(count, LOOKUP_STRIDE, start=LOOKUP_START, live=True)
    except ValueError as exc:
        raise SetupError(f"too few jobs to look up: {exc}") from None
    return [orjson.dumps({"query": JOB_QUERY, "variables": {"id": kombo_id}}) for kombo_id in ids]


def workload_bodies() -> list[bytes]:
    """The DISTINCT request bodies: each costs one Kombo call when every cache is cold."""
    pages = DISTINCT // 2
    return page_bodies(pages) + lookup_bodies(DISTINCT - pages)


def draws(seed: int, requests: int, distinct: int) -> list[int]:
    """Which query each request sends (seeded, so every run sends the same sequence)."""
    rng = random.Random(seed)
    return [rng.randrange(distinct) for _ in range(requests)]


#: The 100-job page with every field. Its variants differ only in `$since`, before all
#: sandbox data: each is a distinct Kombo request (its own cache keys) answering the same
#: 100 jobs, and all share one document, so no tier pays for parsing a new one.
TIER_QUERY: Final = (
    "query Page100($since: DateTime!) { jobs(first: 100, filter: { updatedAfter: $since }) "
    "{ edges { node {" + JOB_ALL_FIELDS + "} } } }"
)
_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)


def tier_query(variant: int) -> bytes:
    """The 100-job page with every field, variant `variant`."""
    since = (_EPOCH + timedelta(seconds=variant)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return orjson.dumps({"query": TIER_QUERY, "variables": {"since": since}})


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Workload:
    """One run of the workload over A and B."""

    redis: bool
    requests: int = 0
    duration_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    kombo_calls: int | None = None
    #: Distinct Kombo requests (path and query string) among the calls.
    kombo_distinct: int | None = None
    kombo_statuses: Counter[str] = field(default_factory=Counter)
    #: Summed over A and B from /metrics: level-2 lookups (`kind/result` -> count).
    shared_lookups: Counter[str] = field(default_factory=Counter)
    #: Summed over A and B from /metrics: failed or timed-out Redis operations, by name.
    redis_errors: Counter[str] = field(default_factory=Counter)
    #: Times A's or B's circuit breaker stopped asking Redis (their WARNING log lines).
    breaker_opened: int = 0
    #: CPU seconds during the workload: A+B, sandbox, Redis, load generator, rest of host.
    cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    def p_ms(self, p: float) -> float:
        return percentile(sorted(self.latencies_s), p) * 1000


@dataclass(slots=True)
class Tiers:
    """Latencies on B of the 100-job page, by tier; and what Redis saw during L1 hits."""

    samples: dict[str, list[float]] = field(default_factory=dict)
    #: B's level-2 page lookups during the tier runs (hits, misses); None without Redis.
    l2_pages: tuple[int, int] | None = None
    #: Redis commands received during the L1 hits sent back to back; None without Redis.
    l1_redis_commands: int | None = None
    #: B's failed or timed-out Redis operations during the tier runs, by name.
    redis_errors: Counter[str] = field(default_factory=Counter)
    errors: int = 0

    def p_ms(self, tier: str, p: float) -> float | None:
        values = self.samples.get(tier)
        return percentile(sorted(values), p) * 1000 if values else None


@dataclass(slots=True)
class Phase:
    redis: bool
    workload: Workload
    tiers: Tiers


@dataclass(slots=True)
class ReplicaResult:
    sizes: Sizes
    redis_version: str = ""
    phases: list[Phase] = field(default_factory=list)

    def phase(self, redis: bool) -> Phase | None:
        return next((p for p in self.phases if p.redis == redis), None)


# --------------------------------------------------------------------------------------------
# Talking to the gateways
# --------------------------------------------------------------------------------------------


def load_client(connections: int) -> aiohttp.ClientSession:
    """The load generator's client. aiohttp rather than httpx: it costs the shared cores
    a fraction of httpx's CPU per request, which goes to the gateways instead."""
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    return aiohttp.ClientSession(connector=connector, timeout=timeout)


_JSON: Final = {"Content-Type": "application/json"}


async def post(http: aiohttp.ClientSession, url: str, body: bytes) -> tuple[float, bool]:
    """One GraphQL request: (latency in seconds, answered with data and no errors)."""
    started = time.perf_counter()
    try:
        async with http.post(url, data=body, headers=_JSON) as response:
            status, content = response.status, await response.read()
    except (aiohttp.ClientError, TimeoutError):
        return time.perf_counter() - started, False
    elapsed = time.perf_counter() - started
    if status != 200:
        return elapsed, False
    try:
        answer = orjson.loads(content)
    except orjson.JSONDecodeError:
        return elapsed, False
    ok = isinstance(answer, dict) and isinstance(answer.get("data"), dict)
    return elapsed, ok and not answer.get("errors")


#: What a gateway logs (once) when its breaker stops it asking Redis (`sharing/link.py`).
BREAKER_OPENED: Final = "Redis is unavailable"


def log_count(child: Child, text: str) -> int:
    """How often `text` occurs in a child's log so far."""
    try:
        return child.log_path.read_text(errors="replace").count(text)
    except OSError:
        return 0


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each used between two snapshots; `other`: the rest of the host."""
    used = {name: after[name] - before[name] for name in before}
    host = used.pop("host")
    used["other"] = max(0.0, host - sum(used.values()))
    return used


def shared_lookups(text: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for labels, value in metric_samples(text, "gateway_shared_cache_lookups_total"):
        counts[f"{labels.get('kind')}/{labels.get('result')}"] += int(value)
    return counts


def redis_errors(text: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for labels, value in metric_samples(text, "gateway_redis_errors_total"):
        counts[labels.get("operation", "?")] += int(value)
    return counts


async def redis_commands(redis: Redis) -> int:
    """Commands Redis has processed, not counting our own INFO calls."""
    stats: dict[str, Any] = await redis.info("commandstats")
    return sum(
        int(entry["calls"])
        for name, entry in stats.items()
        if name != "cmdstat_info" and isinstance(entry, dict)
    )


# --------------------------------------------------------------------------------------------
# The section
# --------------------------------------------------------------------------------------------


class Session:
    """The sandbox and Redis for the whole section; two gateways per phase."""

    def __init__(self, sizes: Sizes, children: Children, quiet_wait_s: float = 0.0) -> None:
        self.sizes = sizes
        self.children = children
        self.quiet_wait_s = quiet_wait_s
        self.sandbox_port = free_port()
        self.sandbox_url = f"http://{HOST}:{self.sandbox_port}"
        self.redis_port = free_port()
        self.result = ReplicaResult(sizes)
        self.bodies = workload_bodies()

    async def run(self) -> ReplicaResult:
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as control:
            sandbox = start_sandbox(self.children, self.sandbox_port)
            redis = await self.start_redis()
            try:
                await wait_ready(control, f"{self.sandbox_url}/healthz", sandbox)
                server: dict[str, Any] = await redis.info("server")
                self.result.redis_version = str(server.get("redis_version", ""))
                for with_redis in (False, True):
                    async with asyncio.timeout(PHASE_TIMEOUT_S):
                        await self.phase(control, redis, with_redis)
            finally:
                await redis.aclose()
        return self.result

    async def start_redis(self) -> Redis:
        """redis-server on a free loopback port, persistence off, as the tests start it."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise SetupError("redis-server is not installed (`make redis-server` installs it)")
        argv = [binary, "--port", str(self.redis_port), "--bind", HOST, "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(self.children.log_dir), "--loglevel", "warning"]
        server = self.children.add("redis", argv, {})
        server.start()
        client = Redis(host=HOST, port=self.redis_port, socket_timeout=5.0)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if not server.alive():
                raise SetupError(f"redis-server exited early:\n{server.tail()}")
            try:
                await client.ping()
                return client
            except (RedisError, OSError):
                await asyncio.sleep(0.05)
        raise SetupError("redis-server did not answer in time")

    def gateway(self, name: str, port: int, with_redis: bool) -> Child:
        env = gateway_env(
            self.sandbox_url,
            GATEWAY_CACHE_TTL=str(CACHE_TTL_S),
            GATEWAY_RATE_LIMIT="0",
            GATEWAY_LOG_LEVEL="WARNING",
            # The upstream cache's tiers are measured here: whole answers kept by the
            # response cache would answer the tier queries before any page is read
            # (the repeated-query section measures that cache).
            GATEWAY_RESPONSE_CACHE_BYTES="0",
        )
        if with_redis:
            env["GATEWAY_REDIS_URL"] = f"redis://{HOST}:{self.redis_port}/0"
        argv = [sys.executable, "-m", "gateway", "serve", "--host", HOST, "--port", str(port)]
        return self.children.add(name, [*argv, "--workers", "1"], env)

    async def phase(self, control: httpx.AsyncClient, redis: Redis, with_redis: bool) -> None:
        """Fresh gateways A and B (and an empty Redis): the workload, then the tiers."""
        label = "with Redis" if with_redis else "without Redis"
        if self.quiet_wait_s > 0:
            await asyncio.to_thread(wait_for_quiet, self.quiet_wait_s)
        await redis.flushall()
        ports = two_free_ports()
        suffix = "redis" if with_redis else "plain"
        a, b = (
            self.gateway(f"gateway-{n}-{suffix}", p, with_redis)
            for n, p in zip("ab", ports, strict=True)
        )
        urls = [f"http://{HOST}:{port}" for port in ports]
        a.start()
        b.start()
        try:
            for child, url in zip((a, b), urls, strict=True):
                await wait_ready(control, f"{url}/readyz", child)
            print(f"replicas: workload {label} ...", file=sys.stderr, flush=True)
            workload = await self.workload(control, urls, (a, b), with_redis)
            print(f"replicas: L1 / L2 / upstream {label} ...", file=sys.stderr, flush=True)
            tiers = await self.tiers(control, redis, urls, with_redis)
        finally:
            b.stop()
            a.stop()
        self.result.phases.append(Phase(with_redis, workload, tiers))

    async def workload(
        self,
        control: httpx.AsyncClient,
        urls: Sequence[str],
        gateways: Sequence[Child],
        with_redis: bool,
    ) -> Workload:
        """REQUESTS requests over A and B (alternately), CONCURRENCY at a time."""
        await reset_sandbox_log(control, self.sandbox_url)
        result = Workload(with_redis)
        sequence = draws(SEED, REQUESTS, len(self.bodies))
        targets = [f"{urls[i % 2]}/graphql" for i in range(len(sequence))]
        next_index = iter(range(len(sequence)))

        async def client(http: aiohttp.ClientSession) -> None:
            for i in next_index:  # shared: each request is sent once, by one client
                latency, ok = await post(http, targets[i], self.bodies[sequence[i]])
                result.latencies_s.append(latency)
                result.errors += not ok

        before = self.cpu_snapshot(gateways)
        started = time.monotonic()
        async with load_client(CONCURRENCY) as http:
            async with asyncio.timeout(PHASE_TIMEOUT_S):
                await asyncio.gather(*(client(http) for _ in range(CONCURRENCY)))
        result.duration_s = time.monotonic() - started
        result.cpu_s = cpu_used(before, self.cpu_snapshot(gateways))
        result.requests = len(result.latencies_s)
        await self.count_calls(control, result)
        for url in urls:
            text = await gateway_metrics(control, url)
            result.shared_lookups.update(shared_lookups(text))
            result.redis_errors.update(redis_errors(text))
        result.breaker_opened = sum(log_count(g, BREAKER_OPENED) for g in gateways)
        return result

    def cpu_snapshot(self, gateways: Sequence[Child]) -> dict[str, float]:
        """CPU seconds so far of the processes on the host's cores, and of the host."""
        return {
            "gateways": cpu_seconds([g.pid for g in gateways]),
            "sandbox": cpu_seconds([self.children.by_name("sandbox").pid]),
            "redis": cpu_seconds([self.children.by_name("redis").pid]),
            "load generator": time.process_time(),
            "host": host_busy_seconds(),
        }

    async def count_calls(self, control: httpx.AsyncClient, result: Workload) -> None:
        entries = await sandbox_log(control, self.sandbox_url)
        if entries is None:
            return
        calls = [e for e in entries if isinstance(e, dict)]
        result.kombo_calls = len(calls)
        result.kombo_distinct = len({(e.get("path"), e.get("query")) for e in calls})
        result.kombo_statuses = Counter(str(e.get("status")) for e in calls)

    async def tiers(
        self, control: httpx.AsyncClient, redis: Redis, urls: Sequence[str], with_redis: bool
    ) -> Tiers:
        """On B, interleaved: an L1 hit, an L2 hit (Redis only), an upstream call."""
        n = self.sizes.tier_samples
        a_url, b_url = (f"{url}/graphql" for url in urls)
        l1_body = tier_query(0)
        l2_bodies = [tier_query(1 + i) for i in range(n)]
        cold_bodies = [tier_query(1 + n + i) for i in range(n)]
        kinds = [tier for tier in TIERS if with_redis or tier != "L2 hit"]
        tiers = Tiers({tier: [] for tier in [*kinds, L1_ALONE]})
        rng = random.Random(SEED)
        async with load_client(2) as http:
            for _ in range(3):  # B fetches it, then holds it (L1)
                await self.sample(http, b_url, l1_body, tiers, None)
            for body in l2_bodies if with_redis else []:  # A shares these through Redis
                await self.sample(http, a_url, body, tiers, None)
            text = await gateway_metrics(control, urls[1])
            before, errors_before = shared_lookups(text), redis_errors(text)
            for i in range(n):
                # A fresh order each round: what one request leaves behind (garbage,
                # writes) lands on the next one, and should not always land on one kind.
                bodies = {
                    "L1 hit": l1_body,
                    "L2 hit": l2_bodies[i],
                    "upstream call": cold_bodies[i],
                }
                for tier in rng.sample(kinds, len(kinds)):
                    await self.sample(http, b_url, bodies[tier], tiers, tier)
            text = await gateway_metrics(control, urls[1])
            after = shared_lookups(text)
            tiers.redis_errors = redis_errors(text) - errors_before
            commands_before = await redis_commands(redis)
            for _ in range(n):
                await self.sample(http, b_url, l1_body, tiers, L1_ALONE)
            if with_redis:
                tiers.l1_redis_commands = await redis_commands(redis) - commands_before
                tiers.l2_pages = (
                    after["page/hit"] - before["page/hit"],
                    after["page/miss"] - before["page/miss"],
                )
        return tiers

    async def sample(
        self, http: aiohttp.ClientSession, url: str, body: bytes, tiers: Tiers, tier: str | None
    ) -> None:
        """One request; its latency goes to `tier` (None: a warm-up or priming request)."""
        latency, ok = await post(http, url, body)
        tiers.errors += not ok
        if tier is not None:
            tiers.samples[tier].append(latency)


def run_replicas(quick: bool = False, quiet_wait_s: float = 0.0) -> ReplicaResult:
    """Run the section; before each phase, wait up to `quiet_wait_s` for a quiet host.
    Raises one of FAILURES (after printing logs) when it cannot be set up."""

    def session(children: Children) -> Coroutine[Any, Any, ReplicaResult]:
        return Session(QUICK if quick else FULL, children, quiet_wait_s).run()

    return run_section("replicas", session, FAILURES)


# --------------------------------------------------------------------------------------------
# Rendering and targets
# --------------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def calls_ratio(workload: Workload) -> float | None:
    return None if workload.kombo_calls is None else workload.kombo_calls / DISTINCT


def calls_cell(workload: Workload) -> str:
    ratio = calls_ratio(workload)
    if workload.kombo_calls is None or ratio is None:
        return "n/a"
    return f"{workload.kombo_calls} ({ratio:.2f}x)"


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key}: {n}" for key, n in sorted(counter.items()) if n) or "0"


def workload_row(w: Workload) -> list[str]:
    lookups = f"{w.shared_lookups['page/hit']} / {w.shared_lookups['job/hit']}" if w.redis else "-"
    cpu = " / ".join(
        f"{w.cpu_s.get(name, 0.0):.1f}"
        for name in ("gateways", "sandbox", "redis", "load generator", "other")
    )
    return [
        "with Redis" if w.redis else "without Redis",
        str(w.requests),
        calls_cell(w),
        "n/a" if w.kombo_distinct is None else str(w.kombo_distinct),
        _counts(w.kombo_statuses),
        f"{w.rps:.0f}",
        _ms(w.p_ms(50)),
        _ms(w.p_ms(99)),
        str(w.errors),
        lookups,
        f"{_counts(w.redis_errors)}; breaker opened: {w.breaker_opened}" if w.redis else "-",
        cpu,
    ]


def tier_cells(phase: Phase | None, tier: str) -> str:
    if phase is None:
        return "n/a"
    p50, p99 = phase.tiers.p_ms(tier, 50), phase.tiers.p_ms(tier, 99)
    return "-" if p50 is None else f"{_ms(p50)} / {_ms(p99)}"


WORKLOAD_HEADERS: Final = (
    "run",
    "requests",
    "Kombo calls (/ distinct queries)",
    "distinct Kombo requests",
    "Kombo statuses",
    "req/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "L2 hits: pages / jobs",
    "Redis errors",
    "CPU s: gateways / sandbox / Redis / load gen / other",
)


def render(result: ReplicaResult) -> list[str]:
    """The section's markdown: the workload table, the tier table, how it was measured."""
    rows = [workload_row(p.workload) for p in result.phases]
    plain, shared = result.phase(False), result.phase(True)
    tier_rows = [
        [tier, tier_cells(plain, tier), tier_cells(shared, tier)] for tier in (*TIERS, L1_ALONE)
    ]
    n = result.sizes.tier_samples
    return [
        "## Replicas: two gateways, with and without Redis",
        "",
        *table(WORKLOAD_HEADERS, rows, "lrrrlrrrrrlr"),
        "",
        f"{REQUESTS:,} requests drawn (seed {SEED}) from {DISTINCT} distinct queries "
        f"({DISTINCT // 2} job pages of 4 to 100 jobs, with and without a status filter; "
        f"{DISTINCT - DISTINCT // 2} `job(id:)` look-ups of jobs no page holds), sent "
        f"alternately to gateways A and B (`serve --workers 1`, `GATEWAY_CACHE_TTL="
        f"{CACHE_TTL_S}`, response cache off), {CONCURRENCY} at a time; fresh processes "
        "and an empty Redis per run. Each query costs one Kombo call when every cache is "
        "cold, so the floor is "
        f"{DISTINCT} calls; without Redis each gateway pays for its own, about twice that. "
        "Kombo calls: the sandbox's request log. L2 hits and Redis errors (operations that "
        "failed or outlasted `GATEWAY_REDIS_TIMEOUT`, by name): A's and B's `/metrics`; "
        "breaker opened: their `Redis is unavailable` log lines. "
        "Load generator: asyncio + aiohttp in the bench process, sharing the host's cores "
        "with both gateways, the sandbox and Redis (req/s are this host's, not a "
        "replica's capacity; `other` is the rest of a shared host).",
        "",
        f"### A 100-job page with every field, on gateway B (p50 / p99 ms, {n} each)",
        "",
        *table(["served from", "without Redis", "with Redis"], tier_rows, "lrr"),
        "",
        *tier_notes(result),
    ]


def tier_notes(result: ReplicaResult) -> list[str]:
    shared = result.phase(True)
    facts = ""
    if shared is not None:
        tiers = shared.tiers
        if tiers.l2_pages is not None:
            facts += (
                f" B's level-2 page lookups during the interleaved runs: {tiers.l2_pages[0]} "
                f"hits, {tiers.l2_pages[1]} misses (expected {result.sizes.tier_samples} each);"
                f" its Redis errors: {_counts(tiers.redis_errors)}."
            )
        if tiers.l1_redis_commands is not None:
            facts += (
                " Redis commands received during the back-to-back L1 hits: "
                f"**{tiers.l1_redis_commands}** (Redis is consulted only on an L1 miss)."
            )
    errors = sum(p.tiers.errors for p in result.phases)
    facts += f" Requests without data or with errors: {errors}."
    version = f" Redis {result.redis_version}." if result.redis_version else ""
    return [
        "`jobs(first: 100, filter: { updatedAfter: $since })` selecting `edges { node { "
        "every field } }`; each variant's `$since` precedes all data, so every variant is a "
        "distinct Kombo request answering the same 100 jobs, with one document for all. "
        "Sequential requests; the interleaved kinds in a fresh order each round, then the "
        "L1 hits alone. *L1 hit*: a page B already holds (GraphQL still runs over it). "
        "*L2 hit*: a variant primed through A, asked once on B (B reads it from Redis, "
        "checks it like Kombo's answer, keeps it in L1). *Upstream call*: a variant nobody "
        "asked yet (with Redis: a miss, the lease, the call, then the page and its 100 jobs "
        "written to Redis). The sandbox answers at once; Kombo's own latency (tens to "
        "hundreds of ms) adds to every upstream call." + facts + version,
    ]


def _row(what: str, target: str, measured: str, ok: bool | None) -> list[str]:
    return [what, target, measured, verdict(ok)]


def summary_rows(result: ReplicaResult) -> tuple[list[list[str]], list[bool]]:
    """Rows for bench.run's targets table, and the pass/fail of those that are targets."""
    rows: list[list[str]] = []
    oks: list[bool] = []
    plain, shared = result.phase(False), result.phase(True)
    per = f"Kombo calls / {DISTINCT} distinct queries"
    if shared is not None:
        ratio = calls_ratio(shared.workload)
        ok = ratio is not None and ratio <= MAX_CALLS_RATIO
        oks.append(ok)
        target = f"≤ {MAX_CALLS_RATIO:g}x"
        rows.append(_row(f"replicas with Redis: {per}", target, calls_cell(shared.workload), ok))
    if plain is not None:
        rows.append(
            _row(f"replicas without Redis: {per}", "reported", calls_cell(plain.workload), None)
        )
    rps = " / ".join(f"{p.workload.rps:.0f}" for p in (shared, plain) if p is not None)
    rows.append(_row("replicas: req/s with / without Redis", "reported", rps, None))
    errors = sum(p.workload.errors + p.tiers.errors for p in result.phases)
    oks.append(errors == 0)
    rows.append(
        _row("replicas: requests without data or with errors", "0", str(errors), errors == 0)
    )
    if shared is None:
        return rows, oks
    p50s = " / ".join(_ms(shared.tiers.p_ms(tier, 50)) for tier in TIERS)
    rows.append(_row("100-job page p50 ms with Redis: L1 / L2 / upstream", "reported", p50s, None))
    if plain is not None:
        l1 = " / ".join(_ms(p.tiers.p_ms(L1_ALONE, 50)) for p in (shared, plain))
        rows.append(_row("100-job page L1 hit p50 ms: with / without Redis", "reported", l1, None))
    commands = shared.tiers.l1_redis_commands
    oks.append(commands == 0)
    measured = "n/a" if commands is None else str(commands)
    rows.append(_row("Redis commands during L1 hits", "0", measured, commands == 0))
    return rows, oks


def main(argv: Sequence[str] | None = None) -> int:
    return section_main(
        argv,
        "bench.replicas",
        __doc__,
        "fewer latency samples",
        run_replicas,
        FAILURES,
        lambda result: [*render(result), "", *targets_table(summary_rows(result)[0])],
    )


if __name__ == "__main__":
    sys.exit(main())
