"""Dispatched deletion batches: accepted in one transaction, processed chunk by chunk.

Each chunk of at most 1,000 entries is one transaction that takes the batch's row lock, deletes
with one set-based statement, records every entry's result and moves the batch's counters, so a
crash anywhere loses nothing and counts nothing twice: the next run starts at the first entry
not yet done.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import psycopg

from .deletions import DELETE_PRODUCTS
from .errors import RateLimited
from .idempotency import Idempotency
from .plan import DeletedProduct, Problem
from .pool import Pool, connection
from .replay import Nonce, RateLimit
from .request_transaction import in_request_transaction

__all__ = [
    "Batch",
    "BatchEntry",
    "BatchJob",
    "create_batch",
    "get_batch",
    "list_batch_entries",
    "process_next_chunk",
    "purge_old_batches",
]

CHUNK_SIZE = 1_000
_FIELDS = ("ids", "externalIds")


@dataclass(frozen=True, slots=True)
class BatchJob:
    """The job engine's row to create with the batch: a task name, a queue and a lock."""

    task_name: str
    queue: str


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


@dataclass(frozen=True, slots=True)
class BatchEntry:
    seq: int
    field: str
    row_index: int
    value: str
    problem: Problem | None  # None: deleted
    product: DeletedProduct | None


# Entries are streamed (COPY) into a staging table of the transaction, then inserted with their
# problem decided in the same statement, so the gateway never holds more than the decoded body:
# an id must be a canonical UUID (any case; PRD_017 first), and an entry equal to an earlier one
# of its array (ids compared case-insensitively, external ids exactly) is a repeat (PRD_016),
# the same rules as ``plan_deletion`` for the synchronous path.
_STAGE = (
    "CREATE TEMPORARY TABLE batch_stage (seq integer, field smallint, row_index integer,"
    " value text) ON COMMIT DROP"
)
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
# Advisory lock class of "a partner's open batches are being counted" (the second key is the
# partner id); any constant that nothing else in the database uses.
_OPEN_BATCHES_LOCK = 0x5047_4231
_UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


async def create_batch(
    pool: Pool,
    *,
    store_id: int,
    nonce: Nonce,
    request_id: uuid.UUID,
    ids: Sequence[str],
    external_ids: Sequence[str],
    job: BatchJob,
    idempotency: Idempotency[Batch] | None = None,
    rate: RateLimit | None = None,
    max_open_batches: int = 0,
    retry_after: int = 5,
) -> Batch:
    """Record the nonce, the batch, every entry (streamed with COPY, then inserted classified
    in one statement) and the job: one transaction, the same statements whatever the size.

    Raises :class:`Replayed` when the nonce is already recorded, and :class:`RateLimited` when
    the partner is over ``rate`` or already has ``max_open_batches`` pending or processing
    batches (0: no limit); then nothing is stored. With an idempotency key, raises as
    ``delete_products`` does, and keeps the answer with the batch.
    """

    async def work(conn: psycopg.AsyncConnection[Any]) -> Batch:
        return await _store_batch(
            conn,
            store_id,
            nonce,
            request_id,
            ids,
            external_ids,
            job,
            max_open_batches=max_open_batches,
            retry_after=retry_after,
        )

    return await in_request_transaction(pool, nonce, store_id, idempotency, rate, work)


