"""End-to-end benchmark over HTTP: the gateway and a pass-through proxy, both on the sandbox.

Usage::

    python -m bench.e2e [--quick]          # the tables (markdown) on stdout

What it does (all on 127.0.0.1; every wait and every load run is bounded in time):

1. starts the sandbox (`python -m gateway sandbox`), one process;
2. for 1 and then 2 workers: starts the gateway (`python -m gateway serve --workers N`,
   `GATEWAY_CACHE_TTL=0` so every request reaches the sandbox, `GATEWAY_RATE_LIMIT=0`)
   and the proxy (`python -m bench.proxy --workers N`, sent the upstream parameters the
   gateway sent for the same query); the first time, counts the upstream calls of each
   fixed query (sandbox request log); then, per e2e query, warms both up and loads them
   at concurrency 32 in alternating slices (gateway, proxy, gateway, ...) until each had
   the measured duration, so that other work on a shared host hits both alike; reads
   each worker's peak RSS (VmHWM) and stops both;
3. the load generator is `wrk` (one thread, 32 connections, a Lua script that POSTs the
   body, checks every status and body prefix, scans every 10th body for errors, and
   prints its whole latency histogram, so slices merge into exact percentiles); without
   wrk, an asyncio+httpx generator in this process (noted in the report: it competes for
   the cores with the servers).
"""

from __future__ import annotations

import asyncio
import resource
import shutil
import sys
import time
from collections import Counter
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import orjson

from bench.load import (
    HOST,
    Child,
    Children,
    SetupError,
    cpu_seconds,
    gateway_env,
    reset_sandbox_log,
    run_section,
    sandbox_log,
    section_main,
    start_sandbox,
    two_free_ports,
    wait_ready,
    wait_workers,
    worker_pids,
)
from bench.queries import DESCRIPTIONS, FIVE_FIELDS_100, JOB_BY_ID_10, QUERIES
from bench.report import host_busy_seconds, ratio, table, verdict, wait_for_quiet
from gateway.http.serving import free_port

CONCURRENCY: Final = 32
WORKER_COUNTS: Final = (1, 2)
#: The queries loaded end to end, with their names.
E2E_QUERIES: Final[dict[str, str]] = {
    "JOB_BY_ID_10": JOB_BY_ID_10,
    "FIVE_FIELDS_100": FIVE_FIELDS_100,
}
#: Targets: gateway req/s at least this share of the proxy's, p50 at most this multiple.
MIN_THROUGHPUT_SHARE: Final = 0.70
MAX_P50_RATIO: Final = 1.5
MAX_WORKER_RSS_MB: Final = 200.0
#: Full bodies scanned for errors by the load generator: one in this many.
CHECK_EVERY: Final = 10
MAX_PY_REQUESTS: Final = 5_000_000
#: Pause after each slice, so requests the load generator left in flight finish before
#: the other server's slice starts.
SETTLE_S: Final = 0.5
#: What `run_e2e` may raise when the section cannot be set up or run.
FAILURES: Final = (SetupError, httpx.HTTPError, TimeoutError)

WRK_SCRIPT: Final = r"""
-- POSTs a body read from a file; counts bodies that lack a prefix or (sampled) hold a
-- forbidden string; prints one BENCH line of JSON at the end, latency histogram included.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  local f = assert(io.open(args[1], "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  prefix = args[2]
  reject = args[3]
  every = tonumber(args[4])
  seen = 0
  checked = 0
  bad = 0
end
function response(status, headers, body)
  seen = seen + 1
  if status == 200 then
    if string.sub(body, 1, #prefix) ~= prefix then
      bad = bad + 1
    elseif reject ~= "" and seen % every == 0 then
      checked = checked + 1
      if string.find(body, reject, 1, true) then bad = bad + 1 end
    end
  end
end
function done(summary, latency, requests)
  local s, c, b = 0, 0, 0
  for _, t in ipairs(threads) do
    s = s + t:get("seen")
    c = c + t:get("checked")
    b = b + t:get("bad")
  end
  local hist = {}
  for i = 1, #latency do
    local value, count = latency(i)
    hist[#hist + 1] = string.format("[%d,%d]", value, count)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"status":%d,"socket":%d,"timeout":%d,' ..
    '"seen":%d,"checked":%d,"bad":%d,"hist":[%s]}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write,
    e.timeout, s, c, b, table.concat(hist, ",")))
end
"""


