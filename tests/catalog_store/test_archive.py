"""The archive: every deleted product kept with its variants, restored exactly, per product."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import psycopg
import psycopg.errors
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import catalog_store
from tests.support import NOW_MS, Tenant, dispatch_batch, make_tenant, nonce_of

pytestmark = pytest.mark.anyio
R = catalog_store.RestoreRefusal


async def catalog(pool: catalog_store.Pool, tenant: Tenant) -> tuple[list[Any], list[Any]]:
    """Every row of the store's products and variants, every column, in a stable order."""
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute(
            "SELECT to_jsonb(p) FROM products p WHERE store_id = %s ORDER BY id",
            (tenant.store_id,),
        )
        products = [row[0] for row in await cur.fetchall()]
        cur = await conn.execute(
            "SELECT to_jsonb(v) FROM product_variants v WHERE store_id = %s ORDER BY id",
            (tenant.store_id,),
        )
        variants = [row[0] for row in await cur.fetchall()]
    return products, variants


async def delete(
    pool: catalog_store.Pool,
    tenant: Tenant,
    ids: list[str],
    n: int = 1,
    ext: list[str] | None = None,
) -> uuid.UUID:
    request_id = uuid.uuid4()
    async with catalog_store.request_transaction(
        pool, store_id=tenant.store_id, nonce=nonce_of(tenant, n), request_id=request_id
    ) as tx:
        await catalog_store.delete_products(tx, plan=catalog_store.plan_deletion(ids, ext or []))
    return request_id


async def archived(pool: catalog_store.Pool) -> list[tuple[Any, ...]]:
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute(
            "SELECT deleted_request, deleted_batch, deleted_by, store_id, id, external_id,"
            " (SELECT count(*) FROM all_product_variants v"
            "   WHERE v.store_id = p.store_id AND v.product_id = p.id)::int,"
            " restored_at IS NOT NULL"
            " FROM all_products p WHERE deleted_request IS NOT NULL ORDER BY deleted_at, id"
        )
        return list(await cur.fetchall())


async def test_a_deleted_product_is_archived_with_its_variants_and_tags(
    pool: catalog_store.Pool, tenant: Tenant
) -> None:
    request_id = await delete(pool, tenant, tenant.ids[:2])
    expected = sorted(tenant.products[:2], key=lambda p: p.id)
    assert await archived(pool) == [
        (request_id, None, tenant.partner_id, tenant.store_id, p.id, p.external_id, 2, False)
        for p in expected
    ]


async def test_a_thousand_deleted_and_restored_leave_the_catalog_identical(
    pool: catalog_store.Pool,
) -> None:
    tenant = await make_tenant(pool, products=1000, variants=3)
    other = await make_tenant(pool, products=3, name="other")
    before = await catalog(pool, tenant)
    request_id = await delete(pool, tenant, tenant.ids)
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (0, 0)
    items = await catalog_store.restore_products(pool, request_id=request_id)
    assert len(items) == 1000
    assert all(item.refusal is None and item.variants == 3 for item in items)
    assert {item.id for item in items} == set(tenant.ids)
    assert await catalog(pool, tenant) == before
    assert await catalog_store.count_products(pool, store_id=other.store_id) == (3, 6)


async def test_a_restore_refuses_per_product_and_says_why(
    pool: catalog_store.Pool, tenant: Tenant
) -> None:
    first = await delete(pool, tenant, tenant.ids[:3])
    reused = tenant.products[1].external_id
    async with catalog_store.connection(pool) as conn:
        await conn.execute(
            "INSERT INTO products (store_id, id, external_id, name) VALUES (%s, %s, %s, 'new')",
            (tenant.store_id, uuid.uuid4(), reused),
        )
    items = await catalog_store.restore_products(pool, request_id=first)
    by_id = {item.id: item.refusal for item in items}
    assert by_id == {tenant.ids[0]: None, tenant.ids[1]: R.EXTERNAL_ID_IN_USE, tenant.ids[2]: None}
    again = await catalog_store.restore_products(pool, request_id=first)
    assert {item.id: item.refusal for item in again} == {
        tenant.ids[0]: R.ALREADY_RESTORED,
        tenant.ids[1]: R.EXTERNAL_ID_IN_USE,
        tenant.ids[2]: R.ALREADY_RESTORED,
    }
    # 20 - 3 deleted + 1 new + 2 restored; the new product has no variants
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (20, 38)


async def test_a_restored_product_can_be_deleted_and_restored_again(
    pool: catalog_store.Pool, tenant: Tenant
) -> None:
    before = await catalog(pool, tenant)
    await delete(pool, tenant, tenant.ids[:1], n=1)
    await catalog_store.restore_products(
        pool, store_client_id=tenant.store_client_id, ids=[tenant.products[0].id]
    )
    second = await delete(pool, tenant, tenant.ids[:1], n=2)
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (19, 38)
    # By ids, the latest deletion is restored; the first one is already undone.
    items = await catalog_store.restore_products(
        pool, store_client_id=tenant.store_client_id, ids=[tenant.products[0].id, uuid.UUID(int=7)]
    )
    assert [(i.id, i.request_id, i.refusal) for i in items] == [
        (tenant.ids[0], second, None),
        (str(uuid.UUID(int=7)), None, R.NOT_ARCHIVED),
    ]
    assert await catalog(pool, tenant) == before


