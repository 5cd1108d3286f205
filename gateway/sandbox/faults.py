"""Test-only fault injection for the Kombo sandbox: queued faults and seeded chaos.

The gateway's retry and error paths need an upstream that fails on demand, over real HTTP.
Control routes (no authentication; the sandbox is a test tool)::

    POST   /_sandbox/faults   {"faults": [FAULT, ...]}   append (FIFO) -> {"faults": queue}
    GET    /_sandbox/faults                              -> {"faults": queue} (still pending)
    DELETE /_sandbox/faults                              clear the queue AND chaos (204)
    POST   /_sandbox/chaos    {"rates": {"503": 0.1, "429": 0.05, "drop": 0.01},
                               "seed": 7, "latency_ms": 0}   -> {"chaos": settings}
    GET    /_sandbox/chaos                               -> {"chaos": settings | null}
    DELETE /_sandbox/chaos                               chaos off (204)

FAULT (every key optional; unknown keys are rejected)::

    {"status": 503, "kombo_code": null, "title": null, "message": null, "body": null,
     "headers": {}, "times": 1, "latency_ms": 0, "drop_connection": false,
     "integration": null, "match_params": null, "path": null}

Faults apply to authenticated `/v1` requests only (`_KomboEdge` asks `FaultInjector.plan`
after checking the key). The first queued fault that matches is used and its `times` counts
down; when no queued fault matches, chaos (if on) draws from its seeded generator.
Bad control input gets 400 `{"error": "..."}`.

A dropped connection is a real TCP reset: the edge finds uvicorn's transport for the
request, sets `SO_LINGER` to 0 and aborts it, so not one byte of HTTP goes out (an
exception in the app would make uvicorn answer 500 instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope

SERVER_SEND_KEY: Final = "sandbox.server_send"
"""Scope key where the sandbox app keeps the server's own `send` (to find the transport)."""

MAX_LATENCY_MS: Final = 60_000
MAX_TIMES: Final = 1_000_000
_DISCONNECT_WAIT_SECONDS: Final = 5.0
_JSON: Final = "application/json"

_FAULT_KEYS: Final = frozenset(
    {
        "status",
        "kombo_code",
        "title",
        "message",
        "body",
        "headers",
        "times",
        "latency_ms",
        "drop_connection",
        "integration",
        "match_params",
        "path",
    }
)
_CHAOS_KEYS: Final = frozenset({"rates", "seed", "latency_ms"})
_HEADER_NAME_RE: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE_RE: Final = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_FORBIDDEN_HEADERS: Final = frozenset({"content-length", "transfer-encoding"})
_NO_BODY_STATUSES: Final = frozenset({204, 304})

# Kombo-like defaults (jobs-api.md §9-§10) for envelopes whose title/message were not given.
_DEFAULT_TEXT: Final[Mapping[str, tuple[str, str]]] = {
    "PLATFORM.RATE_LIMIT_EXCEEDED": (
        "Rate limit exceeded",
        "You have exceeded the rate limit. Retry after the time in the ratelimit-reset header.",
    ),
    "PLATFORM.CONCURRENCY_LIMIT_EXCEEDED": (
        "Concurrency limit exceeded",
        "Too many concurrent requests for this integration. Back off and retry.",
    ),
    "PLATFORM.UNKNOWN_ERROR": ("Unknown error", "An unknown error occurred at Kombo."),
    "PLATFORM.TASK_TIMED_OUT": ("Task timed out", "The task did not finish in time."),
    "REMOTE.SERVICE_UNAVAILABLE": (
        "Remote service unavailable",
        "The remote system is temporarily unavailable. Please try again later.",
    ),
    "REMOTE.RATE_LIMIT_EXCEEDED": (
        "Remote rate limit exceeded",
        "The remote system's rate limit was exceeded. Please try again later.",
    ),
    "INTEGRATION.SETUP_SYNC_PENDING": (
        "Setup sync pending",
        "The first sync of this integration has not finished yet.",
    ),
}
# What chaos answers for each status (429 also gets `Retry-After: 1`).
_CHAOS_CODES: Final[Mapping[int, str]] = {
    429: "PLATFORM.RATE_LIMIT_EXCEEDED",
    500: "PLATFORM.UNKNOWN_ERROR",
    503: "REMOTE.SERVICE_UNAVAILABLE",
}
_DROP: Final = "drop"


