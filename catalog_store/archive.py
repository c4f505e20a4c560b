"""Deleted products (docs/safety-net.md): restore, per product, and purge.

A deletion leaves a tombstone: the product's row stays in ``all_products`` with ``deleted_at``
and who, which request and which batch deleted it (``DELETE_PRODUCTS`` in ``deletions.py``);
its variants stay in ``all_product_variants``. The views ``products`` and ``product_variants``
show the live rows only, so every reader sees a deleted product and its variants as gone.

A restore is one transaction of two statements whatever its size: one reads and locks the
tombstones it names, with what now stands in their way; one clears the free ones. The row
never left the table, so it comes back exactly as it was, every column. The upkeep purges
tombstones older than the retention, with their variants, in short chunks.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg.errors

from .errors import UnknownClient
from .pool import Pool, connection

__all__ = ["PURGE_CHUNK", "RestoreItem", "RestoreRefusal", "purge_archive", "restore_products"]

#: Products (with their variants) purged per transaction, so no purge holds its locks long.
PURGE_CHUNK = 1_000
#: A product created with a restored one's external id between the check and the restore
#: fails the restore's statement; it is run again (that product then refused), this many times.
_TRIES = 3


class RestoreRefusal(enum.Enum):
    """Why one product was not put back."""

    NOT_ARCHIVED = "not_archived"  # never deleted, or purged
    ALREADY_RESTORED = "already_restored"  # this deletion was already undone
    EXTERNAL_ID_IN_USE = "external_id_in_use"  # another product now has its external id


@dataclass(frozen=True, slots=True)
class RestoreItem:
    id: str
    external_id: str | None
    variants: int
    request_id: uuid.UUID | None
    batch_id: uuid.UUID | None
    refusal: RestoreRefusal | None  # None: restored


# Each reads the rows named, deleted or restored since, locked, as (store, id, external id,
# request, batch, variants, restored already, external id now taken by a live product).
_BY_REQUEST = """
SELECT p.store_id, p.id, p.external_id, p.deleted_request, p.deleted_batch,
       (SELECT count(*) FROM all_product_variants v
         WHERE v.store_id = p.store_id AND v.product_id = p.id)::int,
       p.deleted_at IS NULL,
       p.deleted_at IS NOT NULL AND EXISTS (SELECT FROM all_products o
            WHERE o.store_id = p.store_id AND o.external_id = p.external_id
              AND o.deleted_at IS NULL)
  FROM all_products p
 WHERE p.deleted_request = %s
 ORDER BY p.id
   FOR UPDATE OF p
"""
_BY_BATCH = """
SELECT p.store_id, p.id, p.external_id, p.deleted_request, p.deleted_batch,
       (SELECT count(*) FROM all_product_variants v
         WHERE v.store_id = p.store_id AND v.product_id = p.id)::int,
       p.deleted_at IS NULL,
       p.deleted_at IS NOT NULL AND EXISTS (SELECT FROM all_products o
            WHERE o.store_id = p.store_id AND o.external_id = p.external_id
              AND o.deleted_at IS NULL)
  FROM all_products p
 WHERE p.deleted_batch = %s
 ORDER BY p.id
   FOR UPDATE OF p
"""
# By ids: only a product deleted at least once (a live one never deleted is "not archived").
_BY_IDS = """
SELECT p.store_id, p.id, p.external_id, p.deleted_request, p.deleted_batch,
       (SELECT count(*) FROM all_product_variants v
         WHERE v.store_id = p.store_id AND v.product_id = p.id)::int,
       p.deleted_at IS NULL,
       p.deleted_at IS NOT NULL AND EXISTS (SELECT FROM all_products o
            WHERE o.store_id = p.store_id AND o.external_id = p.external_id
              AND o.deleted_at IS NULL)
  FROM all_products p
 WHERE p.store_id = %s AND p.id = ANY(%s::uuid[]) AND p.deleted_request IS NOT NULL
 ORDER BY p.id
   FOR UPDATE OF p
"""
_STORE = "SELECT id FROM stores WHERE client_id = %s"
# Clearing the tombstone puts the product and its variants back; who deleted it stays, so a
# second restore of the same deletion says it was already restored.
_CLEAR_TOMBSTONES = """
UPDATE all_products p SET deleted_at = NULL, restored_at = now()
  FROM unnest(%(stores)s::bigint[], %(product_ids)s::uuid[]) AS k (store_id, id)
 WHERE p.store_id = k.store_id AND p.id = k.id AND p.deleted_at IS NOT NULL
