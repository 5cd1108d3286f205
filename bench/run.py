"""The gateway's benchmark: `make bench`, or `python -m bench.run [--quick] [--out PATH]`.

Sections (each prints a markdown table; the whole report is written to `--out`):

1. in-process (`bench.inprocess`): the fixed queries over sandbox pages in memory, as
   ratios to the orjson floor, with stock graphql-core as a second reference;
2. upstream calls per fixed query, and end to end over HTTP (`bench.e2e`): gateway vs the
   pass-through proxy at concurrency 32, 1 and 2 workers, cache disabled; peak RSS;
3. replicas (`bench.replicas`): two gateway processes over one workload, without and
   with Redis: Kombo calls, req/s, and a 100-job page served from L1, L2 and Kombo;
4. repeated queries (`bench.repeated`): the cache on, with and without the response
   cache, side by side: a 100-job page with every field, 50 look-ups, one job by ID.

`--quick` shortens every measurement (a smoke run; its figures are noisy). Exit status 0
when the report was written (targets missed or not: the report says), 2 when a section
could not be set up. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import inspect
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from bench import e2e, inprocess, repeated, replicas
from bench.load import Failures
from bench.report import machine_facts, targets_table, verdict, wait_for_quiet, wrk_version
from gateway.schema.build import build_schema

T = TypeVar("T")


def summary(
    inproc: inprocess.InprocessResult | None,
    end_to_end: e2e.E2EResult | None,
    shared: replicas.ReplicaResult | None = None,
    repeats: repeated.RepeatedResult | None = None,
) -> tuple[list[str], bool]:
    """The targets table, and whether every target was met."""
    rows: list[list[str]] = []
    oks: list[bool] = []
    if inproc is not None:
        for row in inproc.rows:
            if row.target is not None:
                ok = row.served_ratio <= row.target
                oks.append(ok)
                rows.append(
                    [
                        f"in-process {row.name}: served / floor",
                        f"≤ {row.target:g}x",
                        f"{row.served_ratio:.2f}x",
                        verdict(ok),
                    ]
                )
    if end_to_end is not None:
        for workers in e2e.WORKER_COUNTS:
            for query in e2e.E2E_QUERIES:
                gateway = end_to_end.cell("gateway", workers, query)
                proxy = end_to_end.cell("proxy", workers, query)
                if gateway is None or proxy is None:
                    continue
                share = gateway.load.rps / proxy.load.rps if proxy.load.rps else 0.0
                p50 = gateway.load.p50_ms / proxy.load.p50_ms if proxy.load.p50_ms else 0.0
                ok_share = share >= e2e.MIN_THROUGHPUT_SHARE
                ok_p50 = p50 <= e2e.MAX_P50_RATIO
                clean = gateway.load.errors == 0 and proxy.load.errors == 0
                oks += [ok_share, ok_p50, clean]
                where = f"e2e {query}, {workers} worker{'s' if workers > 1 else ''}"
                rows.append(
                    [f"{where}: gateway req/s / proxy", "≥ 70%", f"{share:.0%}", verdict(ok_share)]
                )
                rows.append(
                    [f"{where}: gateway p50 / proxy", "≤ 1.5x", f"{p50:.2f}x", verdict(ok_p50)]
                )
                if not clean:
                    rows.append(
                        [
                            f"{where}: errors",
                            "0",
                            f"{gateway.load.errors} / {proxy.load.errors}",
                            verdict(False),
                        ]
                    )
        for server in end_to_end.servers:
            if server.server != "gateway" or not server.peak_rss_kib:
                continue
            peak = max(server.peak_rss_kib) / 1024
            ok = peak < e2e.MAX_WORKER_RSS_MB
            oks.append(ok)
            rows.append(
                [
                    f"peak RSS of a gateway worker after the e2e run ({server.workers}w)",
                    "< 200 MB",
                    f"{peak:.1f} MB",
                    verdict(ok),
                ]
            )
    if shared is not None:
        replica_rows, replica_oks = replicas.summary_rows(shared)
        rows += replica_rows
        oks += replica_oks
    if repeats is not None:
        repeated_rows, repeated_oks = repeated.summary_rows(repeats)
        rows += repeated_rows
        oks += repeated_oks
    lines = ["## Targets", "", *targets_table(rows)]
    return lines, bool(oks) and all(oks)


def header(argv: Sequence[str], quick: bool) -> list[str]:
    fast = "fast_path" in inspect.signature(build_schema).parameters
    wrk = wrk_version()
    return [
        "# Gateway benchmark",
        "",
        f"`{shlex.join(['python', '-m', 'bench.run', *argv])}` — "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC}" + (" — **quick run** (noisy)" if quick else ""),
        "",
        *machine_facts(),
        f"- load generator: {wrk or 'none found (Python fallback)'}",
        "- served schema: `build_schema()`"
        + (
            " (has `fast_path`, on by default; stock = `fast_path=False`)"
            if fast
            else " (no `fast_path` keyword: the stock column repeats the served schema)"
        ),
    ]


def profile_section(name: str) -> list[str]:
    text = inprocess.profile(name, 20)
    return [
        f"## Where time goes: cProfile of in-process {name} (served, 20 executions)",
        "",
        "```",
        *[line.rstrip() for line in text.strip().splitlines()],
        "```",
    ]


def _section(label: str, run: Callable[[], T], failures: Failures) -> T | None:
    """Run one section; None when it failed with one of its `failures` (said on stderr)."""
    try:
        return run()
    except failures as exc:
        print(f"bench.run: the {label} section failed: {exc!r}", file=sys.stderr)
        return None


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/bench.md"))
    parser.add_argument(
        "--skip-e2e", action="store_true", help="in-process section only (no subprocesses)"
    )
    parser.add_argument(
        "--skip-replicas",
        action="store_true",
        help="no replica section (two gateways without and with Redis; needs redis-server)",
    )
    parser.add_argument(
        "--skip-repeated",
        action="store_true",
        help="no repeated-query section (the response cache on and off)",
    )
    parser.add_argument(
        "--max-wait-quiet",
        type=float,
        default=None,
        help="before the run and before each measurement, wait at most this many seconds "
        "for the host's other work to calm down (default 60; quick 5; 0: never wait)",
    )
    args = parser.parse_args(raw)
    started = time.monotonic()
    status = 0
    max_wait = args.max_wait_quiet
    if max_wait is None:
        max_wait = 5.0 if args.quick else 60.0
    max_wait = max(0.0, min(max_wait, 600.0))
    print("bench: waiting for the host to be quiet ...", file=sys.stderr, flush=True)
    busy = wait_for_quiet(max_wait)

    inproc = inprocess.run_inprocess(args.quick, max_wait)
    end_to_end: e2e.E2EResult | None = None
    if not args.skip_e2e:
        end_to_end = _section("end-to-end", lambda: e2e.run_e2e(args.quick, max_wait), e2e.FAILURES)
        if end_to_end is None:
            status = 2

    shared: replicas.ReplicaResult | None = None
    if not args.skip_e2e and not args.skip_replicas:
        shared = _section(
            "replica", lambda: replicas.run_replicas(args.quick, max_wait), replicas.FAILURES
        )
        if shared is None:
            status = 2

    repeats: repeated.RepeatedResult | None = None
    if not args.skip_e2e and not args.skip_repeated:
        repeats = _section(
            "repeated-query", lambda: repeated.run_repeated(args.quick, max_wait), repeated.FAILURES
        )
        if repeats is None:
            status = 2

    targets, all_met = summary(inproc, end_to_end, shared, repeats)
    quiet = (
        f"- shared host: busy {busy:.0%} of all cores before the run; each measurement waited "
        f"up to {max_wait:g} s for other work to fall below 25% (see the `other` CPU figures)"
    )
    lines = [*header(raw, args.quick), quiet, "", *targets, "", *inprocess.render(inproc), ""]
    if end_to_end is not None:
        lines += [*e2e.render_upstream(end_to_end), "", *e2e.render_e2e(end_to_end), ""]
    if shared is not None:
        lines += [*replicas.render(shared), ""]
    if repeats is not None:
        lines += [*repeated.render(repeats), ""]
    missed = [row.name for row in inproc.rows if row.passed is False]
    if missed:
        lines += [*profile_section(missed[0]), ""]
    lines.append(
        f"Targets: {'all met' if all_met else 'NOT all met'}. "
        f"Bench time {time.monotonic() - started:.0f} s."
    )
    text = "\n".join(lines) + "\n"
    print(text)
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"written to {out}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