class ControlError(ValueError):
    """Bad input to a control route; answered with 400 `{"error": message}`."""


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Fault:
    """One queued fault; `times` is what is left of it."""

    status: int = 503
    kombo_code: str | None = None
    title: str | None = None
    message: str | None = None
    body: Any = None  # None: not given (a JSON null body cannot be asked for)
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    latency_ms: int = 0
    drop_connection: bool = False
    integration: str | None = None
    match_params: dict[str, str] | None = None
    path: str | None = None

    def matches(self, path: str, integration: str | None, params: Mapping[str, list[str]]) -> bool:
        if self.path is not None and path != self.path:
            return False
        if self.integration is not None and integration != self.integration:
            return False
        return all(v in params.get(k, ()) for k, v in (self.match_params or {}).items())

    @property
    def passes_through(self) -> bool:
        """A 200 with nothing to say: only delays (and adds headers to) the real answer."""
        return (
            self.status == 200
            and self.body is None
            and self.kombo_code is None
            and self.title is None
            and self.message is None
        )

    def response(self, next_log_url: Callable[[], str]) -> Response | None:
        """The canned response, or None when the real endpoint should answer."""
        if self.passes_through:
            return None
        if self.status in _NO_BODY_STATUSES:
            return Response(status_code=self.status)
        if isinstance(self.body, str):
            return Response(self.body, status_code=self.status, media_type="text/html")
        if self.body is not None:
            return Response(orjson.dumps(self.body), status_code=self.status, media_type=_JSON)
        return Response(orjson.dumps(self._envelope(next_log_url)), self.status, media_type=_JSON)

    def _envelope(self, next_log_url: Callable[[], str]) -> dict[str, Any]:
        if self.kombo_code is None:
            # Kombo's minimal error: no code, no log link (the client falls back to status).
            message = self.message or f"Sandbox fault: HTTP {self.status}."
            error = {"code": None, "title": self.title, "message": message, "log_url": None}
        else:
            title, message = _DEFAULT_TEXT.get(self.kombo_code, _derived_text(self.kombo_code))
            error = {
                "code": self.kombo_code,
                "title": self.title if self.title is not None else title,
                "message": self.message if self.message is not None else message,
                "log_url": next_log_url(),
            }
        return {"status": "error", "error": error}

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "kombo_code": self.kombo_code,
            "title": self.title,
            "message": self.message,
            "body": self.body,
            "headers": dict(self.headers),
            "times": self.times,
            "latency_ms": self.latency_ms,
            "drop_connection": self.drop_connection,
            "integration": self.integration,
            "match_params": None if self.match_params is None else dict(self.match_params),
            "path": self.path,
        }


def _derived_text(code: str) -> tuple[str, str]:
    label = code.rpartition(".")[2].replace("_", " ").capitalize()
    return label, f"Sandbox fault: {code}."


def parse_faults(payload: Any) -> list[Fault]:
    """`{"faults": [FAULT, ...]}` validated as a whole (nothing is queued on any error)."""
    only_keys(payload, frozenset({"faults"}), "the request body")
    faults = payload.get("faults")
    if not isinstance(faults, list):
        raise ControlError("'faults' must be a list of fault objects.")
    return [_parse_fault(item, f"faults[{n}]") for n, item in enumerate(faults)]


def _parse_fault(raw: Any, where: str) -> Fault:
    only_keys(raw, _FAULT_KEYS, where)
    status = _integer(raw, "status", where, 503, 200, 599)
    headers = _str_map(raw, "headers", where) or {}
    for name, value in headers.items():
        if not _HEADER_NAME_RE.fullmatch(name) or not _HEADER_VALUE_RE.fullmatch(value):
            raise ControlError(f"{where}.headers: invalid header {name!r}: {value!r}.")
        if name.lower() in _FORBIDDEN_HEADERS:
            raise ControlError(f"{where}.headers: {name!r} is set by the server.")
    drop = raw.get("drop_connection", False)
    if not isinstance(drop, bool):
        raise ControlError(f"{where}.drop_connection must be true or false.")
    path = _string(raw, "path", where)
    if path is not None and not (path == "/v1" or path.startswith("/v1/")):
        raise ControlError(f"{where}.path must be a /v1 path such as '/v1/ats/jobs'.")
    return Fault(
        status=status,
        kombo_code=_string(raw, "kombo_code", where),
        title=_string(raw, "title", where),
        message=_string(raw, "message", where),
        body=raw.get("body"),
        headers=headers,
        times=_integer(raw, "times", where, 1, 1, MAX_TIMES),
        latency_ms=_integer(raw, "latency_ms", where, 0, 0, MAX_LATENCY_MS),
        drop_connection=drop,
        integration=_string(raw, "integration", where),
        match_params=_str_map(raw, "match_params", where),
        path=path,
    )


