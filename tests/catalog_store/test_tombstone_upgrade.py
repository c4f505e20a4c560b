"""The upgrade to tombstones on a database written by the previous version: its archived
products come back restorable, row for row, and its gateways keep deleting correctly until
the contract step, which refuses while they still do."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

import catalog_store
from tests.support import NOW_MS

pytestmark = pytest.mark.anyio

# The previous version's deletion statement, exactly as it ran (catalog_store/deletions.py
# before the tombstones): delete, and archive in the same statement.
PREVIOUS_DELETE = """
WITH deleted AS (
    DELETE FROM products WHERE store_id = %(store)s
       AND (id = ANY(%(ids)s::uuid[]) OR external_id = ANY(%(external_ids)s::text[]))
    RETURNING *
), archived AS (
    INSERT INTO archived_products
        (store_id, request_id, id, external_id, batch_id, partner_id, product, variants)
    SELECT d.store_id, %(request)s, d.id, d.external_id, %(batch)s::uuid, %(partner)s,
           to_jsonb(d),
           COALESCE((SELECT jsonb_agg(to_jsonb(v) ORDER BY v.id) FROM product_variants v
                      WHERE v.store_id = d.store_id AND v.product_id = d.id), '[]'::jsonb)
      FROM deleted d
    ON CONFLICT (store_id, request_id, id) DO UPDATE SET external_id = excluded.external_id,
       deleted_at = excluded.deleted_at, product = excluded.product,
       variants = excluded.variants, restored_at = NULL
)
SELECT id, external_id FROM deleted
"""
# What the previous version's restore did for one request, in short.
PREVIOUS_RESTORE = """
WITH back AS (
    INSERT INTO products SELECT (jsonb_populate_record(NULL::products, a.product)).*
      FROM archived_products a WHERE a.request_id = %(request)s
), variants_back AS (
    INSERT INTO product_variants
    SELECT (jsonb_populate_record(NULL::product_variants, v.value)).*
      FROM archived_products a, jsonb_array_elements(a.variants) v
     WHERE a.request_id = %(request)s
)
UPDATE archived_products SET restored_at = now() WHERE request_id = %(request)s
"""
_SEED = """
WITH p AS (
    INSERT INTO products (store_id, id, external_id, name)
    SELECT 1, gen_random_uuid(), 'ext-' || n, 'product ' || n FROM generate_series(1, 6) n
    RETURNING id, external_id
)
INSERT INTO product_variants (store_id, id, product_id, sku)
SELECT 1, gen_random_uuid(), p.id, p.external_id || '-v' || v
  FROM p, generate_series(1, 2) v
"""
_CATALOG = (
    "SELECT (SELECT jsonb_agg(to_jsonb(p) ORDER BY id) FROM products p),"
    " (SELECT jsonb_agg(to_jsonb(v) ORDER BY id) FROM product_variants v)"
)


@pytest.fixture
async def previous(server_conninfo: str) -> AsyncIterator[str]:
    """A database at the schema before the tombstones, with one store of 6 products."""
    name = f"gateway_tombstones_{secrets.token_hex(4)}"
    with psycopg.connect(server_conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(server_conninfo, dbname=name)
    earlier = [m for m in catalog_store.available_migrations() if m.name < "0012"]
    await catalog_store.apply_migrations(url, migrations=earlier)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO partners (client_id, name) VALUES ('p', 'p')")
        conn.execute("INSERT INTO stores (client_id, name) VALUES ('s', 's')")
        conn.execute(_SEED)
    yield url
    with psycopg.connect(server_conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def previous_delete(
    url: str, ids: list[uuid.UUID], request: uuid.UUID, batch: uuid.UUID | None = None
) -> list[Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        return prepared_delete(conn, ids, request, batch)


def prepared_delete(
    conn: psycopg.Connection, ids: list[uuid.UUID], request: uuid.UUID, batch: uuid.UUID | None
) -> list[Any]:
    """The previous version's delete as its gateways send it: a prepared statement."""
    params = {"store": 1, "ids": ids, "external_ids": [], "request": request}
    cur = conn.execute(PREVIOUS_DELETE, {**params, "batch": batch, "partner": 1}, prepare=True)
    return cur.fetchall()


