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

import argparse
import asyncio
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx
import orjson

from bench.e2e import (
    CHECK_EVERY,
    CONCURRENCY,
    SETTLE_S,
    Durations,
    Load,
    LoadGenerator,
    Wrk,
    load_generator,
)
from bench.load import HOST, Child, SetupError, child_env, cpu_seconds, sandbox_log, wait_ready
from bench.queries import INTEGRATION, JOB_ALL_FIELDS, JOB_BY_ID_10, lookups_query, sandbox_job_ids
from bench.replicas import metric_samples
from bench.report import host_busy_seconds, table, verdict, wait_for_quiet
from gateway.config import SANDBOX_API_KEY
from gateway.http.serving import free_port

CACHE_TTL_S: Final = 300
FULL: Final = Durations(warmup_s=2.0, measure_s=10.0, slices=5)
QUICK: Final = Durations(warmup_s=1.0, measure_s=2.0, slices=2)
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
class Cell:
    """One gateway loaded with one query."""

    served: str
    query: str
    load: Load = field(default_factory=Load)
    server_cpu_s: float = 0.0
    other_cpu_s: float = 0.0
    #: Sandbox calls during the measured slices (None: the log could not be read).
    kombo_calls: int | None = 0
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
        self, durations: Durations, loadgen: LoadGenerator, log_dir: Path, quiet_wait_s: float
    ) -> None:
        self.durations = durations
        self.loadgen = loadgen
        self.log_dir = log_dir
        self.quiet_wait_s = quiet_wait_s
        self.sandbox_url = f"http://{HOST}:{free_port()}"
        self.children: list[Child] = []
        label = "wrk" if isinstance(loadgen, Wrk) else "python (asyncio + httpx, in-process)"
        self.result = RepeatedResult(label, durations)

    def child(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        child = Child(name, argv, child_env(env), self.log_dir)
        self.children.append(child)
        return child

    def stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop()

    def gateway(self, served: str, port: int) -> Child:
        env = {
            "KOMBO_API_KEY": SANDBOX_API_KEY,
            "KOMBO_BASE_URL": f"{self.sandbox_url}/v1",
            "KOMBO_INTEGRATION_ID": INTEGRATION,
            "GATEWAY_CACHE_TTL": str(CACHE_TTL_S),
            "GATEWAY_RATE_LIMIT": "0",
        }
        if served == "off":
            env["GATEWAY_RESPONSE_CACHE_BYTES"] = "0"
        argv = [sys.executable, "-m", "gateway", "serve", "--host", HOST, "--port", str(port)]
        return self.child(f"gateway-{served}", [*argv, "--workers", "1"], env)

    async def run(self) -> RepeatedResult:
        port = self.sandbox_url.rsplit(":", 1)[1]
        sandbox = self.child(
            "sandbox",
            [sys.executable, "-m", "gateway", "sandbox", "--host", HOST, "--port", port],
            {},
        )
        ports = [free_port(), free_port()]
        while ports[1] == ports[0]:  # bounded in practice: ports are random
            ports[1] = free_port()
        gateways = {
            served: self.gateway(served, p) for served, p in zip(SERVED, ports, strict=True)
        }
        urls = {served: f"http://{HOST}:{p}" for served, p in zip(SERVED, ports, strict=True)}
        async with httpx.AsyncClient(timeout=30.0) as control:
            sandbox.start()
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
        text = (await control.get(f"{url}/metrics")).text
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
        for served in SERVED:
            print(f"repeated: {query.name}, response cache {served} ...", file=sys.stderr)
            first = await control.post(f"{urls[served]}/graphql", content=body, headers=_JSON)
            answer = first.json()
            if first.status_code != 200 or answer.get("errors") or not answer.get("data"):
                raise SetupError(f"{query.name} failed on the {served} gateway: {first.text[:300]}")
            await self.loadgen.run(f"{urls[served]}/graphql", body, _CHECKS, d.warmup_s)
            await asyncio.sleep(SETTLE_S)
            cells.append(Cell(served, query.name, body_bytes=len(first.content)))
        for _ in range(d.slices):
            for cell in cells:
                url = urls[cell.served]
                child = gateways[cell.served]
                await self.slice(control, f"{url}/graphql", child, cell, body, sandbox)
        self.result.cells.extend(cells)

    async def slice(
        self,
        control: httpx.AsyncClient,
        url: str,
        child: Child,
        cell: Cell,
        body: bytes,
        sandbox: Child,
    ) -> None:
        seconds = self.durations.measure_s / self.durations.slices
        reset = await control.delete(f"{self.sandbox_url}/_sandbox/requests")
        if reset.status_code != 204:
            raise SetupError(f"resetting the sandbox log failed: {reset.status_code}")
        server_before, sandbox_before = cpu_seconds([child.pid]), cpu_seconds([sandbox.pid])
        host_before = host_busy_seconds()
        load = await self.loadgen.run(url, body, _CHECKS, seconds)
        host = host_busy_seconds() - host_before
        server = cpu_seconds([child.pid]) - server_before
        sandbox_cpu = cpu_seconds([sandbox.pid]) - sandbox_before
        entries = await sandbox_log(control, self.sandbox_url)
        cell.load.add(load)
        cell.server_cpu_s += server
        cell.other_cpu_s += max(0.0, host - server - sandbox_cpu - load.loadgen_cpu_s)
        if entries is None or cell.kombo_calls is None:
            cell.kombo_calls = None
        else:
            cell.kombo_calls += len(entries)
        await asyncio.sleep(SETTLE_S)


_JSON: Final = {"Content-Type": "application/json"}
#: Every good answer starts so; none holds this (every CHECK_EVERY-th body scanned).
_CHECKS: Final = ('{"data":{', '"errors"')


def run_repeated(quick: bool = False, quiet_wait_s: float = 0.0) -> RepeatedResult:
    """Run the section; before each query's pair of runs, wait up to `quiet_wait_s` for a
    quiet host. Raises SetupError (after printing logs) when it cannot be set up."""
    with tempfile.TemporaryDirectory(prefix="bench-repeated-") as tmp:
        durations = QUICK if quick else FULL
        session = Session(durations, load_generator(Path(tmp)), Path(tmp), quiet_wait_s)
        try:
            return asyncio.run(session.run())
        except (SetupError, httpx.HTTPError, TimeoutError):
            for child in session.children:
                if child.process is not None:
                    print(f"--- {child.name} log (tail) ---\n{child.tail()}", file=sys.stderr)
            raise
        finally:
            session.stop_all()


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
            calls = "n/a" if cell.kombo_calls is None else str(cell.kombo_calls)
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
    parser = argparse.ArgumentParser(prog="python -m bench.repeated", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    args = parser.parse_args(argv)
    try:
        result = run_repeated(args.quick)
    except (SetupError, httpx.HTTPError, TimeoutError) as exc:
        print(f"bench.repeated: setup or run failed: {exc!r}", file=sys.stderr)
        return 2
    rows, _ = summary_rows(result)
    print(
        "\n".join([*render(result), "", *table(["what", "target", "measured", ""], rows, "llrl")])
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
