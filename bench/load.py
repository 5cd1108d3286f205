"""Bounded load check: the gateway over the chaos-enabled sandbox, both as subprocesses.

Usage (by hand, not in CI)::

    python -m bench.load [--clients 64] [--seconds 30] [--workers 1] \\
        [--error-rate-503 0.10] [--error-rate-429 0.05] [--seed 7] [--out bench/results/load.md]

What it does:

1. starts `python -m gateway sandbox` on a free loopback port, waits for `/healthz`, reads
   known job IDs from it, and turns chaos on (`POST /_sandbox/chaos`, fixed seed);
2. starts `python -m gateway serve --workers N` against it with `GATEWAY_CACHE_TTL=0`
   and `GATEWAY_RATE_LIMIT=0`
   (every GraphQL request reaches the sandbox), waits for `/readyz`;
3. runs `--clients` asyncio clients for `--seconds` over a mix of queries (a jobs page, a
   deep page walk, `job(id:)`, `nodes(ids:)` with 10 IDs, and a malformed-ID query that
   must come back as `BAD_USER_INPUT`), recording every outcome;
4. samples the RSS of the gateway's worker processes once a second from /proc;
5. prints a markdown report and writes it to `--out`.

A request is *lost* when it got a transport error, a non-JSON (or non-GraphQL) body, an
HTTP 5xx, or an error without `extensions.code`. Exit status: 0 when nothing was lost and
every malformed-ID query was answered `BAD_USER_INPUT`; 1 otherwise; 2 when the run could
not be set up. Both subprocesses are always stopped (SIGINT to their process group, then
SIGKILL). All traffic goes to 127.0.0.1; every loop is bounded in count and time.

The other sections (`bench.e2e`, `bench.replicas`, `bench.repeated`) start their
subprocesses with this module's pieces too: `Children`, `run_section`, `section_main`,
`start_sandbox`, `gateway_env`, `two_free_ports`, `reset_sandbox_log`, `sandbox_log`
and `gateway_metrics`/`metric_samples`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import platform
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import SANDBOX_API_KEY, SANDBOX_INTEGRATION_IDS
from gateway.http.serving import free_port

HOST: Final = "127.0.0.1"
REPO_ROOT: Final = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S: Final = 30.0
REQUEST_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 10.0
MAX_REQUESTS_PER_CLIENT: Final = 10_000_000  # a count bound on top of the time bound
MAX_SANDBOX_LOG_BYTES: Final = 256 * 1024 * 1024
MAX_PROCS_SCANNED: Final = 100_000
PAGE_SIZE: Final = 50
NODES_PER_QUERY: Final = 10
BAD_ID: Final = "not-a-job-id!"
_ENV_PREFIXES: Final = ("KOMBO_", "GATEWAY_")

# Query mix: (kind, weight).
MIX: Final[tuple[tuple[str, float], ...]] = (
    ("page", 0.25),
    ("walk", 0.30),
    ("job", 0.20),
    ("nodes", 0.20),
    ("bad", 0.05),
)
KINDS: Final = tuple(kind for kind, _ in MIX)

PAGE_QUERY: Final = """query Page {
  jobs(first: 50) {
    edges { node { id komboId name status } }
    pageInfo { hasNextPage endCursor }
  }
}"""
WALK_QUERY: Final = """query Walk($after: String) {
  jobs(first: 50, after: $after) {
    nodes { komboId name employmentType }
    pageInfo { hasNextPage endCursor }
  }
}"""
JOB_QUERY: Final = """query Job($id: ID!) {
  job(id: $id) { id komboId name status }
}"""
NODES_QUERY: Final = """query Nodes($ids: [ID!]!) {
  nodes(ids: $ids) { id ... on Job { name status } }
}"""
BAD_QUERY: Final = """query Bad($id: ID!) {
  job(id: $id) { id name }
}"""

BUCKETS: Final = ("data", "RATE_LIMITED", "UPSTREAM_UNAVAILABLE", "BAD_USER_INPUT", "other")


class SetupError(RuntimeError):
    """The run could not be set up (a subprocess did not start, a control call failed)."""


# --------------------------------------------------------------------------------------------
# Outcomes
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    """What one GraphQL request got."""

    kind: str
    latency_s: float
    status: int | None  # None: transport error
    is_json: bool = False
    has_data: bool = False
    codes: tuple[str, ...] = ()
    uncoded_errors: int = 0
    transport_error: str | None = None

    @property
    def lost_reason(self) -> str | None:
        if self.transport_error is not None:
            return f"transport: {self.transport_error}"
        if self.status is not None and self.status >= 500:
            return f"HTTP {self.status}"
        if not self.is_json:
            return "non-JSON body"
        if self.uncoded_errors:
            return "error without extensions.code"
        if not self.has_data and not self.codes:
            return "neither data nor errors"
        return None

    @property
    def bucket(self) -> str:
        """data (no errors), the single error code, or other."""
        if not self.codes:
            return "data"
        distinct = set(self.codes)
        if len(distinct) == 1 and self.codes[0] in BUCKETS:
            return self.codes[0]
        return "other"


def classify(kind: str, latency_s: float, response: httpx.Response) -> Outcome:
    outcome = Outcome(kind, latency_s, response.status_code)
    try:
        body: Any = json.loads(response.content)
    except ValueError:
        return outcome
    if not isinstance(body, dict):
        return outcome
    outcome.is_json = True
    outcome.has_data = isinstance(body.get("data"), dict)
    errors = body.get("errors") or []
    codes: list[str] = []
    uncoded = 0
    for error in errors if isinstance(errors, list) else [errors]:
        extensions = error.get("extensions") if isinstance(error, dict) else None
        code = extensions.get("code") if isinstance(extensions, dict) else None
        if isinstance(code, str) and code:
            codes.append(code)
        else:
            uncoded += 1
    outcome.codes = tuple(codes)
    outcome.uncoded_errors = uncoded
    return outcome


# --------------------------------------------------------------------------------------------
# Subprocesses
# --------------------------------------------------------------------------------------------


class Child:
    """A subprocess in a session of its own, so stopping it also stops what it spawned."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise SetupError(f"{self.name} was not started")
        return self.process.pid

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGINT to its process group, then SIGKILL after STOP_TIMEOUT_S."""
        process = self.process
        if process is not None:
            for sig, wait_s in ((signal.SIGINT, STOP_TIMEOUT_S), (signal.SIGKILL, 5.0)):
                if process.poll() is not None:
                    break
                self._signal_group(process.pid, sig)
                try:
                    process.wait(timeout=wait_s)
                except subprocess.TimeoutExpired:
                    continue
            # Stragglers of the group (e.g. uvicorn workers whose supervisor was killed).
            self._signal_group(process.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None

    @staticmethod
    def _signal_group(pid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pid, sig)  # the group id is the child's pid (start_new_session)
        except ProcessLookupError:
            pass

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """The caller's environment without its Kombo/gateway settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_ENV_PREFIXES)}
    env.update(extra)
    return env


