"""uvicorn's HTTP protocol with a deadline for request headers.

Why: uvicorn times out idle kept-alive connections, but not a client that opens a
connection and sends its headers slowly or never (a slowloris): 200 such connections
were held forever. Each connection here must finish its request's headers within
`GATEWAY_HEADER_TIMEOUT` seconds of connecting (or of starting its next request), else
it is closed. The body has its own deadline in the view (`GATEWAY_BODY_TIMEOUT`).

Usage: `uvicorn.run(..., http=HeaderTimeoutProtocol)` (`serving.uvicorn_options` does).
The timeout is read from the environment, as every worker reads its settings
(`gateway.http.app.app_from_env`): uvicorn builds the protocol itself, with its own config.
"""

from __future__ import annotations

import asyncio
import os
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.config import Settings


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol`, closing connections whose request headers are late."""

    #: Seconds; read from the environment on first use (None until then).
    timeout: ClassVar[float | None] = None
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(_timeout(), self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def _timeout() -> float:
    if HeaderTimeoutProtocol.timeout is None:
        HeaderTimeoutProtocol.timeout = Settings.from_env(os.environ).header_timeout
    return HeaderTimeoutProtocol.timeout
