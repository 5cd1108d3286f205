"""HTTP caching of `/graphql` answers: `ETag`, `If-None-Match`, `Cache-Control`, `Vary`.

Usage (by the view, on every answer it sends)::

    caching = HttpCaching.from_settings(settings)       # once per process
    response = caching.answered(request, response, etag, fresh_for=12.7)  # GET: maybe a 304
    HttpCaching.no_store(response)          # an error, or a POST: Cache-Control: no-store

What each answer carries, and why:

- **a successful `GET`** (no error anywhere in it): `ETag`, a strong validator of the
  body's bytes (a digest of them: equal bytes, equal tag, whoever asked);
  `Cache-Control: private, max-age=N`, N the whole seconds the answer stays fresh
  (the response cache's entry, else the TTL less the age of the oldest upstream answer
  it used; 0 with the cache off): `private` because it depends on who asks, so no shared
  cache (CDN, proxy) may keep it; and `Vary` naming the request headers that change it.
- **a `GET` whose `If-None-Match` matches** that tag (one of a list, weakly compared as
  RFC 9110 says for this header, or `*`): 304 with those headers and no body. Nothing is
  saved on a response-cache miss but the bytes on the wire, since the answer is
  computed to know its tag; on a hit, nothing runs at all.
- **any answer with an error** (a GraphQL error, a refusal, a malformed request):
  `Cache-Control: no-store`, no `ETag`.
- **every `POST` answer**: `Cache-Control: no-store`, no `ETag`. HTTP caches never reuse
  a POST answer without explicit freshness and `Content-Location`, so a validator would
  only invite `If-None-Match` on POST, which RFC 9110 reads as a precondition on a
  state-changing request (412), not as revalidation. It is ignored there. The response
  cache serves repeated POSTs all the same.

`Vary` lists `X-Integration-Id` always, `Authorization` when gateway tokens are
configured (a token's default integration and identity change the answer) and
`X-Kombo-Api-Key` with key pass-through; fixed per process, as are the settings that
decide it. Not listed: `Accept` (a `GET` with `query` is answered JSON whatever it
accepts; GraphiQL's page, for a `GET` without one, says `Vary: Accept` itself),
`Cache-Control` and the others `gateway.http.response_key` shows change no answer.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response

from gateway.config import Settings
from gateway.http.access import KOMBO_KEY_HEADER
from gateway.schema.context import INTEGRATION_HEADER

NO_STORE = "no-store"


def body_digest(body: bytes) -> bytes:
    """16 bytes of SHA-256 of an answer's bytes: its ETag, and the check of a copy read
    back from Redis."""
    return hashlib.sha256(body).digest()[:16]


def strong_etag(digest: bytes) -> str:
    """The `ETag` value of a body with `body_digest` `digest` (a quoted opaque tag)."""
    return '"' + base64.urlsafe_b64encode(digest).rstrip(b"=").decode() + '"'


def none_match(header_values: Sequence[str], etag: str) -> bool:
    """Whether `If-None-Match` (every line of it) matches `etag`: `*`, or any listed tag
    equal to it under the weak comparison (RFC 9110, 13.1.2: `W/` ignored)."""
    opaque = etag.removeprefix("W/")
    for value in header_values:
        for tag in value.split(","):
            tag = tag.strip()
            if tag == "*" or tag.removeprefix("W/") == opaque:
                return True
    return False


class HttpCaching:
    """The caching headers of this deployment's `/graphql` answers."""

    def __init__(self, vary: str) -> None:
        #: The `Vary` value: every request header that changes an answer here.
        self.vary = vary

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpCaching:
        headers = [INTEGRATION_HEADER]
        if settings.tokens:
            headers.insert(0, "Authorization")
        if settings.key_passthrough:
            headers.append(KOMBO_KEY_HEADER)
        return cls(", ".join(headers))

    def answered(
        self, request: Request, response: Response, etag: str, *, fresh_for: float
    ) -> Response:
        """`response`, an answer without errors, with its caching headers (`etag`: its
        body's tag); a 304 in its place for a `GET` whose `If-None-Match` matches."""
        if request.method != "GET":
            return self.no_store(response)
        headers = {
            "ETag": etag,
            "Cache-Control": f"private, max-age={max(0, math.floor(fresh_for))}",
            "Vary": self.vary,
        }
        if none_match(request.headers.getlist("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        response.headers.update(headers)
        return response

    @staticmethod
    def no_store(response: Response) -> Response:
        """`response`, an answer with an error or to a POST: never to be stored anywhere."""
        response.headers["Cache-Control"] = NO_STORE
        return response
