"""A signed request's one transaction, and idempotent retries over HTTP (docs/safety-net.md):
the ``idempotency-key`` header, the earlier answer sent again byte for byte, and the store's
verdicts on the replay record and the key as the partner's error codes."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator

import msgspec
from starlette.requests import Request
from starlette.responses import Response

import catalog_store

from .auth import AuthContext
from .context import request_context
from .errors import ApiError
from .wire import encode

__all__ = [
    "IDEMPOTENCY_HEADER",
    "REPLAYED_HEADER",
    "idempotency_key",
    "keep_and_answer",
    "request_transaction",
    "sent_again",
]

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


@contextlib.asynccontextmanager
async def request_transaction(
    request: Request, auth: AuthContext, key: str | None, body: bytes
) -> AsyncIterator[catalog_store.RequestTransaction]:
    """The store's transaction of this request, with its key (if any) and the body's hash; its
    verdicts leave as the partner's codes: a replayed signature is AUTH_006, a key with another
    body IDEM_001, a key whose first request still runs IDEM_002."""
    try:
        async with catalog_store.request_transaction(
            request.app.state.pool,
            nonce=auth.nonce,
            store_id=auth.store_id,
            request_id=uuid.UUID(request_context(request).request_id),
            key=None
            if key is None
            else catalog_store.IdempotencyKey(key, hashlib.sha256(body).digest()),
            rate=request.app.state.rate_limit,
        ) as tx:
            yield tx
    except catalog_store.Replayed:
        raise ApiError("AUTH_006") from None
    except catalog_store.IdempotencyMismatch:
        raise ApiError("IDEM_001", context={"idempotencyKey": key}) from None
    except catalog_store.IdempotencyInProgress:
        raise ApiError(
            "IDEM_002",
            context={"idempotencyKey": key},
            headers={"Retry-After": IDEM_002_RETRY_AFTER},
        ) from None


def sent_again(request: Request, answer: catalog_store.KeptAnswer) -> Response:
    """The key's earlier answer, byte for byte, marked as replayed, with its own request id."""
    request_context(request).replay_of = str(answer.request_id)
    return Response(
        answer.body,
        answer.status,
        {REPLAYED_HEADER: "true", "x-request-id": str(answer.request_id)},
        media_type="application/json",
    )


async def keep_and_answer(
    tx: catalog_store.RequestTransaction, value: msgspec.Struct, *, status: int = 200
) -> Response:
    """The request's answer, encoded once: kept under its key (if any), with the work, and
    sent."""
    body = encode(value)
    await tx.keep(status, body)
    return Response(body, status, media_type="application/json")