@dataclass(frozen=True, slots=True)
class Durations:
    warmup_s: float
    #: Measured time per server and query, in `slices` alternating slices.
    measure_s: float
    slices: int


FULL: Final = Durations(warmup_s=2.0, measure_s=10.0, slices=5)
QUICK: Final = Durations(warmup_s=1.0, measure_s=2.0, slices=2)


@dataclass(slots=True)
class Load:
    """Measured load: one run, or slices merged."""

    requests: int = 0
    duration_s: float = 0.0
    #: Latency histogram: microseconds -> responses.
    histogram: Counter[int] = field(default_factory=Counter)
    non_2xx: int = 0
    socket_errors: int = 0
    bad_bodies: int = 0
    bodies_seen: int = 0
    loadgen_cpu_s: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors + self.bad_bodies

    def percentile_ms(self, p: float) -> float:
        total = sum(self.histogram.values())
        if total == 0:
            return float("nan")
        rank = max(1, -(-total * p // 100))  # nearest-rank
        seen = 0
        for value in sorted(self.histogram):
            seen += self.histogram[value]
            if seen >= rank:
                return value / 1000
        return max(self.histogram) / 1000

    @property
    def p50_ms(self) -> float:
        return self.percentile_ms(50)

    @property
    def p99_ms(self) -> float:
        return self.percentile_ms(99)

    def add(self, other: Load) -> None:
        self.requests += other.requests
        self.duration_s += other.duration_s
        self.histogram.update(other.histogram)
        self.non_2xx += other.non_2xx
        self.socket_errors += other.socket_errors
        self.bad_bodies += other.bad_bodies
        self.bodies_seen += other.bodies_seen
        self.loadgen_cpu_s += other.loadgen_cpu_s


@dataclass(slots=True, kw_only=True)
class Measured:
    """What the measured slices of one server under one load added up to (`measure_slice`)."""

    load: Load = field(default_factory=Load)
    server_cpu_s: float = 0.0
    sandbox_cpu_s: float = 0.0
    #: CPU seconds the rest of the host (other processes) used during the measured slices.
    other_cpu_s: float = 0.0
    #: Sandbox calls during the measured slices (None: the log could not be read).
    upstream_calls: int | None = 0


@dataclass(slots=True)
class Cell(Measured):
    server: str  # "gateway" or "proxy"
    workers: int
    query: str


@dataclass(frozen=True, slots=True)
class Target:
    """One server loaded with one query."""

    server: str
    workers: int
    query: str
    url: str
    child: Child
    checks: tuple[str, str]  # body prefix every good answer has; string none has ("": none)


@dataclass(slots=True)
class Server:
    server: str
    workers: int
    peak_rss_kib: list[int]


@dataclass(slots=True)
class UpstreamCalls:
    query: str
    calls: int
    queries: list[str]
    ok: bool


@dataclass(slots=True)
class E2EResult:
    loadgen: str
    durations: Durations
    cells: list[Cell] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)
    upstream: list[UpstreamCalls] = field(default_factory=list)

    def cell(self, server: str, workers: int, query: str) -> Cell | None:
        for cell in self.cells:
            if (cell.server, cell.workers, cell.query) == (server, workers, query):
                return cell
        return None


# --------------------------------------------------------------------------------------------
# Load generators
# --------------------------------------------------------------------------------------------


class Wrk:
    """wrk with the Lua script above; one thread, CONCURRENCY connections."""

    def __init__(self, binary: str, work_dir: Path) -> None:
        self.binary = binary
        self.work_dir = work_dir
        self.script = work_dir / "post.lua"
        self.script.write_text(WRK_SCRIPT)

    async def run(self, url: str, body: bytes, checks: tuple[str, str], seconds: float) -> Load:
        prefix, reject = checks
        body_file = self.work_dir / "body.json"
        body_file.write_bytes(body)
        argv = [self.binary, "-t1", f"-c{CONCURRENCY}", f"-d{max(1, round(seconds))}s"]
        argv += ["--timeout", "10s", "-s", str(self.script), url, "--"]
        argv += [str(body_file), prefix, reject, str(CHECK_EVERY)]
        cpu_before = _children_cpu()
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout=seconds + 60)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise SetupError("wrk did not finish in time") from None
        line = next((x for x in out.decode().splitlines() if x.startswith("BENCH ")), None)
        if process.returncode != 0 or line is None:
            raise SetupError(f"wrk failed ({process.returncode}): {err.decode()[-500:]}")
        stats: dict[str, Any] = orjson.loads(line[len("BENCH ") :])
        return Load(
            requests=stats["requests"],
            duration_s=stats["duration_us"] / 1e6,
            histogram=Counter({int(v): int(c) for v, c in stats["hist"]}),
            non_2xx=stats["status"],
            socket_errors=stats["socket"] + stats["timeout"],
            bad_bodies=stats["bad"],
            bodies_seen=stats["seen"],
            loadgen_cpu_s=_children_cpu() - cpu_before,
        )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class PythonLoad:
    """Fallback: CONCURRENCY asyncio clients on one httpx pool, in this process."""

    async def run(self, url: str, body: bytes, checks: tuple[str, str], seconds: float) -> Load:
        load = Load()
        headers = {"Content-Type": "application/json"}
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        deadline = time.monotonic() + seconds
        prefix, reject = checks[0].encode(), checks[1].encode()
        cpu_before = time.process_time()

        async def client(http: httpx.AsyncClient) -> None:
            for _ in range(MAX_PY_REQUESTS):
                if time.monotonic() >= deadline:
                    return
                started = time.perf_counter()
                try:
                    response = await http.post(url, content=body, headers=headers)
                except httpx.HTTPError:
                    load.socket_errors += 1
                    continue
                load.histogram[round((time.perf_counter() - started) * 1e6)] += 1
                load.bodies_seen += 1
                content = response.content
                if response.status_code // 100 != 2:
                    load.non_2xx += 1
                elif not content.startswith(prefix) or (reject and reject in content):
                    load.bad_bodies += 1

        start = time.monotonic()
        async with httpx.AsyncClient(limits=limits, timeout=10.0) as http:
            async with asyncio.timeout(seconds + 30):
                await asyncio.gather(*(client(http) for _ in range(CONCURRENCY)))
        load.duration_s = time.monotonic() - start
        load.requests = sum(load.histogram.values()) + load.socket_errors
        load.loadgen_cpu_s = time.process_time() - cpu_before
        return load


