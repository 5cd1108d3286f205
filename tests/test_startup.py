"""Starting and checking the gateway as an operator does: `serve` that refuses what it
must not run, leaves nothing behind when killed, fails early on a taken port; `health`
that says why; `token` that prints what `GATEWAY_TOKENS` takes. Real processes, real HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.config import SANDBOX_API_KEY, ConfigError, Settings, parse_tokens
from gateway.http.access import hash_token
from gateway.http.serving import free_port, wait_until_healthy
from tests.conftest import INTEGRATION_A
from tests.support import LiveServer, gateway_process, wait_until

INTEGRATION_B = "greenhouse:8mJ4sVvB3Ut3PqCbA9z7WkRn"
JOBS = {"query": "{ jobs(first: 1) { nodes { komboId } } }"}


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m gateway ARGS` with no KOMBO_/GATEWAY_ variable of the test run but `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KOMBO_", "GATEWAY_"))}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def accepts_connections(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def running(pid: int) -> bool:
    """False once `pid` has exited (a zombie nobody reaped yet counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


# --- 1. no fake data by accident ---------------------------------------------------------


@pytest.mark.parametrize("key", [pytest.param("", id="empty"), pytest.param("  ", id="blank")])
def test_an_empty_kombo_api_key_stops_serve_instead_of_serving_the_sandbox(key: str) -> None:
    """A deployment whose secret did not arrive used to serve invented jobs, healthy."""
    port = free_port()
    result = run_cli("serve", "--port", str(port), env={"KOMBO_API_KEY": key})

    assert result.returncode == 2, result
    assert result.stderr.startswith("kombo-gateway: KOMBO_API_KEY is set but empty")
    assert result.stdout == ""  # no sandbox, no GraphiQL URL
    assert not accepts_connections(port)


def test_serve_refuses_the_sandbox_when_gateway_allow_sandbox_is_false() -> None:
    port = free_port()
    result = run_cli("serve", "--port", str(port), env={"GATEWAY_ALLOW_SANDBOX": "false"})

    assert result.returncode == 2, result
    assert result.stderr.startswith("kombo-gateway: ")
    assert "KOMBO_API_KEY" in result.stderr and "GATEWAY_ALLOW_SANDBOX" in result.stderr
    assert result.stdout == ""  # nothing started
    assert not accepts_connections(port)


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"KOMBO_API_KEY": SANDBOX_API_KEY}, id="key"),
        pytest.param({"GATEWAY_KOMBO_KEY_PASSTHROUGH": "true"}, id="pass-through"),
    ],
)
def test_a_gateway_without_the_sandbox_still_serves_the_kombo_it_is_given(
    env: dict[str, str], sandbox_url: str, tmp_path: Path
) -> None:
    """GATEWAY_ALLOW_SANDBOX=false (the image's setting) only refuses the stand-in."""
    environ = {
        "GATEWAY_ALLOW_SANDBOX": "false",
        "KOMBO_BASE_URL": f"{sandbox_url}/v1",  # the tests' sandbox plays the real Kombo
        "KOMBO_INTEGRATION_ID": INTEGRATION_A,
        **env,
    }
    with gateway_process(tmp_path, env=environ) as gateway:
        headers = {"X-Kombo-Api-Key": SANDBOX_API_KEY}
        result = httpx.post(f"{gateway.url}/graphql", json=JOBS, headers=headers).json()
        assert len(result["data"]["jobs"]["nodes"]) == 1
        printed = gateway.stdout.read_text()
    assert f"Serving Kombo at {sandbox_url}/v1" in printed and "sandbox" not in printed


def test_gateway_allow_sandbox_is_a_boolean_that_defaults_to_true() -> None:
    assert Settings.from_env({}).allow_sandbox is True
    assert Settings.from_env({"GATEWAY_ALLOW_SANDBOX": "false"}).allow_sandbox is False
    with pytest.raises(ConfigError, match="GATEWAY_ALLOW_SANDBOX='maybe' is not a boolean"):
        Settings.from_env({"GATEWAY_ALLOW_SANDBOX": "maybe"})


