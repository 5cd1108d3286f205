"""Token rotation without a restart: `GATEWAY_TOKENS_FILE` is watched; every worker
applies the same tokens; a broken file never replaces good tokens nor kills a worker.

The probe: after revoking a token in the file and one worker restarting, the token got
8 answers and 12 refusals out of 20; a broken file made a restarted worker crash-loop
(11 deaths in 40 s) while the other served on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from gateway.config import Settings, TokenSpec, read_tokens_file
from gateway.http import token_file
from gateway.http.access import hash_token
from gateway.http.app import create_app
from tests.support import gateway_process, serve, wait_until

QUERY = {"query": "{ jobs(first: 1) { nodes { id } } }"}
TOKENS = {name: f"kgw_{name}-secret-token" for name in ("alpha", "beta", "gamma")}


def write_tokens(path: Path, *names: str) -> None:
    """Replace the file the way an operator's tooling would: write aside, then rename."""
    entries = [TokenSpec(name, hash_token(TOKENS[name]), None).entry() for name in names]
    aside = path.with_suffix(".new")
    aside.write_text(json.dumps(entries))
    os.replace(aside, path)


def write_broken(path: Path, text: str) -> None:
    aside = path.with_suffix(".new")
    aside.write_text(text)
    os.replace(aside, path)


def status(url: str, name: str) -> int:
    """One request on a connection of its own (so, with several workers, any of them)."""
    headers = {"authorization": f"Bearer {TOKENS[name]}"}
    return httpx.post(f"{url}/graphql", json=QUERY, headers=headers, timeout=10).status_code


def statuses(url: str, name: str, times: int = 20) -> set[int]:
    return {status(url, name) for _ in range(times)}


@pytest.fixture
def tokens_path(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.json"
    write_tokens(path, "alpha", "beta")
    return path


@pytest.fixture
def fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(token_file, "POLL_SECONDS", 0.1)


def test_a_changed_tokens_file_applies_without_a_restart(
    gateway_settings: Settings,
    tokens_path: Path,
    fast_polling: None,
    caplog: pytest.LogCaptureFixture,
):
    settings = dataclasses.replace(
        gateway_settings, tokens=read_tokens_file(str(tokens_path)), tokens_file=str(tokens_path)
    )
    with caplog.at_level(logging.INFO, logger="gateway.tokens"), serve(create_app(settings)) as url:
        assert (status(url, "alpha"), status(url, "beta"), status(url, "gamma")) == (200, 200, 401)

        write_tokens(tokens_path, "alpha", "gamma")  # rotate: beta out, gamma in
        wait_until(lambda: status(url, "beta") == 401, 5, "beta to be revoked")
        assert (status(url, "alpha"), status(url, "gamma")) == (200, 200)

        for broken in ("", "[]", "{not json", '[{"name": "x"}]'):
            write_broken(tokens_path, broken)
            time.sleep(0.4)
            assert (status(url, "alpha"), status(url, "gamma"), status(url, "beta")) == (
                200,
                200,
                401,
            ), broken

    rejected = [r for r in caplog.records if getattr(r, "event", None) == "tokens_rejected"]
    assert len(rejected) == 4 and all(r.levelno == logging.ERROR for r in rejected)
    assert "GATEWAY_TOKENS_FILE" in rejected[0].getMessage()


def test_workers_agree_on_tokens_and_survive_a_broken_file(tmp_path: Path, tokens_path: Path):
    env = {"GATEWAY_TOKENS_FILE": str(tokens_path), "GATEWAY_RATE_LIMIT": "0"}
    with gateway_process(tmp_path, workers=2, env=env) as gateway:
        url = gateway.url
        assert statuses(url, "alpha") == {200} and statuses(url, "beta") == {200}

        # Revoked in the file: within two polling intervals no worker accepts it.
        write_tokens(tokens_path, "alpha")
        wait_until(lambda: status(url, "beta") == 401, 10, "beta to be revoked")
        time.sleep(token_file.POLL_SECONDS * 2)
        assert statuses(url, "beta") == {401} and statuses(url, "alpha") == {200}

        # A broken file is refused loudly; a worker restarted meanwhile (killed here)
        # starts with the last good tokens instead of failing to start.
        write_broken(tokens_path, "[{broken")
        wait_until(lambda: "tokens file not applied" in gateway.log(), 10, "the error line")
        before = gateway.workers()
        assert len(before) == 2
        os.kill(before[0], signal.SIGKILL)
        wait_until(
            lambda: len(gateway.workers()) == 2 and before[0] not in gateway.workers(),
            30,
            "a replacement worker",
        )
        wait_until(
            lambda: gateway.log().count("Application startup complete") >= 3,
            30,
            "the replacement to start",
        )
        replaced = gateway.workers()
        assert statuses(url, "alpha", 30) == {200} and statuses(url, "beta") == {401}
        time.sleep(2)
        assert gateway.workers() == replaced  # no crash loop

        # The next good file reaches every worker, the replacement included.
        write_tokens(tokens_path, "alpha", "gamma")
        wait_until(lambda: status(url, "gamma") == 200, 10, "gamma to be accepted")
        time.sleep(token_file.POLL_SECONDS * 2)
        assert statuses(url, "gamma", 30) == {200}
        assert TOKENS["alpha"] not in gateway.log()