LoadGenerator = Wrk | PythonLoad


# --------------------------------------------------------------------------------------------
# The section
# --------------------------------------------------------------------------------------------


def peak_rss_kib(pid: int) -> int | None:
    """VmHWM (peak resident set) of a process, from /proc."""
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _graphql_body(query: str) -> bytes:
    return orjson.dumps({"query": query})


async def measure_slice(
    control: httpx.AsyncClient,
    loadgen: LoadGenerator,
    sandbox: Child,
    sandbox_url: str,
    target: Target,
    body: bytes,
    seconds: float,
    into: Measured,
) -> None:
    """Load `target` with `body` for `seconds` and add what it measured to `into`: the
    load, CPU seconds of the target's processes, the sandbox and the rest of the host, and
    the sandbox's calls (its log reset first); then pause SETTLE_S."""
    child = target.child
    await reset_sandbox_log(control, sandbox_url)
    pids = list(dict.fromkeys([child.pid, *worker_pids(child.pid, target.workers)]))
    server_before, sandbox_before = cpu_seconds(pids), cpu_seconds([sandbox.pid])
    host_before = host_busy_seconds()
    load = await loadgen.run(target.url, body, target.checks, seconds)
    host_cpu = host_busy_seconds() - host_before
    server_cpu = cpu_seconds(pids) - server_before
    sandbox_cpu = cpu_seconds([sandbox.pid]) - sandbox_before
    entries = await sandbox_log(control, sandbox_url)
    into.load.add(load)
    into.server_cpu_s += server_cpu
    into.sandbox_cpu_s += sandbox_cpu
    into.other_cpu_s += max(0.0, host_cpu - server_cpu - sandbox_cpu - load.loadgen_cpu_s)
    if entries is None or into.upstream_calls is None:
        into.upstream_calls = None
    else:
        into.upstream_calls += len(entries)
    await asyncio.sleep(SETTLE_S)


