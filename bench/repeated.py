"""Repeated queries with the cache on: the response cache against today's cached path.

Usage::

    python -m bench.repeated [--quick]          # the tables (markdown) on stdout

Why: frontends repeat the same few queries all day. With the upstream cache alone a
repeat still runs the whole query (parse cache, resolvers over cached pages, encoding):
a 100-job page with every field runs at ~150 req/s per worker. The response cache
(issue 13) answers a repeat from its stored bytes. This section measures both side by
side, in the same run, on the same queries.

What it does (all on 127.0.0.1; every wait and every load run is bounded in time):

1. starts the sandbox (`python -m gateway sandbox`);
2. starts two gateways, `python -m gateway serve --workers 1` each, both with
   `GATEWAY_CACHE_TTL=300 GATEWAY_RATE_LIMIT=0`: *response cache on* (the default
   `GATEWAY_RESPONSE_CACHE_BYTES`) and *off* (`GATEWAY_RESPONSE_CACHE_BYTES=0`, today's
   cached path: every repeat executes over pages from the upstream cache);
3. per query (`QUERIES`), sends it once to each (both caches fill), warms both up, then
   loads them at concurrency 32 in alternating slices (on, off, on, ...) until each had
   the measured duration, so that other work on a shared host hits both alike; counts
   the sandbox's calls during the slices (none expected: everything is cached) and the
   *on* gateway's response-cache lookups;
4. the load generator is `bench.e2e`'s: `wrk` with its Lua script (POSTs the body, checks
   every status and body start, scans every 10th body for `"errors"`), else an asyncio
   generator in this process.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
import orjson

from bench.e2e import (
    CHECK_EVERY,
    CONCURRENCY,
    FULL,
    QUICK,
    SETTLE_S,
    Durations,
    LoadGenerator,
    Measured,
    Target,
    load_generator,
    loadgen_label,
    measure_slice,
)
from bench.load import (
    HOST,
    Child,
    Children,
    SetupError,
    gateway_env,
    gateway_metrics,
    metric_samples,
    run_section,
    section_main,
    start_sandbox,
    two_free_ports,
    wait_ready,
)
from bench.queries import JOB_ALL_FIELDS, JOB_BY_ID_10, lookups_query, sandbox_job_ids
from bench.report import table, targets_table, verdict, wait_for_quiet
from gateway.http.serving import free_port

CACHE_TTL_S: Final = 300
#: What `run_repeated` may raise when the section cannot be set up or run.
FAILURES: Final = (SetupError, httpx.HTTPError, OSError, TimeoutError)
#: The two gateways: response cache on (its default size) and off.
SERVED: Final = ("on", "off")

PAGE_100_ALL: Final = (
    "query Page100 {\n  jobs(first: 100) {\n    nodes {" + JOB_ALL_FIELDS + "    }\n  }\n}\n"
)
LOOKUPS_50: Final = lookups_query(sandbox_job_ids(50, 20))


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    description: str
    text: str
    #: Target: req/s with the response cache at least this multiple of without.
    min_speedup: float


QUERIES: Final = (
    Query("PAGE_100_ALL", "100 jobs, every field", PAGE_100_ALL, 3.0),
    Query("LOOKUPS_50", "50 `job(id:)` look-ups, 10 fields", LOOKUPS_50, 3.0),
    Query("JOB_BY_ID_10", "1 job by ID, 10 fields", JOB_BY_ID_10, 2.0),
)


@dataclass(slots=True)
class Cell(Measured):
    """One gateway loaded with one query; `upstream_calls` are Kombo (sandbox) calls."""

    served: str
    query: str
    body_bytes: int = 0


@dataclass(slots=True)
class RepeatedResult:
    loadgen: str
    durations: Durations
    cells: list[Cell] = field(default_factory=list)
    #: The *on* gateway's response-cache lookups by result, over the whole section.
    lookups: Counter[str] = field(default_factory=Counter)

    def cell(self, served: str, query: str) -> Cell | None:
        return next((c for c in self.cells if (c.served, c.query) == (served, query)), None)

    def speedup(self, query: str) -> float | None:
        on, off = self.cell("on", query), self.cell("off", query)
        if on is None or off is None or not off.load.rps:
            return None
        return on.load.rps / off.load.rps


class Session:
    def __init__(
        self,
        durations: Durations,
        loadgen: LoadGenerator,
        children: Children,
        quiet_wait_s: float,
    ) -> None:
        self.durations = durations
        self.loadgen = loadgen
        self.children = children
        self.quiet_wait_s = quiet_wait_s
        self.sandbox_port = free_port()
        self.sandbox_url = f"http://{HOST}:{self.sandbox_port}"
        self.result = RepeatedResult(loadgen_label(loadgen), durations)

    def gateway(self, served: str, port: int) -> Child:
        env = gateway_env(
            self.sandbox_url, GATEWAY_CACHE_TTL=str(CACHE_TTL_S), GATEWAY_RATE_LIMIT="0"
        )
        if served == "off":
            env["GATEWAY_RESPONSE_CACHE_BYTES"] = "0"
        argv = [sys.executable, "-m", "gateway", "serve", "--host", HOST, "--port", str(port)]
        return self.children.add(f"gateway-{served}", [*argv, "--workers", "1"], env)

    async def run(self) -> RepeatedResult:
        ports = two_free_ports()
        async with httpx.AsyncClient(timeout=30.0) as control:
            sandbox = start_sandbox(self.children, self.sandbox_port)
            gateways = {
                served: self.gateway(served, p) for served, p in zip(SERVED, ports, strict=True)
            }
            urls = {served: f"http://{HOST}:{p}" for served, p in zip(SERVED, ports, strict=True)}
            await wait_ready(control, f"{self.sandbox_url}/healthz", sandbox)
            for child in gateways.values():
                child.start()
            for served, child in gateways.items():
                await wait_ready(control, f"{urls[served]}/readyz", child)
            before = await self.lookups(control, urls["on"])
            for query in QUERIES:
                await self.pair(control, query, urls, gateways, sandbox)
            self.result.lookups = await self.lookups(control, urls["on"]) - before
        return self.result

    async def lookups(self, control: httpx.AsyncClient, url: str) -> Counter[str]:
        text = await gateway_metrics(control, url)
        counts: Counter[str] = Counter()
        for labels, value in metric_samples(text, "gateway_response_cache_lookups_total"):
            counts[labels.get("result", "?")] += int(value)
        return counts

    async def pair(
        self,
        control: httpx.AsyncClient,
        query: Query,
        urls: dict[str, str],
        gateways: dict[str, Child],
        sandbox: Child,
    ) -> None:
        """Fill both gateways' caches, warm both up, then measure in alternating slices."""
        d = self.durations
        if self.quiet_wait_s > 0:
            await asyncio.to_thread(wait_for_quiet, self.quiet_wait_s)
        body = orjson.dumps({"query": query.text})
        cells = []
        targets = [
            Target(served, 1, query.name, f"{urls[served]}/graphql", gateways[served], _CHECKS)
            for served in SERVED
        ]
        for target in targets:
            served = target.server
            print(f"repeated: {query.name}, response cache {served} ...", file=sys.stderr)
            first = await control.post(target.url, content=body, headers=_JSON)
            answer = first.json()
            if first.status_code != 200 or answer.get("errors") or not answer.get("data"):
                raise SetupError(f"{query.name} failed on the {served} gateway: {first.text[:300]}")
            await self.loadgen.run(target.url, body, target.checks, d.warmup_s)
            await asyncio.sleep(SETTLE_S)
            cells.append(Cell(served, query.name, body_bytes=len(first.content)))
        seconds = d.measure_s / d.slices
        for _ in range(d.slices):
            for target, cell in zip(targets, cells, strict=True):
                await measure_slice(
                    control, self.loadgen, sandbox, self.sandbox_url, target, body, seconds, cell
                )
        self.result.cells.extend(cells)


