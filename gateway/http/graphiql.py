"""Self-hosted GraphiQL: the IDE page and the static assets it loads.

Strawberry's stock GraphiQL page pulls React, GraphiQL and the explorer plugin
from a public CDN, so it is blank on machines without internet access. This
module serves the same packages from the gateway itself instead. The files are
fetched with npm at build time by ``scripts/build-graphiql-assets.sh`` (``make
assets``) into ``gateway/http/static/graphiql/`` (gitignored); nothing is downloaded
at run time. When they were not built, we fall back to Strawberry's stock page
(which still works where the CDN is reachable) and log how to fix it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Scope
from strawberry.http.ides import get_graphql_ide_html

__all__ = [
    "ASSETS_DIR",
    "ASSETS_URL_PREFIX",
    "DEFAULT_QUERY",
    "assets_available",
    "graphiql_assets_app",
    "graphiql_page",
]

logger = logging.getLogger("gateway.graphiql")

ASSETS_DIR: Final[Path] = Path(__file__).resolve().parent / "static" / "graphiql"
"""Where ``make assets`` puts the npm-built files (see ``scripts/build-graphiql-assets.sh``)."""

ASSETS_URL_PREFIX: Final = "/graphiql"
"""Mount point of :func:`graphiql_assets_app`; every asset URL in the page starts with it."""

MANIFEST_NAME: Final = "manifest.json"

DEFAULT_QUERY: Final = """\
# Kombo Jobs GraphQL gateway
#
# Run: Ctrl-Enter or the play button.
# Build queries by clicking: Explorer, left sidebar.
# Credentials: Headers tab below (kept in this
# browser's local storage).
{
  jobs(first: 5) {
    edges {
      cursor
      node {
        id
        komboId
        name
        status
        statusRaw
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
"""

# Roles the build script writes into the manifest, in the order the page needs
# them: the explorer's UMD bundle reads ``window.GraphiQL`` and ``window.React``,
# and GraphiQL's reads ``window.React``/``window.ReactDOM``, so order matters.
_SCRIPT_ROLES: Final = ("react", "react-dom", "graphiql-js", "explorer-js")
_STYLE_ROLES: Final = ("graphiql-css", "explorer-css")

# Versioned directories make every asset URL change with its package version,
# so browsers may keep them forever; the manifest itself must stay fresh.
_IMMUTABLE_CACHE: Final = "public, max-age=31536000, immutable"
_REVALIDATE_CACHE: Final = "no-cache"

# Pinned so a host with an odd mimetypes database (some map .js to text/plain)
# cannot make browsers refuse the scripts under ``nosniff``.
_MEDIA_TYPES: Final[Mapping[str, str]] = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
}

_FAVICON_SVG: Final = (
    "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'>"
    "<rect width='32' height='32' rx='7' fill='#e10098'/>"
    "<text x='16' y='23' font-family='sans-serif' font-size='20' font-weight='700'"
    " fill='#fff' text-anchor='middle'>K</text></svg>"
)
_FAVICON: Final = "data:image/svg+xml," + quote(_FAVICON_SVG, safe=" '=/:")

_lock = threading.Lock()
# (assets dir, endpoint) -> (manifest mtime_ns, rendered page). The mtime lets a
# running gateway pick up rebuilt assets instead of serving stale SRI hashes.
_page_cache: dict[tuple[Path, str], tuple[int, str]] = {}
_warned_dirs: set[Path] = set()


def _load_manifest(assets_dir: Path) -> dict[str, str] | None:
    """Map role -> relative file path, or ``None`` when the build is missing or broken.

    Every file the manifest lists must exist and every role the page needs must
    be present; a half-built directory is treated exactly like an absent one.
    """
    try:
        manifest: Any = json.loads((assets_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
        entries = manifest["files"]
        roles: dict[str, str] = {}
        for entry in entries:
            rel = entry["path"]
            if not isinstance(rel, str) or not (assets_dir / rel).is_file():
                return None
            roles.setdefault(str(entry["role"]), rel)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not entries or any(role not in roles for role in (*_SCRIPT_ROLES, *_STYLE_ROLES)):
        return None
    return roles


def assets_available(assets_dir: Path = ASSETS_DIR) -> bool:
    """Whether ``make assets`` has produced a complete build in ``assets_dir``.

    True when the manifest is present, every file it lists exists, and it names
    all the scripts and stylesheets the page loads.
    """
    return _load_manifest(assets_dir) is not None


def _sri(path: Path) -> str:
    """Subresource Integrity value, so a tampered or half-copied file is refused."""
    digest = hashlib.sha384(path.read_bytes()).digest()
    return "sha384-" + base64.b64encode(digest).decode("ascii")


def _js_literal(value: str) -> str:
    """JSON-encode for an inline ``<script>`` without letting ``</script>`` end it."""
    return (
        json.dumps(value)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _check_endpoint(graphql_endpoint: str) -> None:
    """Only same-origin absolute paths: the page must never talk to another host."""
    if (
        not graphql_endpoint.startswith("/")
        or graphql_endpoint.startswith("//")
        or "\\" in graphql_endpoint
    ):
        raise ValueError(
            f"graphql_endpoint must be a same-origin path like '/graphql', got {graphql_endpoint!r}"
        )


_PAGE_TEMPLATE: Final = """\
<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="referrer" content="no-referrer" />
    <title>Kombo Jobs GraphQL gateway</title>
    <link rel="icon" href="{favicon}" />
{styles}
    <style>
      body {{ height: 100%; margin: 0; width: 100%; overflow: hidden; }}
      #graphiql {{ height: 100vh; display: flex; }}
      .graphiql-explorer-actions select {{ margin-left: 4px; }}
    </style>
  </head>
  <body>
    <div id="graphiql" class="graphiql-container">Loading GraphiQL…</div>
{scripts}
    <script>
      (function () {{
        "use strict";
        var endpoint = new URL({endpoint}, window.location.href);
        var subscriptionUrl = new URL(endpoint.href);
        subscriptionUrl.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";
        var fetcher = GraphiQL.createFetcher({{
          url: endpoint.href,
          subscriptionUrl: subscriptionUrl.href,
        }});
        var explorer = GraphiQLPluginExplorer.explorerPlugin();
        ReactDOM.createRoot(document.getElementById("graphiql")).render(
          React.createElement(GraphiQL, {{
            fetcher: fetcher,
            plugins: [explorer],
            defaultQuery: {default_query},
            defaultEditorToolsVisibility: true,
            isHeadersEditorEnabled: true,
            shouldPersistHeaders: true,
            inputValueDeprecation: true,
          }}),
        );
      }})();
    </script>
  </body>
</html>
"""


def _render(graphql_endpoint: str, assets_dir: Path, roles: Mapping[str, str]) -> str:
    """Build the page; every asset is a host-relative URL under ASSETS_URL_PREFIX with SRI."""

    def url(role: str) -> str:
        return html.escape(f"{ASSETS_URL_PREFIX}/{quote(roles[role])}")

    def integrity(role: str) -> str:
        return _sri(assets_dir / roles[role])

    styles = "\n".join(
        f'    <link rel="stylesheet" href="{url(role)}" integrity="{integrity(role)}" />'
        for role in _STYLE_ROLES
    )
    scripts = "\n".join(
        f'    <script src="{url(role)}" integrity="{integrity(role)}"></script>'
        for role in _SCRIPT_ROLES
    )
    return _PAGE_TEMPLATE.format(
        favicon=html.escape(_FAVICON, quote=False),
        styles=styles,
        scripts=scripts,
        endpoint=_js_literal(graphql_endpoint),
        default_query=_js_literal(DEFAULT_QUERY),
    )


def graphiql_page(graphql_endpoint: str = "/graphql", assets_dir: Path = ASSETS_DIR) -> str:
    """HTML of the GraphiQL IDE talking to ``graphql_endpoint`` on the same origin.

    Uses the self-hosted assets in ``assets_dir``; hashing ~4 MB of JavaScript
    per request would be wasteful, so the page is cached per directory and
    endpoint until the manifest changes. Without a build, returns Strawberry's
    stock (CDN-backed) page so the IDE still works where the internet is
    reachable, and warns once per directory.

    Raises:
        ValueError: ``graphql_endpoint`` is not a same-origin absolute path.
    """
    _check_endpoint(graphql_endpoint)
    key = (assets_dir.resolve(), graphql_endpoint)
    try:
        stamp: int | None = (assets_dir / MANIFEST_NAME).stat().st_mtime_ns
    except OSError:
        stamp = None
    if stamp is not None:
        cached = _page_cache.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]

    roles = _load_manifest(assets_dir)
    if stamp is None or roles is None:
        with _lock:
            first = key[0] not in _warned_dirs
            _warned_dirs.add(key[0])
        if first:
            logger.warning(
                "Self-hosted GraphiQL assets were not built (no complete %s in %s); "
                "serving Strawberry's stock GraphiQL page, which loads its scripts from a "
                "public CDN and will not work offline. Run `make assets` "
                "(scripts/build-graphiql-assets.sh) to build them.",
                MANIFEST_NAME,
                assets_dir,
            )
        return get_graphql_ide_html("graphiql")

    page = _render(graphql_endpoint, assets_dir, roles)
    with _lock:
        _page_cache[key] = (stamp, page)
    return page


class _AssetFiles(StaticFiles):
    """StaticFiles that tolerates a missing directory and sets cache/type headers."""

    async def check_config(self) -> None:
        """Answer 404 instead of failing when the assets were not built yet."""
        if self.directory is not None and not os.path.isdir(self.directory):
            return
        await super().check_config()

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        """Long-lived caching for versioned files, revalidation for the manifest."""
        response = super().file_response(full_path, stat_result, scope, status_code)
        name = os.fspath(full_path)
        media_type = _MEDIA_TYPES.get(os.path.splitext(name)[1])
        if media_type is not None and response.status_code == 200:
            response.headers["content-type"] = media_type
        is_manifest = os.path.basename(name) == MANIFEST_NAME
        response.headers["cache-control"] = _REVALIDATE_CACHE if is_manifest else _IMMUTABLE_CACHE
        response.headers["x-content-type-options"] = "nosniff"
        return response


def graphiql_assets_app(assets_dir: Path = ASSETS_DIR) -> ASGIApp:
    """ASGI app serving ``assets_dir``; mount it at :data:`ASSETS_URL_PREFIX`.

    ``check_dir=False`` (plus a tolerant config check) lets the gateway start and
    answer 404s when the assets were never built; the page then falls back to
    Strawberry's stock one.
    """
    return _AssetFiles(directory=assets_dir, check_dir=False)
