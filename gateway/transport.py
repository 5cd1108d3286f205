"""An httpx transport that moves bytes through aiohttp's connection pool and C HTTP parser.

Why: the gateway keeps httpx as its client API (timeouts, event hooks, `httpx.Response`,
the exception tree `kombo.py` classifies, `MockTransport` in tests), but httpcore's
pure-Python HTTP/1.1 stack is the most expensive part of a request. Measured against the
sandbox at 32 requests in flight: a one-job page cost 3.7 ms of client CPU through
httpcore (its pool checks every idle connection's socket on each request) and 0.3 ms
through this transport; a 100-job page (355 KB) 4.0 ms against 0.7 ms. `make bench` shows
the effect on both the gateway and its pass-through-proxy floor, which share this client.

The transport reads each body whole (Kombo's pages are JSON documents that are parsed
whole anyway), leaves decompression to httpx (so `Content-Encoding` behaves exactly as
with httpx's own transport), and maps every aiohttp failure onto the httpx exception a
caller already handles: a timeout onto `httpx.TimeoutException`, anything else onto
`httpx.TransportError`. No aiohttp exception escapes.
"""

from __future__ import annotations

import ssl
from typing import Final

import aiohttp
import httpx
from yarl import URL

#: Kept-alive connections idle longer than this are closed (httpx's own default).
DEFAULT_KEEPALIVE_EXPIRY: Final = 5.0
_HTTP_11: Final = b"HTTP/1.1"


class AiohttpTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 for an `httpx.AsyncClient`, pooled by aiohttp within `limits`.

    The aiohttp session opens on the first request, inside the running event loop (the
    client may be built before the loop starts), and closes with the client.
    """

    def __init__(self, limits: httpx.Limits, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._limits = limits
        # httpx's own default: certificates verified against certifi's CA bundle, not
        # whatever the host's store holds (a slim container may hold none).
        self._ssl_context = ssl_context or httpx.create_ssl_context()
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=self._limits.keepalive_expiry or DEFAULT_KEEPALIVE_EXPIRY,
            ssl=self._ssl_context,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # httpx decodes, as with its own transport
            cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the client's cookies
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"),
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        timeout = request.extensions.get("timeout", {})
        try:
            async with session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=await request.aread() or None,
                allow_redirects=False,  # httpx follows redirects itself when asked
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            ) as response:
                body = await response.read()
                status, headers, reason = response.status, response.raw_headers, response.reason
        except TimeoutError as exc:
            error: type[httpx.TransportError] = (
                httpx.ConnectTimeout
                if isinstance(exc, aiohttp.ConnectionTimeoutError)
                else httpx.ReadTimeout
            )
            raise error(_describe(exc), request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(_describe(exc), request=request) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientResponseError) as exc:
            raise httpx.RemoteProtocolError(_describe(exc), request=request) from exc
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise httpx.ReadError(_describe(exc), request=request) from exc
        extensions = {"http_version": _HTTP_11}
        if reason:
            extensions["reason_phrase"] = reason.encode("latin-1", "replace")
        return httpx.Response(
            status,
            headers=list(headers),
            stream=httpx.ByteStream(body),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _describe(exc: BaseException) -> str:
    """The failure's class and message, which never carry request headers (the API key)."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
