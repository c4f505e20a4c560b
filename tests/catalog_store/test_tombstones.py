"""Tombstones: a deleted product is gone for every reader of products or variants, its external
id is free at once, and the purge removes it with its variants in short chunks."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

import pytest

import catalog_store
from gateway.demo import DEMO_PRODUCTS, ensure_demo
from tests.support import NOW_MS, TEST_BOX, Tenant, dispatch_batch, make_tenant

pytestmark = pytest.mark.anyio


def fresh(tenant: Tenant) -> catalog_store.Nonce:
    return catalog_store.Nonce(
        tenant.partner_id, secrets.token_bytes(32), 4_000_000_000_000, NOW_MS
    )


async def delete(
    pool: catalog_store.Pool,
    tenant: Tenant,
    ids: list[str],
    ext: list[str] | None = None,
    request_id: uuid.UUID | None = None,
) -> catalog_store.DeletionOutcome:
    async with catalog_store.request_transaction(
        pool, store_id=tenant.store_id, nonce=fresh(tenant), request_id=request_id or uuid.uuid4()
    ) as tx:
        return await catalog_store.delete_products(
            tx, plan=catalog_store.plan_deletion(ids, ext or [])
        )


async def scalar(pool: catalog_store.Pool, sql: str, *args: object) -> object:
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute(sql.encode(), args)
        row = await cur.fetchone()
    assert row is not None
    return row[0]


async def test_every_reader_sees_a_deleted_product_and_its_variants_as_gone(
    pool: catalog_store.Pool, tenant: Tenant
) -> None:
    """Counts, the views, the dry run (and its variant counts), deletions by id and external
    id, synchronous and dispatched, all treat the tombstone as gone."""
    gone, kept = tenant.products[0], tenant.products[1]
    await delete(pool, tenant, [str(gone.id)])
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (19, 38)
    assert await scalar(pool, "SELECT count(*) FROM products WHERE id = %s", gone.id) == 0
    assert (
        await scalar(pool, "SELECT count(*) FROM product_variants WHERE product_id = %s", gone.id)
        == 0
    )
    # ...while its row and variants are still stored, until the purge.
    assert await scalar(
        pool, "SELECT count(*) FROM all_product_variants WHERE product_id = %s", gone.id
    ) == (2)
    plan = catalog_store.plan_deletion([str(gone.id), str(kept.id)], [str(gone.external_id)])
    async with catalog_store.request_transaction(
        pool, store_id=tenant.store_id, nonce=fresh(tenant), request_id=uuid.uuid4()
    ) as tx:
        preview = await catalog_store.preview_deletion(tx, plan=plan)
    assert preview.variants == {str(kept.id): 2}
    assert [f.problem for f in preview.outcome.failures] == [
        catalog_store.Problem.ID_NOT_FOUND,
        catalog_store.Problem.EXTERNAL_ID_NOT_FOUND,
    ]
    again = await delete(pool, tenant, [str(gone.id)], [str(gone.external_id)])
    assert (again.deleted, len(again.failures)) == ([], 2)
    batch = await dispatch_batch(pool, tenant, [str(gone.id)], [str(gone.external_id)])
    done = await catalog_store.process_next_chunk(pool, store_id=tenant.store_id, batch_id=batch.id)
    assert done is not None and (done.succeeded, done.failed) == (0, 2)


async def test_an_external_id_is_free_as_soon_as_its_product_is_deleted(
    pool: catalog_store.Pool, tenant: Tenant
) -> None:
    """A new product takes it at once; deleting by it then names the live product only, and
    restoring the first one is refused with its reason."""
    old = tenant.products[0]
    first = uuid.uuid4()
    await delete(pool, tenant, [str(old.id)], request_id=first)
    new_id = uuid.uuid4()
    async with catalog_store.connection(pool) as conn:
        await conn.execute(
            "INSERT INTO products (store_id, id, external_id, name) VALUES (%s, %s, %s, 'new')",
            (tenant.store_id, new_id, old.external_id),
        )
    [item] = await catalog_store.restore_products(pool, request_id=first)
    assert item.refusal is catalog_store.RestoreRefusal.EXTERNAL_ID_IN_USE
    outcome = await delete(pool, tenant, [], [str(old.external_id)])
    assert outcome.deleted == [catalog_store.DeletedProduct(str(new_id), old.external_id)]
    [item] = await catalog_store.restore_products(pool, request_id=first)
    assert item.refusal is None
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (20, 40)


async def test_the_demo_reseeds_when_every_product_of_its_store_is_deleted(
    pool: catalog_store.Pool, tmp_path: Path
) -> None:
    demo = await ensure_demo(pool, tmp_path, box=TEST_BOX)
    store_id = await scalar(pool, "SELECT id FROM stores WHERE client_id = %s", demo.storeClientId)
    async with catalog_store.connection(pool) as conn:
        await conn.execute(
            "UPDATE all_products SET deleted_at = now(), deleted_request = %s WHERE store_id = %s",
            (uuid.uuid4(), store_id),
        )
    again = await ensure_demo(pool, tmp_path, box=TEST_BOX)
    assert len(again.sampleIds) == 2 and not set(again.sampleIds) & set(demo.sampleIds)
    assert await catalog_store.count_products(pool, store_id=int(str(store_id))) == (
        DEMO_PRODUCTS,
        2 * DEMO_PRODUCTS,
    )


async def test_the_purge_removes_old_tombstones_and_their_variants_in_chunks(
    pool: catalog_store.Pool,
) -> None:
    tenant = await make_tenant(pool, products=9, variants=2)
    await delete(pool, tenant, tenant.ids[:5])
    recent = await delete(pool, tenant, tenant.ids[5:7])
    async with catalog_store.connection(pool) as conn:
        await conn.execute(
            "UPDATE all_products SET deleted_at = now() - interval '31 days'"
            " WHERE id = ANY(%s::uuid[])",
            (tenant.ids[:5],),
        )
    assert await catalog_store.purge_archive(pool, older_than_days=30, chunk=2) == 5
    assert await scalar(pool, "SELECT count(*) FROM all_products") == 4
    assert await scalar(pool, "SELECT count(*) FROM all_product_variants") == 8
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (2, 4)
    assert len(recent.deleted) == 2
    assert await catalog_store.purge_archive(pool, older_than_days=30, chunk=2) == 0