class Children:
    """The subprocesses of one run, their logs in `log_dir`; stopped last first."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []

    def add(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        """A new child (not started yet) with `child_env(env)`."""
        child = Child(name, argv, child_env(env), self.log_dir)
        self.children.append(child)
        return child

    def by_name(self, name: str) -> Child:
        return next(child for child in self.children if child.name == name)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop()

    def print_tails(self) -> None:
        """The end of each started child's log, on stderr."""
        for child in self.children:
            if child.process is not None:
                print(f"--- {child.name} log (tail) ---\n{child.tail()}", file=sys.stderr)


def start_sandbox(children: Children, port: int) -> Child:
    """`python -m gateway sandbox` on `port`, started; wait for its `/healthz` with
    `wait_ready`."""
    argv = [sys.executable, "-m", "gateway", "sandbox", "--host", HOST, "--port", str(port)]
    sandbox = children.add("sandbox", argv, {})
    sandbox.start()
    return sandbox


def gateway_env(sandbox_url: str, **extra: str) -> dict[str, str]:
    """The Kombo settings that point a gateway (or `bench.proxy`) at the sandbox at
    `sandbox_url`, plus `extra` (e.g. `GATEWAY_CACHE_TTL="0"`)."""
    return {
        "KOMBO_API_KEY": SANDBOX_API_KEY,
        "KOMBO_BASE_URL": f"{sandbox_url}/v1",
        "KOMBO_INTEGRATION_ID": SANDBOX_INTEGRATION_IDS[0],
        **extra,
    }


