"""Small formatting helpers shared by the bench's sections (markdown tables, numbers)."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Sequence
from importlib import metadata

PACKAGES = (
    "strawberry-graphql",
    "graphql-core",
    "starlette",
    "uvicorn",
    "httptools",
    "uvloop",
    "httpx",
    "aiohttp",
    "yarl",
    "orjson",
    "msgspec",
)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    """A markdown table; `align` has one letter per column, `l` or `r` (default: left)."""
    marks = [("---:" if (align[i : i + 1] or "l") == "r" else "---") for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def targets_table(rows: Sequence[Sequence[str]]) -> list[str]:
    """The targets table: rows of what, target, measured, verdict."""
    return table(["what", "target", "measured", ""], rows, "llrl")


def us(ns: float) -> str:
    """Nanoseconds as microseconds, 3 significant-ish digits."""
    value = ns / 1000
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def ratio(value: float) -> str:
    return f"{value:.2f}x"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**pass**" if ok else "**MISS**")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_versions() -> str:
    parts = []
    for name in PACKAGES:
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return ", ".join(parts)


def wrk_version() -> str | None:
    try:
        done = subprocess.run(
            ["wrk", "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else "wrk"


def machine_facts() -> list[str]:
    """Markdown bullet lines describing the machine and the software measured."""
    uname = platform.uname()
    return [
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores; {uname.system} {uname.release}",
        f"- Python {platform.python_version()} ({platform.python_implementation()})",
        f"- {package_versions()}",
    ]


def host_busy_seconds() -> float:
    """CPU seconds the whole host has spent busy since boot (all cores), from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()
    except OSError:
        return 0.0
    # cpu user nice system idle iowait irq softirq steal ...
    ticks = [int(v) for v in fields[1:9]]
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(max_wait_s: float, busy_share: float = 0.25, window_s: float = 2.0) -> float:
    """Wait (at most `max_wait_s`) until the host's CPU use over a `window_s` window falls
    below `busy_share` of its cores, so other work on a shared machine does not skew the
    run. Returns the share seen last."""
    cores = os.cpu_count() or 1
    deadline = time.monotonic() + max_wait_s
    share = 1.0
    while True:
        before = host_busy_seconds()
        time.sleep(window_s)
        share = (host_busy_seconds() - before) / (window_s * cores)
        if share < busy_share or time.monotonic() >= deadline:
            return share
