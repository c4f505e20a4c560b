"""Idempotent retries over HTTP (docs/safety-net.md): the ``idempotency-key`` header, the answer
rendered once and stored with the work, and the store's verdicts mapped to responses."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

import catalog_store as store

from .context import request_context
from .errors import ApiError
from .wire import encode

__all__ = ["IDEMPOTENCY_HEADER", "REPLAYED_HEADER", "Reply", "idempotency_key", "run_once"]

T = TypeVar("T")
IDEMPOTENCY_HEADER = "idempotency-key"
REPLAYED_HEADER = "idempotent-replayed"
MAX_KEY_LENGTH = 255
IDEM_002_RETRY_AFTER = "1"


def idempotency_key(request: Request) -> str | None:
    """The header's value, or None when it is absent; VAL_001 when it is not 1-255 printable
    ASCII characters, or is sent twice."""
    # Leading and trailing spaces are not part of a header value (HTTP servers strip them; an
    # in-process ASGI call may not), so they are not part of the key.
    values = [value.strip(" \t") for value in request.headers.getlist(IDEMPOTENCY_HEADER)]
    if not values:
        return None
    problem: str | None = None
    if len(values) > 1:
        problem = "must be sent once"
    elif not 1 <= len(values[0]) <= MAX_KEY_LENGTH:
        problem = f"must be 1 to {MAX_KEY_LENGTH} characters; got {len(values[0])}"
    elif not all(" " <= c <= "~" for c in values[0]):
        problem = "must be printable ASCII characters (space to ~)"
    if problem is not None:
        raise ApiError("VAL_001", context={"validationErrors": {IDEMPOTENCY_HEADER: problem}})
    return values[0]


class Reply(Generic[T]):
    """Renders a request's answer once, from the result of its work: inside the transaction
    when an idempotency key stores it, and the very same bytes are then sent."""

    def __init__(self, request_id: str, render: Callable[[T], tuple[int, msgspec.Struct]]) -> None:
        self._request_id = request_id
        self._render = render
        self._stored: store.StoredResponse | None = None

    def __call__(self, result: T) -> store.StoredResponse:
        if self._stored is None:
            status, value = self._render(result)
            self._stored = store.StoredResponse(status, encode(value), uuid.UUID(self._request_id))
        return self._stored


async def run_once(
    request: Request,
    key: str | None,
    body: bytes,
    reply: Reply[T],
    work: Callable[[store.Idempotency[T] | None], Awaitable[T]],
) -> Response:
    """Run the work (with the key, if any) and answer; map the store's verdicts: a replayed
    signature is AUTH_006, a key with another body IDEM_001, a key still running IDEM_002, and
    a key already answered gets that answer again, byte for byte."""
    idempotency = (
        None
        if key is None
        else store.Idempotency(key=key, body_sha256=hashlib.sha256(body).digest(), respond=reply)
    )
    try:
        result = await work(idempotency)
    except store.Replayed:
        raise ApiError("AUTH_006") from None
    except store.IdempotencyMismatch:
        raise ApiError("IDEM_001", context={"idempotencyKey": key}) from None
    except store.IdempotencyInProgress:
        raise ApiError(
            "IDEM_002",
            context={"idempotencyKey": key},
            headers={"Retry-After": IDEM_002_RETRY_AFTER},
        ) from None
    except store.AnsweredBefore as exc:
        stored = exc.response
        request_context(request).replay_of = str(stored.request_id)
        return Response(
            stored.body,
            stored.status,
            {REPLAYED_HEADER: "true", "x-request-id": str(stored.request_id)},
            media_type="application/json",
        )
    stored = reply(result)
    return Response(stored.body, stored.status, media_type="application/json")