# --- 2. nothing outlives serve -----------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_killing_serve_stops_its_sandbox_and_workers(workers: int, tmp_path: Path) -> None:
    """SIGKILL leaves no clean-up to `serve`: its sandbox (and its workers) used to serve
    on, orphaned, holding their ports."""
    with gateway_process(tmp_path, workers=workers) as gateway:
        sandbox = re.search(r"http://127\.0\.0\.1:(\d+)/v1", gateway.stdout.read_text())
        assert sandbox, gateway.stdout.read_text()
        sandbox_port, gateway_port = int(sandbox.group(1)), int(gateway.url.rsplit(":", 1)[1])
        pid = gateway.process.pid
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        assert accepts_connections(sandbox_port)

        os.kill(pid, signal.SIGKILL)
        gateway.process.wait(timeout=10)

        wait_until(lambda: not any(map(running, children)), 10, "serve's children to exit")
        assert not accepts_connections(sandbox_port)
        assert not accepts_connections(gateway_port)


def test_the_sandbox_of_serve_stops_when_its_pipe_from_serve_closes() -> None:
    """The portable way (no Linux parent-death signal needed): EOF on stdin, which only
    `serve` writes to, means `serve` is gone."""
    port = free_port()
    command = [sys.executable, "-m", "gateway", "sandbox", "--port", str(port)]
    command += ["--watch-parent", str(os.getpid())]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/healthz", process)
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=10)
        assert not accepts_connections(port)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# --- 3. a taken port ----------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_a_port_in_use_stops_serve_before_anything_starts(workers: int) -> None:
    """It used to start the sandbox and print GraphiQL's URL for a port another process
    owned, then die with errno 98."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--port", str(port), "--workers", str(workers))

    assert result.returncode == 2, result
    assert result.stderr.startswith(f"kombo-gateway: cannot listen on 127.0.0.1:{port}: ")
    assert "already in use" in result.stderr
    assert result.stdout == ""  # no sandbox, no GraphiQL URL


# --- 4. addresses, help, health -----------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("serve", "--port", "99999"), id="serve-99999"),
        pytest.param(("serve", "--port", "0"), id="serve-0"),
        pytest.param(("serve", "--port", "http"), id="serve-word"),
        pytest.param(("sandbox", "--port", "65536"), id="sandbox-65536"),
        pytest.param(("health", "--port", "-1"), id="health-negative"),
    ],
)
def test_a_port_outside_1_to_65535_is_refused(args: tuple[str, ...]) -> None:
    result = run_cli(*args)

    assert result.returncode == 2
    assert f"argument --port: '{args[-1]}' is not a port number (1-65535)" in result.stderr


@pytest.mark.parametrize("command", ["serve", "health"])
def test_gateway_port_is_checked_like_the_flag_and_named_when_wrong(command: str) -> None:
    result = run_cli(command, env={"GATEWAY_PORT": "99999"})

    assert result.returncode == 2
    assert "GATEWAY_PORT='99999' is not a port number (1-65535)" in result.stderr


def test_serve_help_describes_each_option_and_shows_its_default() -> None:
    plain = " ".join(run_cli("serve", "--help").stdout.split())
    assert "(default: 127.0.0.1)" in plain and "(default: 8000)" in plain
    assert "(default: 1)" in plain  # --workers
    assert "GATEWAY_HOST" in plain and "GATEWAY_PORT" in plain
    assert "GATEWAY_ALLOW_SANDBOX" in plain

    configured = run_cli("serve", "--help", env={"GATEWAY_HOST": "0.0.0.0", "GATEWAY_PORT": "9123"})
    shown = " ".join(configured.stdout.split())
    assert "(default: 0.0.0.0)" in shown and "(default: 9123)" in shown


def test_serve_and_health_take_their_address_from_gateway_host_and_port(tmp_path: Path) -> None:
    """The image sets GATEWAY_HOST=0.0.0.0 and GATEWAY_PORT; its health check, with no
    flags, must check the port the server listens on (on loopback)."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KOMBO_", "GATEWAY_"))}
    with (tmp_path / "out").open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],  # no --host, no --port
            env={**clean, "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: accepts_connections(port) or process.poll() is not None, 60, "serve")
        assert process.poll() is None, (tmp_path / "out").read_text()
        wait_until_healthy(f"http://127.0.0.1:{port}/healthz", process)

        image = {"GATEWAY_HOST": "0.0.0.0", "GATEWAY_PORT": str(port)}
        healthy = run_cli("health", env=image)
        assert (healthy.returncode, healthy.stdout) == (0, "healthy\n")
        elsewhere = run_cli("health", "--port", str(free_port()), env=image)  # the flag wins
        assert elsewhere.returncode == 1
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_health_says_the_connection_was_refused() -> None:
    port = free_port()
    result = run_cli("health", "--port", str(port))

    assert result.returncode == 1
    assert result.stdout == f"unhealthy: http://127.0.0.1:{port}/healthz: connection refused\n"


def test_health_prints_an_unhealthy_answer_shortened() -> None:
    async def draining(request: Request) -> JSONResponse:
        detail = "x" * 5_000
        return JSONResponse({"status": "draining", "detail": detail}, status_code=503)

    with LiveServer(Starlette(routes=[Route("/healthz", draining)])) as server:
        result = run_cli("health", "--port", str(server.port))

    assert result.returncode == 1
    line = result.stdout.strip()
    prefix = f'unhealthy: http://127.0.0.1:{server.port}/healthz: HTTP 503: {{"status":"draining"'
    assert line.startswith(prefix), line
    assert line.endswith("...") and len(line) < 300, line


def test_health_says_when_nothing_answered_in_time() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        started = time.monotonic()
        result = run_cli("health", "--port", str(port), "--timeout", "0.5")

    assert result.returncode == 1
    assert result.stdout.endswith(f":{port}/healthz: no answer within 0.5 s\n"), result.stdout
    assert time.monotonic() - started < 10


# --- 5. token ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scope",
    [
        pytest.param((), id="neither"),
        pytest.param(("--integration", INTEGRATION_A, "--all-integrations"), id="both"),
    ],
)
def test_token_needs_an_explicit_choice_of_integrations(scope: tuple[str, ...]) -> None:
    """Without `--integration` it used to make a token for every integration."""
    result = run_cli("token", "--name", "web", *scope)

    assert result.returncode == 2
    assert "--all-integrations" in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("--integration", "bogus"), id="integration"),
        pytest.param(("--all-integrations", "--default", "personio:"), id="default"),
    ],
)
def test_token_checks_integration_ids_as_the_gateway_does(args: tuple[str, ...]) -> None:
    result = run_cli("token", "--name", "web", *args)

    assert result.returncode == 2
    assert f"{args[-1]!r} is not a Kombo integration ID" in result.stderr


