"""Kombo's `data-changed` webhook, sent by the sandbox after one of its jobs was changed.

Why: a gateway that drops cached answers on Kombo's webhook must be testable, and usable
in `make run`, without Kombo. So the sandbox sends what Kombo would (`shared/kombo/
webhooks.md`) after a change made through `/_sandbox/jobs/changes` (`gateway.sandbox.
changes`), to a URL and with a secret given at start-up (`create_sandbox_app(webhook_url=,
webhook_secret=)`, `kombo-gateway sandbox` reads `SANDBOX_WEBHOOK_URL` and
`SANDBOX_WEBHOOK_SECRET`) or through the control route.

Control routes (no authentication; the sandbox is a test tool)::

    POST   /_sandbox/webhooks  {"url": "http://...", "secret": "..."}    -> 200 STATUS
    GET    /_sandbox/webhooks                                            -> 200 STATUS
    DELETE /_sandbox/webhooks  webhooks off, recorded deliveries forgotten  (204)

STATUS (the secret is never shown, only that one is set)::

    {"webhook": {"url": "http://...", "secret_set": true} | null,
     "deliveries": [DELIVERY, ...]}                  (the last 50, oldest first)

DELIVERY::

    {"event_id": "...", "type": "data-changed", "integration_id": "...", "url": "...",
     "status": "pending" | "delivered" | "failed", "attempts": 0..3,
     "response_status": 200 | null, "error": null | "what went wrong"}

Both keys are required; anything else, or a URL that is not absolute http(s), is 400
`{"error": "..."}` (which never echoes the values given).

What is sent, as Kombo sends it::

    POST <url>
    Content-Type: application/json
    X-Kombo-Signature: <HMAC-SHA256 of the raw body keyed with the secret (UTF-8),
                        base64url without padding>

    {"id": "<event id>", "type": "data-changed", "data": {"integration_id": "...",
     "integration_tool": "greenhouse", "integration_category": "ATS",
     "changed_models": [{"name": "ats_jobs"}]}}

Delivery never holds up the control request: it starts after that was answered, in a task
of its own, with a timeout of 5 s per attempt and at most 3 attempts (connection errors,
timeouts, 408, 429 and 5xx are retried after 0.5 s, then 1.5 s; redirects are not
followed). Any other answer than 2xx fails it: logged at WARNING and recorded, never raised.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.sandbox.data import BASE58_ALPHABET, KOMBO_ID_LENGTH
from gateway.sandbox.faults import ControlError, bad_request, json_body, only_keys

SIGNATURE_HEADER: Final = "X-Kombo-Signature"
MAX_DELIVERIES: Final = 50
ATTEMPT_TIMEOUT_SECONDS: Final = 5.0
RETRY_DELAYS_SECONDS: Final = (0.5, 1.5)
MAX_URL_LENGTH: Final = 2048
MAX_SECRET_LENGTH: Final = 1024

_RETRIED_STATUSES: Final = frozenset({408, 429})
_JSON: Final = "application/json"
_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# What is sent
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """Where `data-changed` goes and the secret it is signed with (kept out of `repr`)."""

    url: str
    secret: str = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """What the status shows: never the secret, only that there is one."""
        return {"url": self.url, "secret_set": bool(self.secret)}


def webhook_target(url: Any, secret: Any) -> WebhookTarget:
    """A validated target.

    Raises:
        ControlError: naming what is wrong, never echoing the URL or the secret.
    """
    if not isinstance(url, str) or not _is_http_url(url):
        raise ControlError(
            f"'url' must be an absolute http:// or https:// URL of at most {MAX_URL_LENGTH} "
            "characters."
        )
    if not isinstance(secret, str) or not 0 < len(secret) <= MAX_SECRET_LENGTH:
        raise ControlError(
            f"'secret' must be a non-empty string of at most {MAX_SECRET_LENGTH} characters."
        )
    return WebhookTarget(url, secret)


def parse_webhook_target(payload: Any) -> WebhookTarget:
    """`{"url": ..., "secret": ...}`, both required."""
    only_keys(payload, frozenset({"url", "secret"}), "the request body")
    missing = [key for key in ("url", "secret") if key not in payload]
    if missing:
        raise ControlError(f"Missing key(s): {', '.join(map(repr, missing))}.")
    return webhook_target(payload["url"], payload["secret"])


def _is_http_url(url: str) -> bool:
    if len(url) > MAX_URL_LENGTH:
        return False
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.host)


def sign(body: bytes, secret: str) -> str:
    """Kombo's `X-Kombo-Signature`: HMAC-SHA256 of the raw body, base64url, no padding."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def data_changed_body(event_id: str, integration_id: str, tool: str) -> bytes:
    """The exact bytes sent (and signed): Kombo's payload for a change of ATS jobs."""
    payload = {
        "id": event_id,
        "type": "data-changed",
        "data": {
            "integration_id": integration_id,
            "integration_tool": tool,
            "integration_category": "ATS",
            "changed_models": [{"name": "ats_jobs"}],
        },
    }
    return orjson.dumps(payload)


def new_event_id() -> str:
    """A fresh event ID shaped like Kombo's IDs (24 base58 characters)."""
    return "".join(secrets.choice(BASE58_ALPHABET) for _ in range(KOMBO_ID_LENGTH))