async def _store_batch(
    conn: psycopg.AsyncConnection[Any],
    store_id: int,
    nonce: Nonce,
    request_id: uuid.UUID,
    ids: Sequence[str],
    external_ids: Sequence[str],
    job: BatchJob,
    *,
    max_open_batches: int,
    retry_after: int,
) -> Batch:
    batch_id = uuid.uuid4()
    total = len(ids) + len(external_ids)
    if max_open_batches:
        # One partner's dispatches take turns here, so two at once cannot both pass the count;
        # other partners and synchronous deletions never wait on this lock.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)", (_OPEN_BATCHES_LOCK, nonce.partner_id)
        )
    cur = await conn.execute(
        "INSERT INTO deletion_batches (store_id, id, partner_id, request_id, total)"
        " SELECT %(store)s, %(id)s, %(partner)s, %(request)s, %(total)s"
        " WHERE %(cap)s = 0 OR (SELECT count(*) FROM deletion_batches"
        "  WHERE partner_id = %(partner)s AND status IN ('pending', 'processing')) < %(cap)s"
        " RETURNING created_at, updated_at",
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
    await conn.execute(_STAGE)
    async with conn.cursor().copy(
        "COPY batch_stage (seq, field, row_index, value) FROM STDIN"
    ) as copy:
        for index, value in enumerate(ids):
            await copy.write_row((index, 0, index, value))
        offset = len(ids)
        for index, value in enumerate(external_ids):
            await copy.write_row((offset + index, 1, index, value))
    await conn.execute(
        _INSERT_ENTRIES, {"uuid": _UUID_PATTERN, "store": store_id, "batch": batch_id}
    )
    args = msgspec.json.encode({"store_id": store_id, "batch_id": str(batch_id)}).decode()
    await conn.execute(
        "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(%s, %s, 0, %s, NULL, %s::jsonb, NULL)"
        "::procrastinate_job_to_defer_v1])",
        (job.queue, job.task_name, f"deletion-batch-{batch_id}", args),
    )
    return Batch(store_id, batch_id, "pending", total, 0, 0, 0, row[0], row[1])


_BATCH_COLUMNS = "store_id, id, status, total, processed, succeeded, failed, created_at, updated_at"


async def get_batch(
    pool: Pool, *, store_id: int, batch_id: uuid.UUID, partner_id: int | None = None
) -> Batch | None:
    """The batch, only if it belongs to ``store_id`` and, when ``partner_id`` is given, was
    created by that partner (another partner's batch on a shared store is None, as unknown)."""
    async with connection(pool) as conn:
        cur = await conn.execute(
            f"SELECT {_BATCH_COLUMNS} FROM deletion_batches WHERE store_id = %s AND id = %s"
            " AND (%s::bigint IS NULL OR partner_id = %s::bigint)",
            (store_id, batch_id, partner_id, partner_id),
        )
        row = await cur.fetchone()
    return Batch(*row) if row else None


def _entry(row: Sequence[Any]) -> BatchEntry:
    seq, field, row_index, value, code, product_id, external_id = row
    return BatchEntry(
        seq=seq,
        field=_FIELDS[field],
        row_index=row_index,
        value=value,
        problem=None if code is None else Problem(code),
        product=None if product_id is None else DeletedProduct(product_id, external_id),
    )


async def list_batch_entries(
    pool: Pool, *, store_id: int, batch_id: uuid.UUID, after_seq: int, limit: int
) -> list[BatchEntry]:
    """Finished entries in request order, from ``after_seq`` (exclusive), at most ``limit``."""
    async with connection(pool) as conn:
        cur = await conn.execute(
            "SELECT seq, field, row_index, value, code, product_id, external_id"
            " FROM deletion_batch_entries WHERE store_id = %s AND batch_id = %s AND done"
            " AND seq > %s ORDER BY seq LIMIT %s",
            (store_id, batch_id, after_seq, limit),
        )
        return [_entry(row) for row in await cur.fetchall()]


async def _delete_chunk(
    conn: psycopg.AsyncConnection[Any],
    store_id: int,
    batch: Sequence[Any],
    rows: Sequence[Sequence[Any]],
) -> list[tuple[int, str | None, uuid.UUID | None, str | None]]:
    """Delete (and archive) what the chunk names; return (seq, code, product id, external id)
    per entry. ``batch`` is the batch's (id, request id, partner id)."""
    batch_id, request_id, partner_id = batch
    ids = [uuid.UUID(r[3]) for r in rows if r[1] == 0 and r[4] is None]
    externals = [r[3] for r in rows if r[1] == 1 and r[4] is None]
    cur = await conn.execute(
        DELETE_PRODUCTS,
        {
            "store": store_id,
            "ids": ids,
            "external_ids": externals,
            "request": request_id,
            "batch": batch_id,
            "partner": partner_id,
        },
    )
    deleted = [DeletedProduct(row[0], row[1]) for row in await cur.fetchall()]
    by_id = {p.id: p for p in deleted}
    by_external = {p.external_id: p for p in deleted if p.external_id is not None}
    named_by_id = set(ids)
    missing = [r[3] for r in rows if r[1] == 1 and r[4] is None and r[3] not in by_external]
    earlier: set[str] = set()
    if missing:
        # An external id whose product an id entry of an earlier chunk already deleted is a
        # repeat, as it would be in one synchronous request.
        cur = await conn.execute(
            "SELECT external_id FROM deletion_batch_entries WHERE store_id = %s"
            " AND batch_id = %s AND done AND field = 0 AND external_id = ANY(%s)",
            (store_id, batch_id, missing),
        )
        earlier = {row[0] for row in await cur.fetchall()}
    results: list[tuple[int, str | None, uuid.UUID | None, str | None]] = []
    for seq, field, _index, value, problem in rows:
        if problem is not None:
            results.append((seq, problem, None, None))
        elif field == 0:
            product = by_id.get(uuid.UUID(value))
            if product is None:
                results.append((seq, Problem.ID_NOT_FOUND.value, None, None))
            else:
                results.append((seq, None, product.id, product.external_id))
        else:
            product = by_external.get(value)
            if product is None:
                code = Problem.REPEATED if value in earlier else Problem.EXTERNAL_ID_NOT_FOUND
                results.append((seq, code.value, None, None))
            elif product.id in named_by_id:
                results.append((seq, Problem.REPEATED.value, None, None))
            else:
                results.append((seq, None, product.id, product.external_id))
    return results


async def process_next_chunk(
    pool: Pool, *, store_id: int, batch_id: uuid.UUID, chunk_size: int = CHUNK_SIZE
) -> Batch | None:
    """Process the next chunk of a batch in one transaction; return the batch as it then is,
    or None when there was nothing left (or no such batch)."""
    async with connection(pool) as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT id, request_id, partner_id FROM deletion_batches"
            " WHERE store_id = %s AND id = %s FOR UPDATE",
            (store_id, batch_id),
        )
        batch = await cur.fetchone()
        if batch is None:
            return None
        cur = await conn.execute(
            "SELECT seq, field, row_index, value, problem FROM deletion_batch_entries"
            " WHERE store_id = %s AND batch_id = %s AND NOT done ORDER BY seq LIMIT %s",
            (store_id, batch_id, chunk_size),
        )
        rows = await cur.fetchall()
        if not rows:
            return None
        results = await _delete_chunk(conn, store_id, batch, rows)
        await conn.execute(
            "UPDATE deletion_batch_entries e SET done = true, code = r.code,"
            " product_id = r.product_id, external_id = r.external_id"
            " FROM unnest(%s::int[], %s::text[], %s::uuid[], %s::text[])"
            " AS r (seq, code, product_id, external_id)"
            " WHERE e.store_id = %s AND e.batch_id = %s AND e.seq = r.seq"
            # The chunk's range of seq, so the planner reads those rows by the primary key
            # rather than hash-joining the whole batch (a scan of every entry for each chunk).
            " AND e.seq BETWEEN %s AND %s",
            (
                [r[0] for r in results],
                [r[1] for r in results],
                [r[2] for r in results],
                [r[3] for r in results],
                store_id,
                batch_id,
                results[0][0],
                results[-1][0],
            ),
        )
        succeeded = sum(1 for r in results if r[1] is None)
        cur = await conn.execute(
            "UPDATE deletion_batches SET processed = processed + %(n)s,"
            " succeeded = succeeded + %(ok)s, failed = failed + %(bad)s,"
            " status = CASE WHEN processed + %(n)s < total THEN 'processing'"
            " WHEN failed + %(bad)s = 0 THEN 'succeeded' ELSE 'completed' END,"
            " updated_at = now() WHERE store_id = %(store)s AND id = %(id)s"
            f" RETURNING {_BATCH_COLUMNS}",
            {
                "n": len(results),
                "ok": succeeded,
                "bad": len(results) - succeeded,
                "store": store_id,
                "id": batch_id,
            },
        )
        row = await cur.fetchone()
        # Last, so concurrent chunks hold this one row's lock only until their commit.
        await conn.execute(_COUNT_CHUNK, (succeeded, len(results) - succeeded))
    assert row is not None
    return Batch(*row)


# The work of every worker in one row, read by any gateway's /metrics (catalog_store/stats.py).
_COUNT_CHUNK = (
    "INSERT INTO batch_work_totals AS t (chunks, deleted, failed) VALUES (1, %s, %s)"
    " ON CONFLICT (id) DO UPDATE SET chunks = t.chunks + 1,"
    " deleted = t.deleted + excluded.deleted, failed = t.failed + excluded.failed"
)


async def purge_old_batches(pool: Pool, *, older_than_days: int = 7) -> int:
    """Delete finished batches (and their entries) created more than ``older_than_days`` ago."""
    async with connection(pool) as conn:
        cur = await conn.execute(
            "DELETE FROM deletion_batches WHERE created_at < now() - make_interval(days => %s)"
            " AND status IN ('succeeded', 'completed')",
            (older_than_days,),
        )
        return cur.rowcount