"""
# The oldest tombstones past the retention, at most a chunk, with their variants (cascade);
# rows a restore holds are skipped, never waited for.
_PURGE = """
DELETE FROM all_products p
 USING (SELECT store_id, id FROM all_products
         WHERE deleted_at < now() - make_interval(days => %(days)s)
         ORDER BY deleted_at
         LIMIT %(chunk)s
           FOR UPDATE SKIP LOCKED) old
 WHERE p.store_id = old.store_id AND p.id = old.id
"""


def _choose(rows: Sequence[Sequence[Any]]) -> dict[uuid.UUID, RestoreRefusal | None]:
    """Each row's refusal, None for those to restore: of two with one external id, the first."""
    taken: set[str] = set()
    decided: dict[uuid.UUID, RestoreRefusal | None] = {}
    for _store, product_id, external_id, _req, _batch, _variants, restored, in_use in rows:
        if restored:
            decided[product_id] = RestoreRefusal.ALREADY_RESTORED
        elif in_use or (external_id is not None and external_id in taken):
            decided[product_id] = RestoreRefusal.EXTERNAL_ID_IN_USE
        else:
            decided[product_id] = None
            if external_id is not None:
                taken.add(external_id)
    return decided


async def _candidates(
    conn: psycopg.AsyncConnection[Any],
    request_id: uuid.UUID | None,
    batch_id: uuid.UUID | None,
    store_client_id: str | None,
    ids: Sequence[uuid.UUID],
) -> list[Sequence[Any]]:
    if request_id is not None:
        cur = await conn.execute(_BY_REQUEST, (request_id,))
    elif batch_id is not None:
        cur = await conn.execute(_BY_BATCH, (batch_id,))
    else:
        cur = await conn.execute(_STORE, (store_client_id,))
        store = await cur.fetchone()
        if store is None:
            raise UnknownClient(f"no store with client id {store_client_id!r}")
        cur = await conn.execute(_BY_IDS, (store[0], list(dict.fromkeys(ids))))
    return list(await cur.fetchall())


async def _restore(
    pool: Pool,
    request_id: uuid.UUID | None,
    batch_id: uuid.UUID | None,
    store_client_id: str | None,
    ids: Sequence[uuid.UUID],
) -> tuple[list[Sequence[Any]], dict[uuid.UUID, RestoreRefusal | None]]:
    """One transaction: the rows named, locked, and the tombstones of the free ones cleared;
    run again when a product created meanwhile took an external id to restore."""
    async with connection(pool) as conn:
        for attempt in range(_TRIES):
            try:
                async with conn.transaction():
                    rows = await _candidates(conn, request_id, batch_id, store_client_id, ids)
                    decided = _choose(rows)
                    chosen = [row for row in rows if decided[row[1]] is None]
                    if chosen:
                        await conn.execute(
                            _CLEAR_TOMBSTONES,
                            {
                                "stores": [row[0] for row in chosen],
                                "product_ids": [row[1] for row in chosen],
                            },
                        )
                return rows, decided
            except psycopg.errors.UniqueViolation:
                if attempt == _TRIES - 1:
                    raise
    raise AssertionError("unreachable: the last try returns or raises")


async def restore_products(
    pool: Pool,
    *,
    request_id: uuid.UUID | None = None,
    batch_id: uuid.UUID | None = None,
    store_client_id: str | None = None,
    ids: Sequence[uuid.UUID] = (),
) -> list[RestoreItem]:
    """Put back, exactly as they were, the products that one request or one batch deleted, or
    the named ids of one store; one item per product, refused ones with their reason.

    Exactly one selector: ``request_id``, ``batch_id``, or ``store_client_id`` with ``ids``.
    Raises :class:`UnknownClient` for an unknown store.
    """
    rows, decided = await _restore(pool, request_id, batch_id, store_client_id, ids)
    items = {
        row[1]: RestoreItem(
            id=str(row[1]),
            external_id=row[2],
            variants=row[5],
            request_id=row[3],
            batch_id=row[4],
            refusal=decided[row[1]],
        )
        for row in rows
    }
    if request_id is not None or batch_id is not None:
        return list(items.values())
    return [
        items.get(value)
        or RestoreItem(str(value), None, 0, None, None, RestoreRefusal.NOT_ARCHIVED)
        for value in dict.fromkeys(ids)
    ]


async def purge_archive(pool: Pool, *, older_than_days: int = 30, chunk: int = PURGE_CHUNK) -> int:
    """Delete the products deleted more than ``older_than_days`` ago, with their variants, at
    most ``chunk`` products per transaction; return how many."""
    purged = 0
    while True:
        async with connection(pool) as conn:
            cur = await conn.execute(_PURGE, {"days": older_than_days, "chunk": chunk})
        purged += cur.rowcount
        if cur.rowcount < chunk:
            return purged
