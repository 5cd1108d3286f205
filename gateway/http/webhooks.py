"""`POST /webhooks/kombo`: Kombo's `data-changed` webhook drops an integration's cached
answers, in every worker and replica.

Usage (`app.py` routes it only while `KOMBO_WEBHOOK_SECRET` is set; without a secret
the path is a 404 like any unknown one)::

    webhook = KomboWebhook(gateway)
    Route(WEBHOOK_PATH, webhook.handle, methods=["POST"])

Kombo cannot send a gateway token, so the endpoint takes none and is not charged to
the callers' rate limit; the signature is its authentication. Each step is cheap and
comes before the next, so what an anonymous sender can make the gateway do is small:

1. the client address's allowance (`GATEWAY_WEBHOOK_RATE_LIMIT`, shared through Redis
   when configured): 429 with `Retry-After` past it;
2. the body: at most `MAX_BODY_BYTES` (413), within `GATEWAY_BODY_TIMEOUT` (408);
3. `X-Kombo-Signature` over the raw body (`webhook_signature`): 401, nothing changes;
4. the JSON: 400 when it is not an object, or a `data-changed` without its fields;
5. a `data-changed` naming any `ats_*` model raises the integration's generation
   (`gateway.sharing.generations`: a few in-memory steps and one Redis round trip), which
   drops every cached answer of it (every credential's) here at once and, through
   Redis, everywhere. Each event ID is handled once: remembered here (bounded) and,
   with Redis, by every replica (`SET NX EX` in the same round trip). Any other event,
   and a repeated one: 200 and nothing more.

Answers `{"status": "invalidated" | "repeated" | "ignored"}`. Why any `ats_*` model:
`GET /ats/jobs` embeds postings, stages, questions, users, roles and their connections,
so any ATS change may change a job as the gateway serves it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson
from cachetools import TTLCache
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.errors import BadUserInput, GatewayError, RateLimited, Unauthenticated
from gateway.http.client_address import client_address
from gateway.http.limits import RateLimiter
from gateway.http.request_body import read_bounded_body
from gateway.http.state import GatewayState
from gateway.http.view import error_response, refusal_status
from gateway.http.webhook_signature import SIGNATURE_HEADER, signature_matches
from gateway.observability.refusals import SUMMARISED_STATUSES, RefusalSummary
from gateway.observability.request_stats import current_stats
from gateway.sharing.generations import EVENT_MEMORY, Bumped
from gateway.sharing.keys import KeySpace
from gateway.sharing.rate_limit import SharedRateLimiter

logger = logging.getLogger("gateway.webhooks")

#: The largest body read: a `data-changed` event is well under 1 KiB (an ID, the
#: integration, a few dozen model names).
MAX_BODY_BYTES = 64 * 1024
#: Event IDs remembered by one process (the newest; Redis remembers them for all).
REMEMBERED_EVENTS = 10_000
#: Seconds of the rate a full allowance holds: Kombo sends one event per integration
#: after a sync, so several integrations' events may come at once.
BURST_SECONDS = 10

_OUTCOME_BY_STATUS = {
    400: "malformed",
    401: "bad_signature",
    408: "too_slow",
    413: "too_large",
    429: "rate_limited",
}


@dataclass(frozen=True, slots=True)
class DataChanged:
    """A `data-changed` event: which integration, and whether an ATS model changed."""

    event_id: str
    integration_id: str
    ats_changed: bool


def read_event(body: bytes) -> DataChanged | None:
    """The `data-changed` event in `body`, or None for an event of another type.

    Raises:
        BadUserInput: not JSON, not an object, or a `data-changed` without a string
            `id`, a string `data.integration_id` and a list `data.changed_models`.
    """
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadUserInput("The webhook body is not JSON") from None
    if type(event) is not dict:
        raise BadUserInput("The webhook body must be a JSON object")
    if event.get("type") != "data-changed":
        return None
    data = event.get("data")
    event_id = event.get("id")
    integration_id = data.get("integration_id") if type(data) is dict else None
    models = data.get("changed_models") if type(data) is dict else None
    if not (isinstance(event_id, str) and event_id) or not (
        isinstance(integration_id, str) and integration_id
    ):
        raise BadUserInput("A data-changed event needs a string `id` and `data.integration_id`")
    if type(models) is not list:
        raise BadUserInput("A data-changed event needs a list `data.changed_models`")
    return DataChanged(event_id, integration_id, any(_is_ats_model(model) for model in models))


def _is_ats_model(model: Any) -> bool:
    name = model.get("name") if type(model) is dict else None
    return isinstance(name, str) and name.startswith("ats_")


class KomboWebhook:
    """The endpoint, with its own allowance per client address and its memory of events."""

    def __init__(self, gateway: GatewayState) -> None:
        settings = gateway.settings
        assert settings.webhook_secret is not None, "routed only with a secret"
        self._secret = settings.webhook_secret
        self._gateway = gateway
        rate = settings.webhook_rate_limit
        burst = max(1, round(rate * BURST_SECONDS))
        self._limiter = SharedRateLimiter(
            gateway.redis,
            KeySpace(f"{settings.redis_prefix}:webhook"),
            rate=rate,
            burst=burst,
            local=RateLimiter(rate, burst),
        )
        self._handled: TTLCache[tuple[str, str], bool] = TTLCache(
            REMEMBERED_EVENTS, ttl=EVENT_MEMORY
        )
        self._refusals = RefusalSummary(logger)

    async def handle(self, request: Request) -> Response:
        address = client_address(
            request.client,
            request.headers.getlist("x-forwarded-for"),
            trusted=self._gateway.settings.trusted_proxies,
        )
        try:
            status, event = await self._receive(request, address)
        except GatewayError as exc:
            http_status = refusal_status(exc)
            self._count(_OUTCOME_BY_STATUS[http_status])
            if http_status not in SUMMARISED_STATUSES or self._refusals.note(
                status=http_status, address=address
            ):
                self._log(_OUTCOME_BY_STATUS[http_status], address, status=http_status)
            return error_response(str(exc), exc.code, http_status, exc.extensions())
        self._count(status)
        self._log(status, address, event=event)
        return JSONResponse({"status": status})

    async def _receive(self, request: Request, address: str) -> tuple[str, DataChanged | None]:
        """What the webhook did: invalidated, repeated or ignored (and its event)."""
        wait = await self._limiter.acquire(f"addr:{address}")
        if wait is not None:
            raise RateLimited("Too many webhook requests from this address; slow down", wait)
        body = await self._read_body(request)
        if not signature_matches(request.headers.get(SIGNATURE_HEADER), self._secret, body):
            raise Unauthenticated(
                f"Missing or wrong {SIGNATURE_HEADER}: it must be the HMAC-SHA256 of the raw "
                "body, keyed with the webhook secret (hex or base64)"
            )
        event = read_event(body)
        if event is None or not event.ats_changed:
            return "ignored", event
        seen = (event.integration_id, event.event_id)
        if seen in self._handled:
            return "repeated", event
        # Remembered before the round trip: a redelivery arriving meanwhile is a repeat.
        self._handled[seen] = True
        bumped = await self._gateway.generations.bump(event.integration_id, event_id=event.event_id)
        return ("repeated" if bumped is Bumped.REPEATED else "invalidated"), event

    async def _read_body(self, request: Request) -> bytes:
        """The raw body, refused past `MAX_BODY_BYTES` without reading on."""
        timeout = self._gateway.settings.body_timeout
        return await read_bounded_body(
            request, limit=MAX_BODY_BYTES, timeout=timeout, what="webhook"
        )

    def _count(self, outcome: str) -> None:
        self._gateway.metrics.webhooks.labels(outcome=outcome).inc()

    def _log(
        self,
        outcome: str,
        address: str,
        *,
        event: DataChanged | None = None,
        status: int = 200,
    ) -> None:
        """One line per webhook: what it was and what it did, never its body or headers."""
        stats = current_stats()
        logger.info(
            "kombo webhook",
            extra={
                "event": "kombo_webhook",
                "request_id": stats.request_id if stats is not None else None,
                "status": status,
                "outcome": outcome,
                "event_id": event.event_id[:128] if event is not None else None,
                "integration": event.integration_id[:200] if event is not None else None,
                "address": address,
            },
        )