def two_free_ports() -> tuple[int, int]:
    """Two distinct free loopback ports."""
    first, second = free_port(), free_port()
    while second == first:  # bounded in practice: ports are random
        second = free_port()
    return first, second


T = TypeVar("T")
#: What a section's run may raise when it cannot be set up or run (each section's own).
Failures = tuple[type[BaseException], ...]


def run_section(
    name: str, session: Callable[[Children], Coroutine[Any, Any, T]], failures: Failures
) -> T:
    """Run `session(children)` with its children's logs in a temporary directory (named
    after `name`); on one of `failures`, print each child's log tail and re-raise; stop
    every child in any case."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        children = Children(Path(tmp))
        try:
            return asyncio.run(session(children))
        except failures:
            children.print_tails()
            raise
        finally:
            children.stop_all()


def section_main(
    argv: Sequence[str] | None,
    module: str,
    doc: str | None,
    quick_help: str,
    run: Callable[[bool], T],
    failures: Failures,
    render: Callable[[T], list[str]],
) -> int:
    """A section's `python -m <module> [--quick]`: its markdown on stdout; 2 when it
    failed with one of `failures`."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    args = parser.parse_args(argv)
    try:
        result = run(args.quick)
    except failures as exc:
        print(f"{module}: setup or run failed: {exc!r}", file=sys.stderr)
        return 2
    print("\n".join(render(result)))
    return 0