def one(url: str, sql: str) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql.encode()).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


async def test_archived_products_come_back_as_tombstones_restorable_row_for_row(
    previous: str,
) -> None:
    with psycopg.connect(previous) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM products ORDER BY external_id")]
    before = one(previous, _CATALOG)
    by_request, in_batch, restored = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    batch = uuid.uuid4()
    assert len(previous_delete(previous, ids[:2], by_request)) == 2
    assert len(previous_delete(previous, ids[2:3], in_batch, batch)) == 1
    previous_delete(previous, ids[3:4], restored)
    with psycopg.connect(previous) as conn:
        conn.execute(PREVIOUS_RESTORE, {"request": restored})

    report = await catalog_store.apply_migrations(previous)
    assert [n for n in report.applied if n.startswith("0012") or n.startswith("0013")] == [
        "0012_tombstones_expand",
        "0013_tombstones_carry_over",
    ]
    assert one(previous, "SELECT count(*) FROM archived_products") == 0
    assert one(previous, "SELECT count(*), count(deleted_at) FROM all_products") == (6, 3)
    assert await catalog_store.pending_migrations(previous) == []
    assert await catalog_store.pending_migrations(previous, contract=True) == [
        "0014_tombstones_contract"
    ]
    pool = catalog_store.create_pool(previous, min_size=1, max_size=2)
    await pool.open(wait=True)
    try:
        items = await catalog_store.restore_products(pool, request_id=by_request)
        assert sorted((i.id, i.variants, i.refusal) for i in items) == sorted(
            (str(i), 2, None) for i in ids[:2]
        )
        [item] = await catalog_store.restore_products(pool, batch_id=batch)
        assert (item.id, item.request_id, item.refusal) == (str(ids[2]), in_batch, None)
    finally:
        await pool.close()
    assert one(previous, _CATALOG) == before


async def test_gateways_of_the_previous_version_keep_deleting_until_the_contract_step(
    previous: str,
) -> None:
    """After the expand steps, the previous version's statement, prepared on a connection
    opened before them, deletes (and archives) live products only; the contract step refuses
    while such archives are fresh, then carries them over and drops the archive."""
    with psycopg.connect(previous) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM products ORDER BY external_id")]
    before = one(previous, _CATALOG)
    old_gateway = psycopg.connect(previous, autocommit=True)
    first_old = uuid.uuid4()
    assert prepared_delete(old_gateway, ids[5:], first_old, None) == [(ids[5], "ext-6")]
    await catalog_store.apply_migrations(previous)
    pool = catalog_store.create_pool(previous, min_size=1, max_size=2)
    await pool.open(wait=True)
    try:
        new_request, old_request = uuid.uuid4(), uuid.uuid4()
        nonce = catalog_store.Nonce(1, secrets.token_bytes(32), 4_000_000_000_000, NOW_MS)
        async with catalog_store.request_transaction(
            pool, store_id=1, nonce=nonce, request_id=new_request
        ) as tx:
            await catalog_store.delete_products(
                tx, plan=catalog_store.plan_deletion([str(ids[0])], [])
            )
        # The previous version cannot see the tombstone: it deletes only the live product.
        with old_gateway:
            assert prepared_delete(old_gateway, ids[:2], old_request, None) == [(ids[1], "ext-2")]
        assert one(previous, "SELECT count(*) FROM product_variants") == 6
        with pytest.raises(
            catalog_store.MigrationError, match="previous version archived a deletion"
        ):
            await catalog_store.apply_migrations(previous, contract=True)
        assert one(previous, "SELECT count(*) FROM archived_products") == 1
        with psycopg.connect(previous) as conn:
            conn.execute("UPDATE archived_products SET deleted_at = now() - interval '11 minutes'")
        report = await catalog_store.apply_migrations(previous, contract=True)
        assert report.applied == ["0014_tombstones_contract"]
        assert one(previous, "SELECT to_regclass('archived_products')") is None
        for request in (first_old, new_request, old_request):
            [item] = await catalog_store.restore_products(pool, request_id=request)
            assert (item.variants, item.refusal) == (2, None)
    finally:
        await pool.close()
    assert one(previous, _CATALOG) == before
