"""`gateway.transport`: httpx's behaviour over aiohttp, against a raw TCP server on loopback.

The server answers with bytes the test chooses, so each case is a real HTTP exchange:
what leaves the process, how bodies and encodings come back, that connections are kept
alive, and that every way an upstream can fail surfaces as the httpx exception the Kombo
client already handles, never as an aiohttp one.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import trustme

from gateway.config import Settings
from gateway.metrics import GatewayMetrics
from gateway.state import create_http_client
from gateway.transport import AiohttpTransport

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

    def make(read: float = 5.0, max_connections: int = 10) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(read, connect=2.0, pool=read),
            transport=AiohttpTransport(httpx.Limits(max_connections=max_connections)),
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
