"""In-process benchmark: the fixed queries resolved over sandbox pages held in memory.

Usage::

    python -m bench.inprocess [--quick]            # the table (markdown) on stdout
    python -m bench.inprocess --profile ALL_FIELDS_250 [--iterations 50]   # cProfile, top 15

What is timed, per query (no HTTP, no sockets; one event loop for the whole run):

- **floor**: `orjson.dumps(orjson.loads(body))` of the upstream body the query needs: the
  least any gateway does with an upstream answer (parse it, serialize a response);
- **served**: `build_schema()` (what the gateway serves; its fast path when it has one)
  executing the query with a fresh `Context` and `Loaders`, like the app per request,
  over a Kombo client that answers from memory with `kombo.parse_jobs_page` of the
  captured body, exactly as `KomboClient` does (the cache is off, so a `jobs` page keeps
  only the job keys the query reads); plus `orjson.dumps` of the result, as the HTTP
  layer does. So served starts from the same bytes as the floor, and dumps the same way;
- **served, pre-parsed**: the same, with the client handing out pages parsed once
  (what resolving alone costs, for reference);
- **stock**: `build_schema(fast_path=False)` (graphql-core's default completion, with
  the gateway's checks of Kombo's leaf values, lists and objects, which every served
  answer gets) when `build_schema` has that keyword; otherwise the served schema again,
  labelled so.

Upstream bodies are captured once at start-up from the sandbox's own ASGI app (its exact
response bytes for the parameters each query sends), keyed by integration and parameters.
Each figure is the median over several runs of N iterations (N sized so a run lasts a
fixed time), after a warm-up; runs of the variants are interleaved so drift hits all alike.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import inspect
import io
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

import httpx
import orjson

from bench.queries import (
    ALL_FIELDS_250,
    DESCRIPTIONS,
    FIVE_FIELDS_100,
    INTEGRATION,
    LOOKUPS_60,
)
from bench.report import host_busy_seconds, ratio, table, us, verdict, wait_for_quiet
from gateway.config import SANDBOX_API_KEY
from gateway.http.app import tune_garbage_collector
from gateway.observability.metrics import GatewayMetrics
from gateway.sandbox.app import create_sandbox_app
from gateway.schema.build import build_schema
from gateway.schema.context import Context
from gateway.upstream.cache import CachedKombo, UpstreamCache
from gateway.upstream.kombo import JOBS_PATH, JobsPage, KomboClient, parse_jobs_page
from gateway.upstream.loaders import Loaders

#: The in-process queries and their targets (served / floor at most this; None: no target).
INPROCESS_QUERIES: Final[dict[str, tuple[str, float | None]]] = {
    "ALL_FIELDS_250": (ALL_FIELDS_250, 4.0),
    "FIVE_FIELDS_100": (FIVE_FIELDS_100, 2.0),
    "LOOKUPS_60": (LOOKUPS_60, None),
}

ParamsKey = tuple[str, tuple[tuple[str, str], ...]]


def params_key(integration_id: str, params: Mapping[str, str]) -> ParamsKey:
    return integration_id, tuple(sorted(params.items()))


class Recorder:
    """A Kombo client that asks the sandbox (in-process ASGI) and keeps every body it got."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http
        self.bodies: dict[ParamsKey, bytes] = {}

    async def get_jobs_page(
        self,
        integration_id: str,
        params: Mapping[str, str],
        *,
        deadline: float | None = None,
        keys: frozenset[str] | None = None,
        before_attempt: Callable[[], None] | None = None,
    ) -> JobsPage:
        if before_attempt is not None:
            before_attempt()
        response = await self._http.get(
            "http://sandbox/v1" + JOBS_PATH,
            params=dict(params),
            headers={
                "Authorization": f"Bearer {SANDBOX_API_KEY}",
                "X-Integration-Id": integration_id,
                "Accept": "application/json",
            },
        )
        if response.status_code != 200:
            raise RuntimeError(f"the sandbox answered {response.status_code}: {response.text}")
        self.bodies[params_key(integration_id, params)] = response.content
        return parse_jobs_page(response.content, keys)