# --------------------------------------------------------------------------------------------
# Deliveries
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Delivery:
    """One event's delivery, updated as its attempts finish (under the sender's lock)."""

    event_id: str
    integration_id: str
    url: str
    status: str = "pending"
    attempts: int = 0
    response_status: int | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "type": "data-changed",
            "integration_id": self.integration_id,
            "url": self.url,
            "status": self.status,
            "attempts": self.attempts,
            "response_status": self.response_status,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An event recorded as pending, to be sent once the control request was answered."""

    target: WebhookTarget
    delivery: Delivery
    body: bytes


@dataclass(frozen=True, slots=True)
class _Outcome:
    response_status: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.error is None and self.response_status is not None

    @property
    def retryable(self) -> bool:
        status = self.response_status
        if status is None:
            return True  # no answer: connection refused, reset, timed out
        return status in _RETRIED_STATUSES or status >= 500


class WebhookSender:
    """The webhook target and the recent deliveries of one sandbox app.

    A lock guards both, as for the request log: tests read the status from other threads
    while the event loop updates deliveries. One HTTP client is made lazily on the loop
    that first sends (creating one per event would build a TLS context each time).
    """

    def __init__(
        self,
        target: WebhookTarget | None = None,
        *,
        timeout: float = ATTEMPT_TIMEOUT_SECONDS,
        retry_delays: Sequence[float] = RETRY_DELAYS_SECONDS,
    ) -> None:
        self._lock = threading.Lock()
        self._target = target
        self._deliveries: deque[Delivery] = deque(maxlen=MAX_DELIVERIES)
        self._timeout = timeout
        self._retry_delays = tuple(retry_delays)
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def configure(self, target: WebhookTarget) -> None:
        with self._lock:
            self._target = target

    def clear(self) -> None:
        """Webhooks off; recorded deliveries forgotten (those in flight still finish)."""
        with self._lock:
            self._target = None
            self._deliveries.clear()

    def status(self) -> dict[str, Any]:
        with self._lock:
            target = None if self._target is None else self._target.to_json()
            return {"webhook": target, "deliveries": [d.to_json() for d in self._deliveries]}

    def prepare(self, integration_id: str, tool: str) -> PendingEvent | None:
        """Record a pending `data-changed` for the integration; None when none is configured.

        Separate from `dispatch` so the control response can name the event before the
        event is sent (it is sent only once that response went out).
        """
        with self._lock:
            target = self._target
            if target is None:
                return None
            delivery = Delivery(new_event_id(), integration_id, target.url)
            self._deliveries.append(delivery)
        body = data_changed_body(delivery.event_id, integration_id, tool)
        return PendingEvent(target, delivery, body)

    async def dispatch(self, events: Sequence[PendingEvent]) -> None:
        """Start sending each event in a task of its own, and return at once."""
        for event in events:
            task = asyncio.get_running_loop().create_task(self._deliver(event))
            self._tasks.add(task)  # a strong reference, or the task may vanish mid-flight
            task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Cancel deliveries still in flight and close the client (the app's shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = self._client_loop = None

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            # No proxies from the environment: the target is usually this machine.
            self._client = httpx.AsyncClient(timeout=self._timeout, trust_env=False)
            self._client_loop = loop
        return self._client

    async def _deliver(self, event: PendingEvent) -> None:
        headers = {
            "Content-Type": _JSON,
            SIGNATURE_HEADER: sign(event.body, event.target.secret),
        }
        outcome = _Outcome(None, "not sent")
        for delay in (0.0, *self._retry_delays):
            if delay:
                await asyncio.sleep(delay)
            outcome = await self._attempt(event.target.url, event.body, headers)
            self._record(event.delivery, outcome)
            if outcome.delivered or not outcome.retryable:
                break
        self._log(event.delivery, outcome)

    async def _attempt(self, url: str, body: bytes, headers: dict[str, str]) -> _Outcome:
        try:
            response = await self._http().post(url, content=body, headers=headers)
        except Exception as error:  # whatever fails is the delivery's, never the app's
            detail = str(error)
            return _Outcome(None, type(error).__name__ + (f": {detail}" if detail else ""))
        if 200 <= response.status_code < 300:
            return _Outcome(response.status_code, None)
        return _Outcome(response.status_code, f"HTTP {response.status_code}")

    def _record(self, delivery: Delivery, outcome: _Outcome) -> None:
        with self._lock:
            delivery.attempts += 1
            delivery.response_status = outcome.response_status
            delivery.error = outcome.error
            if outcome.delivered:
                delivery.status = "delivered"
            elif not outcome.retryable or delivery.attempts > len(self._retry_delays):
                delivery.status = "failed"

    @staticmethod
    def _log(delivery: Delivery, outcome: _Outcome) -> None:
        what = f"data-changed {delivery.event_id} for integration {delivery.integration_id}"
        if outcome.delivered:
            _log.info("Sandbox webhook %s delivered to %s", what, delivery.url)
            return
        _log.warning(
            "Sandbox webhook %s to %s failed after %d attempt(s): %s",
            what,
            delivery.url,
            delivery.attempts,
            outcome.error,
        )


# --------------------------------------------------------------------------------------------
# Control route
# --------------------------------------------------------------------------------------------


def webhook_routes(sender: WebhookSender) -> list[Route]:
    """`/_sandbox/webhooks` (see the module docstring)."""

    async def webhooks(request: Request) -> Response:
        if request.method == "DELETE":
            sender.clear()
            return Response(status_code=204)
        if request.method == "POST":
            try:
                sender.configure(parse_webhook_target(await json_body(request)))
            except ControlError as error:
                return bad_request(str(error))
        return Response(orjson.dumps(sender.status()), media_type=_JSON)

    return [Route("/_sandbox/webhooks", webhooks, methods=["GET", "POST", "DELETE"])]


__all__ = [
    "ATTEMPT_TIMEOUT_SECONDS",
    "MAX_DELIVERIES",
    "RETRY_DELAYS_SECONDS",
    "SIGNATURE_HEADER",
    "Delivery",
    "PendingEvent",
    "WebhookSender",
    "WebhookTarget",
    "data_changed_body",
    "new_event_id",
    "parse_webhook_target",
    "sign",
    "webhook_routes",
    "webhook_target",
]