async def wait_ready(http: httpx.AsyncClient, url: str, child: Child) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not child.alive():
            raise SetupError(f"{child.name} exited early:\n{child.tail()}")
        try:
            if (await http.get(url, timeout=1.0)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise SetupError(f"{child.name} not ready at {url} within {STARTUP_TIMEOUT_S:g} s")


async def wait_workers(child: Child, workers: int) -> None:
    """Wait until every uvicorn worker logged its startup: `/readyz` answers as soon as one
    worker is up, and the load's keep-alive connections, opened at once, would all land on it.
    """
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not child.alive():
            raise SetupError(f"{child.name} exited early:\n{child.tail()}")
        log = _read(str(child.log_path)) or b""
        if log.count(b"Application startup complete") >= workers:
            return
        await asyncio.sleep(0.1)
    raise SetupError(f"{child.name}: not all {workers} workers started in {STARTUP_TIMEOUT_S:g} s")


# --------------------------------------------------------------------------------------------
# RSS from /proc
# --------------------------------------------------------------------------------------------


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def descendants(root: int) -> list[int]:
    """All descendants of `root`, from /proc/<pid>/stat parent IDs (no psutil)."""
    parents: dict[int, list[int]] = {}
    for count, entry in enumerate(os.scandir("/proc")):
        if count >= MAX_PROCS_SCANNED:
            break
        if not entry.name.isdigit():
            continue
        stat = _read(f"/proc/{entry.name}/stat")
        if stat is None:
            continue
        # pid (comm) state ppid ...; comm may contain spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    queue = [root]
    while queue and len(found) < MAX_PROCS_SCANNED:
        children = parents.get(queue.pop(), [])
        found.extend(children)
        queue.extend(children)
    return found


def worker_pids(root: int, workers: int) -> list[int]:
    """The processes serving requests: the serve process itself with one worker, else
    uvicorn's spawned workers (children running `multiprocessing.spawn`)."""
    if workers == 1:
        return [root]
    spawned = [
        pid for pid in descendants(root) if b"spawn_main" in (_read(f"/proc/{pid}/cmdline") or b"")
    ]
    return spawned or [root]


def cpu_seconds(pids: Sequence[int]) -> float:
    """User+system CPU time of `pids` (those still running), from /proc/<pid>/stat."""
    ticks = 0
    for pid in pids:
        stat = _read(f"/proc/{pid}/stat")
        if stat is not None:
            fields = stat[stat.rfind(b")") + 2 :].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(gateway_pids: Sequence[int], sandbox_pid: int) -> dict[str, float]:
    snapshot = {f"gateway worker {n}": cpu_seconds([pid]) for n, pid in enumerate(gateway_pids)}
    snapshot["sandbox"] = cpu_seconds([sandbox_pid])
    snapshot["load generator"] = time.process_time()
    return snapshot


def rss_kib(pid: int) -> int | None:
    status = _read(f"/proc/{pid}/status")
    if status is None:
        return None
    for line in status.splitlines():
        if line.startswith(b"VmRSS:"):
            return int(line.split()[1])
    return None


@dataclass(slots=True)
class RssSample:
    t_s: float
    kib: int
    processes: int


def sample_rss(root: int, workers: int, t_s: float) -> RssSample:
    pids = worker_pids(root, workers)
    values = [v for v in (rss_kib(pid) for pid in pids) if v is not None]
    return RssSample(t_s, sum(values), len(values))


async def rss_sampler(
    root: int, workers: int, start: float, stop: asyncio.Event, samples: list[RssSample]
) -> None:
    max_samples = 100_000
    while not stop.is_set() and len(samples) < max_samples:
        samples.append(sample_rss(root, workers, time.monotonic() - start))
        try:
            await asyncio.wait_for(stop.wait(), timeout=1.0)
        except TimeoutError:
            pass
    samples.append(sample_rss(root, workers, time.monotonic() - start))


def slope_mb_per_min(samples: Sequence[RssSample]) -> float | None:
    """Least-squares slope of RSS over time, in MB per minute."""
    if len(samples) < 2:
        return None
    ts = [s.t_s for s in samples]
    ys = [s.kib / 1024 for s in samples]
    mean_t, mean_y = sum(ts) / len(ts), sum(ys) / len(ys)
    var = sum((t - mean_t) ** 2 for t in ts)
    if var == 0:
        return None
    cov = sum((t - mean_t) * (y - mean_y) for t, y in zip(ts, ys, strict=True))
    return cov / var * 60


# --------------------------------------------------------------------------------------------
# Load
# --------------------------------------------------------------------------------------------


def global_id(kombo_id: str) -> str:
    return base64.b64encode(f"Job:{kombo_id}".encode()).decode()


@dataclass(slots=True)
class Workload:
    url: str
    known_ids: list[str]
    deadline: float
    seed: int
    outcomes: list[Outcome] = field(default_factory=list)
    walks_completed: int = 0
    deepest_page: int = 0


def request_for(kind: str, rng: random.Random, known: list[str], after: str | None) -> Any:
    if kind == "page":
        return {"query": PAGE_QUERY}
    if kind == "walk":
        return {"query": WALK_QUERY, "variables": {"after": after}}
    if kind == "job":
        return {"query": JOB_QUERY, "variables": {"id": rng.choice(known)}}
    if kind == "nodes":
        ids = [global_id(i) for i in rng.sample(known, NODES_PER_QUERY)]
        return {"query": NODES_QUERY, "variables": {"ids": ids}}
    return {"query": BAD_QUERY, "variables": {"id": BAD_ID}}


async def client_loop(index: int, http: httpx.AsyncClient, work: Workload) -> None:
    rng = random.Random(work.seed * 100_003 + index)
    weights = [w for _, w in MIX]
    after: str | None = None
    depth = 0  # pages of the current walk answered so far
    for _ in range(MAX_REQUESTS_PER_CLIENT):
        if time.monotonic() >= work.deadline:
            return
        kind = rng.choices(KINDS, weights)[0]
        payload = request_for(kind, rng, work.known_ids, after)
        started = time.perf_counter()
        try:
            response = await http.post(work.url, json=payload)
        except httpx.HTTPError as exc:
            latency = time.perf_counter() - started
            work.outcomes.append(Outcome(kind, latency, None, transport_error=type(exc).__name__))
            continue
        outcome = classify(kind, time.perf_counter() - started, response)
        work.outcomes.append(outcome)
        if kind == "walk" and outcome.has_data and not outcome.codes:
            page_info = json.loads(response.content)["data"]["jobs"]["pageInfo"]
            depth += 1
            work.deepest_page = max(work.deepest_page, depth)
            if page_info["hasNextPage"]:
                after = page_info["endCursor"]
            else:
                after, depth = None, 0
                work.walks_completed += 1


# --------------------------------------------------------------------------------------------
# Counting what the sandbox received
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class UpstreamCounts:
    source: str
    received: int | None = None
    chaos_faults: int | None = None
    by_status: dict[str, int] = field(default_factory=dict)
    gateway_metric_total: int | None = None


async def sandbox_log(http: httpx.AsyncClient, sandbox_url: str) -> list[Any] | None:
    """The sandbox's request log, or None when it is too large to fetch."""
    chunks: list[bytes] = []
    size = 0
    async with http.stream("GET", f"{sandbox_url}/_sandbox/requests", timeout=60.0) as resp:
        resp.raise_for_status()
        async for chunk in resp.aiter_bytes():
            size += len(chunk)
            if size > MAX_SANDBOX_LOG_BYTES:
                return None
            chunks.append(chunk)
    entries = json.loads(b"".join(chunks))["requests"]
    return entries if isinstance(entries, list) else None


async def reset_sandbox_log(http: httpx.AsyncClient, sandbox_url: str) -> None:
    """Empty the sandbox's request log."""
    reset = await http.delete(f"{sandbox_url}/_sandbox/requests")
    if reset.status_code != 204:
        raise SetupError(f"resetting the sandbox log failed: {reset.status_code}")


async def gateway_metrics(http: httpx.AsyncClient, url: str) -> str:
    """The gateway's `/metrics` text."""
    return (await http.get(f"{url}/metrics", timeout=10.0)).text


def metric_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples named `name` (e.g. `..._total`) in Prometheus text: (labels, value) each."""
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


async def upstream_metric(http: httpx.AsyncClient, gateway_url: str) -> dict[str, int]:
    """`kombo_upstream_requests_total` by status, from `/metrics` (one worker's view)."""
    text = await gateway_metrics(http, gateway_url)
    samples = metric_samples(text, "kombo_upstream_requests_total")
    return {labels.get("status", ""): int(value) for labels, value in samples}


async def count_upstream(
    http: httpx.AsyncClient, sandbox_url: str, gateway_url: str
) -> UpstreamCounts:
    try:
        metric: dict[str, int] | None = await upstream_metric(http, gateway_url)
    except (httpx.HTTPError, ValueError):
        metric = None
    metric_total = sum(metric.values()) if metric is not None else None
    try:
        entries = await sandbox_log(http, sandbox_url)
    except (httpx.HTTPError, ValueError, KeyError):
        entries = None
    if entries is not None:
        statuses = Counter(str(e.get("status")) for e in entries if isinstance(e, dict))
        chaos = sum(1 for e in entries if isinstance(e, dict) and e.get("fault") == "chaos")
        return UpstreamCounts(
            "sandbox /_sandbox/requests", len(entries), chaos, dict(statuses), metric_total
        )
    if metric is None:
        return UpstreamCounts("unavailable")
    faults = sum(n for status, n in metric.items() if status in ("429", "503"))
    return UpstreamCounts(
        "gateway /metrics kombo_upstream_requests_total (429+503 as faults)",
        metric_total,
        faults,
        metric,
        metric_total,
    )


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], p: float) -> float:
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


