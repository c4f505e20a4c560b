"""The request rate limit: a hard cap however many requests of a partner run at once,
Retry-After the wait until a request fits again, refusals spent and never counted."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import catalog_store
from gateway.settings import Settings
from tests.live import serving
from tests.support import (
    DELETIONS,
    NOW_MS,
    FakeClock,
    Tenant,
    assert_error,
    body_of,
    delete,
    gateway_client,
    make_tenant,
    run_with_pool,
    signed_headers,
)

pytestmark = pytest.mark.anyio

_HINT = (
    "At most {} requests per {} seconds are accepted from one partner;"
    " retry after Retry-After seconds"
)


def _assert_rate_001(response: httpx.Response, limit: int, window: int, retry_after: int) -> None:
    assert response.headers["retry-after"] == str(retry_after)
    assert_error(
        response,
        429,
        "RATE_001",
        "Too many requests",
        hint=_HINT.format(limit, window),
        context={"limit": limit, "windowSeconds": window, "retryAfterSeconds": retry_after},
    )


async def _counted(pool: catalog_store.Pool) -> list[bool]:
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute("SELECT counts FROM replay_nonces ORDER BY accepted_at")
        return [row[0] for row in await cur.fetchall()]


def _records(database_url: str) -> list[bool]:
    return run_with_pool(database_url, _counted)


def test_the_rate_is_a_hard_cap_for_concurrent_requests_of_one_partner(
    database_url: str, tmp_path: Path
) -> None:
    """The outside tester's case, through a real serve: 80 signed dry runs from 32 threads at
    once against a limit of 50: exactly 50 answered 200 and 30 RATE_001, every one spent."""
    tenant = run_with_pool(database_url, lambda pool: make_tenant(pool, products=1))
    body = body_of({"ids": tenant.ids, "dryRun": True})
    now = int(time.time() * 1000)
    requests = [signed_headers(tenant, body=body, timestamp=now + n) for n in range(80)]
    go = threading.Event()
    with (
        serving(
            database_url,
            tmp_path,
            GATEWAY_RATE_LIMIT_REQUESTS="50",
            GATEWAY_RATE_LIMIT_WINDOW="3600",
            GATEWAY_DB_POOL_MAX="32",
        ) as server,
        httpx.Client(base_url=server.url, timeout=60, limits=httpx.Limits(max_connections=32)) as c,
    ):

        def send(headers: dict[str, str]) -> httpx.Response:
            go.wait()
            return c.post(DELETIONS, content=body, headers=headers)

        with ThreadPoolExecutor(max_workers=32) as threads:
            futures = [threads.submit(send, headers) for headers in requests]
            go.set()
            answers = [future.result() for future in futures]
        again = [c.post(DELETIONS, content=body, headers=headers) for headers in requests[::79]]
    accepted = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code != 200]
    assert (len(accepted), len(refused)) == (50, 30)
    for response in accepted:
        summary = response.json()["data"]["summary"]
        assert summary == {"total": 1, "succeeded": 1, "failed": 0, "variants": 2}
    for response in refused:
        # One request fits again every 3600 / 50 = 72 s.
        retry_after = int(response.headers["retry-after"])
        assert 1 <= retry_after <= 72
        _assert_rate_001(response, 50, 3600, retry_after)
    for response in again:
        assert_error(response, 401, "AUTH_006", "Replayed request")
    records = _records(database_url)
    assert (records.count(True), records.count(False)) == (50, 30)


async def test_retry_after_is_the_wait_until_the_next_request_fits(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    """3 per 60 s: three at once, then one every 20 s by the gateway's clock; Retry-After is
    the whole seconds until then, rounded up."""
    settings = Settings(pool_min=1, pool_max=2, rate_limit_requests=3, rate_limit_window=60)
    clock = FakeClock()
    async with gateway_client(database_url, clock, settings=settings) as client:
        for n in range(3):
            payload = {"ids": tenant.ids[n : n + 1]}
            accepted = await delete(client, tenant, payload, timestamp=NOW_MS + n)
            assert accepted.status_code == 200, accepted.text
        refused = await delete(client, tenant, {"ids": tenant.ids[3:4]}, timestamp=NOW_MS + 3)
        _assert_rate_001(refused, 3, 60, 20)
        clock.now_ms += 19_001
        almost = await delete(client, tenant, {"ids": tenant.ids[3:4]}, timestamp=NOW_MS + 4)
        _assert_rate_001(almost, 3, 60, 1)
        clock.now_ms += 999
        fits = await delete(client, tenant, {"ids": tenant.ids[3:4]}, timestamp=NOW_MS + 5)
        assert fits.status_code == 200, fits.text
        after = await delete(client, tenant, {"ids": tenant.ids[4:5]}, timestamp=NOW_MS + 6)
        _assert_rate_001(after, 3, 60, 20)
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (16, 32)
    assert await _counted(pool) == [True, True, True, False, False, True, False]


async def test_refused_requests_never_count_toward_the_rate(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    """2 per 10 s (one back every 5 s): after the limit, RATE_001, VAL_001 and BAT_001
    refusals; 5 s later exactly one request fits, as if none of them had been sent."""
    settings = Settings(pool_min=1, pool_max=2, rate_limit_requests=2, rate_limit_window=10)
    clock = FakeClock()
    batch_path = f"{DELETIONS}/{uuid.uuid4()}"
    async with gateway_client(database_url, clock, settings=settings) as client:
        for n in range(2):
            accepted = await delete(client, tenant, {"ids": [tenant.ids[n]]}, timestamp=NOW_MS + n)
            assert accepted.status_code == 200, accepted.text
        for n in range(2, 7):
            refused = await delete(client, tenant, {"ids": [tenant.ids[n]]}, timestamp=NOW_MS + n)
            _assert_rate_001(refused, 2, 10, 5)
        invalid = await delete(client, tenant, {"ids": []}, timestamp=NOW_MS + 7)
        assert invalid.json()["error"]["code"] == "VAL_001"
        unknown = await client.get(
            batch_path,
            headers=signed_headers(tenant, method="GET", path=batch_path, timestamp=NOW_MS + 8),
        )
        assert unknown.json()["error"]["code"] == "BAT_001"
        clock.now_ms += 5_000
        fits = await delete(client, tenant, {"ids": [tenant.ids[9]]}, timestamp=NOW_MS + 9)
        assert fits.status_code == 200, fits.text
        full = await delete(client, tenant, {"ids": [tenant.ids[10]]}, timestamp=NOW_MS + 10)
        _assert_rate_001(full, 2, 10, 5)
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (17, 34)
    assert await _counted(pool) == [True, True] + [False] * 7 + [True, False]


async def test_a_replayed_signature_is_auth_006_over_the_limit_too(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    """Over the limit, a request already accepted, and one already refused, sent again are
    AUTH_006 (replay wins over the rate), and neither takes the partner's allowance."""
    settings = Settings(pool_min=1, pool_max=2, rate_limit_requests=1, rate_limit_window=10)
    clock = FakeClock()
    async with gateway_client(database_url, clock, settings=settings) as client:
        first = await delete(client, tenant, {"ids": tenant.ids[:1]}, timestamp=NOW_MS)
        assert first.status_code == 200, first.text
        refused = await delete(client, tenant, {"ids": tenant.ids[1:2]}, timestamp=NOW_MS + 1)
        _assert_rate_001(refused, 1, 10, 10)
        assert_error(
            await delete(client, tenant, {"ids": tenant.ids[:1]}, timestamp=NOW_MS),
            401,
            "AUTH_006",
            "Replayed request",
        )
        clock.now_ms += 10_000
        assert_error(
            await delete(client, tenant, {"ids": tenant.ids[1:2]}, timestamp=NOW_MS + 1),
            401,
            "AUTH_006",
            "Replayed request",
        )
        fresh = await delete(client, tenant, {"ids": tenant.ids[1:2]}, timestamp=NOW_MS + 2)
        assert fresh.status_code == 200, fresh.text
    assert await _counted(pool) == [True, False, True]
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (18, 36)


