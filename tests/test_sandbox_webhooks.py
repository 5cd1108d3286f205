"""The sandbox changes jobs and sends Kombo's signed `data-changed`, over real HTTP.

Each test serves its own sandbox app (changes and the webhook target belong to one app)
and, where webhooks go somewhere, a tiny receiver app that records what reached it. The
signature is recomputed here from the raw bytes received, and the body is read with the
official `kombo` SDK's webhook model, so the sandbox cannot drift from Kombo's shape.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import orjson
import pytest
from kombo.models import DataChangedWebhookPayload, WebhookDataChangedWebhookPayloadRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.config import SANDBOX_API_KEY, SANDBOX_INTEGRATION_IDS
from gateway.sandbox.app import create_sandbox_app
from gateway.sandbox.data import dataset
from tests.support import serve, wait_until

GREENHOUSE, PERSONIO = SANDBOX_INTEGRATION_IDS
SECRET = "whsec-sandbox-test-7Qm2xZ"
AUTH = {"Authorization": f"Bearer {SANDBOX_API_KEY}"}
#: Jobs not deleted in the generated data (index 2 is deleted in both integrations).
JOB = dataset()[GREENHOUSE].jobs[0]
OTHER_JOB = dataset()[GREENHOUSE].jobs[1]
PERSONIO_JOB = dataset()[PERSONIO].jobs[0]


# --------------------------------------------------------------------------------------------
# A receiver that records every webhook, and helpers
# --------------------------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers `POST /hook` with the next of `statuses` (then 200), after `delay` seconds."""

    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            with self._lock:
                headers = {k.decode().lower(): v.decode() for k, v in request.headers.raw}
                self.requests.append(Received(headers, body))
                status = self.statuses.pop(0) if self.statuses else 200
            await anyio.sleep(self.delay)
            return Response(status_code=status)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.requests)


@contextlib.contextmanager
def receiving(receiver: Receiver) -> Iterator[str]:
    """Serve `receiver`; yields the webhook URL to configure."""
    with serve(receiver.app()) as url:
        yield url + "/hook"


@contextlib.contextmanager
def sandbox(**options: Any) -> Iterator[httpx.Client]:
    """A fresh sandbox app served on its own; yields a client at its root URL."""
    with serve(create_sandbox_app(**options)) as url, httpx.Client(base_url=url, timeout=10) as c:
        yield c


def change(http: httpx.Client, *changes: tuple[str, dict[str, Any]]) -> httpx.Response:
    body = {"changes": [{"id": job_id, "set": fields} for job_id, fields in changes]}
    return http.post("/_sandbox/jobs/changes", json=body)


def jobs(http: httpx.Client, integration: str = GREENHOUSE, **params: str) -> list[dict[str, Any]]:
    headers = {**AUTH, "X-Integration-Id": integration}
    response = http.get("/v1/ats/jobs", params={"page_size": "250", **params}, headers=headers)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["data"]["results"]
    return results