@dataclass(slots=True)
class Report:
    args: argparse.Namespace
    command: str
    elapsed_s: float
    outcomes: list[Outcome]
    walks_completed: int
    deepest_page: int
    upstream: UpstreamCounts
    rss: list[RssSample]
    cpu_s: dict[str, float]

    def lost(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.lost_reason is not None]

    def bad_not_coded(self) -> int:
        return sum(1 for o in self.outcomes if o.kind == "bad" and o.codes != ("BAD_USER_INPUT",))

    def passed(self) -> bool:
        return not self.lost() and self.bad_not_coded() == 0

    def render(self) -> str:
        a, outcomes = self.args, self.outcomes
        total = len(outcomes)
        kept = [o for o in outcomes if o.lost_reason is None]
        latencies = sorted(o.latency_s for o in outcomes)
        buckets = Counter(o.bucket for o in kept)
        other_codes = Counter("+".join(o.codes) for o in kept if o.bucket == "other")
        statuses = Counter(
            "transport error" if o.status is None else str(o.status) for o in outcomes
        )
        lost = self.lost()
        lost_reasons = Counter(o.lost_reason for o in lost)
        bad_total = sum(1 for o in outcomes if o.kind == "bad")
        up = self.upstream
        rows: list[tuple[str, str]] = [
            ("requests total", f"{total}"),
            ("load duration (s)", f"{self.elapsed_s:.1f}"),
            ("req/s", f"{total / self.elapsed_s:.1f}" if self.elapsed_s > 0 else "n/a"),
            (
                "latency p50 / p95 / p99 (ms)",
                " / ".join(ms(percentile(latencies, p)) for p in (50, 95, 99)),
            ),
            ("latency max (ms)", ms(latencies[-1]) if latencies else "n/a"),
            ("HTTP statuses", _fmt_counter(statuses)),
        ]
        for bucket in BUCKETS:
            value = f"{buckets.get(bucket, 0)}"
            if bucket == "other" and other_codes:
                value += f" ({_fmt_counter(other_codes)})"
            rows.append((f"outcome: {bucket}", value))
        rows += [
            (
                "**lost requests** (must be 0)",
                f"**{len(lost)}**" + (f" ({_fmt_counter(lost_reasons)})" if lost else ""),
            ),
            (
                "malformed-ID queries answered BAD_USER_INPUT",
                f"{bad_total - self.bad_not_coded()} / {bad_total}",
            ),
            ("responses with `data`", f"{sum(1 for o in outcomes if o.has_data)}"),
            (
                "deep walk: deepest page reached / walks completed",
                f"{self.deepest_page} / {self.walks_completed}",
            ),
            ("sandbox requests received", _opt(up.received)),
            ("  of which chaos faults", _opt(up.chaos_faults)),
            ("  by status", _fmt_counter(Counter(up.by_status)) or "n/a"),
            ("  counted from", up.source),
            (
                "gateway kombo_upstream_requests_total"
                + (" (one worker's /metrics)" if a.workers > 1 else ""),
                _opt(up.gateway_metric_total),
            ),
        ]
        workers = [v for k, v in self.cpu_s.items() if k.startswith("gateway worker")]
        per_worker = f" ({', '.join(f'{v:.1f}' for v in workers)})" if len(workers) > 1 else ""
        rows += [
            ("CPU s during load: gateway", f"{sum(workers):.1f}{per_worker}"),
            ("CPU s during load: sandbox", f"{self.cpu_s['sandbox']:.1f}"),
            ("CPU s during load: load generator", f"{self.cpu_s['load generator']:.1f}"),
        ]
        rows += self._rss_rows()
        lines = [
            "# Gateway load run",
            "",
            f"`{self.command}`",
            "",
            f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC}; {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}; {a.clients} clients, {a.seconds:g} s, "
            f"{a.workers} worker(s), GATEWAY_CACHE_TTL=0; chaos 503={a.error_rate_503:g} "
            f"429={a.error_rate_429:g} seed={a.seed}. Result: "
            f"**{'PASS' if self.passed() else 'FAIL'}**.",
            "",
            "| metric | value |",
            "| --- | --- |",
            *(f"| {k} | {v} |" for k, v in rows),
            "",
            "## By query",
            "",
            "| query | requests | " + " | ".join(BUCKETS) + " | lost | p50 ms | p95 ms |",
            "| --- | ---: | " + " | ".join("---:" for _ in BUCKETS) + " | ---: | ---: | ---: |",
        ]
        for kind in KINDS:
            group = [o for o in outcomes if o.kind == kind]
            lat = sorted(o.latency_s for o in group)
            counts = Counter(o.bucket for o in group if o.lost_reason is None)
            cells = [f"{counts.get(b, 0)}" for b in BUCKETS]
            n_lost = sum(1 for o in group if o.lost_reason is not None)
            lines.append(
                f"| {kind} | {len(group)} | {' | '.join(cells)} | {n_lost} "
                f"| {ms(percentile(lat, 50))} | {ms(percentile(lat, 95))} |"
            )
        lines += [
            "",
            "Lost = transport error, non-JSON body, HTTP 5xx or an error without "
            "`extensions.code`. Latency is client-side (the load generator shares the host). "
            "RSS sums the gateway's worker processes (the serve process with 1 worker).",
            "",
        ]
        return "\n".join(lines)

    def _rss_rows(self) -> list[tuple[str, str]]:
        rss = self.rss
        if not rss:
            return [("gateway RSS", "n/a")]
        second_half = [s for s in rss if s.t_s >= self.elapsed_s / 2]
        slope = slope_mb_per_min(second_half)
        peak = max(rss, key=lambda s: s.kib)
        return [
            ("gateway worker processes sampled", f"{rss[-1].processes}"),
            (
                "RSS start / peak / end (MB)",
                " / ".join(_mb(s.kib) for s in (rss[0], peak, rss[-1])),
            ),
            (
                "RSS slope, second half (MB/min)",
                "n/a" if slope is None else f"{slope:+.2f} ({len(second_half)} samples)",
            ),
        ]