def pasted(stdout: str) -> tuple[str, str, str]:
    """The token, the `GATEWAY_TOKENS` value (as a shell reads the printed line) and the
    entry to append, from `token`'s output."""
    token = re.search(r"^\s+(kgw_\S+)$", stdout, re.MULTILINE)
    assignment = re.search(r"^\s+(GATEWAY_TOKENS=.*)$", stdout, re.MULTILINE)
    entry = re.search(r"^\s+(\{.*\})$", stdout, re.MULTILINE)
    assert token and assignment and entry, stdout
    words = shlex.split(assignment.group(1))
    assert len(words) == 1 and words[0].startswith("GATEWAY_TOKENS="), words
    return token.group(1), words[0].removeprefix("GATEWAY_TOKENS="), entry.group(1)


def test_token_prints_a_gateway_tokens_value_ready_to_paste() -> None:
    result = run_cli(
        "token",
        "--name",
        "it's the web team",  # a quote: the value must survive the shell
        "--integration",
        INTEGRATION_A,
        "--integration",
        INTEGRATION_B,
        "--default",
        INTEGRATION_A,
    )

    assert result.returncode == 0, result.stderr
    token, value, entry = pasted(result.stdout)
    [spec] = parse_tokens(value, "GATEWAY_TOKENS")
    assert spec.name == "it's the web team" and spec.sha256 == hash_token(token)
    assert spec.integrations == frozenset({INTEGRATION_A, INTEGRATION_B})
    assert spec.default_integration == INTEGRATION_A
    assert json.loads(value) == [json.loads(entry)]
    assert "GATEWAY_TOKENS_FILE" in result.stdout


def test_a_pasted_all_integrations_token_opens_the_gateway(tmp_path: Path) -> None:
    result = run_cli("token", "--name", "ops", "--all-integrations")
    token, value, _ = pasted(result.stdout)
    assert parse_tokens(value, "GATEWAY_TOKENS")[0].integrations is None  # "*"

    with gateway_process(tmp_path, env={"GATEWAY_TOKENS": value}) as gateway:
        refused = httpx.post(f"{gateway.url}/graphql", json=JOBS)
        bearer = {"Authorization": f"Bearer {token}", "X-Integration-Id": INTEGRATION_B}
        admitted = httpx.post(f"{gateway.url}/graphql", json=JOBS, headers=bearer)
    assert refused.status_code == 401
    assert admitted.status_code == 200 and admitted.json()["data"]["jobs"]["nodes"]
