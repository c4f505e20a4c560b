"""Dispatched deletion batches: accepted in one transaction, read back, purged when old.

The batch row and every entry (streamed with COPY, then classified in one statement) are
written in the request's transaction, and so is the batch's job: the caller's job engine
defers it on the same connection (``defer_job``), so a batch never exists without its job and
the store knows nothing of the engine's tables. The chunks that run a batch are in
``batch_chunks.py``, the reading of its results in ``batch_results.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from .errors import RateLimited
from .plan import ID_PATTERN, EntryKind
from .pool import Pool, connection
from .replay import Nonce, take_step
from .request_transaction import RequestTransaction

__all__ = ["Batch", "DeferJob", "create_batch", "get_batch", "purge_old_batches"]


@dataclass(frozen=True, slots=True)
class Batch:
    store_id: int
    id: uuid.UUID
    status: str
    total: int
    processed: int
    succeeded: int
    failed: int
    created_at: datetime
    updated_at: datetime


#: Defers the job that will run a batch, on the connection given, in its open transaction.
DeferJob = Callable[[psycopg.AsyncConnection[Any], Batch], Awaitable[None]]

# Advisory lock class of "a partner's open batches are being counted" (the second key is the
# partner id); any constant that nothing else in the database uses.
_OPEN_BATCHES_LOCK = 0x5047_4231
_LOCK_OPEN_BATCHES = "SELECT pg_advisory_xact_lock(%(lock)s, %(partner)s)"
# The batch, only when the partner has fewer than ``cap`` open batches (0: no cap).
_INSERT_BATCH = """
INSERT INTO deletion_batches (store_id, id, partner_id, request_id, total)
SELECT %(store)s, %(id)s, %(partner)s, %(request)s, %(total)s
 WHERE %(cap)s = 0
    OR (SELECT count(*) FROM deletion_batches
         WHERE partner_id = %(partner)s AND status IN ('pending', 'processing')) < %(cap)s
RETURNING created_at, updated_at
"""
# Entries are streamed (COPY) into a staging table of the transaction, then inserted with their
# problem decided in the same statement, so the gateway never holds more than the decoded body:
# an id must match ID_PATTERN, the plan module's own text of the rule (PRD_017 first), and an
# entry equal to an earlier one of its array (ids compared case-insensitively, external ids
# exactly) is a repeat (PRD_016), the same rules as ``plan_deletion`` for the synchronous path.
_STAGE = """
CREATE TEMPORARY TABLE batch_stage (seq integer, field smallint, row_index integer, value text)
    ON COMMIT DROP
"""
_COPY_STAGE = "COPY batch_stage (seq, field, row_index, value) FROM STDIN"
_INSERT_ENTRIES = """
INSERT INTO deletion_batch_entries (store_id, batch_id, seq, field, row_index, value, problem)
SELECT %(store)s, %(batch)s, seq, field, row_index, value,
       CASE WHEN invalid THEN 'invalid_id'
            WHEN row_number() OVER (PARTITION BY field, invalid, key ORDER BY seq) > 1
            THEN 'repeated'
       END
  FROM (SELECT *, field = 0 AND NOT value ~ %(uuid)s AS invalid,
               CASE WHEN field = 0 THEN lower(value) ELSE value END AS key
          FROM batch_stage) staged
"""
_GET_BATCH = """
SELECT store_id, id, status, total, processed, succeeded, failed, created_at, updated_at
  FROM deletion_batches
 WHERE store_id = %(store)s AND id = %(batch)s
   AND (%(partner)s::bigint IS NULL OR partner_id = %(partner)s::bigint)
"""
_PURGE_BATCHES = """
DELETE FROM deletion_batches
 WHERE created_at < now() - make_interval(days => %(days)s)
   AND status IN ('succeeded', 'completed')
