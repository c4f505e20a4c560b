"""Products read back for the demo: a store's first products, and whether its clients exist."""

from __future__ import annotations

import pytest

import catalog_store
from tests.support import make_tenant

pytestmark = pytest.mark.anyio


async def test_first_products_are_the_stores_oldest_and_only_its_own(
    pool: catalog_store.Pool,
) -> None:
    tenant = await make_tenant(pool, products=3, name="a")
    other = await make_tenant(pool, products=2, name="b")
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute(
            "SELECT id, external_id FROM products WHERE store_id = %s ORDER BY created_at, id",
            (tenant.store_id,),
        )
        oldest = [catalog_store.ProductRef(row[0], row[1]) for row in await cur.fetchall()][:2]
    first = await catalog_store.first_products(
        pool, store_client_id=tenant.store_client_id, limit=2
    )
    assert first == oldest
    assert not {ref.id for ref in first} & {p.id for p in other.products}
    empty = await make_tenant(pool, name="c")
    assert (
        await catalog_store.first_products(pool, store_client_id=empty.store_client_id, limit=2)
        == []
    )
    assert await catalog_store.first_products(pool, store_client_id="no such store", limit=2) == []


async def test_clients_exist_says_which_of_the_partner_and_the_store_exist(
    pool: catalog_store.Pool,
) -> None:
    tenant = await make_tenant(pool)
    known, unknown = tenant.partner_client_id, "0" * 22
    store, nowhere = tenant.store_client_id, "0" * 21
    assert await catalog_store.clients_exist(
        pool, partner_client_id=known, store_client_id=store
    ) == (
        True,
        True,
    )
    assert await catalog_store.clients_exist(
        pool, partner_client_id=unknown, store_client_id=store
    ) == (
        False,
        True,
    )
    assert await catalog_store.clients_exist(
        pool, partner_client_id=known, store_client_id=nowhere
    ) == (
        True,
        False,
    )
