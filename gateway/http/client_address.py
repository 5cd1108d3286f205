"""Who is at the other end: the client address that per-address limits key on.

Usage::

    address = client_address(request.client, request.headers.getlist("x-forwarded-for"),
                             trusted=settings.trusted_proxies)

The connection's peer is the client unless it is a proxy the operator trusts
(`GATEWAY_TRUSTED_PROXIES`); only then is `X-Forwarded-For` read, from the right, past
every trusted hop: the first untrusted address is the client (anything left of it was
written by the client itself and proves nothing). IPv6 clients are keyed by their /64,
the block one subscriber usually holds, so cycling addresses within it does not give a
caller a fresh budget.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_UNKNOWN = "unknown"


def client_address(
    peer: tuple[str, int] | None | object,
    forwarded_for: Sequence[str],
    *,
    trusted: tuple[Network, ...],
) -> str:
    """The client's address as a rate-limit key (an IPv6 client: its /64 network)."""
    host = getattr(peer, "host", None) if not isinstance(peer, tuple) else peer[0]
    address = _parse(host) if isinstance(host, str) else None
    if address is None:
        return host if isinstance(host, str) and host else _UNKNOWN
    if trusted and forwarded_for and _is_trusted(address, trusted):
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        for hop in reversed(hops):
            forwarded = _parse(hop)
            if forwarded is None:
                break  # garbage from here leftwards: the last trusted hop stands
            address = forwarded
            if not _is_trusted(forwarded, trusted):
                break
    return _key(address)


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: tuple[Network, ...]
) -> bool:
    return any(address in network for network in trusted)


def _key(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)
