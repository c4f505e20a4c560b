"""Replay records: kept past the window's edge by the gateway's own clock, and written for
every request whose signature verified, refused or not, without counting the refusals."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import psycopg
import pytest

import catalog_store
import signing
from gateway.auth import REPLAY_RECORD_MARGIN_MS
from gateway.envelope import wall_clock_ms
from gateway.settings import Settings
from tests.support import (
    DELETIONS,
    NOW_MS,
    FakeClock,
    Tenant,
    assert_error,
    body_of,
    delete,
    gateway_client,
    signed_headers,
)

pytestmark = pytest.mark.anyio


async def _records(pool: catalog_store.Pool) -> list[bytes]:
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute("SELECT signature FROM replay_nonces ORDER BY signature")
        return [bytes(row[0]) for row in await cur.fetchall()]


async def _a_purge_ran(pool: catalog_store.Pool, tenant: Tenant) -> None:
    """Wait for one purge after now: a record that every clock sees expired is gone."""
    async with catalog_store.connection(pool) as conn:
        await conn.execute(
            "INSERT INTO replay_nonces (partner_id, signature, expires_at)"
            " VALUES (%s, '\\x00', to_timestamp(0))",
            (tenant.partner_id,),
        )
    with anyio.fail_after(10):
        while b"\x00" in await _records(pool):
            await anyio.sleep(0.02)


async def test_a_replay_at_the_edge_of_the_window_after_a_purge_is_auth_006(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
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
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (19, 38)


async def test_the_purge_keeps_a_record_until_the_window_and_margin_pass_by_its_clock(
    pool: catalog_store.Pool, tenant: Tenant
) -> None:
    """Whatever the database's clock says: the caller's clock decides."""
    stamp = 1_000_000_000_000  # 2001: long past by the database's clock
    expires = stamp + signing.WINDOW_MS + REPLAY_RECORD_MARGIN_MS
    await catalog_store.accept_nonce(
        pool, catalog_store.Nonce(tenant.partner_id, b"\x01", expires, stamp)
    )
    assert await catalog_store.purge_expired_nonces(pool, now_ms=stamp + signing.WINDOW_MS) == 0
    assert await catalog_store.purge_expired_nonces(pool, now_ms=expires) == 0
    assert await catalog_store.purge_expired_nonces(pool, now_ms=expires + 1) == 1
    assert await _records(pool) == []


# --- issue 13, item 6: a request whose signature verified is spent whatever its answer ---


@dataclass(frozen=True)
class Signed:
    """One signed request, exactly as it will be sent twice."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes


def _signed(
    tenant: Tenant,
    ts: int,
    *,
    payload: Any = None,
    raw: bytes | None = None,
    key: str | None = None,
    batch: str | None = None,
    query: str = "",
) -> Signed:
    if batch is not None:
        path = f"{DELETIONS}/{batch}"
        headers = signed_headers(tenant, method="GET", path=path, query=query, timestamp=ts)
        url = path + (f"?{query}" if query else "")
        return Signed("GET", url, list(headers.items()), b"")
    body = raw if raw is not None else body_of(payload)
    headers = signed_headers(tenant, body=body, timestamp=ts)
    extra = [] if key is None else [("idempotency-key", key)]
    return Signed("POST", DELETIONS, list(headers.items()) + extra, body)


async def _send(client: httpx.AsyncClient, request: Signed) -> httpx.Response:
    return await client.request(
        request.method, request.url, content=request.body, headers=request.headers
    )


async def _counted(pool: catalog_store.Pool) -> list[bool]:
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute("SELECT counts FROM replay_nonces ORDER BY accepted_at")
        return [row[0] for row in await cur.fetchall()]


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("not json", "VAL_001"),
        ("no entries", "VAL_001"),
        ("bad idempotency-key", "VAL_001"),
        ("idempotency-key with another body", "IDEM_001"),
        ("unknown batch", "BAT_001"),
        ("bad cursor", "VAL_001"),
        ("bad limit", "VAL_001"),
    ],
)
async def test_a_refused_request_sent_again_is_auth_006_and_its_record_does_not_count(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant, case: str, code: str
) -> None:
    requests = {
        "not json": _signed(tenant, NOW_MS + 1, raw=b"{not json"),
        "no entries": _signed(tenant, NOW_MS + 1, payload={"ids": []}),
        "bad idempotency-key": _signed(tenant, NOW_MS + 1, payload={"ids": ["x"]}, key="k" * 256),
        "idempotency-key with another body": _signed(
            tenant, NOW_MS + 1, payload={"ids": tenant.ids[1:2]}, key="k1"
        ),
        "unknown batch": _signed(tenant, NOW_MS + 1, batch=str(uuid.uuid4())),
        "bad cursor": _signed(tenant, NOW_MS + 1, batch=str(uuid.uuid4()), query="cursor=e30"),
        "bad limit": _signed(tenant, NOW_MS + 1, batch=str(uuid.uuid4()), query="limit=0"),
    }
    async with gateway_client(database_url) as client:
        first = await _send(client, _signed(tenant, NOW_MS, payload={"ids": ["x"]}, key="k1"))
        assert first.status_code == 200, first.text
        refused = await _send(client, requests[case])
        again = await _send(client, requests[case])
    assert refused.json()["error"]["code"] == code, refused.text
    assert_error(again, 401, "AUTH_006", "Replayed request")
    assert await _counted(pool) == [True, False]  # the refusal is spent but does not count
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (20, 40)