def loadgen_label(loadgen: LoadGenerator) -> str:
    return "wrk" if isinstance(loadgen, Wrk) else "python (asyncio + httpx, in-process)"


class Session:
    def __init__(
        self,
        durations: Durations,
        loadgen: LoadGenerator,
        children: Children,
        quiet_wait_s: float = 0.0,
    ) -> None:
        self.durations = durations
        self.quiet_wait_s = quiet_wait_s
        self.loadgen = loadgen
        self.children = children
        self.sandbox_port = free_port()
        self.sandbox_url = f"http://{HOST}:{self.sandbox_port}"
        self.result = E2EResult(loadgen_label(loadgen), durations)
        #: The upstream query string the gateway sent for each query (from the sandbox log).
        self.upstream_query: dict[str, str] = {}

    async def run(self) -> E2EResult:
        async with httpx.AsyncClient(timeout=30.0) as control:
            sandbox = start_sandbox(self.children, self.sandbox_port)
            await wait_ready(control, f"{self.sandbox_url}/healthz", sandbox)
            for workers in WORKER_COUNTS:
                await self.round(control, sandbox, workers)
        return self.result

    async def round(self, control: httpx.AsyncClient, sandbox: Child, workers: int) -> None:
        """Gateway and proxy with `workers` workers, both up, loaded in alternating slices."""
        gateway_port, proxy_port = two_free_ports()
        gateway_url, proxy_url = f"http://{HOST}:{gateway_port}", f"http://{HOST}:{proxy_port}"
        env = gateway_env(self.sandbox_url, GATEWAY_CACHE_TTL="0", GATEWAY_RATE_LIMIT="0")
        argv = [sys.executable, "-m", "gateway", "serve", "--host", HOST]
        argv += ["--port", str(gateway_port), "--workers", str(workers)]
        gateway = self.children.add(f"gateway-{workers}w", argv, env)
        argv = [sys.executable, "-m", "bench.proxy", "--host", HOST, "--port", str(proxy_port)]
        argv += ["--upstream", f"{self.sandbox_url}/v1", "--workers", str(workers)]
        proxy = self.children.add(f"proxy-{workers}w", argv, gateway_env(self.sandbox_url))
        gateway.start()
        proxy.start()
        try:
            await wait_ready(control, f"{gateway_url}/readyz", gateway)
            await wait_ready(control, f"{proxy_url}/healthz", proxy)
            await wait_workers(gateway, workers)
            await wait_workers(proxy, workers)
            if not self.result.upstream:
                await self.count_upstream(control, gateway_url)
            for name, query in E2E_QUERIES.items():
                proxy_path = f"{proxy_url}/graphql?{self.upstream_query[name]}"
                targets = (
                    Target(
                        "gateway",
                        workers,
                        name,
                        f"{gateway_url}/graphql",
                        gateway,
                        ('{"data":{', '"errors"'),
                    ),
                    Target("proxy", workers, name, proxy_path, proxy, ('{"status":"success"', "")),
                )
                await self.pair(control, targets, _graphql_body(query), sandbox)
            self.record_rss("gateway", workers, gateway)
            self.record_rss("proxy", workers, proxy)
        finally:
            proxy.stop()
            gateway.stop()

    async def count_upstream(self, control: httpx.AsyncClient, gateway_url: str) -> None:
        """Each fixed query once through the gateway: the sandbox calls it caused."""
        for name, query in QUERIES.items():
            await reset_sandbox_log(control, self.sandbox_url)
            response = await control.post(f"{gateway_url}/graphql", json={"query": query})
            body = response.json()
            ok = response.status_code == 200 and not body.get("errors") and bool(body.get("data"))
            entries = await sandbox_log(control, self.sandbox_url) or []
            queries = [str(e.get("query", "")) for e in entries if isinstance(e, dict)]
            self.result.upstream.append(UpstreamCalls(name, len(entries), queries, ok))
            if len(queries) == 1:
                self.upstream_query[name] = queries[0]
        missing = [name for name in E2E_QUERIES if name not in self.upstream_query]
        if missing:
            raise SetupError(f"no single upstream call to replay through the proxy for {missing}")

    async def pair(
        self,
        control: httpx.AsyncClient,
        targets: tuple[Target, ...],
        body: bytes,
        sandbox: Child,
    ) -> None:
        """Warm every target up, then measure them in alternating slices."""
        d = self.durations
        if self.quiet_wait_s > 0:
            await asyncio.to_thread(wait_for_quiet, self.quiet_wait_s)
        cells: list[Cell] = []
        for target in targets:
            print(
                f"e2e: {target.server} {target.workers}w {target.query} ...",
                file=sys.stderr,
                flush=True,
            )
            await self.loadgen.run(target.url, body, target.checks, d.warmup_s)
            await asyncio.sleep(SETTLE_S)
            cells.append(Cell(target.server, target.workers, target.query))
        seconds = d.measure_s / d.slices
        for _ in range(d.slices):
            for target, cell in zip(targets, cells, strict=True):
                await measure_slice(
                    control, self.loadgen, sandbox, self.sandbox_url, target, body, seconds, cell
                )
        self.result.cells.extend(cells)

    def record_rss(self, server: str, workers: int, child: Child) -> None:
        values = [peak_rss_kib(pid) for pid in worker_pids(child.pid, workers)]
        self.result.servers.append(Server(server, workers, [v for v in values if v is not None]))


