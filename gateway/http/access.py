"""Who may call the gateway, and which integrations each caller may use.

Usage::

    policy = AccessPolicy(settings.tokens, key_passthrough=settings.key_passthrough)
    caller = policy.authenticate(headers.get("authorization"), headers.get(KOMBO_KEY_HEADER))
    integration = policy.integration_for(caller, headers.get("x-integration-id"), default)

Model: with tokens configured, every request carries `Authorization: Bearer <token>`;
a token names the integrations it may use and optionally its default one. Tokens are
stored as SHA-256 digests (they are random, so a fast hash is enough) and compared in
constant time against every configured digest. With key pass-through, callers send
their own Kombo key in `X-Kombo-Api-Key`; caches are then keyed by that key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from gateway.config import TokenSpec
from gateway.errors import BadUserInput, Forbidden, Unauthenticated

KOMBO_KEY_HEADER = "X-Kombo-Api-Key"
_BEARER = re.compile(r"Bearer\s+(\S+)\s*", re.IGNORECASE)
# Kombo keys: `ks_prod_...`/`ks_dev_...`, but any plausible secret is passed on as is.
_KOMBO_KEY = re.compile(r"[A-Za-z0-9_\-.]{8,256}")


def hash_token(token: str) -> str:
    """The digest a token is configured by."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits)."""
    return "kgw_" + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the token's name (None on an open gateway) and what it may use."""

    name: str | None
    token: TokenSpec | None = None
    #: The caller's own Kombo key, in pass-through mode.
    kombo_key: str | None = None


class AccessPolicy:
    """Authenticates requests and authorizes integrations, before any upstream call."""

    def __init__(self, tokens: tuple[TokenSpec, ...], *, key_passthrough: bool = False) -> None:
        self._tokens = tokens
        self._digests = [(spec, bytes.fromhex(spec.sha256)) for spec in tokens]
        self.key_passthrough = key_passthrough

    @property
    def tokens(self) -> tuple[TokenSpec, ...]:
        return self._tokens

    def replace_tokens(self, tokens: tuple[TokenSpec, ...]) -> None:
        """Use `tokens` from the next request on (a rotation). An open gateway stays open
        and a closed one closed: no file content can switch between the two."""
        if not tokens or not self._tokens:
            raise ValueError("tokens can be replaced, not added to or removed from a gateway")
        self._digests = [(spec, bytes.fromhex(spec.sha256)) for spec in tokens]
        self._tokens = tokens

    @property
    def open(self) -> bool:
        """True when no tokens are configured: anyone who reaches the gateway may use it."""
        return not self._tokens

    @property
    def checks_credentials(self) -> bool:
        """True when a request can fail authentication (tokens, or pass-through keys)."""
        return bool(self._tokens) or self.key_passthrough

    def authenticate(self, authorization: str | None, kombo_key: str | None = None) -> Caller:
        """The caller behind these headers.

        Raises:
            Unauthenticated: a token is required and missing or unknown, or pass-through
                mode needs a Kombo key and none (or a malformed one) was sent.
        """
        token = self._token(authorization) if self._tokens else None
        key = None
        if self.key_passthrough:
            if not kombo_key or not _KOMBO_KEY.fullmatch(kombo_key.strip()):
                raise Unauthenticated(f"Send your Kombo API key in the `{KOMBO_KEY_HEADER}` header")
            key = kombo_key.strip()
        return Caller(name=token.name if token else None, token=token, kombo_key=key)

    def _token(self, authorization: str | None) -> TokenSpec:
        match = _BEARER.fullmatch(authorization or "")
        if match is None:
            raise Unauthenticated("Send a gateway token: `Authorization: Bearer <token>`")
        presented = hashlib.sha256(match.group(1).encode()).digest()
        found = None
        for spec, digest in self._digests:  # no early exit: equal time for every token
            if hmac.compare_digest(presented, digest):
                found = spec
        if found is None:
            raise Unauthenticated("The gateway token is not valid")
        return found

    def integration_for(
        self, caller: Caller, requested: str | None, default: str | None
    ) -> str | None:
        """The integration this request uses: the requested one, else the token's default,
        else the gateway's.

        Raises:
            Forbidden: the caller's token does not allow that integration.
        """
        token = caller.token
        chosen = requested or (token.default_integration if token else None) or default
        if token is None or chosen is None or token.integrations is None:
            return chosen
        if chosen not in token.integrations:
            if requested is None:
                # The gateway's default is simply not this caller's: ask them to choose.
                raise BadUserInput(
                    "No integration: send the `X-Integration-Id` header "
                    "(this token has no default integration)"
                )
            raise Forbidden(f"This token may not use integration {chosen!r}")
        return chosen
