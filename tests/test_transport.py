"""`gateway.upstream.transport`: httpx's behaviour over aiohttp, against a raw TCP server on
loopback.

The server answers with bytes the test chooses, so each case is a real HTTP exchange:
what leaves the process, how bodies and encodings come back, that connections are kept
alive, and that every way an upstream can fail surfaces as the httpx exception the Kombo
client already handles, never as an aiohttp one.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import logging
import ssl
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import trustme

from gateway.config import Settings
from gateway.http.app import create_app
from gateway.http.state import create_http_client
from gateway.observability.metrics import GatewayMetrics
from gateway.upstream.transport import AiohttpTransport, ResponseTooLarge
from tests.support import serve

#: Reads one request head from the stream and writes (part of) an answer.
Responder = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """A loopback TCP server: records each request head, answers with `responder`."""

    def __init__(self, responder: Responder, tls: ssl.SSLContext | None = None) -> None:
        self.responder = responder
        self.tls = tls
        self.heads: list[bytes] = []
        self.connections = 0
        self.closed = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                await self.responder(reader, writer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.closed.set()


def answer(body: bytes, *, headers: str = "", status: str = "200 OK") -> Responder:
    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{headers}\r\n".encode()
            + body
        )

    return respond


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def make(
        read: float = 5.0, max_connections: int = 10, cap: int | None = None
    ) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(read, connect=2.0, pool=read),
            transport=AiohttpTransport(
                httpx.Limits(max_connections=max_connections), max_body_bytes=cap
            ),
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def test_the_request_leaves_as_httpx_built_it(client_for):
    async with RawServer(answer(b'{"ok":true}')) as server:
        client = client_for()
        response = await client.get(
            server.url + "/v1/ats/jobs",
            params={"ids": "a,b", "name_contains": "Café & co"},
            headers={"Authorization": "Bearer k", "X-Integration-Id": "personio:1"},
        )
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    request_line, *lines = server.heads[0].decode().split("\r\n")
    # The query string is sent exactly as httpx encoded it (no re-encoding on the way).
    assert request_line == f"GET {response.request.url.raw_path.decode()} HTTP/1.1"
    assert "ids=a%2Cb" in request_line and "name_contains=Caf%C3%A9+%26+co" in request_line
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines if line)}
    assert headers["authorization"] == "Bearer k"
    assert headers["x-integration-id"] == "personio:1"
    assert headers["user-agent"].startswith("python-httpx/")
    assert headers["host"] == f"127.0.0.1:{server.port}"


async def test_gzip_bodies_are_decoded_and_corrupt_ones_fail_as_decoding_errors(client_for):
    packed = gzip.compress(b'{"data":{"results":[]}}')
    async with RawServer(answer(packed, headers="Content-Encoding: gzip\r\n")) as server:
        response = await client_for().get(server.url)
    assert response.content == b'{"data":{"results":[]}}'

    async with RawServer(answer(b"not gzip", headers="Content-Encoding: gzip\r\n")) as server:
        with pytest.raises(httpx.DecodingError):
            await client_for().get(server.url)


async def test_error_statuses_and_their_headers_come_back_as_responses(client_for):
    body = b'{"status":"error","error":{"code":"PLATFORM.RATE_LIMIT_EXCEEDED"}}'
    responder = answer(body, status="429 Too Many Requests", headers="Retry-After: 7\r\n")
    async with RawServer(responder) as server:
        response = await client_for().get(server.url)
    assert response.status_code == 429
    assert response.reason_phrase == "Too Many Requests"
    assert response.headers["retry-after"] == "7"
    assert response.content == body


async def test_connections_are_kept_alive_and_bounded(client_for):
    async with RawServer(answer(b"{}")) as server:
        client = client_for(max_connections=4)
        for _ in range(20):
            assert (await client.get(server.url)).status_code == 200
        assert server.connections == 1
        await asyncio.gather(*(client.get(server.url) for _ in range(40)))
        assert server.connections <= 4
    assert len(server.heads) == 60


async def test_a_refused_connection_is_a_connect_error(client_for):
    async with RawServer(answer(b"{}")) as server:
        url = server.url
    with pytest.raises(httpx.ConnectError):
        await client_for().get(url)


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    raise ConnectionError  # closes the connection without a byte of answer


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"this is not HTTP\r\n\r\n")


async def short_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"{" * 10)
    await writer.drain()
    raise ConnectionError


@pytest.mark.parametrize("responder", [hang_up, garbage, short_body])
async def test_broken_answers_are_transport_errors(client_for, responder):
    async with RawServer(responder) as server:
        with pytest.raises(httpx.TransportError) as caught:
            await client_for().get(server.url)
    assert not isinstance(caught.value, httpx.TimeoutException)
    assert caught.value.request.url == server.url


async def test_a_silent_server_is_a_read_timeout(client_for):
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async with RawServer(silent) as server:
        started = asyncio.get_running_loop().time()
        with pytest.raises(httpx.ReadTimeout):
            await client_for(read=0.3).get(server.url)
    assert asyncio.get_running_loop().time() - started < 2


async def test_closing_the_client_closes_its_kept_alive_connections():
    async with RawServer(answer(b"{}")) as server:
        transport = AiohttpTransport(httpx.Limits(max_connections=2))
        async with httpx.AsyncClient(transport=transport) as client:
            assert (await client.get(server.url)).status_code == 200
            await asyncio.sleep(0.05)
            assert not server.closed.is_set()
        await asyncio.wait_for(server.closed.wait(), 2)
        await transport.aclose()  # a second close is harmless


async def test_the_gateway_client_keeps_no_cookie_between_callers():
    responder = answer(b"{}", headers="Set-Cookie: AWSALB=tenant-a; Path=/\r\n")
    async with RawServer(responder) as server:
        client = create_http_client(Settings(api_key="k"), GatewayMetrics())
        async with client:
            first = await client.get(server.url + "/v1/ats/jobs")
            assert first.headers["set-cookie"].startswith("AWSALB=")
            await client.get(server.url + "/v1/ats/jobs")
    assert b"cookie:" not in server.heads[1].lower()
    assert not client.cookies


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def server_tls(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    return context


async def test_https_works_with_a_trusted_certificate(authority: trustme.CA):
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    transport = AiohttpTransport(httpx.Limits(max_connections=2), ssl_context=trusting)
    async with RawServer(answer(b'{"ok":true}'), tls=server_tls(authority)) as server:
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get(server.url + "/v1/ats/jobs")
    assert server.url.startswith("https://")
    assert response.json() == {"ok": True}


async def test_the_gateway_client_refuses_a_certificate_it_cannot_verify(authority: trustme.CA):
    # Signed by a CA in no trust store: the default context (httpx's, certifi's CAs)
    # must refuse it, as httpx's own transport would.
    async with RawServer(answer(b"{}"), tls=server_tls(authority)) as server:
        async with create_http_client(Settings(api_key="k"), GatewayMetrics()) as client:
            with pytest.raises(httpx.ConnectError, match="(?i)certificate"):
                await client.get(server.url + "/v1/ats/jobs")
    assert server.heads == []


async def test_a_refused_certificate_is_named_in_the_answer_readyz_and_the_log(
    authority: trustme.CA, caplog: pytest.LogCaptureFixture
):
    """A refused certificate was logged as a bare `ConnectError`, like a network blip,
    and retried: it is an operator's problem, and says so."""
    async with RawServer(answer(b"{}"), tls=server_tls(authority)) as server:
        settings = Settings(
            api_key="ks_test_secret", base_url=server.url + "/v1", integration_id="personio:abc"
        )
        with (
            caplog.at_level(logging.ERROR, logger="gateway.kombo"),
            serve(create_app(settings)) as url,
        ):
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                result = (
                    await client.post("/graphql", json={"query": "{ jobs { nodes { id } } }"})
                ).json()
                ready = await client.get("/readyz")

    [error] = result["errors"]
    assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert "certificate" in error["message"]
    assert ready.status_code == 503 and "certificate" in ready.json()["reason"]
    logged = [r.getMessage() for r in caplog.records if r.name == "gateway.kombo"]
    assert len(logged) == 1 and "certificate was not accepted" in logged[0]
    assert "ks_test_secret" not in caplog.text


