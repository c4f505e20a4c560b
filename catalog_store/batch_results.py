"""Reading a dispatched batch's results, entry by entry in request order, a page at a time.

An entry is done when its seq is below the batch's ``processed`` count (chunks run in entry
order). Its result is in its chunk's row of ``deletion_batch_chunks``, or, for a chunk that a
worker of the previous version ran, in the entry's own row (``done``, ``code``, ...).
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .plan import DeletedProduct, EntryKind, Problem
from .pool import Pool, connection

__all__ = ["BatchEntry", "list_batch_entries"]


@dataclass(frozen=True, slots=True)
class BatchEntry:
    seq: int
    kind: EntryKind
    row_index: int
    value: str
    problem: Problem | None  # None: deleted
    product: DeletedProduct | None


# The page: the next done entries (seq below the batch's processed count), in order. Entries
# that a worker of the previous release ran carry their result (done, code, ...); the others'
# results are in the rows of the chunks that hold them, read by the second statement.
_PAGE = """
SELECT seq, field, row_index, value, done, code, product_id::text, external_id
  FROM deletion_batch_entries
 WHERE store_id = %(store)s AND batch_id = %(batch)s AND seq > %(after)s
   AND seq < (SELECT processed FROM deletion_batches
               WHERE store_id = %(store)s AND id = %(batch)s)
 ORDER BY seq
 LIMIT %(limit)s
"""
# The chunks that hold seq ``first`` to ``last``. Matched to the entries here, in Python: in
# SQL the planner, which cannot know how many elements an unnest yields, chose a nested loop
# that unnested every chunk again for each entry of the page (0.9 s for a page of 1,000).
_PAGE_CHUNKS = """
SELECT first_seq, codes, product_ids::text[], external_ids
  FROM deletion_batch_chunks
 WHERE store_id = %(store)s AND batch_id = %(batch)s
   AND first_seq <= %(last)s AND last_seq >= %(first)s
 ORDER BY first_seq
"""

_Result = tuple[str | None, str | None, str | None]


class _ChunkResults:
    """The results of consecutive chunks, by entry seq."""

    def __init__(self, chunks: Sequence[Sequence[Any]]) -> None:
        self._firsts = [chunk[0] for chunk in chunks]
        self._chunks = chunks

    def of(self, seq: int) -> _Result:
        first, codes, product_ids, external_ids = self._chunks[
            bisect.bisect_right(self._firsts, seq) - 1
        ]
        at = seq - first
        return codes[at], product_ids[at], external_ids[at]


def _entry(row: Sequence[Any], chunks: _ChunkResults) -> BatchEntry:
    seq, field, row_index, value, done, *in_row = row
    code, product_id, external_id = in_row if done else chunks.of(seq)
    return BatchEntry(
        seq=seq,
        kind=EntryKind(field),
        row_index=row_index,
        value=value,
        problem=None if code is None else Problem(code),
        product=None if product_id is None else DeletedProduct(product_id, external_id),
    )


async def list_batch_entries(
    pool: Pool, *, store_id: int, batch_id: uuid.UUID, after_seq: int, limit: int
) -> list[BatchEntry]:
    """Finished entries in request order, from ``after_seq`` (exclusive), at most ``limit``."""
    params: dict[str, Any] = {"store": store_id, "batch": batch_id}
    chunks: list[Any] = []
    async with connection(pool) as conn:
        cur = await conn.execute(_PAGE, {**params, "after": after_seq, "limit": limit})
        rows = await cur.fetchall()
        in_chunks = [row[0] for row in rows if not row[4]]
        if in_chunks:
            # Committed before the page was read (the page is below processed), so seen here.
            cur = await conn.execute(
                _PAGE_CHUNKS, {**params, "first": in_chunks[0], "last": in_chunks[-1]}
            )
            chunks = await cur.fetchall()
    results = _ChunkResults(chunks)
    return [_entry(row, results) for row in rows]
