"""A request's transaction: the caller reads the key's earlier answer and hands over the bytes to
keep; the store keeps them with the work, never renders, and spends what it refuses."""

from __future__ import annotations

import hashlib
import secrets
import uuid

import pytest

import catalog_store
from tests.support import NOW_MS, Tenant

pytestmark = pytest.mark.anyio


def _nonce(tenant: Tenant) -> catalog_store.Nonce:
    return catalog_store.Nonce(
        tenant.partner_id, secrets.token_bytes(32), 4_000_000_000_000, NOW_MS
    )


def _key(value: str, body: bytes) -> catalog_store.IdempotencyKey:
    return catalog_store.IdempotencyKey(value, hashlib.sha256(body).digest())


async def _audited(pool: catalog_store.Pool) -> int:
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute("SELECT count(*) FROM deletion_audit")
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _counts(pool: catalog_store.Pool, nonce: catalog_store.Nonce) -> list[bool]:
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute(
            "SELECT counts FROM replay_nonces WHERE signature = %s", (nonce.signature,)
        )
        return [row[0] for row in await cur.fetchall()]


async def test_a_key_keeps_the_bytes_it_was_given_and_a_retry_reads_them_before_any_work(
    pool: catalog_store.Pool, tenant: Tenant
) -> None:
    plan = catalog_store.plan_deletion(tenant.ids[:2], [])
    first = uuid.uuid4()
    async with catalog_store.request_transaction(
        pool,
        nonce=_nonce(tenant),
        store_id=tenant.store_id,
        request_id=first,
        key=_key("k1", b"body"),
    ) as tx:
        assert tx.answered_before is None
        outcome = await catalog_store.delete_products(tx, plan=plan)
        await tx.keep(299, b"\x00 not JSON, kept as given")
    assert len(outcome.deleted) == 2
    async with catalog_store.request_transaction(
        pool,
        nonce=_nonce(tenant),
        store_id=tenant.store_id,
        request_id=uuid.uuid4(),
        key=_key("k1", b"body"),
    ) as tx:
        assert tx.answered_before == catalog_store.KeptAnswer(
            299, b"\x00 not JSON, kept as given", first
        )
        with pytest.raises(RuntimeError):
            await catalog_store.delete_products(tx, plan=plan)
    assert await _audited(pool) == 1


async def test_a_key_with_another_body_is_refused_and_its_nonce_spent_without_counting(
    pool: catalog_store.Pool, tenant: Tenant
) -> None:
    async with catalog_store.request_transaction(
        pool,
        nonce=_nonce(tenant),
        store_id=tenant.store_id,
        request_id=uuid.uuid4(),
        key=_key("k2", b"one"),
    ) as tx:
        await catalog_store.preview_deletion(
            tx, plan=catalog_store.plan_deletion(tenant.ids[:1], [])
        )
        await tx.keep(200, b"{}")
    other = _nonce(tenant)
    with pytest.raises(catalog_store.IdempotencyMismatch):
        async with catalog_store.request_transaction(
            pool,
            nonce=other,
            store_id=tenant.store_id,
            request_id=uuid.uuid4(),
            key=_key("k2", b"two"),
        ):
            raise AssertionError("the block never runs for a refused key")
    assert await _counts(pool, other) == [False]


async def test_an_error_in_the_block_rolls_back_the_work_the_answer_and_the_nonce(
    pool: catalog_store.Pool, tenant: Tenant
) -> None:
    nonce = _nonce(tenant)
    with pytest.raises(ZeroDivisionError):
        async with catalog_store.request_transaction(
            pool,
            nonce=nonce,
            store_id=tenant.store_id,
            request_id=uuid.uuid4(),
            key=_key("k3", b"body"),
        ) as tx:
            await catalog_store.delete_products(
                tx, plan=catalog_store.plan_deletion(tenant.ids[:3], [])
            )
            await tx.keep(200, b"{}")
            1 / 0  # noqa: B018
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (20, 40)
    assert await _counts(pool, nonce) == []
    assert await _audited(pool) == 0


async def test_a_request_that_does_no_work_still_spends_its_nonce(
    pool: catalog_store.Pool, tenant: Tenant
) -> None:
    nonce = _nonce(tenant)
    async with catalog_store.request_transaction(
        pool, nonce=nonce, store_id=tenant.store_id, request_id=uuid.uuid4()
    ):
        pass
    assert await _counts(pool, nonce) == [True]
    with pytest.raises(catalog_store.Replayed):
        async with catalog_store.request_transaction(
            pool, nonce=nonce, store_id=tenant.store_id, request_id=uuid.uuid4()
        ) as tx:
            await catalog_store.delete_products(
                tx, plan=catalog_store.plan_deletion(tenant.ids[:1], [])
            )
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (20, 40)
