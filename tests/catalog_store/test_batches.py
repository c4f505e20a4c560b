"""Dispatched batches in the store: chunked processing, exact counts, no entry twice, and the
same per-item results as the synchronous path."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import catalog_store
from gateway.jobs import defer_batch_job
from tests.support import Tenant, dispatch_batch, make_tenant, nonce_of

pytestmark = pytest.mark.anyio


async def _run(
    pool: catalog_store.Pool, batch: catalog_store.Batch, chunk_size: int
) -> catalog_store.Batch:
    last = batch
    while (
        step := await catalog_store.process_next_chunk(
            pool, store_id=batch.store_id, batch_id=batch.id, chunk_size=chunk_size
        )
    ) is not None:
        last = step
    return last


async def test_a_batch_is_stored_with_its_job_and_processed_in_chunks(
    pool: catalog_store.Pool,
) -> None:
    tenant = await make_tenant(pool, products=25)
    batch = await dispatch_batch(pool, tenant, tenant.ids[:20] + ["bad"], tenant.external_ids[20:])
    assert (batch.status, batch.total, batch.processed) == ("pending", 26, 0)
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute("SELECT task_name, queue_name, lock, args FROM procrastinate_jobs")
        assert await cur.fetchall() == [
            (
                "process_deletion_batch",
                "deletions",
                f"deletion-batch-{batch.id}",
                {"store_id": tenant.store_id, "batch_id": str(batch.id)},
            )
        ]
    first = await catalog_store.process_next_chunk(
        pool, store_id=tenant.store_id, batch_id=batch.id, chunk_size=10
    )
    assert first is not None
    assert (first.status, first.processed, first.succeeded, first.failed) == (
        "processing",
        10,
        10,
        0,
    )
    done = await _run(pool, batch, 10)
    assert (done.status, done.processed, done.succeeded, done.failed) == ("completed", 26, 25, 1)
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (0, 0)
    entries = await catalog_store.list_batch_entries(
        pool, store_id=tenant.store_id, batch_id=batch.id, after_seq=-1, limit=1000
    )
    assert [e.seq for e in entries] == list(range(26))
    assert entries[20].problem is catalog_store.Problem.INVALID_ID


class _Boom(Exception):
    pass


async def test_the_job_is_deferred_in_the_batch_transaction(pool: catalog_store.Pool) -> None:
    """procrastinate's deferral joins the batch's transaction: when that transaction rolls
    back after the job was deferred, neither the batch nor its job is left."""
    tenant = await make_tenant(pool, products=1)

    async def defer_then_fail(conn: Any, batch: catalog_store.Batch) -> None:
        await defer_batch_job(conn, batch)
        raise _Boom

    with pytest.raises(_Boom):
        async with catalog_store.request_transaction(
            pool, store_id=tenant.store_id, nonce=nonce_of(tenant, 1), request_id=uuid.uuid4()
        ) as tx:
            await catalog_store.create_batch(
                tx,
                batch_id=uuid.uuid4(),
                ids=tenant.ids,
                external_ids=[],
                defer_job=defer_then_fail,
            )
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute(
            "SELECT (SELECT count(*) FROM deletion_batches),"
            " (SELECT count(*) FROM procrastinate_jobs)"
        )
        assert await cur.fetchone() == (0, 0)


async def test_a_clean_batch_ends_succeeded(pool: catalog_store.Pool) -> None:
    tenant = await make_tenant(pool, products=3)
    done = await _run(pool, await dispatch_batch(pool, tenant, tenant.ids, []), 1000)
    assert (done.status, done.succeeded, done.failed) == ("succeeded", 3, 0)


async def test_another_stores_batch_is_invisible(pool: catalog_store.Pool) -> None:
    tenant = await make_tenant(pool, products=1)
    other = await make_tenant(pool, name="other")
    batch = await dispatch_batch(pool, tenant, tenant.ids, [])
    assert await catalog_store.get_batch(pool, store_id=other.store_id, batch_id=batch.id) is None
    assert (
        await catalog_store.process_next_chunk(pool, store_id=other.store_id, batch_id=batch.id)
        is None
    )
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (1, 2)


async def test_a_replayed_nonce_stores_no_batch(pool: catalog_store.Pool) -> None:
    tenant = await make_tenant(pool, products=1)
    await dispatch_batch(pool, tenant, tenant.ids, [], n=7)
    with pytest.raises(catalog_store.Replayed):
        await dispatch_batch(pool, tenant, tenant.ids, [], n=7)
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute("SELECT count(*) FROM deletion_batches")
        assert await cur.fetchone() == (1,)


async def test_concurrent_runners_never_process_an_entry_twice(pool: catalog_store.Pool) -> None:
    """Four runners on three batches at once: every entry done once, counts exact."""
    tenant = await make_tenant(pool, products=600)
    batches = [
        await dispatch_batch(pool, tenant, tenant.ids[:300], tenant.external_ids[200:400], n=1),
        await dispatch_batch(pool, tenant, tenant.ids[250:], [], n=2),
        await dispatch_batch(pool, tenant, [], tenant.external_ids, n=3),
    ]
    async with anyio.create_task_group() as group:
        for batch in batches:
            for _ in range(2):
                group.start_soon(_run, pool, batch, 37)
    deleted: list[str] = []
    for batch in batches:
        final = await catalog_store.get_batch(pool, store_id=tenant.store_id, batch_id=batch.id)
        assert final is not None and final.processed == final.total
        assert final.succeeded + final.failed == final.total
        entries = await catalog_store.list_batch_entries(
            pool, store_id=tenant.store_id, batch_id=batch.id, after_seq=-1, limit=10_000
        )
        assert len(entries) == final.total
        assert sum(e.product is not None for e in entries) == final.succeeded
        deleted += [e.product.id for e in entries if e.product is not None]
    assert sorted(deleted) == sorted(str(p.id) for p in tenant.products)
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (0, 0)


async def _twin_stores(pool: catalog_store.Pool, count: int) -> tuple[Tenant, Tenant]:
    """Two stores holding the very same products (ids and external ids)."""
    one = await make_tenant(pool, products=count, name="sync")
    two = await make_tenant(pool, name="dispatch")
    async with catalog_store.connection(pool) as conn:
        await conn.execute(
            "INSERT INTO products (store_id, id, external_id, name)"
            " SELECT %s, id, external_id, name FROM products WHERE store_id = %s",
            (two.store_id, one.store_id),
        )
    return one, Tenant(**{**two.__dict__, "products": one.products})


@settings(
    max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(
    id_picks=st.lists(st.integers(0, 13), max_size=8),
    ext_picks=st.lists(st.integers(0, 6), max_size=8),
    chunk_size=st.integers(1, 5),
)
async def test_dispatched_results_equal_the_synchronous_ones(
    pool: catalog_store.Pool, id_picks: list[int], ext_picks: list[int], chunk_size: int
) -> None:
    one, two = await _twin_stores(pool, 6)
    ids_pool = one.ids + [i.upper() for i in one.ids] + ["bad", str(uuid.uuid4())]
    ext_pool = one.external_ids + ["missing"]
    ids = [ids_pool[i] for i in id_picks] or ["bad"]
    ext = [ext_pool[i] for i in ext_picks]
    async with catalog_store.request_transaction(
        pool, store_id=one.store_id, nonce=nonce_of(one, 1), request_id=uuid.uuid4()
    ) as tx:
        sync = await catalog_store.delete_products(tx, plan=catalog_store.plan_deletion(ids, ext))
    batch = await dispatch_batch(pool, two, ids, ext, n=2)
    final = await _run(pool, batch, chunk_size)
    entries = await catalog_store.list_batch_entries(
        pool, store_id=two.store_id, batch_id=batch.id, after_seq=-1, limit=100
    )

    def report(deleted: list[Any], failures: list[Any]) -> tuple[list[Any], list[Any]]:
        return sorted(deleted, key=str), sorted(failures, key=str)

    assert report(
        [(p.id, p.external_id) for p in sync.deleted],
        [(f.problem, f.kind, f.row_index, f.value) for f in sync.failures],
    ) == report(
        [(e.product.id, e.product.external_id) for e in entries if e.product],
        [(e.problem, e.kind, e.row_index, e.value) for e in entries if e.problem],
    )
    assert (final.succeeded, final.failed) == (len(sync.deleted), len(sync.failures))
    async with catalog_store.connection(pool) as conn:
        await conn.execute(
            "DELETE FROM products WHERE store_id IN (%s, %s)", (one.store_id, two.store_id)
        )


async def test_finished_batches_older_than_the_retention_are_purged(
    pool: catalog_store.Pool,
) -> None:
    tenant = await make_tenant(pool, products=2)
    old = await _run(pool, await dispatch_batch(pool, tenant, tenant.ids[:1], [], n=1), 1000)
    new = await _run(pool, await dispatch_batch(pool, tenant, tenant.ids[1:], [], n=2), 1000)
    async with catalog_store.connection(pool) as conn:
        await conn.execute(
            "UPDATE deletion_batches SET created_at = now() - interval '8 days' WHERE id = %s",
            (old.id,),
        )
    assert await catalog_store.purge_old_batches(pool, older_than_days=7) == 1
    assert await catalog_store.get_batch(pool, store_id=tenant.store_id, batch_id=old.id) is None
    assert (
        await catalog_store.get_batch(pool, store_id=tenant.store_id, batch_id=new.id) is not None
    )
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM deletion_batch_entries WHERE batch_id = %s", (old.id,)
        )
        assert await cur.fetchone() == (0,)
        cur = await conn.execute(
            "SELECT count(*) FILTER (WHERE batch_id = %s), count(*) FILTER (WHERE batch_id = %s)"
            " FROM deletion_batch_chunks",
            (old.id, new.id),
        )
        assert await cur.fetchone() == (0, 1)


async def test_a_chunk_ending_past_seq_32767_is_processed(pool: catalog_store.Pool) -> None:
    """Seq arithmetic is in integers: a chunk from seq 1 with 32,767 entries ends at 32,767."""
    tenant = await make_tenant(pool, products=2)
    batch = await dispatch_batch(pool, tenant, tenant.ids, [])
    first = await catalog_store.process_next_chunk(
        pool, store_id=tenant.store_id, batch_id=batch.id, chunk_size=1
    )
    rest = await catalog_store.process_next_chunk(
        pool, store_id=tenant.store_id, batch_id=batch.id, chunk_size=32_767
    )
    assert first is not None and rest is not None
    assert (rest.status, rest.processed, rest.succeeded) == ("succeeded", 2, 2)


# What a worker of the release before per-chunk results left behind: each entry's result in
# its own row. Made here from a chunk's row, which then goes.
_AS_PREVIOUS_RELEASE = """
WITH chunk AS (
    DELETE FROM deletion_batch_chunks WHERE batch_id = %(batch)s RETURNING *
)
UPDATE deletion_batch_entries e
   SET done = true, code = r.code, product_id = r.product_id, external_id = r.external_id
  FROM chunk c, unnest(c.codes, c.product_ids, c.external_ids) WITH ORDINALITY
                AS r (code, product_id, external_id, n)
 WHERE e.batch_id = c.batch_id AND e.seq = c.first_seq + r.n - 1