"""


async def create_batch(
    tx: RequestTransaction,
    *,
    batch_id: uuid.UUID,
    ids: Sequence[str],
    external_ids: Sequence[str],
    defer_job: DeferJob,
    max_open_batches: int = 0,
    retry_after: int = 5,
) -> Batch:
    """Store the batch ``batch_id`` (the caller draws it: the store draws no ids), every entry
    (streamed with COPY, then inserted classified in one statement), and ``defer_job`` the
    batch's job, in the request's transaction: the same statements whatever the size.

    Raises as the transaction's replay record does (:class:`Replayed`, :class:`RateLimited`),
    and :class:`RateLimited` when the partner already has ``max_open_batches`` pending or
    processing batches (0: no limit); then nothing is stored.
    """
    conn = await tx.connection()
    batch = await _store_batch(
        conn,
        tx.store_id,
        batch_id,
        tx.nonce,
        tx.request_id,
        ids,
        external_ids,
        max_open_batches=max_open_batches,
        retry_after=retry_after,
    )
    await defer_job(conn, batch)
    await take_step(conn, tx.nonce, tx.rate)  # last: the partner's row stays locked until COMMIT
    return batch


async def _store_batch(
    conn: psycopg.AsyncConnection[Any],
    store_id: int,
    batch_id: uuid.UUID,
    nonce: Nonce,
    request_id: uuid.UUID,
    ids: Sequence[str],
    external_ids: Sequence[str],
    *,
    max_open_batches: int,
    retry_after: int,
) -> Batch:
    total = len(ids) + len(external_ids)
    if max_open_batches:
        # One partner's dispatches take turns here, so two at once cannot both pass the count;
        # other partners and synchronous deletions never wait on this lock.
        await conn.execute(
            _LOCK_OPEN_BATCHES, {"lock": _OPEN_BATCHES_LOCK, "partner": nonce.partner_id}
        )
    cur = await conn.execute(
        _INSERT_BATCH,
        {
            "store": store_id,
            "id": batch_id,
            "partner": nonce.partner_id,
            "request": request_id,
            "total": total,
            "cap": max_open_batches,
        },
    )
    row = await cur.fetchone()
    if row is None:
        raise RateLimited("batches", limit=max_open_batches, retry_after=retry_after)
    await _store_entries(conn, store_id, batch_id, ids, external_ids)
    return Batch(store_id, batch_id, "pending", total, 0, 0, 0, row[0], row[1])


async def _store_entries(
    conn: psycopg.AsyncConnection[Any],
    store_id: int,
    batch_id: uuid.UUID,
    ids: Sequence[str],
    external_ids: Sequence[str],
) -> None:
    """Every entry in request order (seq: ids first, then external ids), classified."""
    await conn.execute(_STAGE)
    async with conn.cursor().copy(_COPY_STAGE) as copy:
        for index, value in enumerate(ids):
            await copy.write_row((index, EntryKind.ID.value, index, value))
        offset = len(ids)
        for index, value in enumerate(external_ids):
            await copy.write_row((offset + index, EntryKind.EXTERNAL_ID.value, index, value))
    await conn.execute(_INSERT_ENTRIES, {"uuid": ID_PATTERN, "store": store_id, "batch": batch_id})


async def get_batch(
    pool: Pool, *, store_id: int, batch_id: uuid.UUID, partner_id: int | None = None
) -> Batch | None:
    """The batch, only if it belongs to ``store_id`` and, when ``partner_id`` is given, was
    created by that partner (another partner's batch on a shared store is None, as unknown)."""
    async with connection(pool) as conn:
        cur = await conn.execute(
            _GET_BATCH, {"store": store_id, "batch": batch_id, "partner": partner_id}
        )
        row = await cur.fetchone()
    return Batch(*row) if row else None


async def purge_old_batches(pool: Pool, *, older_than_days: int = 7) -> int:
    """Delete finished batches (and their entries) created more than ``older_than_days`` ago."""
    async with connection(pool) as conn:
        cur = await conn.execute(_PURGE_BATCHES, {"days": older_than_days})
        return cur.rowcount
