"""Self-hosted GraphiQL: the page loads only same-origin assets, and they are served intact.

The point of the feature is that the IDE works without internet access, so the
main test serves the page and its assets over real HTTP (uvicorn on a loopback
port) and checks that every script and stylesheet the browser would load comes
from this server and matches its Subresource Integrity hash.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import socket
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from strawberry.http.ides import get_graphql_ide_html

from gateway.http.graphiql import (
    ASSETS_DIR,
    ASSETS_URL_PREFIX,
    assets_available,
    graphiql_assets_app,
    graphiql_page,
)

BUILD_HINT = (
    f"Self-hosted GraphiQL assets are not built in {ASSETS_DIR}: run `make assets` "
    "(scripts/build-graphiql-assets.sh, needs npm) and re-run the tests."
)


class _AssetRefs(HTMLParser):
    """Collects what a browser would fetch (<script src>, <link href>) and inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, dict[str, str | None]]] = []
        self.inline_scripts: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script" and attributes.get("src"):
            self.refs.append((tag, attributes))
        elif tag == "script":
            self._in_inline_script = True
            self.inline_scripts.append("")
        elif tag == "link" and attributes.get("href"):
            self.refs.append((tag, attributes))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_inline_script = False

    def handle_data(self, data: str) -> None:
        if self._in_inline_script:
            self.inline_scripts[-1] += data


def _parse(page: str) -> _AssetRefs:
    parser = _AssetRefs()
    parser.feed(page)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """A tiny Starlette app like the gateway's, served by uvicorn on a free loopback port."""

    async def graphql_page(request: Request) -> HTMLResponse:
        return HTMLResponse(graphiql_page())

    app = Starlette(
        routes=[
            Route("/graphql", graphql_page),
            Mount(ASSETS_URL_PREFIX, graphiql_assets_app()),
        ]
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.01)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_page_loads_only_same_origin_assets_with_valid_sri(base_url: str) -> None:
    if not assets_available():
        pytest.fail(BUILD_HINT, pytrace=False)

    with httpx.Client(base_url=base_url, timeout=10) as client:
        page = client.get("/graphql")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "<title>Kombo Jobs GraphQL gateway</title>" in page.text

        parsed = _parse(page.text)
        scripts = [attrs for tag, attrs in parsed.refs if tag == "script"]
        stylesheets = [
            attrs
            for tag, attrs in parsed.refs
            if tag == "link" and attrs.get("rel") == "stylesheet"
        ]
        assert len(scripts) == 4, scripts  # react, react-dom, graphiql, explorer plugin
        assert len(stylesheets) == 2, stylesheets  # graphiql, explorer plugin

        for inline in parsed.inline_scripts:
            assert "://" not in inline, "an inline script references an absolute URL"

        for tag, attrs in parsed.refs:
            ref = attrs.get("src") or attrs.get("href") or ""
            parts = urlsplit(ref)
            if parts.scheme == "data":  # the favicon: inline, never fetched from anywhere
                assert attrs.get("rel") == "icon", attrs
                continue
            assert not parts.scheme and not parts.netloc, f"external URL in the page: {ref}"
            assert parts.path.startswith(f"{ASSETS_URL_PREFIX}/"), ref

            response = client.get(ref)
            assert response.status_code == 200, ref
            assert response.content, f"{ref} is empty"
            content_type = response.headers["content-type"]
            if tag == "script":
                assert content_type.startswith(("text/javascript", "application/javascript")), (
                    ref,
                    content_type,
                )
            else:
                assert content_type.startswith("text/css"), (ref, content_type)

            integrity = attrs.get("integrity")
            assert integrity is not None and integrity.startswith("sha384-"), ref
            digest = base64.b64encode(hashlib.sha384(response.content).digest()).decode()
            assert integrity == f"sha384-{digest}", f"SRI mismatch for {ref}"


def test_page_talks_to_the_given_same_origin_endpoint() -> None:
    if not assets_available():
        pytest.fail(BUILD_HINT, pytrace=False)
    page = graphiql_page("/api/graphql")
    assert '"/api/graphql"' in page
    assert "shouldPersistHeaders: true" in page
    assert "isHeadersEditorEnabled: true" in page
    assert "explorerPlugin()" in page
    for bad in ("https://example.invalid/graphql", "//example.invalid/graphql", "graphql"):
        with pytest.raises(ValueError):
            graphiql_page(bad)


async def test_assets_app_answers_404_when_assets_are_missing(tmp_path: Path) -> None:
    """A gateway without built assets must still start and serve, just with 404s here."""
    app = Starlette(routes=[Mount(ASSETS_URL_PREFIX, graphiql_assets_app(tmp_path / "absent"))])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get(f"{ASSETS_URL_PREFIX}/manifest.json")
    assert response.status_code == 404


def test_falls_back_to_strawberry_page_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert not assets_available(tmp_path)
    with caplog.at_level(logging.WARNING, logger="gateway.graphiql"):
        first = graphiql_page(assets_dir=tmp_path)
        second = graphiql_page(assets_dir=tmp_path)

    assert first == second == get_graphql_ide_html("graphiql")
    warnings = [r for r in caplog.records if r.name == "gateway.graphiql"]
    assert len(warnings) == 1, warnings
    assert warnings[0].levelno == logging.WARNING
    assert "make assets" in warnings[0].getMessage()
    assert "not built" in warnings[0].getMessage()