# --- KOMBO_MAX_RESPONSE_BYTES: bodies are capped as received and after decompression ------

CAP = 1024 * 1024
#: Bytes the server writes per step of a streamed answer.
BLOCK = b"{" * 65536


def streamed(total: int | None, framing: str, headers: str = "") -> Responder:
    """An answer of `total` bytes (None: endless, for at most 10 s) written block by block,
    as a server streams it: `framing` is "length" (declared up front), "chunked", or
    "close" (no length: the body ends when the connection does)."""

    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        length = f"Content-Length: {total}\r\n" if framing == "length" else ""
        chunked = "Transfer-Encoding: chunked\r\n" if framing == "chunked" else ""
        close = "Connection: close\r\n" if framing == "close" else ""
        writer.write(f"HTTP/1.1 200 OK\r\n{length}{chunked}{close}{headers}\r\n".encode())
        block = b"%x\r\n%s\r\n" % (len(BLOCK), BLOCK) if framing == "chunked" else BLOCK
        loop = asyncio.get_running_loop()
        deadline, sent = loop.time() + 10, 0
        while (total is None or sent < total) and loop.time() < deadline:
            writer.write(block)
            sent += len(BLOCK)
            await writer.drain()  # raises once the client has closed the connection
        if framing == "chunked":
            writer.write(b"0\r\n\r\n")
        if framing == "close":
            raise ConnectionError  # the end of the body

    return respond