class Replay:
    """A Kombo client answering from captured bodies: parsed per call (like production),
    or, with `preparsed`, from pages parsed once."""

    def __init__(self, bodies: Mapping[ParamsKey, bytes], *, preparsed: bool = False) -> None:
        self._bodies = dict(bodies)
        self._pages = {key: parse_jobs_page(body) for key, body in bodies.items()}
        self._preparsed = preparsed
        self.calls = 0

    async def get_jobs_page(
        self,
        integration_id: str,
        params: Mapping[str, str],
        *,
        deadline: float | None = None,
        keys: frozenset[str] | None = None,
        before_attempt: Callable[[], None] | None = None,
    ) -> JobsPage:
        if before_attempt is not None:
            before_attempt()
        self.calls += 1
        key = params_key(integration_id, params)
        if self._preparsed:
            return self._pages[key]
        return parse_jobs_page(self._bodies[key], keys)


class Runner:
    """Executes one query the way the app does: fresh Context and Loaders, then orjson."""

    def __init__(self, schema: Any, client: Recorder | Replay) -> None:
        self.schema = schema
        self.client = client
        self.metrics = GatewayMetrics()
        self.cache = UpstreamCache.disabled(metrics=self.metrics)

    def context(self) -> Context:
        kombo = CachedKombo(cast(KomboClient, self.client), self.cache, fingerprint="bench")
        return Context(
            kombo=kombo,
            loaders=Loaders(kombo, self.metrics, max_calls=100),
            integration_id=INTEGRATION,
            max_ids=1_000,
        )

    async def run(self, query: str) -> bytes:
        result = await self.schema.execute(query, context_value=self.context())
        if result.errors:
            raise RuntimeError(f"the query failed: {result.errors}")
        body: bytes = orjson.dumps({"data": result.data})
        return body


def stock_schema() -> tuple[Any, str]:
    """graphql-core's default completion (plus the gateway's checks of Kombo's data)
    over the same schema, and its column label."""
    if "fast_path" in inspect.signature(build_schema).parameters:
        kwargs: dict[str, Any] = {"fast_path": False}
        return build_schema(**kwargs), "stock graphql-core"
    return build_schema(), "served (no fast_path keyword: same as served)"


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timing:
    target_s: float
    runs: int
    warmup_s: float


FULL: Final = Timing(target_s=0.3, runs=5, warmup_s=0.3)
QUICK: Final = Timing(target_s=0.05, runs=3, warmup_s=0.05)
#: Bounds on iterations per run, whatever the calibration says.
MAX_ITERATIONS: Final = 1_000_000

Step = Callable[[], Awaitable[object]]


@dataclass
class Series:
    """Per-iteration times (ns) of each run of one variant."""

    iterations: int = 1
    per_iteration_ns: list[float] = field(default_factory=list)
    #: The same runs in this process's CPU time (time spent descheduled left out).
    per_iteration_cpu_ns: list[float] = field(default_factory=list)

    @property
    def median_ns(self) -> float:
        return statistics.median(self.per_iteration_ns)

    @property
    def median_cpu_ns(self) -> float:
        return statistics.median(self.per_iteration_cpu_ns)


async def calibrate(step: Step, warmup_s: float, target_s: float) -> int:
    """Warm `step` up for about `warmup_s`, and return the iterations of a `target_s` run."""
    done = 0
    start = time.perf_counter_ns()
    while done < MAX_ITERATIONS:
        await step()
        done += 1
        if done >= 3 and time.perf_counter_ns() - start >= warmup_s * 1e9:
            break
    per = (time.perf_counter_ns() - start) / done
    return max(1, min(MAX_ITERATIONS, int(target_s * 1e9 / per)))


async def timed_run(step: Step, iterations: int) -> tuple[float, float]:
    """Wall and CPU nanoseconds per iteration of `iterations` runs of `step`."""
    cpu = time.process_time_ns()
    start = time.perf_counter_ns()
    for _ in range(iterations):
        await step()
    wall = time.perf_counter_ns() - start
    return wall / iterations, (time.process_time_ns() - cpu) / iterations


