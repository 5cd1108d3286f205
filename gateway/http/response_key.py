"""What a GraphQL answer depends on, and the response cache's key over exactly that.

Usage (by the view, after admission and persisted documents, before anything runs)::

    operations = resolved.operations      # `gateway.http.operations`, documents resolved
    key = ResponseKey(
        operations, integration=..., credential=..., caller=..., generation=..., deployment=...
    ).digest()

Every input that can change the bytes of an answer is in the key: one SHA-256 over all
of them as one JSON array (`tests/test_response_cache.py` changes each one alone and
sees a different answer or a miss):

1. **the operations**: each one's document text, as sent or as its persisted id or
   hash resolved to (`gateway.http.persisted`: the text, not the id, since one id may
   name another text in another deployment), `operationName`, `variables` and
   `extensions` (which hold an APQ hash: a request that differs there is another
   request);
2. **the batch shape**: one operation (a JSON object) or a batch (a JSON list, its order
   and length): `[op]` answers `[{...}]`, `op` answers `{...}`;
3. **the integration** the request resolved to (its `X-Integration-Id`, else the token's
   default, else `KOMBO_INTEGRATION_ID`): the resolved one, so a request naming the
   default integration and one relying on it share an entry;
4. **the credential**: the fingerprint of the Kombo key its calls use (the gateway's,
   or the caller's own with `GATEWAY_KOMBO_KEY_PASSTHROUGH`), which also keys the
   cursors an answer carries;
5. **the caller**: the name of the gateway token it came with (none on an open gateway,
   where every caller reads the same data with the same key);
6. **the integration's data generation**, read before the answer is built: Kombo's
   data-changed webhook raises it, and every answer built before is never found again.
   Two numbers (`gateway.sharing.generations`): this process's epoch names the level-1
   slot (`ResponseCache.slot`), the generation in Redis names the level-2 key; the
   digest itself holds neither, since epochs are each process's own;
7. **the deployment** (`deployment_digest`, once per process): the gateway's version,
   the served schema, Kombo's base URL, the cursor secret (digested) and every setting
   that can refuse or shape an answer (limits, `GATEWAY_INTROSPECTION`, ID and call
   budgets): replicas sharing one Redis with different settings share no answer.

Not in the key, and why:

- **GET or POST**: one operation gives one answer either way (the schema has queries
  only; the view keeps no answers if it ever gains mutations or subscriptions).
- **`Accept`**: the answer is JSON whatever it says (GraphiQL's page is served only to
  a GET *without* `query`, and no streaming transport is enabled); `Accept-Encoding`:
  the gateway does not compress.
- **`Cache-Control`**: it asks for fresh data (`no-cache` skips the cache and refreshes
  it), not another answer.
- the **client address**, the **request id**, **rate limits** and the per-request
  **call budget**: they refuse requests or fail fields, and answers with errors are
  never kept.
- **time**: an entry lives no longer than the upstream answers it was built from.

The key is cheap and bounded: the operations the view parsed anyway, one JSON encoding and
one SHA-256 over what was sent (the document at most `GATEWAY_MAX_DOCUMENT_BYTES`, the
whole request at most `GATEWAY_MAX_BODY_BYTES`), plus constant work; a few microseconds
for a usual request, and no text of the request is kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from gateway import __version__
from gateway.config import Settings
from gateway.http.operations import Operations


@dataclass(frozen=True, slots=True)
class ResponseKey:
    """Every input of an answer (see the module docstring)."""

    operations: Operations
    integration: str | None
    #: `credential_fingerprint` of the Kombo key the request's calls use.
    credential: str
    #: The gateway token's name; None on an open gateway.
    caller: str | None
    #: This process's epoch of the integration (`UpstreamCache.generation`): part of the
    #: level-1 slot, not of the digest, since epochs are each process's own.
    generation: int
    #: `deployment_digest`.
    deployment: str
    #: The integration's generation in Redis (`UpstreamCache.shared_generation`), which
    #: names the level-2 key; None: the answer is not shared (no Redis, or it could not
    #: be read: a key without the right generation could serve what a webhook dropped).
    shared_generation: int | None = None

    def digest(self) -> bytes:
        """32 bytes naming this request's answer: SHA-256 of every input as one JSON
        array (so no two inputs run into each other, and null differs from empty),
        encoded in one call.

        Raises:
            TypeError: a value JSON cannot encode (nothing Strawberry reads as JSON).
        """
        operations = [
            [op.query, op.operation_name, op.variables, op.extensions]
            for op in self.operations.items
        ]
        inputs = [
            "kombo-gateway response 1",
            self.deployment,
            self.integration,
            self.credential,
            self.caller,
            self.operations.batch,
            operations,
        ]
        return hashlib.sha256(orjson.dumps(inputs)).digest()


def deployment_digest(settings: Settings, schema_sdl: str) -> str:
    """What makes this deployment answer the way it does, digested once per process:
    the gateway's version, the served schema, and every setting that shapes or refuses
    an answer. The cursor secret enters only as part of this digest."""
    facts: Sequence[object] = (
        __version__,
        schema_sdl,
        settings.base_url,
        settings.cursor_secret or "",
        settings.introspection,
        settings.max_depth,
        settings.max_aliases,
        settings.max_tokens,
        settings.max_document_bytes,
        settings.max_batch,
        settings.max_fields,
        settings.max_ids,
        settings.isolation_calls,
        settings.max_upstream_calls,
        settings.max_response_bytes,
    )
    return hashlib.sha256(orjson.dumps([str(fact) for fact in facts])).hexdigest()