_JSON: Final = {"Content-Type": "application/json"}
#: Every good answer starts so; none holds this (every CHECK_EVERY-th body scanned).
_CHECKS: Final = ('{"data":{', '"errors"')


def run_repeated(quick: bool = False, quiet_wait_s: float = 0.0) -> RepeatedResult:
    """Run the section; before each query's pair of runs, wait up to `quiet_wait_s` for a
    quiet host. Raises one of FAILURES (after printing logs) when it cannot be set up."""

    def session(children: Children) -> Coroutine[Any, Any, RepeatedResult]:
        loadgen = load_generator(children.log_dir)
        return Session(QUICK if quick else FULL, loadgen, children, quiet_wait_s).run()

    return run_section("repeated", session, FAILURES)


# --------------------------------------------------------------------------------------------
# Rendering and targets
# --------------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:.1f}"


def render(result: RepeatedResult) -> list[str]:
    """The section's markdown: req/s and latency per query, with and without."""
    d = result.durations
    rows = []
    for query in QUERIES:
        speedup = result.speedup(query.name)
        for served in SERVED:
            cell = result.cell(served, query.name)
            if cell is None:
                continue
            load = cell.load
            calls = "n/a" if cell.upstream_calls is None else str(cell.upstream_calls)
            shown = ""
            if served == "on" and speedup is not None:
                ok = speedup >= query.min_speedup
                shown = f"**{speedup:.1f}x** (≥ {query.min_speedup:g}x) {verdict(ok)}"
            rows.append(
                [
                    f"{query.name} ({query.description}, {cell.body_bytes:,} B)",
                    served,
                    f"{load.rps:.0f}",
                    _ms(load.p50_ms),
                    _ms(load.p99_ms),
                    shown,
                    f"{load.errors}" + (f" ({load.requests} req)" if load.errors else ""),
                    calls,
                    f"{cell.server_cpu_s:.1f} / {load.loadgen_cpu_s:.1f} / {cell.other_cpu_s:.1f}",
                ]
            )
    headers = [
        "query (answer size)",
        "response cache",
        "req/s",
        "p50 ms",
        "p99 ms",
        "req/s on / off",
        "errors",
        "Kombo calls",
        "CPU s: gateway / load gen / other",
    ]
    lookups = ", ".join(f"{k}: {v}" for k, v in sorted(result.lookups.items()) if v) or "none"
    return [
        f"## Repeated queries: the response cache (concurrency {CONCURRENCY}, cache on)",
        "",
        *table(headers, rows, "llrrrlrrr"),
        "",
        f"Each query sent over and over by {result.loadgen} ({CONCURRENCY} connections) to "
        "two gateways (`serve --workers 1`, `GATEWAY_CACHE_TTL="
        f"{CACHE_TTL_S}`, `GATEWAY_RATE_LIMIT=0`): *on*, the default "
        "`GATEWAY_RESPONSE_CACHE_BYTES`, answers a repeat from its stored bytes; *off*, "
        "`GATEWAY_RESPONSE_CACHE_BYTES=0`, is the cached path without it (every repeat "
        "executes over pages and jobs from the upstream cache). Both asked each query "
        f"once first, then {d.warmup_s:g} s of warm-up each, then {d.measure_s:g} s measured "
        f"each in {d.slices} slices alternating between them (percentiles from the merged "
        "latency histograms, client-side). Errors: non-2xx, socket errors/timeouts, bodies "
        f'without the expected start or (every {CHECK_EVERY}th body) with `"errors"`. Kombo '
        "calls: the sandbox's log during the measured slices. The *on* gateway's "
        f"response-cache lookups over the section: {lookups}. Everything shares the host's "
        "cores; `other` is the rest of a shared host.",
    ]


