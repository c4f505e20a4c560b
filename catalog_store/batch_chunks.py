"""Running a dispatched batch: one chunk of at most 1,000 entries per transaction.

A chunk takes the batch's row lock, then one statement does the rest: it deletes (tombstones)
the products that the chunk's entries name, writes every entry's result in one row of
``deletion_batch_chunks``, and moves the batch's counters and the workers' totals. A crash
anywhere loses nothing and counts nothing twice: the next run starts at the first entry not
yet done, which is the batch's ``processed`` count, since chunks run in entry order.
"""

from __future__ import annotations

import uuid

from .batches import Batch
from .pool import Pool, connection

__all__ = ["CHUNK_SIZE", "PROCESS_CHUNK", "process_next_chunk"]

CHUNK_SIZE = 1_000

# Its own statement, before the chunk's: a chunk that waited here for another worker's chunk of
# the same batch then reads, from a snapshot taken after that commit, the entries' results it
# must see (the earlier chunks' rows, below).
_LOCK_BATCH = """
SELECT request_id, partner_id, processed, total
  FROM deletion_batches
 WHERE store_id = %(store)s AND id = %(batch)s
   FOR UPDATE
"""

# The chunk, whole. Its entries are those of seq ``first`` (the batch's processed count) to
# ``first + size - 1``; each one's problem found when the batch was accepted (invalid id,
# repeated) is kept. The rules for the others are those of a synchronous request:
# - an id that no product of the store has: id_not_found; an external id: external_id_not_found;
# - an external id whose product an id entry of the batch names is a repeat: in this chunk, the
#   product deleted carries both; in an earlier one, its external id is among the products that
#   the earlier chunks deleted (looked up only for this chunk's external ids that found nothing,
#   in their rows, or in the entries' rows for chunks a worker of the previous version ran).
# ``deleted`` is the deletion itself (the tombstones as DELETE_PRODUCTS marks them, tagged with
# the batch): the one place to change when the way products are deleted does.
PROCESS_CHUNK = """
WITH entries AS (
    SELECT seq, field, problem,
           CASE WHEN field = 0 AND problem IS NULL THEN value::uuid END AS id,
           CASE WHEN field = 1 AND problem IS NULL THEN value END AS external_id
      FROM deletion_batch_entries
     WHERE store_id = %(store)s AND batch_id = %(batch)s
       AND seq >= %(first)s::integer AND seq < %(first)s::integer + %(size)s::integer
), deleted AS (
    UPDATE all_products
       SET deleted_at = now(), deleted_by = %(partner)s, deleted_request = %(request)s,
           deleted_batch = %(batch)s, restored_at = NULL
     WHERE store_id = %(store)s
       AND (id = ANY (ARRAY(SELECT id FROM entries WHERE id IS NOT NULL))
            OR external_id = ANY (ARRAY(SELECT external_id FROM entries
                                         WHERE external_id IS NOT NULL)))
       AND deleted_at IS NULL
    RETURNING id, external_id
), matched AS (
    SELECT e.seq, e.field, e.problem, e.external_id AS named,
           coalesce(by_id.id, by_external.id) AS product_id,
           coalesce(by_id.external_id, by_external.external_id) AS product_external_id
      FROM entries e
      LEFT JOIN deleted by_id ON by_id.id = e.id
      LEFT JOIN deleted by_external ON by_external.external_id = e.external_id
), missing AS (
    SELECT named FROM matched WHERE named IS NOT NULL AND product_id IS NULL
), earlier AS (
    SELECT r.external_id
      FROM deletion_batch_chunks c, unnest(c.external_ids) AS r (external_id)
     WHERE c.store_id = %(store)s AND c.batch_id = %(batch)s
       AND r.external_id IN (SELECT named FROM missing)
    UNION ALL
    SELECT external_id
      FROM deletion_batch_entries
     WHERE store_id = %(store)s AND batch_id = %(batch)s AND done AND field = 0
       AND external_id = ANY (ARRAY(SELECT named FROM missing))
), results AS (
    SELECT seq, product_id, product_external_id,
           CASE WHEN problem IS NOT NULL THEN problem
                WHEN field = 0 AND product_id IS NULL THEN 'id_not_found'
                WHEN field = 0 THEN NULL
                WHEN product_id IS NULL AND named IN (SELECT external_id FROM earlier)
                THEN 'repeated'
                WHEN product_id IS NULL THEN 'external_id_not_found'
                WHEN product_id IN (SELECT id FROM entries WHERE id IS NOT NULL)
                THEN 'repeated'
           END AS code
      FROM matched
), chunk AS (
    INSERT INTO deletion_batch_chunks
        (store_id, batch_id, first_seq, last_seq, codes, product_ids, external_ids)
    SELECT %(store)s, %(batch)s, min(seq), max(seq),
           array_agg(code ORDER BY seq),
           array_agg(CASE WHEN code IS NULL THEN product_id END ORDER BY seq),
           array_agg(CASE WHEN code IS NULL THEN product_external_id END ORDER BY seq)
      FROM results
    HAVING count(*) > 0
), counted AS (
    SELECT count(*)::int AS done, (count(*) FILTER (WHERE code IS NULL))::int AS deleted
      FROM results
), batch AS (
    UPDATE deletion_batches b
       SET processed = b.processed + c.done,
           succeeded = b.succeeded + c.deleted,
           failed = b.failed + c.done - c.deleted,
           status = CASE WHEN b.processed + c.done < b.total THEN 'processing'
                         WHEN b.failed + c.done - c.deleted = 0 THEN 'succeeded'
                         ELSE 'completed' END,
           updated_at = now()
      FROM counted c
     WHERE b.store_id = %(store)s AND b.id = %(batch)s AND c.done > 0
    RETURNING b.store_id, b.id, b.status, b.total, b.processed, b.succeeded, b.failed,
              b.created_at, b.updated_at
), totals AS (
    -- The work of every worker in one row, read by any gateway's /metrics (stats.py).
    INSERT INTO batch_work_totals AS t (chunks, deleted, failed)
    SELECT 1, deleted, done - deleted FROM counted WHERE done > 0
    ON CONFLICT (id) DO UPDATE SET chunks = t.chunks + 1,
       deleted = t.deleted + excluded.deleted, failed = t.failed + excluded.failed
)
SELECT store_id, id, status, total, processed, succeeded, failed, created_at, updated_at
  FROM batch
"""


async def process_next_chunk(
    pool: Pool, *, store_id: int, batch_id: uuid.UUID, chunk_size: int = CHUNK_SIZE
) -> Batch | None:
    """Process the next chunk of a batch in one transaction; return the batch as it then is,
    or None when there was nothing left (or no such batch)."""
    async with connection(pool) as conn, conn.transaction():
        cur = await conn.execute(_LOCK_BATCH, {"store": store_id, "batch": batch_id})
        locked = await cur.fetchone()
        if locked is None or locked[2] >= locked[3]:
            return None
        request_id, partner_id, processed, _total = locked
        cur = await conn.execute(
            PROCESS_CHUNK,
            {
                "store": store_id,
                "batch": batch_id,
                "request": request_id,
                "partner": partner_id,
                "first": processed,
                "size": chunk_size,
            },
        )
        row = await cur.fetchone()
    return None if row is None else Batch(*row)