def _mb(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def _opt(value: int | None) -> str:
    return "n/a" if value is None else f"{value}"


def _fmt_counter(counter: Counter[Any]) -> str:
    return ", ".join(f"{k}: {n}" for k, n in sorted(counter.items(), key=lambda kv: -kv[1]))


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


async def known_job_ids(http: httpx.AsyncClient, sandbox_url: str) -> list[str]:
    response = await http.get(
        f"{sandbox_url}/v1/ats/jobs",
        params={"page_size": "250"},
        headers={
            "Authorization": f"Bearer {SANDBOX_API_KEY}",
            "X-Integration-Id": SANDBOX_INTEGRATION_IDS[0],
        },
        timeout=10.0,
    )
    response.raise_for_status()
    ids = [job["id"] for job in response.json()["data"]["results"]]
    if len(ids) < NODES_PER_QUERY:
        raise SetupError(f"the sandbox returned only {len(ids)} jobs")
    return ids


async def session(args: argparse.Namespace, children: Children) -> Report:
    sandbox_url = f"http://{HOST}:{args.sandbox_port}"
    gateway_url = f"http://{HOST}:{args.gateway_port}"
    async with httpx.AsyncClient(timeout=10.0) as control:
        sandbox = start_sandbox(children, args.sandbox_port)
        await wait_ready(control, f"{sandbox_url}/healthz", sandbox)
        known = await known_job_ids(control, sandbox_url)
        rates = {"503": args.error_rate_503, "429": args.error_rate_429}
        chaos = await control.post(
            f"{sandbox_url}/_sandbox/chaos", json={"rates": rates, "seed": args.seed}
        )
        if chaos.status_code != 200:
            raise SetupError(f"enabling chaos failed: {chaos.status_code} {chaos.text}")
        gateway_argv = [sys.executable, "-m", "gateway", "serve", "--host", HOST]
        gateway_argv += ["--port", str(args.gateway_port), "--workers", str(args.workers)]
        # One client address sends everything: the per-caller limit is not under test.
        env = gateway_env(sandbox_url, GATEWAY_CACHE_TTL="0", GATEWAY_RATE_LIMIT="0")
        gateway = children.add("gateway", gateway_argv, env)
        gateway.start()
        await wait_ready(control, f"{gateway_url}/readyz", gateway)
        await wait_workers(gateway, args.workers)
        await reset_sandbox_log(control, sandbox_url)

        print(
            f"load: {args.clients} clients for {args.seconds:g} s against {gateway_url} "
            f"({args.workers} worker(s)); sandbox {sandbox_url}",
            file=sys.stderr,
        )
        limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
        timeout = httpx.Timeout(REQUEST_TIMEOUT_S)
        rss: list[RssSample] = []
        gateway_pids = worker_pids(gateway.pid, args.workers)
        cpu_before = cpu_snapshot(gateway_pids, sandbox.pid)
        stop = asyncio.Event()
        start = time.monotonic()
        work = Workload(f"{gateway_url}/graphql", known, start + args.seconds, args.seed)
        sampler = asyncio.create_task(rss_sampler(gateway.pid, args.workers, start, stop, rss))
        try:
            async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
                # Each request is bounded by REQUEST_TIMEOUT_S, so this bound is never reached
                # by a healthy run; it only guarantees the script stops by itself.
                async with asyncio.timeout(args.seconds + REQUEST_TIMEOUT_S + 30):
                    async with asyncio.TaskGroup() as group:
                        for i in range(args.clients):
                            group.create_task(client_loop(i, http, work))
            elapsed = time.monotonic() - start
            cpu_after = cpu_snapshot(gateway_pids, sandbox.pid)
        finally:
            stop.set()
            await sampler
        upstream = await count_upstream(control, sandbox_url, gateway_url)
        await control.delete(f"{sandbox_url}/_sandbox/chaos")
    command = shlex.join(["python", "-m", "bench.load", *args.argv])
    cpu = {k: cpu_after[k] - v for k, v in cpu_before.items()}
    return Report(
        args,
        command,
        elapsed,
        work.outcomes,
        work.walks_completed,
        work.deepest_page,
        upstream,
        rss,
        cpu,
    )


def _rate(value: str) -> float:
    rate = float(value)
    if not 0 <= rate <= 1:
        raise argparse.ArgumentTypeError("must be from 0 to 1")
    return rate


def _bounded_int(low: int, high: int) -> Any:
    def parse(value: str) -> int:
        number = int(value)
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}")
        return number

    return parse