def load_generator(work_dir: Path) -> LoadGenerator:
    binary = shutil.which("wrk")
    return Wrk(binary, work_dir) if binary else PythonLoad()


def run_e2e(quick: bool = False, quiet_wait_s: float = 0.0) -> E2EResult:
    """Run the section; before each query's pair of runs, wait up to `quiet_wait_s` for a
    quiet host. Raises one of FAILURES (after printing logs) when it cannot be set up."""

    def session(children: Children) -> Coroutine[Any, Any, E2EResult]:
        loadgen = load_generator(children.log_dir)
        return Session(QUICK if quick else FULL, loadgen, children, quiet_wait_s).run()

    return run_section("e2e", session, FAILURES)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:.1f}"


def render_upstream(result: E2EResult) -> list[str]:
    rows = []
    for up in result.upstream:
        shown = "; ".join(f"`{q[:70]}{'…' if len(q) > 70 else ''}`" for q in up.queries[:3])
        if len(up.queries) > 3:
            shown += f"; … ({len(up.queries) - 3} more)"
        rows.append(
            [
                f"{up.query} ({DESCRIPTIONS[up.query]})",
                str(up.calls),
                shown or "-",
                "yes" if up.ok else "**NO**",
            ]
        )
    return [
        "## Upstream calls per query",
        "",
        *table(["query", "calls", "upstream requests", "data, no errors"], rows, "lrll"),
        "",
        "Each query sent once through the gateway (1 worker, `GATEWAY_CACHE_TTL=0`); calls "
        "counted in the sandbox's request log (`/_sandbox/requests`).",
    ]


