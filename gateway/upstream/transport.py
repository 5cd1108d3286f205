"""An httpx transport that moves bytes through aiohttp's connection pool and C HTTP parser.

Why: the gateway keeps httpx as its client API (timeouts, event hooks, `httpx.Response`,
the exception tree `kombo/errors.py` classifies, `MockTransport` in tests), but httpcore's
pure-Python HTTP/1.1 stack is the most expensive part of a request. Measured against the
sandbox at 32 requests in flight: a one-job page cost 3.7 ms of client CPU through
httpcore (its pool checks every idle connection's socket on each request) and 0.3 ms
through this transport; a 100-job page (355 KB) 4.0 ms against 0.7 ms. `make bench` shows
the effect on both the gateway and its pass-through-proxy floor, which share this client.

Bodies are read as they arrive and never past `max_body_bytes` (`KOMBO_MAX_RESPONSE_BYTES`):
a broken or hostile upstream (an endless stream, a 200 MB page, a gzip bomb) must cost a
worker at most that much memory and never stall its event loop. So:

- a `Content-Length` over the cap is refused before a byte of body is read, and the
  bytes received are counted chunk by chunk (each read an await, so other requests run
  in between); past the cap reading stops, the connection is closed (never returned to
  the pool half read) and the chunks read so far are dropped: `ResponseTooLarge`;
- the transport decodes `Content-Encoding` itself (gzip, x-gzip, deflate, zlib-wrapped
  or raw as httpx's own decoder accepts, several listed, identity), in steps of at most
  `DECODE_STEP` bytes out, counting each coding's output against the same cap, and
  giving the loop a turn every `DECODE_SLICE` steps. httpx's decoders inflate a chunk in
  one call with no bound, so httpx gets the decoded body without `Content-Encoding` (and
  with its decoded `Content-Length`) and decodes nothing again. A coding it cannot decode
  (br, zstd, anything else) or a corrupt stream is an `httpx.DecodingError`, and requests
  advertise in `Accept-Encoding` only what it decodes (httpx would add br and zstd when
  their packages are importable);
- a body within the cap is joined once, at the end (the pages are JSON documents that
  are parsed whole anyway).

Every aiohttp failure maps onto the httpx exception a caller already handles: a timeout
onto `httpx.TimeoutException`, anything else onto `httpx.TransportError`. No aiohttp
exception escapes.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import zlib
from collections.abc import Iterable, Iterator
from typing import Final

import aiohttp
import httpx
from yarl import URL

#: Kept-alive connections idle longer than this are closed (httpx's own default).
DEFAULT_KEEPALIVE_EXPIRY: Final = 5.0
#: Most bytes one decompression step produces: bounds each step's memory and CPU time
#: (zeros inflate at about 1 GB/s, so a step of a bomb takes well under a millisecond).
DECODE_STEP: Final = 64 * 1024
#: Decompression steps between two turns given to the event loop (1 MiB of output).
DECODE_SLICE: Final = 16
#: What requests advertise: exactly the codings `_Inflater` decodes.
ACCEPT_ENCODING: Final = "gzip, deflate"
_HTTP_11: Final = b"HTTP/1.1"
_GZIP: Final = frozenset({"gzip", "x-gzip"})
_ACCEPTABLE: Final = frozenset({"gzip", "x-gzip", "deflate", "identity"})


class ResponseTooLarge(httpx.DecodingError):
    """The answer's body passed the transport's byte cap, as received or after
    decompression; reading stopped there."""


class _Overflow(Exception):
    """The body passed the cap (mapped onto `ResponseTooLarge`)."""


class _Unsupported(Exception):
    """A content coding this transport does not decode (mapped onto `DecodingError`)."""


class AiohttpTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 for an `httpx.AsyncClient`, pooled by aiohttp within `limits`.

    The aiohttp session opens on the first request, inside the running event loop (the
    client may be built before the loop starts), and closes with the client.
    """

    def __init__(
        self,
        limits: httpx.Limits,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_body_bytes: int | None = None,
    ) -> None:
        self._limits = limits
        #: Cap on one body, as received and after decompression (None: no cap).
        self._max_body_bytes = max_body_bytes
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
            auto_decompress=False,  # decoded here, in bounded steps (see the module)
            cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the client's cookies
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"),
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        timeout = request.extensions.get("timeout", {})
        accept = request.headers.get("Accept-Encoding")
        if accept != ACCEPT_ENCODING:
            request.headers["Accept-Encoding"] = _decodable(accept)
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
                status, headers, reason = response.status, response.raw_headers, response.reason
                body, decoded = await self._read_body(response, request)
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
            headers=_decoded_headers(headers, len(body)) if decoded else list(headers),
            stream=httpx.ByteStream(body),
            request=request,
            extensions=extensions,
        )

    async def _read_body(
        self, response: aiohttp.ClientResponse, request: httpx.Request
    ) -> tuple[bytes, bool]:
        """The body, decoded, and whether it had a content coding to decode.

        Raises:
            ResponseTooLarge: past the cap as declared, received or decoded (the
                connection is closed, nothing read is kept).
            httpx.DecodingError: a coding this transport does not decode, or a corrupt
                stream (the connection is closed).
        """
        cap = sys.maxsize if self._max_body_bytes is None else self._max_body_bytes
        chunks: list[bytes] = []
        try:
            return await _receive(response, request.method, cap, chunks)
        except _Overflow as exc:
            self._abandon(response, chunks)
            raise ResponseTooLarge(
                f"the answer passed the cap of {cap} bytes ({exc})", request=request
            ) from None
        except (zlib.error, _Unsupported) as exc:
            self._abandon(response, chunks)
            raise httpx.DecodingError(
                f"the body cannot be decoded: {exc}", request=request
            ) from None
        except BaseException:
            self._abandon(response, chunks)
            raise

    @staticmethod
    def _abandon(response: aiohttp.ClientResponse, chunks: list[bytes]) -> None:
        """Close the half-read connection (never back to the pool) and drop what was read:
        the exception's traceback keeps this frame, and so the list, alive for a while."""
        response.close()
        chunks.clear()

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


