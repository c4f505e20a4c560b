"""Idempotency keys (docs/safety-net.md): the first answer to a key, kept for a retry to get back.

A request with a key takes a transaction-scoped advisory lock on (partner, store, key) in the
transaction that does its work, and records its answer there, so the answer exists exactly when
the work committed. A second request with the key while the first runs cannot take the lock
(``IdempotencyInProgress``); once the first committed it finds the answer. A request that fails
or whose process dies leaves nothing: its transaction, lock and all, is rolled back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import psycopg

from .errors import IdempotencyInProgress, IdempotencyMismatch
from .pool import Pool, connection

__all__ = [
    "IDEMPOTENCY_HOURS",
    "Idempotency",
    "StoredResponse",
    "claim_key",
    "purge_expired_keys",
    "record_response",
]

IDEMPOTENCY_HOURS = 24
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """An answer as it was sent: HTTP status, body bytes, and the request id it carries."""

    status: int
    body: bytes
    request_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Idempotency(Generic[T]):
    """A request's key, the SHA-256 of its body, and how to render its answer from the result
    of its work (called inside the transaction, so the answer is stored with the work)."""

    key: str
    body_sha256: bytes
    respond: Callable[[T], StoredResponse]


async def claim_key(
    conn: psycopg.AsyncConnection[Any], *, partner_id: int, store_id: int, key: Idempotency[Any]
) -> StoredResponse | None:
    """Inside a transaction: lock the key, return its stored answer, or None when it has none.

    Raises :class:`IdempotencyInProgress` when another transaction holds the key, and
    :class:`IdempotencyMismatch` when its answer was for another body.
    """
    cur = await conn.execute(
        "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))",
        (f"idempotency/{partner_id}/{store_id}/{key.key}",),
    )
    row = await cur.fetchone()
    if not (row and row[0]):
        raise IdempotencyInProgress(key.key)
    # A new statement, so a new snapshot: an answer committed before the lock was free is seen.
    cur = await conn.execute(
        "SELECT body_sha256, status, response, request_id FROM idempotency_keys"
        " WHERE partner_id = %s AND store_id = %s AND key = %s AND expires_at > now()",
        (partner_id, store_id, key.key),
    )
    found = await cur.fetchone()
    if found is None:
        return None
    if bytes(found[0]) != key.body_sha256:
        raise IdempotencyMismatch(key.key)
    return StoredResponse(status=found[1], body=bytes(found[2]), request_id=found[3])


async def record_response(
    conn: psycopg.AsyncConnection[Any],
    *,
    partner_id: int,
    store_id: int,
    key: Idempotency[Any],
    response: StoredResponse,
) -> None:
    """Inside the claiming transaction: keep the answer for ``IDEMPOTENCY_HOURS``."""
    await conn.execute(
        "INSERT INTO idempotency_keys (partner_id, store_id, key, body_sha256, request_id,"
        " status, response, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, now() + make_interval(hours => %s))"
        " ON CONFLICT (store_id, partner_id, key) DO UPDATE SET body_sha256 = excluded.body_sha256,"
        " request_id = excluded.request_id, status = excluded.status,"
        " response = excluded.response, created_at = now(), expires_at = excluded.expires_at",
        (
            partner_id,
            store_id,
            key.key,
            key.body_sha256,
            response.request_id,
            response.status,
            response.body,
            IDEMPOTENCY_HOURS,
        ),
    )


async def purge_expired_keys(pool: Pool) -> int:
    """Delete idempotency keys older than their 24 hours; return how many."""
    async with connection(pool) as conn:
        cur = await conn.execute("DELETE FROM idempotency_keys WHERE expires_at < now()")
        return cur.rowcount
