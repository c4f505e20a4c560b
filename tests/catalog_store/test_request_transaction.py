"""A request's transaction: the caller reads the key's earlier answer and hands over the bytes to
keep; the store keeps them with the work, never renders, and spends what it refuses."""

from __future__ import annotations

import hashlib
import secrets
import uuid

import pytest

import catalog_store as store
from tests.support import NOW_MS, Tenant

pytestmark = pytest.mark.anyio


def _nonce(tenant: Tenant) -> store.Nonce:
    return store.Nonce(tenant.partner_id, secrets.token_bytes(32), 4_000_000_000_000, NOW_MS)


def _key(value: str, body: bytes) -> store.IdempotencyKey:
    return store.IdempotencyKey(value, hashlib.sha256(body).digest())


async def _audited(pool: store.Pool) -> int:
    async with store.connection(pool) as conn:
        cur = await conn.execute("SELECT count(*) FROM deletion_audit")
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _counts(pool: store.Pool, nonce: store.Nonce) -> list[bool]:
    async with store.connection(pool) as conn:
        cur = await conn.execute(
            "SELECT counts FROM replay_nonces WHERE signature = %s", (nonce.signature,)
        )
        return [row[0] for row in await cur.fetchall()]


async def test_a_key_keeps_the_bytes_it_was_given_and_a_retry_reads_them_before_any_work(
    pool: store.Pool, tenant: Tenant
) -> None:
    plan = store.plan_deletion(tenant.ids[:2], [])
    first = uuid.uuid4()
    async with store.request_transaction(
        pool,
        nonce=_nonce(tenant),
        store_id=tenant.store_id,
        request_id=first,
        key=_key("k1", b"body"),
    ) as tx:
        assert tx.answered_before is None
        outcome = await store.delete_products(tx, plan=plan)
        await tx.keep(299, b"\x00 not JSON, kept as given")
    assert len(outcome.deleted) == 2
    async with store.request_transaction(
        pool,
        nonce=_nonce(tenant),
        store_id=tenant.store_id,
        request_id=uuid.uuid4(),
        key=_key("k1", b"body"),
    ) as tx:
        assert tx.answered_before == store.KeptAnswer(299, b"\x00 not JSON, kept as given", first)
        with pytest.raises(RuntimeError):
            await store.delete_products(tx, plan=plan)
    assert await _audited(pool) == 1


async def test_a_key_with_another_body_is_refused_and_its_nonce_spent_without_counting(
    pool: store.Pool, tenant: Tenant
) -> None:
    async with store.request_transaction(
        pool,
        nonce=_nonce(tenant),
        store_id=tenant.store_id,
        request_id=uuid.uuid4(),
        key=_key("k2", b"one"),
    ) as tx:
        await store.preview_deletion(tx, plan=store.plan_deletion(tenant.ids[:1], []))
        await tx.keep(200, b"{}")
    other = _nonce(tenant)
    with pytest.raises(store.IdempotencyMismatch):
        async with store.request_transaction(
            pool,
            nonce=other,
            store_id=tenant.store_id,
            request_id=uuid.uuid4(),
            key=_key("k2", b"two"),
        ):
            raise AssertionError("the block never runs for a refused key")
    assert await _counts(pool, other) == [False]


async def test_an_error_in_the_block_rolls_back_the_work_the_answer_and_the_nonce(
    pool: store.Pool, tenant: Tenant
) -> None:
    nonce = _nonce(tenant)
    with pytest.raises(ZeroDivisionError):
        async with store.request_transaction(
            pool,
            nonce=nonce,
            store_id=tenant.store_id,
            request_id=uuid.uuid4(),
            key=_key("k3", b"body"),
        ) as tx:
            await store.delete_products(tx, plan=store.plan_deletion(tenant.ids[:3], []))
            await tx.keep(200, b"{}")
            1 / 0  # noqa: B018
    assert await store.count_products(pool, store_id=tenant.store_id) == (20, 40)
    assert await _counts(pool, nonce) == []
    assert await _audited(pool) == 0


async def test_a_request_that_does_no_work_still_spends_its_nonce(
    pool: store.Pool, tenant: Tenant
) -> None:
    nonce = _nonce(tenant)
    async with store.request_transaction(
        pool, nonce=nonce, store_id=tenant.store_id, request_id=uuid.uuid4()
    ):
        pass
    assert await _counts(pool, nonce) == [True]
    with pytest.raises(store.Replayed):
        async with store.request_transaction(
            pool, nonce=nonce, store_id=tenant.store_id, request_id=uuid.uuid4()
        ) as tx:
            await store.delete_products(tx, plan=store.plan_deletion(tenant.ids[:1], []))
    assert await store.count_products(pool, store_id=tenant.store_id) == (20, 40)