"""


async def test_a_batch_begun_by_a_previous_release_worker_reads_back_whole(
    pool: catalog_store.Pool,
) -> None:
    """The first chunk's results in the entries' rows (the previous release), the rest in
    chunk rows: every result is read back, and an external id whose product an id of the
    old chunk deleted is still a repeat."""
    tenant = await make_tenant(pool, products=5)
    ext = [tenant.external_ids[0], tenant.external_ids[4], "missing"]
    batch = await dispatch_batch(pool, tenant, tenant.ids[:2] + ["bad"], ext)
    await catalog_store.process_next_chunk(
        pool, store_id=tenant.store_id, batch_id=batch.id, chunk_size=2
    )
    async with catalog_store.connection(pool) as conn:
        await conn.execute(_AS_PREVIOUS_RELEASE, {"batch": batch.id})
    done = await _run(pool, batch, 2)
    entries = await catalog_store.list_batch_entries(
        pool, store_id=tenant.store_id, batch_id=batch.id, after_seq=-1, limit=100
    )
    products = tenant.products
    assert (done.status, done.processed, done.succeeded, done.failed) == ("completed", 6, 3, 3)
    assert [(e.kind, e.row_index, e.value, e.problem, e.product) for e in entries] == [
        (
            catalog_store.EntryKind.ID,
            0,
            tenant.ids[0],
            None,
            catalog_store.DeletedProduct(str(products[0].id), ext[0]),
        ),
        (
            catalog_store.EntryKind.ID,
            1,
            tenant.ids[1],
            None,
            catalog_store.DeletedProduct(str(products[1].id), products[1].external_id),
        ),
        (catalog_store.EntryKind.ID, 2, "bad", catalog_store.Problem.INVALID_ID, None),
        (catalog_store.EntryKind.EXTERNAL_ID, 0, ext[0], catalog_store.Problem.REPEATED, None),
        (
            catalog_store.EntryKind.EXTERNAL_ID,
            1,
            ext[1],
            None,
            catalog_store.DeletedProduct(str(products[4].id), ext[1]),
        ),
        (
            catalog_store.EntryKind.EXTERNAL_ID,
            2,
            "missing",
            catalog_store.Problem.EXTERNAL_ID_NOT_FOUND,
            None,
        ),
    ]
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute(
            "SELECT count(*) FILTER (WHERE done) FROM deletion_batch_entries WHERE batch_id = %s",
            (batch.id,),
        )
        assert await cur.fetchone() == (2,)
