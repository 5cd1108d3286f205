"""Reading a request body with a size cap and a deadline, for every endpoint that takes one.

Usage::

    body = await read_bounded_body(request, limit=1 << 20, timeout=30.0, what="request")

uvicorn has neither: a client could send gigabytes, or trickle its body (or stop
sending) and hold a connection and a task forever. A declared `Content-Length` over the
cap is refused before a byte is read; otherwise reading stops at the first byte past it.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from gateway.errors import Code, GatewayError


class RequestTooLarge(GatewayError):
    code = Code.BAD_USER_INPUT
    http_status = 413


class RequestTooSlow(GatewayError):
    """The client did not send its whole body within `GATEWAY_BODY_TIMEOUT`."""

    code = Code.BAD_USER_INPUT
    http_status = 408


async def read_bounded_body(request: Request, *, limit: int, timeout: float, what: str) -> bytes:
    """The whole body of `request`; `what` names it in the errors ("request", "webhook").

    Raises:
        RequestTooLarge: the body is (or says it is) over `limit` bytes.
        RequestTooSlow: it did not arrive within `timeout` seconds.
    """
    too_large = f"The {what} body is larger than {limit} bytes"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(too_large)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise RequestTooLarge(too_large)
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTooSlow(
            f"The {what} body did not arrive within {timeout:g} s (GATEWAY_BODY_TIMEOUT)"
        ) from None
    return b"".join(chunks)