def only_keys(raw: Any, allowed: frozenset[str], where: str) -> None:
    """Refuse a non-object or unknown keys (every control route is strict about its input)."""
    if not isinstance(raw, dict):
        raise ControlError(f"{where} must be a JSON object.")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ControlError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(allowed))}."
        )


def _integer(raw: dict[str, Any], key: str, where: str, default: int, low: int, high: int) -> int:
    value = raw.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ControlError(f"{where}.{key} must be an integer from {low} to {high}.")
    return value


def _string(raw: dict[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise ControlError(f"{where}.{key} must be a string or null.")
    return value


def _str_map(raw: dict[str, Any], key: str, where: str) -> dict[str, str] | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ControlError(f"{where}.{key} must be an object of strings to strings.")
    return dict(value)


# --------------------------------------------------------------------------------------------
# Chaos
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChaosSettings:
    rates: dict[str, float]
    seed: int
    latency_ms: int

    def to_json(self) -> dict[str, Any]:
        return {"rates": dict(self.rates), "seed": self.seed, "latency_ms": self.latency_ms}

    def outcome(self, draw: float) -> str | None:
        """Which outcome a uniform draw in [0, 1) lands on (fixed key order), if any."""
        edge = 0.0
        for key in sorted(self.rates):
            edge += self.rates[key]
            if draw < edge:
                return key
        return None


def parse_chaos(payload: Any) -> ChaosSettings:
    """`{"rates": {"<status>"|"drop": fraction}, "seed": int, "latency_ms": int}`."""
    where = "the request body"
    only_keys(payload, _CHAOS_KEYS, where)
    raw_rates = payload.get("rates") or {}
    if not isinstance(raw_rates, dict):
        raise ControlError('\'rates\' must be an object such as {"503": 0.1, "429": 0.05}.')
    rates: dict[str, float] = {}
    for key, value in raw_rates.items():
        if key != _DROP and not (re.fullmatch(r"[45][0-9][0-9]", key)):
            raise ControlError(f"rates: {key!r} is neither an HTTP status 400-599 nor 'drop'.")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ControlError(f"rates[{key!r}] must be a number from 0 to 1.")
        rates[key] = float(value)
    if sum(rates.values()) > 1 + 1e-9:
        raise ControlError("The rates add up to more than 1.")
    seed = _integer(payload, "seed", "chaos", 0, -(2**63), 2**63 - 1)
    latency = _integer(payload, "latency_ms", "chaos", 0, 0, MAX_LATENCY_MS)
    return ChaosSettings(rates, seed, latency)


def _chaos_fault(outcome: str) -> Fault:
    if outcome == _DROP:
        return Fault(drop_connection=True)
    status = int(outcome)
    code = _CHAOS_CODES.get(status, "PLATFORM.UNKNOWN_ERROR")
    headers = {"Retry-After": "1"} if status == 429 else {}
    return Fault(status=status, kombo_code=code, headers=headers)


# --------------------------------------------------------------------------------------------
# The injector: queue + chaos, decided atomically per request
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What to do with one /v1 request: wait, then drop, answer `fault`, or pass through."""

    delay_seconds: float
    fault: Fault | None  # None: only the global chaos latency applies
    source: str | None  # "queued" | "chaos" | None, recorded in the request log


class FaultInjector:
    """The FIFO fault queue and chaos settings of one sandbox app.

    One lock guards both, and `plan` picks and counts down a fault under it, so concurrent
    requests (on the event loop, or control calls from other threads) never share a `times`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Fault] = []
        self._chaos: ChaosSettings | None = None
        self._rng = random.Random()

    @property
    def idle(self) -> bool:
        """Nothing queued and no chaos: a lock-free hint so plain requests skip `plan`."""
        return not self._queue and self._chaos is None

    def add(self, faults: list[Fault]) -> None:
        with self._lock:
            self._queue.extend(faults)

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.to_json() for fault in self._queue]

    def clear(self) -> None:
        """Empty the queue and switch chaos off."""
        with self._lock:
            self._queue.clear()
            self._chaos = None

    def set_chaos(self, settings: ChaosSettings) -> None:
        with self._lock:
            self._chaos = settings
            self._rng = random.Random(settings.seed)

    def clear_chaos(self) -> None:
        with self._lock:
            self._chaos = None

    def chaos(self) -> ChaosSettings | None:
        with self._lock:
            return self._chaos

    def plan(
        self, path: str, integration: str | None, params: Mapping[str, list[str]]
    ) -> FaultPlan | None:
        """Consume what applies to this request; None when nothing does (the common case)."""
        with self._lock:
            chaos = self._chaos
            if not self._queue and chaos is None:
                return None
            global_latency = chaos.latency_ms if chaos is not None else 0
            for index, fault in enumerate(self._queue):
                if fault.matches(path, integration, params):
                    fault.times -= 1
                    if fault.times <= 0:
                        del self._queue[index]
                    delay = (fault.latency_ms + global_latency) / 1000
                    return FaultPlan(delay, fault, "queued")
            if chaos is None:
                return None
            outcome = chaos.outcome(self._rng.random()) if chaos.rates else None
        if outcome is None:
            return FaultPlan(global_latency / 1000, None, None)
        return FaultPlan(global_latency / 1000, _chaos_fault(outcome), "chaos")