async def measure(steps: Mapping[str, Step], timing: Timing) -> dict[str, Series]:
    """Median-ready series for each step; runs interleaved across steps."""
    series = {
        name: Series(await calibrate(step, timing.warmup_s, timing.target_s))
        for name, step in steps.items()
    }
    for _ in range(timing.runs):
        for name, step in steps.items():
            wall, cpu = await timed_run(step, series[name].iterations)
            series[name].per_iteration_ns.append(wall)
            series[name].per_iteration_cpu_ns.append(cpu)
    return series


# --------------------------------------------------------------------------------------------
# The section
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    target: float | None
    upstream_bytes: int
    response_bytes: int
    upstream_calls: int
    floor_ns: float
    served_ns: float
    preparsed_ns: float
    stock_ns: float
    identical: bool
    #: served / floor in CPU time: less sensitive to other work on a shared host.
    cpu_ratio: float

    @property
    def served_ratio(self) -> float:
        return self.served_ns / self.floor_ns

    @property
    def stock_ratio(self) -> float:
        return self.stock_ns / self.floor_ns

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.served_ratio <= self.target


@dataclass(frozen=True, slots=True)
class InprocessResult:
    rows: list[Row]
    stock_label: str
    timing: Timing
    #: Wall time of the section, and CPU seconds other processes used meanwhile.
    elapsed_s: float = 0.0
    other_cpu_s: float = 0.0


async def capture_bodies(queries: Sequence[str]) -> dict[ParamsKey, bytes]:
    """Run each query once against the sandbox's ASGI app; keep the upstream bodies."""
    transport = httpx.ASGITransport(app=create_sandbox_app())
    async with httpx.AsyncClient(transport=transport, timeout=30.0) as http:
        recorder = Recorder(http)
        runner = Runner(build_schema(), recorder)
        for query in queries:
            await runner.run(query)
        return recorder.bodies


async def _section(timing: Timing, quiet_wait_s: float = 0.0) -> InprocessResult:
    started, host_before, own_before = time.monotonic(), host_busy_seconds(), time.process_time()
    # The collector settings a served worker runs with (GATEWAY_GC_TUNING, on by default),
    # for the floor and the gateway alike: without them the floor's own cost swings 2x
    # with the timing of full collections.
    tune_garbage_collector()
    texts = [query for query, _ in INPROCESS_QUERIES.values()]
    bodies = await capture_bodies(texts)
    served_schema = build_schema()
    stock, stock_label = stock_schema()
    rows: list[Row] = []
    for name, (query, target) in INPROCESS_QUERIES.items():
        # Which bodies this query needs: record it alone.
        needed = await capture_bodies([query])
        if len(needed) != 1:
            raise RuntimeError(f"{name} needs {len(needed)} upstream bodies; the floor wants 1")
        (upstream,) = needed.values()
        served = Runner(served_schema, Replay(bodies))
        preparsed = Runner(served_schema, Replay(bodies, preparsed=True))
        reference = Runner(stock, Replay(bodies))
        out_served = await served.run(query)
        out_stock = await reference.run(query)
        upstream_calls = cast(Replay, served.client).calls

        async def floor(body: bytes = upstream) -> object:
            return orjson.dumps(orjson.loads(body))

        steps: dict[str, Step] = {
            "floor": floor,
            "served": functools.partial(served.run, query),
            "preparsed": functools.partial(preparsed.run, query),
            "stock": functools.partial(reference.run, query),
        }
        if quiet_wait_s > 0:
            await asyncio.to_thread(wait_for_quiet, quiet_wait_s)
        print(f"in-process: {name} ...", file=sys.stderr, flush=True)
        series = await measure(steps, timing)
        rows.append(
            Row(
                name=name,
                target=target,
                upstream_bytes=len(upstream),
                response_bytes=len(out_served),
                upstream_calls=upstream_calls,
                floor_ns=series["floor"].median_ns,
                served_ns=series["served"].median_ns,
                preparsed_ns=series["preparsed"].median_ns,
                stock_ns=series["stock"].median_ns,
                identical=out_served == out_stock,
                cpu_ratio=series["served"].median_cpu_ns / series["floor"].median_cpu_ns,
            )
        )
    own = time.process_time() - own_before
    other = max(0.0, host_busy_seconds() - host_before - own)
    return InprocessResult(rows, stock_label, timing, time.monotonic() - started, other)


