"""Credentials: tokens kept only as hashes; one lookup reads all that authentication needs."""

from __future__ import annotations

import hashlib

import pytest

import catalog_store
from tests.support import TEST_BOX, make_tenant

pytestmark = pytest.mark.anyio


async def test_store_tokens_are_stored_only_as_hashes(pool: catalog_store.Pool) -> None:
    tenant = await make_tenant(pool)
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute("SELECT token_hash, scopes FROM store_tokens")
        rows = await cur.fetchall()
        cur = await conn.execute(
            "SELECT count(*) FROM store_tokens t WHERE strpos(t::text, %s) > 0", (tenant.token,)
        )
        assert await cur.fetchone() == (0,)
    assert rows == [
        (hashlib.sha256(tenant.token.encode()).digest(), ["products:delete", "batches:read"])
    ]


async def test_lookup_reads_partner_secrets_store_and_token(pool: catalog_store.Pool) -> None:
    tenant = await make_tenant(pool)
    record = await catalog_store.lookup_auth(
        pool,
        partner_client_id=tenant.partner_client_id,
        store_client_id=tenant.store_client_id,
        store_token=tenant.token,
        box=TEST_BOX,
    )
    assert record == catalog_store.AuthRecord(
        partner_id=tenant.partner_id,
        partner_active=True,
        secrets=(tenant.secret.encode(),),
        store_id=tenant.store_id,
        token_partner_id=tenant.partner_id,
        token_store_id=tenant.store_id,
        token_scopes=("products:delete", "batches:read"),
        key_ids=("k1",),
    )


async def test_lookup_of_unknown_everything_finds_nothing(pool: catalog_store.Pool) -> None:
    record = await catalog_store.lookup_auth(
        pool, partner_client_id="x", store_client_id="y", store_token="z", box=TEST_BOX
    )
    assert record == catalog_store.AuthRecord(None, False, (), None, None, None, ())


async def test_issuing_to_an_unknown_store_fails_clearly(pool: catalog_store.Pool) -> None:
    tenant = await make_tenant(pool)
    with pytest.raises(catalog_store.UnknownClient):
        await catalog_store.issue_token(
            pool, partner_client_id=tenant.partner_client_id, store_client_id="nope"
        )
    with pytest.raises(catalog_store.UnknownClient):
        await catalog_store.seed_products(pool, store_client_id="nope", count=1, variants=0)
