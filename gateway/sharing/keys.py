"""Names of the gateway's Redis keys: one place, so the rules below hold for every key.

    <prefix>:{<integration>}:page:<generation>:<credential digest>:<request digest>
                                                 an upstream answer
    <prefix>:{<integration>}:job:<generation>:<credential digest>:<Kombo ID digest>
                                                 one job, primed from a page
    <prefix>:{<integration>}:response:<generation>:<credential digest>:<request digest>
                                                 a whole GraphQL answer
    <entry key>:lease                            who is fetching it now
    <prefix>:{<integration>}:generation          the integration's data generation
    <prefix>:{<integration>}:event:<event id digest>   a webhook event already handled
    <prefix>:{<integration>}:backoff             Kombo said: wait
    <prefix>:rate:<caller digest>                a caller's rate limit
    <prefix>:apq:<document SHA-256>              a document registered by APQ (its text)
    <prefix>:ready                               pub/sub: a value landed
    <prefix>:generations                         pub/sub: an integration's generation rose

- No key holds a secret: credentials (the Kombo key, a gateway token) appear only as
  digests, and callers' identities too. An APQ document is no tenant's data (its hash
  is of its text, which whoever knows the hash already has): shared by every tenant.
- Entries never mix credentials or integrations: both are in every entry key.
- Every entry key holds its integration's generation (`gateway.sharing.generations`):
  Kombo's data-changed webhook raises it, and every entry of the old generation is
  never read again (each expires by its TTL), with no scan and no delete.
- One integration's keys share a Redis Cluster hash tag (`{integration}`), so the
  webhook's script (event, generation) touches one slot.
"""

from __future__ import annotations

import hashlib
import re

# What a Kombo integration ID may hold (and the gateway checks): no brace, so the ID can
# be a hash tag as it is. Anything else (an operator's odd KOMBO_INTEGRATION_ID) is
# digested rather than allowed to end the tag early.
_TAG_SAFE = re.compile(r"[A-Za-z0-9_.:\-]{1,200}")


def digest(text: str) -> str:
    """A short hex digest naming `text` in a key (the text itself never is)."""
    return hashlib.sha256(b"kombo-gateway redis\0" + text.encode()).hexdigest()[:32]


class KeySpace:
    """Every key of one gateway deployment (one prefix)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        #: The pub/sub channel on which a new value's key is announced.
        self.ready_channel = f"{prefix}:ready"
        #: The pub/sub channel on which a raised generation is announced.
        self.generations_channel = f"{prefix}:generations"

    def _integration(self, integration_id: str) -> str:
        tag = integration_id if _TAG_SAFE.fullmatch(integration_id) else digest(integration_id)
        return f"{self.prefix}:{{{tag}}}"

    def page(self, integration_id: str, generation: int, credential: str, request: str) -> str:
        """An upstream answer of the integration's `generation`: `credential` is already
        a digest, `request` the canonical request (digested here)."""
        tail = f"{generation}:{credential}:{digest(request)}"
        return f"{self._integration(integration_id)}:page:{tail}"

    def job(self, integration_id: str, generation: int, credential: str, kombo_id: str) -> str:
        tail = f"{generation}:{credential}:{digest(kombo_id)}"
        return f"{self._integration(integration_id)}:job:{tail}"

    def generation(self, integration_id: str) -> str:
        return f"{self._integration(integration_id)}:generation"

    def event(self, integration_id: str, event_id: str) -> str:
        """A webhook event handled (its ID digested: it is Kombo's, not ours to echo)."""
        return f"{self._integration(integration_id)}:event:{digest(event_id)}"

    def response(
        self, integration_id: str, generation: int, credential: str, request: bytes
    ) -> str:
        """A whole GraphQL answer (`gateway.http.response_cache`) of the integration's
        data `generation`: `credential` is already a digest, `request` the response key's
        digest (every input of the answer, `gateway.http.response_key`)."""
        tail = f"{generation}:{credential}:{request.hex()}"
        return f"{self._integration(integration_id)}:response:{tail}"

    def lease(self, entry_key: str) -> str:
        """The lease on fetching `entry_key`: in its hash tag, so in its slot."""
        return f"{entry_key}:lease"

    def backoff(self, integration_id: str) -> str:
        return f"{self._integration(integration_id)}:backoff"

    def rate(self, caller: str) -> str:
        return f"{self.prefix}:rate:{digest(caller)}"

    def apq(self, sha256: str) -> str:
        """A document registered by automatic persisted queries, under its SHA-256."""
        return f"{self.prefix}:apq:{sha256}"