def render_e2e(result: E2EResult) -> list[str]:
    d = result.durations
    rows = []
    for workers in WORKER_COUNTS:
        for query in E2E_QUERIES:
            gateway = result.cell("gateway", workers, query)
            proxy = result.cell("proxy", workers, query)
            for cell in (gateway, proxy):
                if cell is None:
                    continue
                load = cell.load
                share = p50 = ""
                ok: bool | None = None
                if cell is gateway and proxy is not None and gateway is not None:
                    rps_share = load.rps / proxy.load.rps if proxy.load.rps else 0.0
                    p50_ratio = load.p50_ms / proxy.load.p50_ms if proxy.load.p50_ms else 0.0
                    share = f"**{rps_share:.0%}**"
                    p50 = f"**{ratio(p50_ratio)}**"
                    ok = rps_share >= MIN_THROUGHPUT_SHARE and p50_ratio <= MAX_P50_RATIO
                upstream = (
                    "n/a"
                    if cell.upstream_calls is None or not load.requests
                    else f"{cell.upstream_calls / load.requests:.2f}"
                )
                rows.append(
                    [
                        f"{query} ({DESCRIPTIONS[query]})",
                        str(workers),
                        cell.server,
                        f"{load.rps:.0f}",
                        _ms(load.p50_ms),
                        _ms(load.p99_ms),
                        share,
                        p50,
                        verdict(ok) if cell is gateway else "",
                        f"{load.errors}" + (f" ({load.requests} req)" if load.errors else ""),
                        upstream,
                        f"{cell.server_cpu_s:.1f} / {cell.sandbox_cpu_s:.1f} / "
                        f"{load.loadgen_cpu_s:.1f} / {cell.other_cpu_s:.1f}",
                    ]
                )
    headers = [
        "query",
        "workers",
        "server",
        "req/s",
        "p50 ms",
        "p99 ms",
        "req/s vs proxy (≥ 70%)",
        "p50 vs proxy (≤ 1.5x)",
        "",
        "errors",
        "upstream calls / req",
        "CPU s: server / sandbox / load gen / other",
    ]
    rss_rows = []
    for server in result.servers:
        peaks = [kib / 1024 for kib in server.peak_rss_kib]
        ok = bool(peaks) and max(peaks) < MAX_WORKER_RSS_MB
        rss_rows.append(
            [
                server.server,
                str(server.workers),
                ", ".join(f"{mb:.1f}" for mb in peaks) or "n/a",
                verdict(ok) if server.server == "gateway" else "",
            ]
        )
    note = ""
    if not result.loadgen.startswith("wrk"):
        note = (
            " **Load generator: Python fallback (wrk not found)** — it runs in the bench's "
            "own process and takes CPU from the servers on this host, so absolute figures "
            "are low; the ratios still compare like with like."
        )
    return [
        f"## End to end over HTTP (concurrency {CONCURRENCY}, cache disabled)",
        "",
        *table(headers, rows, "lrlrrrrrlrrr"),
        "",
        f"Load generator: {result.loadgen}, {CONCURRENCY} connections, {d.warmup_s:g} s "
        f"warm-up per row, then {d.measure_s:g} s measured per row in {d.slices} slices "
        "alternating between the gateway and the proxy (percentiles from the merged "
        "latency histograms); latency is client-side. "
        "Gateway: `python -m gateway serve --workers N` with `GATEWAY_CACHE_TTL=0 "
        "GATEWAY_RATE_LIMIT=0`. Proxy: `python -m bench.proxy` (Starlette + uvicorn + "
        "`create_http_client`), forwarding the upstream request the gateway sent for the same "
        "query and returning the body unchanged. Errors: non-2xx, socket errors/timeouts, and "
        "bodies without the expected start or (every "
        f'{CHECK_EVERY}th body) with `"errors"`. Upstream calls / req: sandbox log entries '
        "during the measured slices over requests completed. CPU s: used during them "
        "by the server's processes, the sandbox, the load generator, and everything else on "
        "the host (other work on a shared machine skews a row when that is large). Sandbox: "
        "one uvicorn process, shared by all rows; everything shares the host's cores." + note,
        "",
        "### Peak RSS per worker after its runs",
        "",
        *table(["server", "workers", "VmHWM per worker (MB)", "< 200 MB"], rss_rows, "lrrl"),
        "",
        "With 1 worker the worker is the serve process itself; with 2, uvicorn's spawned "
        "worker processes (the supervisor is not counted).",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    return section_main(
        argv,
        "bench.e2e",
        __doc__,
        "short runs (a smoke test)",
        run_e2e,
        FAILURES,
        lambda result: [*render_upstream(result), "", *render_e2e(result)],
    )


if __name__ == "__main__":
    sys.exit(main())