def summary_rows(result: RepeatedResult) -> tuple[list[list[str]], list[bool]]:
    """Rows for bench.run's targets table, and the pass/fail of the targets."""
    rows: list[list[str]] = []
    oks: list[bool] = []
    for query in QUERIES:
        on, off = result.cell("on", query.name), result.cell("off", query.name)
        speedup = result.speedup(query.name)
        if on is None or off is None or speedup is None:
            continue
        ok = speedup >= query.min_speedup and on.load.errors == 0 and off.load.errors == 0
        oks.append(ok)
        rows.append(
            [
                f"repeated {query.name}: req/s with / without the response cache",
                f"≥ {query.min_speedup:g}x",
                f"{speedup:.1f}x ({on.load.rps:.0f} / {off.load.rps:.0f})",
                verdict(ok),
            ]
        )
        rows.append(
            [
                f"repeated {query.name}: p50 / p99 ms with; without",
                "reported",
                f"{_ms(on.load.p50_ms)} / {_ms(on.load.p99_ms)}; "
                f"{_ms(off.load.p50_ms)} / {_ms(off.load.p99_ms)}",
                verdict(None),
            ]
        )
    return rows, oks


def main(argv: Sequence[str] | None = None) -> int:
    return section_main(
        argv,
        "bench.repeated",
        __doc__,
        "short runs (a smoke test)",
        run_repeated,
        FAILURES,
        lambda result: [*render(result), "", *targets_table(summary_rows(result)[0])],
    )


if __name__ == "__main__":
    sys.exit(main())
