"""Replay records: kept past the window's edge by the gateway's own clock (issue 13, item 2)."""

from __future__ import annotations

import anyio
import pytest

import catalog_store as store
import signing
from gateway.auth import REPLAY_RECORD_MARGIN_MS
from gateway.envelope import wall_clock_ms
from gateway.settings import Settings
from tests.support import FakeClock, Tenant, assert_error, delete, gateway_client

pytestmark = pytest.mark.anyio


async def _records(pool: store.Pool) -> list[bytes]:
    async with store.connection(pool) as conn:
        cur = await conn.execute("SELECT signature FROM replay_nonces ORDER BY signature")
        return [bytes(row[0]) for row in await cur.fetchall()]


async def _a_purge_ran(pool: store.Pool, tenant: Tenant) -> None:
    """Wait for one purge after now: a record that every clock sees expired is gone."""
    async with store.connection(pool) as conn:
        await conn.execute(
            "INSERT INTO replay_nonces (partner_id, signature, expires_at)"
            " VALUES (%s, '\\x00', to_timestamp(0))",
            (tenant.partner_id,),
        )
    with anyio.fail_after(10):
        while b"\x00" in await _records(pool):
            await anyio.sleep(0.02)


async def test_a_replay_at_the_edge_of_the_window_after_a_purge_is_auth_006(
    database_url: str, pool: store.Pool, tenant: Tenant
) -> None:
    """The replay arrives at the last instant its timestamp passes the window, and a purge runs
    before it writes its record: the first request's record is still there, so AUTH_006. The
    timestamp is old enough that the database's own clock already sees it past the window."""
    sent = wall_clock_ms() - signing.WINDOW_MS - 1_000
    clock = FakeClock(sent)
    settings = Settings(pool_min=1, pool_max=2, nonce_purge_interval=0.05)
    async with gateway_client(database_url, clock, settings=settings) as client:
        first = await delete(client, tenant, {"ids": tenant.ids[:1]}, timestamp=sent)
        assert first.status_code == 200, first.text
        clock.now_ms = sent + signing.WINDOW_MS  # |now - x-timestamp| = 300 s: still inside
        await _a_purge_ran(pool, tenant)
        replay = await delete(client, tenant, {"ids": tenant.ids[:1]}, timestamp=sent)
        assert_error(replay, 401, "AUTH_006", "Replayed request")
        assert len(await _records(pool)) == 1
        # Past the window and the margin, by the gateway's clock, the record goes.
        clock.now_ms = sent + signing.WINDOW_MS + REPLAY_RECORD_MARGIN_MS + 1
        await _a_purge_ran(pool, tenant)
        assert await _records(pool) == []
    assert await store.count_products(pool, store_id=tenant.store_id) == (19, 38)


async def test_the_purge_keeps_a_record_until_the_window_and_margin_pass_by_its_clock(
    pool: store.Pool, tenant: Tenant
) -> None:
    """Whatever the database's clock says: the caller's clock decides."""
    stamp = 1_000_000_000_000  # 2001: long past by the database's clock
    expires = stamp + signing.WINDOW_MS + REPLAY_RECORD_MARGIN_MS
    await store.accept_nonce(pool, store.Nonce(tenant.partner_id, b"\x01", expires))
    assert await store.purge_expired_nonces(pool, now_ms=stamp + signing.WINDOW_MS) == 0
    assert await store.purge_expired_nonces(pool, now_ms=expires) == 0
    assert await store.purge_expired_nonces(pool, now_ms=expires + 1) == 1
    assert await _records(pool) == []