async def test_a_deleted_product_keeps_its_id_and_variants_until_purged(
    pool: catalog_store.Pool, tenant: Tenant
) -> None:
    """A tombstone keeps its id: no other product can take it, so nothing can stand in the way
    of its restore but its external id."""
    before = await catalog(pool, tenant)
    request_id = await delete(pool, tenant, tenant.ids[:1])
    async with catalog_store.connection(pool) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            await conn.execute(
                "INSERT INTO products (store_id, id, external_id, name)"
                " VALUES (%s, %s, 'other', 'x')",
                (tenant.store_id, tenant.products[0].id),
            )
    [item] = await catalog_store.restore_products(pool, request_id=request_id)
    assert (item.refusal, item.variants) == (None, 2)
    assert await catalog(pool, tenant) == before


async def test_an_unknown_store_is_refused(pool: catalog_store.Pool) -> None:
    with pytest.raises(catalog_store.UnknownClient):
        await catalog_store.restore_products(pool, store_client_id="nope", ids=[uuid.uuid4()])


async def test_a_dispatched_batch_of_10000_is_archived_and_restored_by_batch_id(
    pool: catalog_store.Pool,
) -> None:
    tenant = await make_tenant(pool, products=10_000, variants=1)
    before = await catalog(pool, tenant)
    request_id = uuid.uuid4()
    batch = await dispatch_batch(
        pool, tenant, tenant.ids[:5000], tenant.external_ids[5000:], request_id=request_id
    )
    while await catalog_store.process_next_chunk(pool, store_id=tenant.store_id, batch_id=batch.id):
        pass
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (0, 0)
    rows = await archived(pool)
    assert len(rows) == 10_000
    assert {(r[0], r[1], r[2]) for r in rows} == {(request_id, batch.id, tenant.partner_id)}
    items = await catalog_store.restore_products(pool, batch_id=batch.id)
    assert len(items) == 10_000 and all(i.refusal is None for i in items)
    assert await catalog(pool, tenant) == before


async def test_archived_products_older_than_the_retention_are_purged(
    pool: catalog_store.Pool, tenant: Tenant
) -> None:
    old = await delete(pool, tenant, tenant.ids[:2], n=1)
    recent = await delete(pool, tenant, tenant.ids[2:3], n=2)
    async with catalog_store.connection(pool) as conn:
        await conn.execute(
            "UPDATE all_products SET deleted_at = now() - interval '31 days'"
            " WHERE deleted_request = %s",
            (old,),
        )
    assert await catalog_store.purge_archive(pool, older_than_days=30) == 2
    assert [row[0] for row in await archived(pool)] == [recent]
    assert await catalog_store.restore_products(pool, request_id=old) == []


async def test_a_product_restored_mid_batch_and_deleted_again_by_it_stays_restorable(
    pool: catalog_store.Pool, tenant: Tenant
) -> None:
    before = await catalog(pool, tenant)
    product = tenant.products[0]
    batch = await dispatch_batch(pool, tenant, [str(product.id)], [str(product.external_id)])
    await catalog_store.process_next_chunk(
        pool, store_id=tenant.store_id, batch_id=batch.id, chunk_size=1
    )
    [item] = await catalog_store.restore_products(
        pool, store_client_id=tenant.store_client_id, ids=[product.id]
    )
    assert item.refusal is None
    done = await catalog_store.process_next_chunk(
        pool, store_id=tenant.store_id, batch_id=batch.id, chunk_size=1
    )
    assert done is not None and (done.status, done.succeeded) == ("succeeded", 2)
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (19, 38)
    [again] = await catalog_store.restore_products(pool, batch_id=batch.id)
    assert again.refusal is None
    assert await catalog(pool, tenant) == before


@settings(
    max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(
    id_picks=st.lists(st.integers(0, 9), max_size=8),
    ext_picks=st.lists(st.integers(0, 5), max_size=8),
)
async def test_dry_run_delete_restore_round_trip(
    pool: catalog_store.Pool, id_picks: list[int], ext_picks: list[int]
) -> None:
    """For any entries, a dry run reports what the deletion then does, and restoring that
    deletion by request id brings the catalog back row for row."""
    tenant = await make_tenant(pool, products=5, variants=1, name=secrets.token_hex(4))
    ids_pool = tenant.ids + [i.upper() for i in tenant.ids[:3]] + ["bad", str(uuid.uuid4())]
    ext_pool = tenant.external_ids + ["missing"]
    ids = [ids_pool[i] for i in id_picks]
    ext = [ext_pool[i] for i in ext_picks] or ["missing"]
    plan = catalog_store.plan_deletion(ids, ext)
    before = await catalog(pool, tenant)

    def fresh() -> catalog_store.Nonce:
        return catalog_store.Nonce(
            tenant.partner_id, secrets.token_bytes(32), 4_000_000_000_000, NOW_MS
        )

    async with catalog_store.request_transaction(
        pool, store_id=tenant.store_id, nonce=fresh(), request_id=uuid.uuid4()
    ) as tx:
        preview = await catalog_store.preview_deletion(tx, plan=plan)
    assert await catalog(pool, tenant) == before
    request_id = uuid.uuid4()
    async with catalog_store.request_transaction(
        pool, store_id=tenant.store_id, nonce=fresh(), request_id=request_id
    ) as tx:
        outcome = await catalog_store.delete_products(tx, plan=plan)
    assert preview.outcome == outcome
    assert [preview.variants[p.id] for p in outcome.deleted] == [1] * len(outcome.deleted)
    items = await catalog_store.restore_products(pool, request_id=request_id)
    assert sorted(i.id for i in items) == sorted(str(p.id) for p in outcome.deleted)
    assert all(i.refusal is None for i in items)
    assert await catalog(pool, tenant) == before