# --------------------------------------------------------------------------------------------
# Dropping a connection at the socket level
# --------------------------------------------------------------------------------------------


def _server_transport(scope: Scope) -> Any:
    """uvicorn's transport for this request.

    The server's `send` is a bound method of uvicorn's per-request cycle, which holds the
    transport; when something wrapped `send` before the sandbox app, the cycle is found as
    `self` of the task's coroutine (uvicorn runs each request as `cycle.run_asgi(app)`).
    """
    owners = [getattr(scope.get(SERVER_SEND_KEY), "__self__", None)]
    task = asyncio.current_task()
    frame = getattr(task.get_coro(), "cr_frame", None) if task is not None else None
    owners.append(frame.f_locals.get("self") if frame is not None else None)
    for owner in owners:
        transport = getattr(owner, "transport", None)
        # asyncio's transports, or uvloop's (which are not asyncio.WriteTransport subclasses).
        if callable(getattr(transport, "abort", None)):
            return transport
    return None


async def drop_connection(scope: Scope, receive: Receive) -> None:
    """Reset the TCP connection without sending a byte, then wait until the server noticed.

    Waiting for `http.disconnect` matters: returning earlier would make uvicorn think the
    app forgot to answer and try a 500 (into a dead transport, with an error in its log).

    Raises:
        RuntimeError: the server is not uvicorn (no transport to abort).
    """
    transport = _server_transport(scope)
    if transport is None:
        raise RuntimeError("drop_connection needs uvicorn: no transport found for the request")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger 0: close() sends RST at once instead of a graceful FIN.
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    with anyio.move_on_after(_DISCONNECT_WAIT_SECONDS):
        while (await receive())["type"] != "http.disconnect":
            pass


# --------------------------------------------------------------------------------------------
# Control routes
# --------------------------------------------------------------------------------------------


def bad_request(message: str) -> Response:
    """400 `{"error": message}`, the answer of every control route to bad input."""
    return Response(orjson.dumps({"error": message}), status_code=400, media_type=_JSON)


async def json_body(request: Request) -> Any:
    """The parsed body of a control request; raises `ControlError` when it is not JSON."""
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise ControlError("The request body must be JSON.") from None


def control_routes(injector: FaultInjector) -> list[Route]:
    """`/_sandbox/faults` and `/_sandbox/chaos` (see the module docstring)."""

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            injector.clear()
            return Response(status_code=204)
        if request.method == "POST":
            try:
                injector.add(parse_faults(await json_body(request)))
            except ControlError as error:
                return bad_request(str(error))
        return Response(orjson.dumps({"faults": injector.pending()}), media_type=_JSON)

    async def chaos(request: Request) -> Response:
        if request.method == "DELETE":
            injector.clear_chaos()
            return Response(status_code=204)
        if request.method == "POST":
            try:
                injector.set_chaos(parse_chaos(await json_body(request)))
            except ControlError as error:
                return bad_request(str(error))
        settings = injector.chaos()
        body = {"chaos": None if settings is None else settings.to_json()}
        return Response(orjson.dumps(body), media_type=_JSON)

    methods = ["GET", "POST", "DELETE"]
    return [
        Route("/_sandbox/faults", faults, methods=methods),
        Route("/_sandbox/chaos", chaos, methods=methods),
    ]


__all__ = [
    "SERVER_SEND_KEY",
    "ChaosSettings",
    "ControlError",
    "Fault",
    "FaultInjector",
    "FaultPlan",
    "control_routes",
    "drop_connection",
    "bad_request",
    "json_body",
    "only_keys",
    "parse_chaos",
    "parse_faults",
]
