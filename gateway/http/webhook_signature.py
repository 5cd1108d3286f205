"""`X-Kombo-Signature`: the HMAC-SHA256 of a webhook's raw body, keyed with
`KOMBO_WEBHOOK_SECRET`, checked in constant time; and the endpoint's path. Both are the
contract's names, here in a module light enough for the CLI to import (it tells the
embedded sandbox where to send its webhooks).

Usage::

    if not signature_matches(request.headers.get(SIGNATURE_HEADER), secret, body):
        ...  # 401, and nothing changes

Kombo's exact encoding could not be read (see `../shared/kombo/webhooks.md`), so the
contract accepts the usual ones: hex (either case), standard base64 and base64url, with
or without padding. The header is compared with `hmac.compare_digest` against every
encoding of the expected digest, each comparison made whatever the others found, so the
time taken says nothing about how close a guess came (only the header's length, which
is public, shapes it). The digest is always of the bytes received, never of re-encoded
JSON: any reformatting would change it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

WEBHOOK_PATH = "/webhooks/kombo"
SIGNATURE_HEADER = "X-Kombo-Signature"


def expected_signatures(secret: str, body: bytes) -> tuple[bytes, ...]:
    """Every accepted encoding of the body's signature: hex (lowercase) first, then
    standard base64 and base64url, each padded and unpadded."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    standard = base64.b64encode(digest)
    url_safe = base64.urlsafe_b64encode(digest)
    return (
        digest.hex().encode(),
        standard,
        standard.rstrip(b"="),
        url_safe,
        url_safe.rstrip(b"="),
    )


def signature_matches(header: str | None, secret: str, body: bytes) -> bool:
    """Whether `header` (the `X-Kombo-Signature` value; None: missing) signs `body`."""
    if not header:
        return False
    # Header values arrive as latin-1 text; anything else cannot be a signature.
    given = header.strip().encode("latin-1", errors="replace")
    hex_form, *base64_forms = expected_signatures(secret, body)
    matched = hmac.compare_digest(given.lower(), hex_form)
    for form in base64_forms:
        matched |= hmac.compare_digest(given, form)
    return matched