async def test_a_request_refused_idem_002_sent_again_is_auth_006(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    """The key's first request still runs (its lock held here): IDEM_002; once it finished,
    the very same signed request is AUTH_006, never a run or the first's answer."""
    request = _signed(tenant, NOW_MS, payload={"ids": tenant.ids[:1]}, key="busy")
    lock = f"idempotency/{tenant.partner_id}/{tenant.store_id}/busy"
    async with gateway_client(database_url) as client:
        async with await psycopg.AsyncConnection.connect(database_url) as holder:
            await holder.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (lock,))
            refused = await _send(client, request)
        again = await _send(client, request)
    assert refused.json()["error"]["code"] == "IDEM_002", refused.text
    assert_error(again, 401, "AUTH_006", "Replayed request")
    assert await _counted(pool) == [False]
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (20, 40)


async def test_a_request_refused_for_the_request_rate_is_spent_and_counts_nothing(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    """RATE_001, then the window drains: the refused request sent again is AUTH_006, and the
    refusals did not take the partner's budget (a new request is accepted)."""
    settings = Settings(pool_min=1, pool_max=2, rate_limit_requests=1, rate_limit_window=1)
    limited = _signed(tenant, NOW_MS + 1, payload={"ids": tenant.ids[1:2]})
    read = _signed(tenant, NOW_MS + 2, batch=str(uuid.uuid4()))
    clock = FakeClock()  # the gateway's clock decides the rate
    async with gateway_client(database_url, clock, settings=settings) as client:
        assert (await _send(client, _signed(tenant, NOW_MS, payload={"ids": ["x"]}))).is_success
        refused = await _send(client, limited)
        refused_read = await _send(client, read)  # BAT_001 is decided before the count
        clock.now_ms += 1_100
        again = await _send(client, limited)
        fresh = await _send(client, _signed(tenant, NOW_MS + 3, payload={"ids": ["y"]}))
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "RATE_001"
    assert refused_read.json()["error"]["code"] == "BAT_001"
    assert_error(again, 401, "AUTH_006", "Replayed request")
    assert fresh.status_code == 200, fresh.text
    assert await _counted(pool) == [True, False, False, True]
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (20, 40)


async def test_a_status_read_refused_for_the_request_rate_is_spent(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    settings = Settings(pool_min=1, pool_max=2, rate_limit_requests=1, rate_limit_window=1)
    async with gateway_client(database_url, settings=settings) as client:
        accepted = await _send(
            client, _signed(tenant, NOW_MS, payload={"ids": ["x"], "dispatch": True})
        )
        read = _signed(tenant, NOW_MS + 1, batch=accepted.json()["data"]["batchId"])
        refused = await _send(client, read)
        await anyio.sleep(1.1)
        again = await _send(client, read)
    assert refused.status_code == 429, refused.text
    assert_error(again, 401, "AUTH_006", "Replayed request")
    assert await _counted(pool) == [True, False]


async def test_a_dispatch_refused_for_open_batches_is_auth_006_after_they_drain(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    """The tester's case: a dispatch refused with 429, captured and sent again once the
    partner's batches finished, was accepted with 202."""
    settings = Settings(pool_min=1, pool_max=2, rate_limit_batches=1)
    captured = _signed(tenant, NOW_MS + 1, payload={"ids": tenant.ids[1:2], "dispatch": True})
    async with gateway_client(database_url, settings=settings) as client:
        first = await _send(
            client, _signed(tenant, NOW_MS, payload={"ids": tenant.ids[:1], "dispatch": True})
        )
        refused = await _send(client, captured)
        batch_id = uuid.UUID(first.json()["data"]["batchId"])
        while await catalog_store.process_next_chunk(
            pool, store_id=tenant.store_id, batch_id=batch_id
        ):
            pass
        again = await _send(client, captured)
    assert first.status_code == 202, first.text
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "RATE_001"
    assert_error(again, 401, "AUTH_006", "Replayed request")
    assert await _counted(pool) == [True, False]
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute("SELECT count(*) FROM deletion_batches")
        assert await cur.fetchone() == (1,)