def run_inprocess(quick: bool = False, quiet_wait_s: float = 0.0) -> InprocessResult:
    """Run the section; before each query, wait up to `quiet_wait_s` for a quiet host."""
    return asyncio.run(_section(QUICK if quick else FULL, quiet_wait_s))


def render(result: InprocessResult) -> list[str]:
    t = result.timing
    stock = result.stock_label
    rows = [
        [
            f"{row.name} ({DESCRIPTIONS[row.name]})",
            f"{row.upstream_calls} / {row.upstream_bytes / 1024:.0f} KiB"
            f" / {row.response_bytes / 1024:.0f} KiB",
            us(row.floor_ns),
            us(row.served_ns),
            f"**{ratio(row.served_ratio)}**",
            ratio(row.cpu_ratio),
            "-" if row.target is None else f"≤ {row.target:g}x",
            verdict(row.passed),
            f"{us(row.preparsed_ns)} ({ratio(row.preparsed_ns / row.floor_ns)})",
            f"{us(row.stock_ns)} ({ratio(row.stock_ratio)})",
            ratio(row.stock_ns / row.served_ns),
            "yes" if row.identical else "**NO**",
        ]
        for row in result.rows
    ]
    headers = [
        "query",
        "upstream calls / body / response",
        "floor µs",
        "served µs",
        "served / floor",
        "(CPU time)",
        "target",
        "",
        "served, pre-parsed µs (/ floor)",
        f"{stock} µs (/ floor)",
        "stock / served",
        "same output",
    ]
    return [
        "## In-process (no HTTP)",
        "",
        *table(headers, rows, "llrrrrlrrrrl"),
        "",
        "Per query execution, median of "
        f"{t.runs} runs of ~{t.target_s:g} s each (after {t.warmup_s:g} s warm-up). "
        "floor = `orjson.dumps(orjson.loads(upstream body))`; served = `build_schema()` "
        "executing with a fresh Context/Loaders over an in-memory Kombo client that parses "
        "the captured sandbox body per call with `parse_jobs_page` (as `KomboClient` does "
        "with the cache off: a page keeps only the job keys the query reads), plus "
        "`orjson.dumps` of "
        "the result; (CPU time) = the same ratio in process CPU time, which leaves out time "
        "the process waited for a core; pre-parsed = the same with pages parsed once "
        "(resolution alone); "
        f"{stock} = `build_schema(fast_path=False)`. "
        "same output = served and stock serialize to identical bytes. "
        f"Other processes used {result.other_cpu_s:.1f} CPU s during the section's "
        f"{result.elapsed_s:.0f} s (a shared host skews figures when that is large).",
    ]


def profile(name: str, iterations: int) -> str:
    """cProfile of `iterations` served executions of one in-process query: top 15 by
    cumulative time."""
    query, _ = INPROCESS_QUERIES[name]

    async def go() -> str:
        bodies = await capture_bodies([query])
        runner = Runner(build_schema(), Replay(bodies))
        for _ in range(3):
            await runner.run(query)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(iterations):
            await runner.run(query)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(15)
        return out.getvalue()

    return asyncio.run(go())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--profile", choices=sorted(INPROCESS_QUERIES), help="cProfile a query")
    parser.add_argument("--iterations", type=int, default=30, help="with --profile")
    args = parser.parse_args(argv)
    if args.profile:
        print(profile(args.profile, max(1, min(args.iterations, 10_000))))
        return 0
    print("\n".join(render(run_inprocess(args.quick))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