async def _receive(
    response: aiohttp.ClientResponse, method: str, cap: int, chunks: list[bytes]
) -> tuple[bytes, bool]:
    """Reads the body into `chunks` as it arrives, decoding it if it is encoded; returns
    it joined once, and whether it was decoded.

    Raises:
        _Overflow: past `cap`, as declared, received or decoded.
        _Unsupported, zlib.error: a coding not decoded here, a corrupt stream.
    """
    declared = response.content_length
    if declared is not None and declared > cap and method != "HEAD":
        raise _Overflow(f"as declared: Content-Length {declared}")
    codings = _codings(response.headers.getall("Content-Encoding", ()))
    decoding = _Decoding(codings, cap) if codings else None
    stream, received, steps = response.content, 0, 0
    while chunk := await stream.readany():  # an await: other requests run in between
        received += len(chunk)
        if received > cap:
            raise _Overflow("as received")
        if decoding is None:
            chunks.append(chunk)
            continue
        for piece in decoding.feed(chunk):
            if piece:
                chunks.append(piece)
            steps += 1
            if steps % DECODE_SLICE == 0:
                await asyncio.sleep(0)  # one chunk of a bomb inflates in many steps
    if decoding is not None:
        chunks.extend(decoding.finish())
    return b"".join(chunks), decoding is not None


def _codings(values: Iterable[str]) -> list[str]:
    """The codings to undo, in the order to undo them (the last applied first).

    Raises:
        _Unsupported: a coding other than gzip, x-gzip, deflate or identity.
    """
    codings = []
    for value in values:
        for item in value.split(","):
            coding = item.strip().lower()
            if coding in ("", "identity"):
                continue
            if coding not in _ACCEPTABLE:
                raise _Unsupported(f"Content-Encoding {coding!r} is not supported")
            codings.append(coding)
    codings.reverse()
    return codings