def expected_signature(body: bytes, secret: str) -> str:
    """Kombo's encoding, computed here independently: base64url of the HMAC, no padding."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def deliveries(http: httpx.Client) -> list[dict[str, Any]]:
    response = http.get("/_sandbox/webhooks")
    assert response.status_code == 200
    found: list[dict[str, Any]] = response.json()["deliveries"]
    return found


def settled(http: httpx.Client, count: int) -> list[dict[str, Any]]:
    """The deliveries once `count` of them finished (delivered or failed)."""
    wait_until(
        lambda: sum(d["status"] != "pending" for d in deliveries(http)) >= count,
        15,
        f"{count} deliveries to finish",
    )
    return deliveries(http)


def a_moment_ago() -> str:
    moment = datetime.now(UTC) - timedelta(milliseconds=5)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------
# Changing jobs
# --------------------------------------------------------------------------------------------


def test_a_change_is_served_at_once_and_updated_after_sees_it() -> None:
    before = a_moment_ago()
    with sandbox() as http:
        answer = change(http, (JOB.id, {"name": "Chief Tea Officer", "status": "CLOSED"}))
        assert answer.status_code == 200, answer.text
        [changed] = answer.json()["jobs"]
        assert answer.json()["events"] == []  # no webhook configured
        assert changed["name"] == "Chief Tea Officer" and changed["status"] == "CLOSED"
        assert changed["changed_at"] > before and changed["remote_updated_at"] > before
        unchanged = {k: v for k, v in JOB.job.items() if k not in ("name", "status")}
        assert {k: changed[k] for k in unchanged} == {
            **unchanged,
            "changed_at": changed["changed_at"],
            "remote_updated_at": changed["remote_updated_at"],
        }

        [served] = jobs(http, ids=JOB.id)
        assert served == changed
        assert [j["id"] for j in jobs(http, updated_after=before)] == [JOB.id]
        assert [j["id"] for j in jobs(http, name_contains="tea officer")] == [JOB.id]
        assert JOB.id not in {j["id"] for j in jobs(http, statuses="OPEN")}
        assert jobs(http, PERSONIO, updated_after=before) == []

    with sandbox() as other:  # another sandbox app never sees this one's changes
        assert jobs(other, ids=JOB.id)[0]["name"] == JOB.job["name"]


def test_every_change_moves_changed_at_forward_and_a_no_op_changes_nothing() -> None:
    with sandbox() as http:
        first = change(http, (JOB.id, {"description": None})).json()["jobs"][0]
        second = change(http, (JOB.id, {"description": "<p>Tea.</p>"})).json()["jobs"][0]
        assert second["changed_at"] > first["changed_at"]
        same = change(http, (JOB.id, {"description": "<p>Tea.</p>"})).json()
        assert same["jobs"][0] == second and same["events"] == []


def test_deleting_and_restoring_a_job() -> None:
    with sandbox() as http:
        answer = change(http, (JOB.id, {"remote_deleted_at": "2026-11-01T10:00:00+01:00"}))
        assert answer.json()["jobs"][0]["remote_deleted_at"] == "2026-11-01T09:00:00.000Z"
        assert JOB.id not in {j["id"] for j in jobs(http)}
        assert JOB.id in {j["id"] for j in jobs(http, include_deleted="true")}
        change(http, (JOB.id, {"remote_deleted_at": None}))
        assert JOB.id in {j["id"] for j in jobs(http)}


def test_a_batch_changes_jobs_in_several_integrations() -> None:
    fields = {
        "employment_type": "PART_TIME",
        "visibility": "INTERNAL",
        "weekly_hours": 20,
        "confidential": True,
    }
    with sandbox() as http:
        answer = change(
            http, (JOB.id, fields), (PERSONIO_JOB.id, {"name": "Barista"}), (JOB.id, {"name": "X"})
        )
        assert answer.status_code == 200, answer.text
        served = answer.json()["jobs"]
        assert [j["id"] for j in served] == [JOB.id, PERSONIO_JOB.id, JOB.id]
        [greenhouse] = jobs(http, ids=JOB.id)
        assert greenhouse == served[2]
        assert {k: greenhouse[k] for k in fields} == fields and greenhouse["name"] == "X"
        assert jobs(http, PERSONIO, ids=PERSONIO_JOB.id)[0]["name"] == "Barista"


BAD_CHANGES: list[tuple[Any, str]] = [
    ({}, "'changes'"),
    ({"changes": []}, "'changes'"),
    ({"changes": {"id": JOB.id}}, "'changes'"),
    ({"changes": [{"id": JOB.id}]}, "set"),
    ({"changes": [{"id": JOB.id, "set": {}}]}, "set"),
    ({"changes": [{"id": JOB.id, "set": {"name": "a"}, "when": "now"}]}, "when"),
    ({"changes": [{"id": 7, "set": {"name": "a"}}]}, "id"),
    ({"changes": [{"id": JOB.id, "set": {"salary": 1}}]}, "salary"),
    ({"changes": [{"id": JOB.id, "set": {"changed_at": "2026-01-01T00:00:00Z"}}]}, "changed_at"),
    ({"changes": [{"id": JOB.id, "set": {"id": "x"}}]}, "'id'"),
    ({"changes": [{"id": JOB.id, "set": {"name": 5}}]}, "name"),
    ({"changes": [{"id": JOB.id, "set": {"status": "OPNE"}}]}, "status"),
    ({"changes": [{"id": JOB.id, "set": {"employment_type": "full_time"}}]}, "employment_type"),
    ({"changes": [{"id": JOB.id, "set": {"weekly_hours": "40"}}]}, "weekly_hours"),
    ({"changes": [{"id": JOB.id, "set": {"weekly_hours": True}}]}, "weekly_hours"),
    ({"changes": [{"id": JOB.id, "set": {"confidential": "yes"}}]}, "confidential"),
    ({"changes": [{"id": JOB.id, "set": {"remote_deleted_at": "yesterday"}}]}, "remote_deleted"),
    (
        {"changes": [{"id": JOB.id, "set": {"name": "ok"}}, {"id": JOB.id, "set": {"x": 1}}]},
        "changes[1]",
    ),
]


@pytest.fixture(scope="module")
def unchanged() -> Iterator[httpx.Client]:
    """One sandbox for the tests of refused input: none of them may change anything."""
    with sandbox() as http:
        yield http


@pytest.mark.parametrize(("payload", "named"), BAD_CHANGES)
def test_bad_change_input_is_400_and_changes_nothing(
    unchanged: httpx.Client, payload: Any, named: str
) -> None:
    answer = unchanged.post("/_sandbox/jobs/changes", json=payload)
    assert answer.status_code == 400, answer.text
    assert named in answer.json()["error"]
    assert jobs(unchanged, ids=JOB.id)[0] == JOB.job


def test_a_body_that_is_not_json_is_400(unchanged: httpx.Client) -> None:
    answer = unchanged.post("/_sandbox/jobs/changes", content=b"{name: tea}")
    assert answer.status_code == 400 and "JSON" in answer.json()["error"]


def test_an_unknown_job_is_404_and_nothing_of_the_batch_changes(unchanged: httpx.Client) -> None:
    unknown = "1" * 24
    answer = change(unchanged, (JOB.id, {"name": "Renamed"}), (unknown, {"name": "Ghost"}))
    assert answer.status_code == 404
    assert unknown in answer.json()["error"]
    assert jobs(unchanged, ids=JOB.id)[0] == JOB.job


# --------------------------------------------------------------------------------------------
# The webhook
# --------------------------------------------------------------------------------------------


def test_a_change_sends_kombos_signed_data_changed() -> None:
    receiver = Receiver()
    with (
        receiving(receiver) as hook,
        sandbox(webhook_url=hook, webhook_secret=SECRET) as http,
    ):
        answer = change(http, (JOB.id, {"name": "Chief Tea Officer"}))
        [event] = answer.json()["events"]
        assert event["integration_id"] == GREENHOUSE
        wait_until(lambda: len(receiver.received()) == 1, 10, "the webhook")
        [delivery] = settled(http, 1)

    [received] = receiver.received()
    assert received.headers["content-type"] == "application/json"
    signature = received.headers["x-kombo-signature"]
    assert hmac.compare_digest(signature, expected_signature(received.body, SECRET))
    assert signature != expected_signature(received.body, SECRET + "x")

    payload = orjson.loads(received.body)
    assert payload == {
        "id": event["id"],
        "type": "data-changed",
        "data": {
            "integration_id": GREENHOUSE,
            "integration_tool": "greenhouse",
            "integration_category": "ATS",
            "changed_models": [{"name": "ats_jobs"}],
        },
    }
    parsed = DataChangedWebhookPayload.model_validate_json(received.body)
    assert parsed.type == "data-changed" and parsed.data.integration_id == GREENHOUSE
    assert [m.name for m in parsed.data.changed_models] == ["ats_jobs"]
    request = WebhookDataChangedWebhookPayloadRequest.model_validate(
        {"X-Kombo-Signature": signature, "body": payload}
    )
    assert request.body == parsed

    assert delivery == {
        "event_id": event["id"],
        "type": "data-changed",
        "integration_id": GREENHOUSE,
        "url": hook,
        "status": "delivered",
        "attempts": 1,
        "response_status": 200,
        "error": None,
    }


def test_one_event_per_changed_integration_each_with_its_own_id() -> None:
    receiver = Receiver()
    with (
        receiving(receiver) as hook,
        sandbox(webhook_url=hook, webhook_secret=SECRET) as http,
    ):
        answer = change(
            http,
            (JOB.id, {"status": "ARCHIVED"}),
            (OTHER_JOB.id, {"status": "DRAFT"}),
            (PERSONIO_JOB.id, {"visibility": "UNLISTED"}),
        )
        events = answer.json()["events"]
        assert [e["integration_id"] for e in events] == [GREENHOUSE, PERSONIO]
        assert len({e["id"] for e in events}) == 2
        settled(http, 2)
    bodies = {orjson.loads(r.body)["id"]: orjson.loads(r.body)["data"] for r in receiver.received()}
    assert {e["id"] for e in events} == set(bodies)
    tools = {data["integration_id"]: data["integration_tool"] for data in bodies.values()}
    assert tools == {GREENHOUSE: "greenhouse", PERSONIO: "personio"}


def test_the_control_route_sets_shows_and_removes_the_webhook() -> None:
    receiver = Receiver()
    with receiving(receiver) as hook, sandbox() as http:
        assert http.get("/_sandbox/webhooks").json() == {"webhook": None, "deliveries": []}
        configured = http.post("/_sandbox/webhooks", json={"url": hook, "secret": SECRET})
        assert configured.status_code == 200
        assert configured.json() == {
            "webhook": {"url": hook, "secret_set": True},
            "deliveries": [],
        }
        event = change(http, (JOB.id, {"name": "One"})).json()["events"][0]
        assert settled(http, 1)[0]["event_id"] == event["id"]

        assert http.delete("/_sandbox/webhooks").status_code == 204
        assert http.get("/_sandbox/webhooks").json() == {"webhook": None, "deliveries": []}
        assert change(http, (JOB.id, {"name": "Two"})).json()["events"] == []
        time.sleep(0.5)
    assert len(receiver.received()) == 1


def test_no_webhook_is_sent_when_none_is_configured() -> None:
    receiver = Receiver()
    with receiving(receiver), sandbox() as http:
        assert change(http, (JOB.id, {"name": "Unannounced"})).json()["events"] == []
        time.sleep(0.5)
        assert deliveries(http) == []
    assert receiver.received() == []


@pytest.mark.parametrize(
    "payload",
    [
        {"url": "http://127.0.0.1:9/hook"},
        {"secret": SECRET},
        {"url": "ftp://127.0.0.1/hook", "secret": SECRET},
        {"url": "/webhooks/kombo", "secret": SECRET},
        {"url": "http://", "secret": SECRET},
        {"url": 5, "secret": SECRET},
        {"url": "http://127.0.0.1:9/hook", "secret": ""},
        {"url": "http://127.0.0.1:9/hook", "secret": 12345},
        {"url": "http://127.0.0.1:9/hook", "secret": SECRET, "retries": 9},
        [SECRET],
    ],
)
def test_bad_webhook_configuration_is_400_and_never_echoes_the_secret(
    unchanged: httpx.Client, payload: Any
) -> None:
    answer = unchanged.post("/_sandbox/webhooks", json=payload)
    assert answer.status_code == 400 and answer.json()["error"]
    assert SECRET not in answer.text
    assert unchanged.get("/_sandbox/webhooks").json() == {"webhook": None, "deliveries": []}


def test_the_webhook_is_sent_after_the_answer_and_never_holds_it_up() -> None:
    receiver = Receiver(delay=3.0)
    with (
        receiving(receiver) as hook,
        sandbox(webhook_url=hook, webhook_secret=SECRET) as http,
    ):
        started = time.monotonic()
        answer = change(http, (JOB.id, {"name": "Fast"}))
        assert answer.status_code == 200 and time.monotonic() - started < 1.5
        wait_until(lambda: len(receiver.received()) == 1, 5, "the webhook to arrive")
        assert deliveries(http)[0]["status"] == "pending"  # the receiver still holds it
        assert settled(http, 1)[0]["status"] == "delivered"


def test_a_failing_receiver_is_retried_then_recorded_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver = Receiver(statuses=[503, 500, 502])
    with (
        receiving(receiver) as hook,
        sandbox(webhook_url=hook, webhook_secret=SECRET) as http,
    ):
        event = change(http, (JOB.id, {"name": "Never heard of"})).json()["events"][0]
        [delivery] = settled(http, 1)
        assert change(http, (JOB.id, {"status": "OPEN"})).status_code == 200  # still serving
    assert delivery["status"] == "failed" and delivery["attempts"] == 3
    assert delivery["response_status"] == 502 and delivery["error"] == "HTTP 502"
    assert len({r.body for r in receiver.received()[:3]}) == 1  # the same event, 3 times
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(event["id"] in message and "3 attempt" in message for message in warnings)


def test_a_retried_delivery_can_still_succeed_and_4xx_is_not_retried() -> None:
    receiver = Receiver(statuses=[503, 200, 401])
    with (
        receiving(receiver) as hook,
        sandbox(webhook_url=hook, webhook_secret=SECRET) as http,
    ):
        change(http, (JOB.id, {"name": "Second time lucky"}))
        [first] = settled(http, 1)
        change(http, (JOB.id, {"name": "Refused"}))
        second = settled(http, 2)[1]
    assert (first["status"], first["attempts"], first["response_status"]) == ("delivered", 2, 200)
    assert (second["status"], second["attempts"], second["error"]) == ("failed", 1, "HTTP 401")


def test_an_unreachable_receiver_is_a_recorded_failure() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with sandbox(webhook_url=f"http://127.0.0.1:{port}/hook", webhook_secret=SECRET) as http:
        change(http, (JOB.id, {"name": "Into the void"}))
        [delivery] = settled(http, 1)
        assert jobs(http, ids=JOB.id)[0]["name"] == "Into the void"
    assert delivery["status"] == "failed" and delivery["attempts"] == 3
    assert delivery["response_status"] is None and delivery["error"].startswith("ConnectError")


def test_the_secret_never_appears_in_a_response_or_a_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver = Receiver(statuses=[400])
    seen: list[str] = []
    with receiving(receiver) as hook, sandbox() as http:
        for answer in (
            http.post("/_sandbox/webhooks", json={"url": hook, "secret": SECRET}),
            http.get("/_sandbox/webhooks"),
            change(http, (JOB.id, {"name": "Secretive"})),
            http.post("/_sandbox/webhooks", json={"url": "nope", "secret": SECRET}),
            http.post("/_sandbox/webhooks", json={"url": hook, "secret": SECRET, "x": SECRET}),
        ):
            seen.append(str(answer.headers) + answer.text)
        settled(http, 1)
        seen.append(http.get("/_sandbox/webhooks").text)
    assert all(SECRET not in text for text in seen)
    assert SECRET not in caplog.text
    assert any("failed" in r.getMessage() for r in caplog.records)  # the log did run
    assert all(SECRET not in received.body.decode() for received in receiver.received())


def test_start_up_configuration_is_checked_without_echoing_the_secret() -> None:
    with pytest.raises(ValueError, match="both or neither"):
        create_sandbox_app(webhook_url="http://127.0.0.1:9/hook")
    with pytest.raises(ValueError, match="both or neither"):
        create_sandbox_app(webhook_secret=SECRET)
    with pytest.raises(ValueError, match="url") as refused:
        create_sandbox_app(webhook_url="localhost:9", webhook_secret=SECRET)
    assert SECRET not in str(refused.value)
    with pytest.raises(ValueError, match="secret"):
        create_sandbox_app(webhook_url="http://127.0.0.1:9/hook", webhook_secret="")


def test_kombo_gateway_sandbox_reads_its_webhook_from_the_environment() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hook = "http://127.0.0.1:9/webhooks/kombo"
    environ = {**os.environ, "SANDBOX_WEBHOOK_URL": hook, "SANDBOX_WEBHOOK_SECRET": SECRET}
    command = [sys.executable, "-m", "gateway", "sandbox", "--port", str(port)]
    process = subprocess.Popen(
        command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            return False

        wait_until(answers, 30, "the sandbox process")
        status = httpx.get(f"{url}/_sandbox/webhooks").json()
        assert status["webhook"] == {"url": hook, "secret_set": True}
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=15)
    assert hook.encode() in output and SECRET.encode() not in output


def test_kombo_gateway_sandbox_refuses_half_a_webhook_configuration() -> None:
    environ = {**os.environ, "SANDBOX_WEBHOOK_SECRET": SECRET}
    environ.pop("SANDBOX_WEBHOOK_URL", None)
    command = [sys.executable, "-m", "gateway", "sandbox", "--port", "1"]
    done = subprocess.run(command, env=environ, capture_output=True, timeout=60)
    assert done.returncode == 2
    assert b"SANDBOX_WEBHOOK_URL" in done.stderr and SECRET.encode() not in done.stderr