async def _dispatch(client: httpx.AsyncClient, tenant: Tenant, n: int, **headers: str) -> Any:
    body = body_of({"ids": tenant.ids[n : n + 1], "dispatch": True})
    signed = signed_headers(tenant, body=body, timestamp=NOW_MS + n)
    return await client.post(DELETIONS, content=body, headers={**signed, **headers})


async def test_dispatched_batches_take_the_same_allowance(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    """A dispatch counts like any request; over the limit it is RATE_001, with or without an
    idempotency-key, and no batch is stored; the refusal is spent."""
    settings = Settings(pool_min=1, pool_max=2, rate_limit_requests=2, rate_limit_window=10)
    async with gateway_client(database_url, settings=settings) as client:
        assert (await _dispatch(client, tenant, 0)).status_code == 202
        assert (await _dispatch(client, tenant, 1, **{"idempotency-key": "k1"})).status_code == 202
        _assert_rate_001(await _dispatch(client, tenant, 2), 2, 10, 5)
        _assert_rate_001(await _dispatch(client, tenant, 3, **{"idempotency-key": "k2"}), 2, 10, 5)
        assert_error(await _dispatch(client, tenant, 3), 401, "AUTH_006", "Replayed request")
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute("SELECT count(*) FROM deletion_batches")
        assert await cur.fetchone() == (2,)
    assert await _counted(pool) == [True, True, False, False]


@pytest.mark.parametrize("idempotent", [False, True])
async def test_concurrent_deletions_never_pass_the_limit(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant, idempotent: bool
) -> None:
    """Both ways a deletion is stored (one statement, or a transaction with its key): 20 at
    once against a limit of 7, from a pool of 8 connections: exactly 7 delete."""
    settings = Settings(pool_min=8, pool_max=8, rate_limit_requests=7, rate_limit_window=60)
    answers: list[httpx.Response] = []
    async with gateway_client(database_url, settings=settings) as client:

        async def one(n: int) -> None:
            body = body_of({"ids": tenant.ids[n : n + 1]})
            headers = signed_headers(tenant, body=body, timestamp=NOW_MS + n)
            if idempotent:
                headers["idempotency-key"] = f"key-{n}"
            answers.append(await client.post(DELETIONS, content=body, headers=headers))

        async with anyio.create_task_group() as group:
            for n in range(20):
                group.start_soon(one, n)
    assert sorted(r.status_code for r in answers) == [200] * 7 + [429] * 13
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (13, 26)
    assert sorted(await _counted(pool)) == [False] * 13 + [True] * 7


async def test_the_upkeep_purges_allowances_whose_moment_passed(
    pool: catalog_store.Pool, tenant: Tenant
) -> None:
    """By the caller's clock: an allowance spent until t is kept until t, then purged."""
    rate = catalog_store.RateLimit(2, 10)
    expires = NOW_MS + 600_000
    await catalog_store.accept_nonce(
        pool, catalog_store.Nonce(tenant.partner_id, b"\x01", expires, NOW_MS), rate
    )

    async def allowances() -> list[Any]:
        async with catalog_store.connection(pool) as conn:
            cur = await conn.execute("SELECT partner_id, spent_until_ms FROM rate_allowances")
            return list(await cur.fetchall())

    assert await allowances() == [(tenant.partner_id, NOW_MS + 5_000)]
    assert await catalog_store.purge_expired_nonces(pool, now_ms=NOW_MS + 5_000) == 0
    assert len(await allowances()) == 1
    assert await catalog_store.purge_expired_nonces(pool, now_ms=NOW_MS + 5_001) == 0
    assert await allowances() == []