@pytest.mark.parametrize(
    ("total", "framing"),
    [
        pytest.param(200 * 1024 * 1024, "length", id="declared-200MB"),
        pytest.param(8 * CAP, "chunked", id="chunked"),
        pytest.param(8 * CAP, "close", id="until-close"),
        pytest.param(None, "chunked", id="endless-chunked"),
        pytest.param(None, "close", id="endless-until-close"),
    ],
)
async def test_a_body_over_the_cap_is_refused_promptly_and_its_connection_closed(
    client_for, total, framing
):
    async with RawServer(streamed(total, framing)) as server:
        client = client_for(cap=CAP)
        started = asyncio.get_running_loop().time()
        with pytest.raises(ResponseTooLarge) as caught:
            await client.get(server.url)
        assert asyncio.get_running_loop().time() - started < 2
        assert caught.value.request.url == server.url
        # The half-read connection is closed, not kept for the next request...
        await asyncio.wait_for(server.closed.wait(), 2)
        # ...and the client goes on working on a new one.
        server.responder = answer(b'{"ok":true}')
        assert (await client.get(server.url)).json() == {"ok": True}
    assert server.connections == 2


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
async def test_a_body_of_exactly_the_cap_is_read_whole(client_for, framing):
    async with RawServer(streamed(CAP, framing)) as server:
        response = await client_for(cap=CAP).get(server.url)
    assert response.content == BLOCK * (CAP // len(BLOCK))


def deflated(data: bytes, wbits: int) -> bytes:
    """`data` compressed: wbits 31 gzip, 15 zlib-wrapped deflate, -15 raw deflate."""
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return packer.compress(data) + packer.flush()


@functools.cache
def bomb(size: int, wbits: int = 31) -> bytes:
    """`size` bytes of zeros compressed (about 1000:1), without holding them uncompressed."""
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits, 9, zlib.Z_RLE)
    zeros = bytes(1024 * 1024)
    packed = [packer.compress(zeros) for _ in range(size // len(zeros))]
    return b"".join([*packed, packer.flush()])


#: Varied enough that it takes many decompression steps (it compresses about 4:1).
DOCUMENT = b",".join(b'{"id":"%d","name":"Job %d"}' % (n, n * 7919 % 1000) for n in range(20_000))


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        pytest.param("gzip", deflated(DOCUMENT, 31), id="gzip"),
        pytest.param("x-gzip", deflated(DOCUMENT, 31), id="x-gzip"),
        pytest.param("deflate", deflated(DOCUMENT, 15), id="deflate-zlib"),
        pytest.param("deflate", deflated(DOCUMENT, -15), id="deflate-raw"),
        pytest.param("GZIP, identity", deflated(DOCUMENT, 31), id="gzip-then-identity"),
        pytest.param("deflate, gzip", deflated(deflated(DOCUMENT, 15), 31), id="deflate-then-gzip"),
        pytest.param("identity", DOCUMENT, id="identity"),
    ],
)
@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_encoded_bodies_under_the_cap_are_decoded_once(client_for, encoding, body, framing):
    assert len(DOCUMENT) < CAP
    length = f"Content-Length: {len(body)}\r\n" if framing == "length" else ""
    chunked = "Transfer-Encoding: chunked\r\n" if framing == "chunked" else ""
    head = f"HTTP/1.1 200 OK\r\nContent-Encoding: {encoding}\r\n{length}{chunked}\r\n"

    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head.encode())
        if framing == "length":
            writer.write(body)
            return
        for start in range(0, len(body), 1000):  # small chunks: decoding spans reads
            part = body[start : start + 1000]
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
            await writer.drain()
        writer.write(b"0\r\n\r\n")

    async with RawServer(respond) as server:
        response = await client_for(cap=CAP).get(server.url)
    assert response.content == DOCUMENT
    # httpx is handed the decoded body as it is (it must not decode it again).
    assert response.headers.get("content-encoding", "identity") == "identity"
    if framing == "length":
        assert response.headers["content-length"] == str(len(DOCUMENT))


