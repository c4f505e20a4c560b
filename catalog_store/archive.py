"""The archive of deleted products (docs/safety-net.md): restore, per product, and purge.

Products get into the archive in the statement that deletes them (``DELETE_PRODUCTS`` in
``deletions.py``). A restore is one transaction of three statements whatever its size: one
reads and locks the archived rows it names, with what now stands in their way; one puts the free
products back; one puts their variants back and marks them restored. Archived rows are found by
primary key from parallel arrays, so the work grows linearly with the products restored.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import UnknownClient
from .pool import Pool, connection

__all__ = ["RestoreItem", "RestoreRefusal", "purge_archive", "restore_products"]


class RestoreRefusal(enum.Enum):
    """Why one product was not put back."""

    NOT_ARCHIVED = "not_archived"  # no archived deletion of this id (or it was purged)
    ALREADY_RESTORED = "already_restored"  # this deletion was already undone
    ID_IN_USE = "id_in_use"  # a product with this id is in the catalog
    EXTERNAL_ID_IN_USE = "external_id_in_use"  # another product now has its external id
    VARIANT_ID_IN_USE = "variant_id_in_use"  # one of its variant ids is used by another


@dataclass(frozen=True, slots=True)
class RestoreItem:
    id: str
    external_id: str | None
    variants: int
    request_id: uuid.UUID | None
    batch_id: uuid.UUID | None
    refusal: RestoreRefusal | None  # None: restored


_CANDIDATES = """
SELECT a.store_id, a.request_id, a.id, a.external_id, a.batch_id,
       jsonb_array_length(a.variants),
       a.restored_at IS NOT NULL,
       EXISTS (SELECT 1 FROM products p WHERE p.store_id = a.store_id AND p.id = a.id),
       a.external_id IS NOT NULL AND EXISTS (SELECT 1 FROM products p
            WHERE p.store_id = a.store_id AND p.external_id = a.external_id),
       EXISTS (SELECT 1 FROM product_variants v WHERE v.store_id = a.store_id
                  AND v.id = ANY(ARRAY(SELECT (e ->> 'id')::uuid
                                         FROM jsonb_array_elements(a.variants) e)))
  FROM archived_products a
"""
_BY_REQUEST = _CANDIDATES + " WHERE a.request_id = %s ORDER BY a.deleted_at, a.id FOR UPDATE OF a"
_BY_BATCH = _CANDIDATES + " WHERE a.batch_id = %s ORDER BY a.deleted_at, a.id FOR UPDATE OF a"
# The latest archived deletion of each id named: an id deleted, restored and deleted again is
# restored from its last deletion.
_BY_IDS = (
    _CANDIDATES + " WHERE a.store_id = %s AND a.id = ANY(%s::uuid[])"
    " AND a.deleted_at = (SELECT max(b.deleted_at) FROM archived_products b"
    " WHERE b.store_id = a.store_id AND b.id = a.id) ORDER BY a.id FOR UPDATE OF a"
)
# The archived rows named by three parallel arrays: looked up by primary key, one per entry.
_KEYS = """
unnest(%(stores)s::bigint[], %(requests)s::uuid[], %(ids)s::uuid[]) AS k (store_id, request_id, id)
JOIN archived_products a USING (store_id, request_id, id)
"""
_PUT_BACK_PRODUCTS = (
    "INSERT INTO products SELECT (jsonb_populate_record(NULL::products, a.product)).*"
    " FROM " + _KEYS + " ON CONFLICT DO NOTHING RETURNING store_id, id"
)
_PUT_BACK_VARIANTS = (
    """
WITH restored_variants AS (
    INSERT INTO product_variants
    SELECT (jsonb_populate_record(NULL::product_variants, v.value)).*
      FROM """
    + _KEYS
    + """, jsonb_array_elements(a.variants) v
)
UPDATE archived_products a SET restored_at = now()
  FROM unnest(%(stores)s::bigint[], %(requests)s::uuid[], %(ids)s::uuid[])
       AS k (store_id, request_id, id)
 WHERE a.store_id = k.store_id AND a.request_id = k.request_id AND a.id = k.id
"""
)


def _refusal(row: Sequence[Any], taken_external: set[str]) -> RestoreRefusal | None:
    *_, external_id, _batch, _variants, restored, id_used, external_used, variant_used = row
    if restored:
        return RestoreRefusal.ALREADY_RESTORED
    if id_used:
        return RestoreRefusal.ID_IN_USE
    if external_used or (external_id is not None and external_id in taken_external):
        return RestoreRefusal.EXTERNAL_ID_IN_USE
    if variant_used:
        return RestoreRefusal.VARIANT_ID_IN_USE
    return None


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
    async with connection(pool) as conn, conn.transaction():
        if request_id is not None:
            cur = await conn.execute(_BY_REQUEST, (request_id,))
        elif batch_id is not None:
            cur = await conn.execute(_BY_BATCH, (batch_id,))
        else:
            cur = await conn.execute(
                "SELECT id FROM stores WHERE client_id = %s", (store_client_id,)
            )
            shop = await cur.fetchone()
            if shop is None:
                raise UnknownClient(f"no store with client id {store_client_id!r}")
            cur = await conn.execute(_BY_IDS, (shop[0], list(dict.fromkeys(ids))))
        rows = await cur.fetchall()
        taken_external: set[str] = set()
        chosen: list[Sequence[Any]] = []
        refusals: dict[uuid.UUID, RestoreRefusal] = {}
        for row in rows:
            refusal = _refusal(row, taken_external)
            if refusal is None:
                chosen.append(row)
                if row[3] is not None:
                    taken_external.add(row[3])
            else:
                refusals[row[2]] = refusal
        restored: set[uuid.UUID] = set()
        if chosen:
            cur = await conn.execute(
                _PUT_BACK_PRODUCTS,
                {
                    "stores": [r[0] for r in chosen],
                    "requests": [r[1] for r in chosen],
                    "ids": [r[2] for r in chosen],
                },
            )
            restored = {row[1] for row in await cur.fetchall()}
            # Only the products inserted: one whose external id a concurrent insert took was
            # skipped by ON CONFLICT, and keeps its archive row as it was.
            chosen = [r for r in chosen if r[2] in restored]
            await conn.execute(
                _PUT_BACK_VARIANTS,
                {
                    "stores": [r[0] for r in chosen],
                    "requests": [r[1] for r in chosen],
                    "ids": [r[2] for r in chosen],
                },
            )
    items: dict[uuid.UUID, RestoreItem] = {}
    for row in rows:
        product_id = row[2]
        refusal = refusals.get(product_id)
        if refusal is None and product_id not in restored:
            # Taken by a product created after the check: the insert skipped it.
            refusal = RestoreRefusal.EXTERNAL_ID_IN_USE
        items[product_id] = RestoreItem(
            id=str(product_id),
            external_id=row[3],
            variants=row[5],
            request_id=row[1],
            batch_id=row[4],
            refusal=refusal,
        )
    if request_id is not None or batch_id is not None:
        return list(items.values())
    return [
        items.get(value)
        or RestoreItem(str(value), None, 0, None, None, RestoreRefusal.NOT_ARCHIVED)
        for value in dict.fromkeys(ids)
    ]


async def purge_archive(pool: Pool, *, older_than_days: int = 30) -> int:
    """Delete archived products deleted more than ``older_than_days`` ago; return how many."""
    async with connection(pool) as conn:
        cur = await conn.execute(
            "DELETE FROM archived_products WHERE deleted_at < now() - make_interval(days => %s)",
            (older_than_days,),
        )
        return cur.rowcount
