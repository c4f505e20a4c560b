"""Reading a request body under the contract's 8 MiB cap, stopping as soon as it is passed."""

from __future__ import annotations

from starlette.requests import Request

from .errors import ApiError

__all__ = ["MAX_BODY_BYTES", "read_capped_body"]

MAX_BODY_BYTES = 8 * 1024 * 1024


def _too_large(received: int | None) -> ApiError:
    context: dict[str, int] = {"limitBytes": MAX_BODY_BYTES}
    if received is not None:
        context["contentLength"] = received
    return ApiError("VAL_002", context=context)


async def read_capped_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """Return the raw body; raise ``VAL_002`` once more than ``limit`` bytes are announced or
    have arrived, without reading the rest."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(None)
        chunks.append(chunk)
    return b"".join(chunks)
