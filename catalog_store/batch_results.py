"""Reading a dispatched batch's results, entry by entry in request order, a page at a time.

An entry is done when its seq is below the batch's ``processed`` count (chunks run in entry
order). Its result is in its chunk's row of ``deletion_batch_chunks``, or, for a chunk that a
worker of the previous version ran, in the entry's own row (``done``, ``code``, ...).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .plan import DeletedProduct, Problem
from .pool import Pool, connection

__all__ = ["BatchEntry", "list_batch_entries"]

_FIELDS = ("ids", "externalIds")


@dataclass(frozen=True, slots=True)
class BatchEntry:
    seq: int
    field: str
    row_index: int
    value: str
    problem: Problem | None  # None: deleted
    product: DeletedProduct | None


# The page's entries, then the results of the chunks that hold them, unnested once per page
# (an element's position in its chunk's arrays is its seq - first_seq + 1).
_LIST_RESULTS = """
WITH page AS (
    SELECT e.seq, e.field, e.row_index, e.value, e.done, e.code, e.product_id, e.external_id
      FROM deletion_batches b
      JOIN deletion_batch_entries e ON e.store_id = b.store_id AND e.batch_id = b.id
     WHERE b.store_id = %(store)s AND b.id = %(batch)s
       AND e.seq > %(after)s AND e.seq < b.processed
     ORDER BY e.seq
     LIMIT %(limit)s
), chunked AS (
    SELECT c.first_seq + r.n - 1 AS seq, r.code, r.product_id, r.external_id
      FROM deletion_batch_chunks c,
           unnest(c.codes, c.product_ids, c.external_ids)
               WITH ORDINALITY AS r (code, product_id, external_id, n)
     WHERE c.store_id = %(store)s AND c.batch_id = %(batch)s
       AND c.last_seq > %(after)s AND c.first_seq <= (SELECT max(seq) FROM page)
)
SELECT p.seq, p.field, p.row_index, p.value,
       CASE WHEN p.done THEN p.code ELSE c.code END,
       CASE WHEN p.done THEN p.product_id ELSE c.product_id END,
       CASE WHEN p.done THEN p.external_id ELSE c.external_id END
  FROM page p
  LEFT JOIN chunked c ON c.seq = p.seq
 ORDER BY p.seq
"""


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
    params = {"store": store_id, "batch": batch_id, "after": after_seq, "limit": limit}
    async with connection(pool) as conn:
        cur = await conn.execute(_LIST_RESULTS, params)
        return [_entry(row) for row in await cur.fetchall()]
