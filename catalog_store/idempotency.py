"""Idempotency keys (docs/safety-net.md): the first answer to a key, kept for a retry to get back.

A request with a key takes a transaction-scoped advisory lock on (partner, store, key) in the
transaction that does its work, and keeps its answer there, so the answer exists exactly when
the work committed. A second request with the key while the first runs cannot take the lock
(``IdempotencyInProgress``); once the first committed it finds the answer. A request that fails
or whose process dies leaves nothing: its transaction, lock and all, is rolled back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

from .errors import IdempotencyInProgress, IdempotencyMismatch
from .pool import Pool, connection

__all__ = [
    "IDEMPOTENCY_HOURS",
    "IdempotencyKey",
    "KeptAnswer",
    "claim_key",
    "keep_answer",
    "purge_expired_keys",
]

IDEMPOTENCY_HOURS = 24

# One lock per (partner, store, key), taken without waiting, released at the transaction's end.
_LOCK_KEY = "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))"
_KEPT_ANSWER = """
SELECT body_sha256, status, response, request_id FROM idempotency_keys
 WHERE partner_id = %s AND store_id = %s AND key = %s AND expires_at > now()
"""
_KEEP_ANSWER = """
INSERT INTO idempotency_keys
    (partner_id, store_id, key, body_sha256, request_id, status, response, expires_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, now() + make_interval(hours => %s))
ON CONFLICT (store_id, partner_id, key) DO UPDATE SET body_sha256 = excluded.body_sha256,
   request_id = excluded.request_id, status = excluded.status,
   response = excluded.response, created_at = now(), expires_at = excluded.expires_at
"""
_PURGE_EXPIRED_KEYS = "DELETE FROM idempotency_keys WHERE expires_at < now()"


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A request's key as sent, and the SHA-256 of the body it came with."""

    value: str
    body_sha256: bytes


@dataclass(frozen=True, slots=True)
class KeptAnswer:
    """The answer given to a key's first request, as the caller gave it to be kept: a status
    and body bytes that the store does not read, and the request id they carry."""

    status: int
    body: bytes
    request_id: uuid.UUID


async def claim_key(
    conn: psycopg.AsyncConnection[Any], *, partner_id: int, store_id: int, key: IdempotencyKey
) -> KeptAnswer | None:
    """Inside a transaction: lock the key, return its kept answer, or None when it has none.

    Raises :class:`IdempotencyInProgress` when another transaction holds the key, and
    :class:`IdempotencyMismatch` when its answer was for another body.
    """
    cur = await conn.execute(_LOCK_KEY, (f"idempotency/{partner_id}/{store_id}/{key.value}",))
    row = await cur.fetchone()
    if not (row and row[0]):
        raise IdempotencyInProgress(key.value)
    # A new statement, so a new snapshot: an answer committed before the lock was free is seen.
    cur = await conn.execute(_KEPT_ANSWER, (partner_id, store_id, key.value))
    found = await cur.fetchone()
    if found is None:
        return None
    if bytes(found[0]) != key.body_sha256:
        raise IdempotencyMismatch(key.value)
    return KeptAnswer(status=found[1], body=bytes(found[2]), request_id=found[3])


async def keep_answer(
    conn: psycopg.AsyncConnection[Any],
    *,
    partner_id: int,
    store_id: int,
    key: IdempotencyKey,
    answer: KeptAnswer,
) -> None:
    """Inside the claiming transaction: keep the answer for ``IDEMPOTENCY_HOURS``."""
    await conn.execute(
        _KEEP_ANSWER,
        (
            partner_id,
            store_id,
            key.value,
            key.body_sha256,
            answer.request_id,
            answer.status,
            answer.body,
            IDEMPOTENCY_HOURS,
        ),
    )


async def purge_expired_keys(pool: Pool) -> int:
    """Delete idempotency keys older than their 24 hours; return how many."""
    async with connection(pool) as conn:
        cur = await conn.execute(_PURGE_EXPIRED_KEYS)
        return cur.rowcount