def _decodable(accept: str | None) -> str:
    """`Accept-Encoding` limited to the codings this transport decodes (none: the default)."""
    if accept is None:
        return ACCEPT_ENCODING
    kept = [
        item.strip()
        for item in accept.split(",")
        if item.split(";", 1)[0].strip().lower() in _ACCEPTABLE
    ]
    return ", ".join(kept) or "identity"


def _decoded_headers(
    headers: tuple[tuple[bytes, bytes], ...], length: int
) -> list[tuple[bytes, bytes]]:
    """The answer's headers for its decoded body: no `Content-Encoding` (httpx would decode
    again), and the decoded `Content-Length` when one was sent."""
    kept, had_length = [], False
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"content-length":
            had_length = True
        elif lowered != b"content-encoding":
            kept.append((name, value))
    if had_length:
        kept.append((b"Content-Length", str(length).encode("ascii")))
    return kept


class _Decoding:
    """Undoes a list of codings, each stage feeding the next in pieces of at most
    `DECODE_STEP` bytes, so nothing is ever inflated in one unbounded call."""

    __slots__ = ("_stages",)

    def __init__(self, codings: list[str], cap: int) -> None:
        self._stages = [_Inflater(coding, cap) for coding in codings]

    def feed(self, data: bytes) -> Iterator[bytes]:
        return self._through(0, data)

    def finish(self) -> Iterator[bytes]:
        """What the stages still hold once the body has been received."""
        for index, stage in enumerate(self._stages):
            yield from self._through(index + 1, stage.flush())

    def _through(self, index: int, data: bytes) -> Iterator[bytes]:
        if index == len(self._stages):
            yield data
            return
        for piece in self._stages[index].inflate(data):
            yield from self._through(index + 1, piece)


class _Inflater:
    """One zlib-based coding, inflated incrementally with bounded output per step.

    gzip (and x-gzip) as httpx's GZipDecoder reads it; deflate as its DeflateDecoder: a
    zlib stream, or raw deflate when the first step fails as zlib.

    Raises (from `inflate` and `flush`):
        _Overflow: this stage produced more than `cap` bytes.
        zlib.error: the stream is corrupt.
    """

    __slots__ = ("_cap", "_head", "_produced", "_sniffing", "_zlib")

    def __init__(self, coding: str, cap: int) -> None:
        gzip = coding in _GZIP
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        #: deflate before its first step: zlib-wrapped or raw is not known yet.
        self._sniffing = not gzip
        #: deflate: a first byte kept until a second one arrives (a header is two bytes).
        self._head = b""
        self._cap = cap
        self._produced = 0

    def inflate(self, data: bytes) -> Iterator[bytes]:
        """`data` inflated, one piece of at most `DECODE_STEP` bytes per step (a piece
        may be empty)."""
        if self._sniffing:
            data, self._head = self._head + data, b""
            if len(data) < 2:
                self._head = data
                return
        while True:
            try:
                piece = self._zlib.decompress(data, DECODE_STEP)
            except zlib.error:
                if not self._sniffing:
                    raise
                self._sniffing = False  # as httpx: not a zlib stream, so raw deflate
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            self._sniffing = False
            yield self._count(piece)
            data = self._zlib.unconsumed_tail
            # A full step may leave output pending inside zlib even with no input left.
            if not data and len(piece) < DECODE_STEP:
                return

    def flush(self) -> bytes:
        """What zlib still holds (nothing much: `inflate` drained it). A deflate body of
        a single byte decodes to nothing, as with httpx."""
        return self._count(self._zlib.flush())

    def _count(self, piece: bytes) -> bytes:
        self._produced += len(piece)
        if self._produced > self._cap:
            raise _Overflow("after decompression")
        return piece


def _describe(exc: BaseException) -> str:
    """The failure's class and message, which never carry request headers (the API key)."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
