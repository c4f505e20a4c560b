"""Reading a request body under the contract's 8 MiB cap and the body deadline, stopping as
soon as either is passed."""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from .context import request_context
from .errors import ApiError
from .metrics import SLOW_CLIENTS_CUT

__all__ = ["MAX_BODY_BYTES", "read_capped_body", "slow_client"]

MAX_BODY_BYTES = 8 * 1024 * 1024


def _too_large(received: int | None) -> ApiError:
    context: dict[str, int] = {"limitBytes": MAX_BODY_BYTES}
    if received is not None:
        context["contentLength"] = received
    return ApiError("VAL_002", context=context)


def slow_client(phase: str, seconds: float) -> ApiError:
    """``REQ_003``: the headers or the body did not arrive within their deadline."""
    return ApiError("REQ_003", context={"phase": phase, "timeoutSeconds": seconds})


async def read_capped_body(
    request: Request, limit: int = MAX_BODY_BYTES, *, timeout: float | None = None
) -> bytes:
    """Return the raw body; raise ``VAL_002`` once more than ``limit`` bytes are announced or
    have arrived, without reading the rest, and ``REQ_003`` when the body has not arrived
    ``timeout`` seconds after the request's headers did (the server then closes the
    connection, the rest unread). A client gone meanwhile raises starlette's
    ``ClientDisconnect``, which the middleware logs."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared))
    chunks: list[bytes] = []
    size = 0
    remaining = None
    if timeout is not None:
        remaining = max(0.0, timeout - request_context(request).elapsed())
    try:
        async with asyncio.timeout(remaining):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(None)
                chunks.append(chunk)
    except TimeoutError:
        assert timeout is not None
        SLOW_CLIENTS_CUT.labels("body").inc()
        raise slow_client("body", timeout) from None
    return b"".join(chunks)
