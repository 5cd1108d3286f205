"""`/metrics` with `serve --workers 2`: one total, whichever worker answers, over real HTTP.

Each worker counted in its own registry, and `/metrics` answered from whichever worker
took the connection: the request count jumped between the two workers' counts (one
read 6,004, the next 4). The workers now count in prometheus-client's multiprocess
files and every read sums them, so the count is the number of requests served, on
every read, and never goes backwards, not even when a worker is killed and replaced.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.config import ConfigError
from gateway.observability.metrics import MULTIPROC_DIR_ENV, GatewayMetrics, shared_between_workers
from tests.support import GatewayProcess, gateway_process, wait_until

QUERY = {"query": "{ jobs(first: 2) { nodes { id } } }"}
#: Requests per round, sent from several clients at once so that both workers serve.
REQUESTS = 60
CLIENTS = 6
READS = 8
COUNTED = "gateway_graphql_requests_total"


def _query(url: str) -> None:
    """One GraphQL request on a connection of its own (a fresh accept each time)."""
    response = httpx.post(url, json=QUERY, headers={"Connection": "close"}, timeout=15)
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]["jobs"]["nodes"]) == 2, response.text


def _send(url: str, count: int) -> None:
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(lambda _: _query(url), range(count)))


def _counted(url: str) -> float:
    """`gateway_graphql_requests_total{status="200"}` in one read of `/metrics`, on a
    connection of its own (so either worker may answer)."""
    text = httpx.get(url, headers={"Connection": "close"}, timeout=5).text
    match = re.search(rf'^{COUNTED}{{status="200"}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def _reads(url: str) -> list[float]:
    return [_counted(url) for _ in range(READS)]


def _multiproc_dir(worker: int) -> Path:
    """The metrics directory a worker was started with (its inherited environment)."""
    environ = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
    for entry in environ:
        name, _, value = entry.partition(b"=")
        if name == MULTIPROC_DIR_ENV.encode():
            return Path(value.decode())
    raise AssertionError(f"worker {worker} has no PROMETHEUS_MULTIPROC_DIR")


def _counted_by(directory: Path, pid: int) -> float:
    """What one worker counted, from its own file in the multiprocess directory."""
    files = [str(directory / f"counter_{pid}.db")]
    for metric in MultiProcessCollector.merge(files):  # type: ignore[no-untyped-call]
        for sample in metric.samples:
            if sample.name == COUNTED and sample.labels == {"status": "200"}:
                return float(sample.value)
    return 0.0


@pytest.fixture
def served(tmp_path: Path) -> Iterator[GatewayProcess]:
    """`kombo-gateway serve --workers 2` on the embedded sandbox, with a metrics
    directory of its own (not one of the test run); exits cleanly on SIGTERM."""
    with gateway_process(
        tmp_path,
        workers=2,
        # Many requests from one address are not abuse here.
        env={"GATEWAY_RATE_LIMIT": "0"},
        unset=(MULTIPROC_DIR_ENV,),
    ) as running:
        yield running
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(timeout=40) == 0, running.log()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_metrics_are_summed_over_workers_and_survive_a_killed_worker(
    served: GatewayProcess,
) -> None:
    graphql, metrics = f"{served.url}/graphql", f"{served.url}/metrics"

    _send(graphql, REQUESTS)
    reads = _reads(metrics)
    assert reads == [REQUESTS] * READS, f"{COUNTED} per read of /metrics: {reads}"

    # Both workers served: neither counted every request on its own.
    workers = set(served.workers())
    assert len(workers) == 2, workers
    directory = _multiproc_dir(min(workers))
    assert directory.is_dir() and directory.stat().st_mode & 0o777 == 0o700
    per_worker = {pid: _counted_by(directory, pid) for pid in workers}
    assert sum(per_worker.values()) == REQUESTS, per_worker
    assert all(0 < n < REQUESTS for n in per_worker.values()), per_worker

    # A worker dies; the supervisor starts another. Its counts stay in the total.
    killed = max(workers, key=per_worker.__getitem__)
    os.kill(killed, signal.SIGKILL)
    wait_until(
        lambda: len(set(served.workers()) - workers) == 1 and killed not in served.workers(),
        30,
        "the supervisor to replace the killed worker",
    )
    wait_until(
        lambda: served.log().count("Application startup complete") >= 3,
        60,
        "the new worker to start",
    )
    reads_after_kill = _reads(metrics)
    assert reads_after_kill == [REQUESTS] * READS, f"after the kill: {reads_after_kill}"

    # The new worker's requests add to the total; it never goes backwards.
    _send(graphql, REQUESTS)
    final = _reads(metrics)
    assert final == [2 * REQUESTS] * READS, f"after a second round: {final}"
    history = reads + reads_after_kill + final
    assert history == sorted(history), history
    (replacement,) = set(served.workers()) - workers
    assert _counted_by(directory, replacement) > 0, "the new worker served nothing"


# --- the supervisor's directory, in-process ---------------------------------------------


def test_without_a_directory_of_its_own_the_supervisor_makes_a_private_one_and_removes_it():
    environ: dict[str, str] = {}
    with shared_between_workers(environ) as path:
        assert environ == {MULTIPROC_DIR_ENV: path}
        assert Path(path).is_dir() and Path(path).stat().st_mode & 0o777 == 0o700
        (Path(path) / "counter_1.db").write_bytes(b"")  # a worker's file
    assert environ == {}
    assert not Path(path).exists()


def test_an_operators_directory_is_used_and_kept(tmp_path: Path):
    environ = {MULTIPROC_DIR_ENV: str(tmp_path)}
    with shared_between_workers(environ) as path:
        assert path == str(tmp_path)
        (tmp_path / "counter_1.db").write_bytes(b"")
    assert environ == {MULTIPROC_DIR_ENV: str(tmp_path)}
    assert (tmp_path / "counter_1.db").exists()


def test_an_operators_directory_with_files_of_an_earlier_run_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    (tmp_path / "counter_1.db").write_bytes(b"")
    with shared_between_workers({MULTIPROC_DIR_ENV: str(tmp_path)}):
        pass
    assert "earlier run" in caplog.text


def test_an_operators_directory_that_does_not_exist_is_named_in_the_error(tmp_path: Path):
    missing = tmp_path / "missing"
    with (
        pytest.raises(ConfigError, match=MULTIPROC_DIR_ENV),
        shared_between_workers({MULTIPROC_DIR_ENV: str(missing)}),
    ):
        pass


def test_in_one_process_the_exposition_is_the_apps_registry():
    metrics = GatewayMetrics()
    metrics.graphql_requests.labels(status="200").inc(3)
    assert metrics.exposition({}) == generate_latest(metrics.registry)
    assert b'gateway_graphql_requests_total{status="200"} 3.0' in metrics.exposition({})