def _seconds(value: str) -> float:
    seconds = float(value)
    if not 0 < seconds <= 3600:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 3600")
    return seconds


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load",
        description="Bounded load check of the gateway over the chaos-enabled sandbox.",
    )
    parser.add_argument("--clients", type=_bounded_int(1, 4096), default=64)
    parser.add_argument("--seconds", type=_seconds, default=30.0)
    parser.add_argument("--workers", type=_bounded_int(1, 64), default=1)
    parser.add_argument("--error-rate-503", type=_rate, default=0.10)
    parser.add_argument("--error-rate-429", type=_rate, default=0.05)
    parser.add_argument("--seed", type=int, default=7, help="chaos seed (default 7)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/load.md"))
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(raw)
    if args.error_rate_503 + args.error_rate_429 > 1:
        parser.error("--error-rate-503 plus --error-rate-429 must be at most 1")
    args.argv = raw
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.sandbox_port, args.gateway_port = two_free_ports()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as log_dir:
        children = Children(Path(log_dir))
        try:
            report = asyncio.run(session(args, children))
        except (SetupError, httpx.HTTPError, TimeoutError) as exc:
            print(f"bench.load: setup or run failed: {exc!r}", file=sys.stderr)
            children.print_tails()
            return 2
        except KeyboardInterrupt:
            print("bench.load: interrupted; subprocesses stopped", file=sys.stderr)
            return 130
        finally:
            children.stop_all()
    text = report.render()
    print(text)
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"written to {out}", file=sys.stderr)
    return 0 if report.passed() else 1


if __name__ == "__main__":
    sys.exit(main())