@pytest.mark.parametrize(
    ("encoding", "wbits"),
    [
        pytest.param("gzip", 31, id="gzip"),
        pytest.param("deflate", 15, id="deflate"),
        pytest.param("deflate", -15, id="deflate-raw"),
        # Inflates to a harmless 100 KB, which is itself the bomb.
        pytest.param("gzip, gzip", 31, id="gzip-of-a-bomb"),
    ],
)
async def test_a_compression_bomb_is_refused_without_inflating_it(client_for, encoding, wbits):
    body = bomb(100 * 1024 * 1024, wbits)
    assert len(body) < 200 * 1024  # 100 MB of zeros
    if encoding == "gzip, gzip":
        body = deflated(body, 31)
    async with RawServer(answer(body, headers=f"Content-Encoding: {encoding}\r\n")) as server:
        client = client_for(cap=CAP)
        tracemalloc.start()
        try:
            with pytest.raises(ResponseTooLarge, match="after decompression"):
                await client.get(server.url)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # The cap (1 MiB) and a few steps of 64 KiB, never the 100 MB it expands to.
    assert peak < 4 * CAP


async def test_a_compression_bomb_leaves_the_event_loop_responsive(client_for):
    """Inflating up to the cap (here 64 MiB: about 60 ms of CPU) is sliced into turns."""
    loop = asyncio.get_running_loop()
    longest_gap = 0.0
    reading = True

    async def tick() -> None:
        nonlocal longest_gap
        last = loop.time()
        while reading:
            await asyncio.sleep(0)
            now = loop.time()
            longest_gap, last = max(longest_gap, now - last), now

    body = bomb(100 * 1024 * 1024)
    async with RawServer(answer(body, headers="Content-Encoding: gzip\r\n")) as server:
        client = client_for(cap=64 * CAP)
        ticker = asyncio.create_task(tick())
        try:
            with pytest.raises(ResponseTooLarge):
                await client.get(server.url)
        finally:
            reading = False
            await ticker
    # Unsliced, this bomb held the loop for over 200 ms; sliced, about 2 ms per turn.
    assert longest_gap < 0.05


def corrupt_midway() -> bytes:
    """A gzip stream that goes bad after hundreds of KB of output: a block of the type
    deflate reserves (BTYPE 11) after a flush to a byte boundary."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    return packer.compress(DOCUMENT) + packer.flush(zlib.Z_FULL_FLUSH) + b"\x07" + bytes(100)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not gzip", id="not-gzip"),
        pytest.param(corrupt_midway(), id="corrupt-midway"),
    ],
)
async def test_a_corrupt_compressed_body_is_a_decoding_error(client_for, body):
    async with RawServer(answer(body, headers="Content-Encoding: gzip\r\n")) as server:
        with pytest.raises(httpx.DecodingError) as caught:
            await client_for(cap=CAP).get(server.url)
    assert not isinstance(caught.value, ResponseTooLarge)


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, br"])
async def test_a_coding_the_transport_cannot_decode_is_a_decoding_error(client_for, encoding):
    responder = answer(b"\x1b\x00\x00", headers=f"Content-Encoding: {encoding}\r\n")
    async with RawServer(responder) as server:
        with pytest.raises(httpx.DecodingError, match="not supported"):
            await client_for(cap=CAP).get(server.url)


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        pytest.param(None, "gzip, deflate", id="httpx-default"),
        pytest.param("gzip, deflate, br, zstd", "gzip, deflate", id="httpx-with-brotli"),
        pytest.param("br;q=1.0, gzip;q=0.5", "gzip;q=0.5", id="weights-kept"),
        pytest.param("br", "identity", id="nothing-decodable"),
        pytest.param("identity", "identity", id="identity"),
    ],
)
async def test_requests_accept_only_the_codings_the_transport_decodes(client_for, sent, expected):
    async with RawServer(answer(b"{}")) as server:
        headers = {"Accept-Encoding": sent} if sent else {}
        await client_for().get(server.url, headers=headers)
    lines = server.heads[0].decode().lower().split("\r\n")
    assert [line for line in lines if line.startswith("accept-encoding:")] == [
        f"accept-encoding: {expected}"
    ]
