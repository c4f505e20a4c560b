"""Catalog products and their variants: seeding and reading back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from .errors import UnknownClient
from .pool import Pool, connection

__all__ = ["ProductRef", "count_products", "first_products", "seed_products"]


@dataclass(frozen=True, slots=True)
class ProductRef:
    id: uuid.UUID
    external_id: str | None


_SEED = """
WITH store AS (SELECT id FROM stores WHERE client_id = %(store)s),
new_products AS (
    INSERT INTO products (store_id, id, external_id, name)
    SELECT store.id, gen_random_uuid(), 'ext-' || gen_random_uuid(), 'Demo product ' || n
      FROM store, generate_series(1, %(count)s) AS n
    RETURNING store_id, id, external_id
), new_variants AS (
    INSERT INTO product_variants (store_id, id, product_id, sku)
    SELECT p.store_id, gen_random_uuid(), p.id, p.external_id || '-v' || v
      FROM new_products p, generate_series(1, %(variants)s) AS v
)
SELECT id, external_id FROM new_products
"""

_STORE_EXISTS = """
SELECT 1 FROM stores WHERE client_id = %s
"""

_COUNT = """
SELECT (SELECT count(*) FROM products WHERE store_id = %(s)s),
       (SELECT count(*) FROM product_variants WHERE store_id = %(s)s)
"""

_FIRST_PRODUCTS = """
SELECT p.id, p.external_id
  FROM products p JOIN stores s ON s.id = p.store_id
 WHERE s.client_id = %(store)s
 ORDER BY p.created_at, p.id
 LIMIT %(limit)s
"""


async def seed_products(
    pool: Pool, *, store_client_id: str, count: int, variants: int
) -> list[ProductRef]:
    """Create ``count`` products with ``variants`` variants each, in two set-based inserts."""
    async with connection(pool) as conn, conn.transaction():
        cur = await conn.execute(_STORE_EXISTS, (store_client_id,))
        if await cur.fetchone() is None:
            raise UnknownClient(f"no store with client id {store_client_id!r}")
        cur = await conn.execute(
            _SEED, {"store": store_client_id, "count": count, "variants": variants}
        )
        return [ProductRef(row[0], row[1]) for row in await cur.fetchall()]


async def first_products(pool: Pool, *, store_client_id: str, limit: int) -> list[ProductRef]:
    """The first ``limit`` products of a store, oldest first (none for an unknown store)."""
    async with connection(pool) as conn:
        cur = await conn.execute(_FIRST_PRODUCTS, {"store": store_client_id, "limit": limit})
        return [ProductRef(row[0], row[1]) for row in await cur.fetchall()]


async def count_products(pool: Pool, *, store_id: int) -> tuple[int, int]:
    """Return (products, variants) of one store."""
    async with connection(pool) as conn:
        cur = await conn.execute(_COUNT, {"s": store_id})
        row = await cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
