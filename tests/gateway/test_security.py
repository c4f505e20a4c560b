"""Security: rotation overlap, revocation within the cache bound on every process, even work for
every failing signature, header limits, per-partner limits across processes, and silent logs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import pytest
import structlog

import catalog_store
import signing
import signing.canonical
from gateway.credentials import CredentialCache
from gateway.settings import Settings
from tests.support import (
    DELETIONS,
    NOW_MS,
    TEST_BOX,
    Tenant,
    assert_error,
    body_of,
    delete,
    gateway_app,
    gateway_client,
    make_tenant,
    product_count,
    signed_headers,
)

pytestmark = pytest.mark.anyio


@dataclass
class Ticks:
    """A monotonic clock for the credentials cache that the test moves by hand."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


async def _delete_signed_with(
    client: httpx.AsyncClient, tenant: Tenant, secret: str, ids: list[str], timestamp: int
) -> httpx.Response:
    body = body_of({"ids": ids})
    headers = signed_headers(tenant, body=body, timestamp=timestamp, secret=secret)
    return await client.post(DELETIONS, content=body, headers=headers)


async def test_during_rotation_both_secrets_verify_and_after_retire_only_the_new(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    new = await catalog_store.rotate_secret(
        pool, partner_client_id=tenant.partner_client_id, box=TEST_BOX
    )
    uncached = Settings(pool_min=1, pool_max=2, auth_cache_seconds=0)
    async with gateway_client(database_url, settings=uncached) as client:
        old_ok = await _delete_signed_with(client, tenant, tenant.secret, tenant.ids[:1], NOW_MS)
        new_ok = await _delete_signed_with(client, tenant, new.secret, tenant.ids[1:2], NOW_MS + 1)
        assert (old_ok.status_code, new_ok.status_code) == (200, 200)
        await catalog_store.retire_secret(
            pool, partner_client_id=tenant.partner_client_id, key_id="k1"
        )
        old = await _delete_signed_with(client, tenant, tenant.secret, tenant.ids[2:3], NOW_MS + 2)
        assert_error(old, 401, "AUTH_002", "Invalid signature")
        again = await _delete_signed_with(client, tenant, new.secret, tenant.ids[2:3], NOW_MS + 3)
        assert again.status_code == 200
    assert await product_count(pool, tenant) == (17, 34)


@pytest.mark.parametrize("change", ["token revoke", "partner disable", "retire-secret"])
async def test_a_revocation_reaches_every_process_within_the_cache_bound(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant, change: str
) -> None:
    """Two gateway processes (apps with their own pools and caches) on one database: each keeps
    accepting for at most GATEWAY_AUTH_CACHE_SECONDS after the change, then refuses."""
    ticks = Ticks()
    settings = Settings(pool_min=1, pool_max=2, auth_cache_seconds=2.0)
    signer = tenant.secret
    if change == "retire-secret":
        await catalog_store.rotate_secret(
            pool, partner_client_id=tenant.partner_client_id, box=TEST_BOX
        )
    async with (
        gateway_client(database_url, settings=settings, cache_clock=ticks) as one,
        gateway_client(database_url, settings=settings, cache_clock=ticks) as two,
    ):
        ids = iter(tenant.ids)
        stamp = iter(range(NOW_MS, NOW_MS + 100))
        for client in (one, two):  # both caches now hold the credentials
            response = await _delete_signed_with(client, tenant, signer, [next(ids)], next(stamp))
            assert response.status_code == 200
        if change == "token revoke":
            assert await catalog_store.revoke_token(pool, token=tenant.token)
        elif change == "partner disable":
            await catalog_store.set_partner_active(
                pool, partner_client_id=tenant.partner_client_id, active=False
            )
        else:
            await catalog_store.retire_secret(pool, partner_client_id=tenant.partner_client_id)
        ticks.now += 1.999  # still inside the bound: the cached entry is used
        for client in (one, two):
            response = await _delete_signed_with(client, tenant, signer, [next(ids)], next(stamp))
            assert response.status_code == 200
        ticks.now += 0.001  # the bound reached: both processes read the database again
        for client in (one, two):
            before = await product_count(pool, tenant)
            response = await _delete_signed_with(client, tenant, signer, [next(ids)], next(stamp))
            if change == "token revoke":
                assert_error(
                    response, 403, "AUTH_005", "Store token not valid for this partner and store"
                )
            elif change == "partner disable":
                assert_error(response, 401, "AUTH_004", "Unknown or inactive partner")
            else:
                assert_error(response, 401, "AUTH_002", "Invalid signature")
            assert await product_count(pool, tenant) == before


async def test_with_the_cache_off_a_revocation_takes_effect_at_once(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    settings = Settings(pool_min=1, pool_max=2, auth_cache_seconds=0)
    async with gateway_client(database_url, settings=settings) as client:
        assert (await delete(client, tenant, {"ids": tenant.ids[:1]})).status_code == 200
        await catalog_store.revoke_token(pool, token=tenant.token)
        response = await delete(client, tenant, {"ids": tenant.ids[1:2]}, timestamp=NOW_MS + 1)
    assert_error(response, 403, "AUTH_005", "Store token not valid for this partner and store")


async def test_every_failing_signature_of_a_known_partner_costs_the_same_hmac_work(
    database_url: str, pool: catalog_store.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A known partner's valid signature costs exactly two HMACs (the most secrets a partner
    has), one secret or two. Every failing one costs the same fixed number, equal among
    failures: 2 + 2 x 12 = 26 (each usual mistake recomputed with each key), whatever the
    secrets, the mistake, whether it is recognised, or the body's size. An unknown or disabled
    partner is AUTH_004 before any HMAC, and before its body is read."""
    one = await make_tenant(pool, products=5, name="one")
    two = await make_tenant(pool, products=5, name="two")
    newer = await catalog_store.rotate_secret(
        pool, partner_client_id=two.partner_client_id, box=TEST_BOX
    )
    off = await make_tenant(pool, products=5, name="off")
    await catalog_store.set_partner_active(
        pool, partner_client_id=off.partner_client_id, active=False
    )
    ghost = Tenant(0, "9" * 22, "psk_" + "0" * 48, 0, one.store_client_id, one.token)
    hmacs: list[str] = []
    real_sign = signing.canonical.sign

    def counting_sign(key: str | bytes, message: str) -> str:
        hmacs.append(message)
        return real_sign(key, message)

    monkeypatch.setattr(signing.canonical, "sign", counting_sign)
    failing = 2 + 2 * signing.HMACS_PER_KEY
    assert failing == 26
    big = {"externalIds": ["x" * 200] * 400}  # over 64 KiB: no body mistakes looked for
    removed = "body-newline-removed"
    cases: list[tuple[Tenant, str, dict[str, Any], bytes, int, int, str | None]] = [
        (one, one.secret, {}, b"", 200, 2, None),
        (two, two.secret, {}, b"", 200, 2, None),
        (two, newer.secret, {}, b"", 200, 2, None),
        (one, "psk_wrong", {}, b"", 401, failing, None),
        (two, "psk_wrong", {}, b"", 401, failing, None),
        (one, one.secret, {}, b" ", 401, failing, None),  # the body changed after signing
        (two, newer.secret, {}, b"\n", 401, failing, removed),  # a mistake, the newer secret
        (two, two.secret, {}, b"\n", 401, failing, removed),  # the same, the older secret
        (one, one.secret, big, b"\n", 401, failing, None),  # too large to be named
        (ghost, ghost.secret, {}, b"", 401, 0, None),
        (off, off.secret, {}, b"", 401, 0, None),
    ]
    work = []
    pulled = 0
    async with gateway_client(database_url) as client:
        for n, (tenant, secret, payload, tail, status, hmac_count, cause) in enumerate(cases):
            ids = tenant.ids[n % 3 : n % 3 + 1] or [str(uuid.uuid4())]
            body = body_of(payload or {"ids": ids})
            headers = signed_headers(tenant, body=body, timestamp=NOW_MS + n, secret=secret)

            async def stream(sent: bytes = body + tail) -> Any:
                nonlocal pulled
                pulled += 1
                yield sent

            hmacs.clear()  # count only the server's work, not the test's own signing
            pulled = 0
            response = await client.post(DELETIONS, content=stream(), headers=headers)
            assert response.status_code == status, response.text
            work.append((len(hmacs), pulled))
            assert len(hmacs) == hmac_count, (n, response.text)
            if hmac_count == failing:
                assert response.json()["error"]["details"]["context"]["likelyCause"] == cause
    assert work == [(2, 1)] * 3 + [(failing, 1)] * 6 + [(0, 0)] * 2


async def test_an_oversized_header_of_any_name_is_auth_001(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    body = body_of({"ids": tenant.ids[:1]})
    headers = signed_headers(tenant, body=body)
    headers["x-padding"] = "a" * 8193
    async with gateway_client(database_url) as client:
        response = await client.post(DELETIONS, content=body, headers=headers)
        hint_ok = await client.post(
            DELETIONS, content=body, headers={**headers, "x-padding": "a" * 8192}
        )
    assert_error(
        response,
        401,
        "AUTH_001",
        "Missing or malformed authentication headers",
        context={
            "missingHeaders": [],
            "invalidHeaders": ["x-padding"],
            "headerErrors": {"x-padding": "is longer than 8192 bytes"},
        },
    )
    assert hint_ok.status_code == 200
    assert await product_count(pool, tenant) == (19, 38)


async def test_the_request_rate_is_limited_per_partner_across_processes(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    other = await make_tenant(pool, products=2, name="other")
    settings = Settings(pool_min=1, pool_max=2, rate_limit_requests=3, rate_limit_window=60)
    async with (
        gateway_client(database_url, settings=settings) as one,
        gateway_client(database_url, settings=settings) as two,
    ):
        accepted = [
            await delete(one, tenant, {"ids": tenant.ids[0:1]}, timestamp=NOW_MS),
            await delete(two, tenant, {"ids": tenant.ids[1:2]}, timestamp=NOW_MS + 1),
            await delete(one, tenant, {"ids": tenant.ids[2:3]}, timestamp=NOW_MS + 2),
        ]
        assert [r.status_code for r in accepted] == [200, 200, 200]
        limited = await delete(two, tenant, {"ids": tenant.ids[3:4]}, timestamp=NOW_MS + 3)
        retry_after = int(limited.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert_error(
            limited,
            429,
            "RATE_001",
            "Too many requests",
            hint="At most 3 requests per 60 seconds are accepted from one partner;"
            " retry after Retry-After seconds",
            context={"limit": 3, "windowSeconds": 60, "retryAfterSeconds": retry_after},
        )
        # A replay is still told it is a replay, and another partner is not slowed down.
        replay = await delete(one, tenant, {"ids": tenant.ids[0:1]}, timestamp=NOW_MS)
        assert_error(replay, 401, "AUTH_006", "Replayed request")
        assert (await delete(one, other, {"ids": other.ids[:1]})).status_code == 200
        path = f"{DELETIONS}/{uuid.uuid4()}"
        read = await one.get(
            path, headers=signed_headers(tenant, method="GET", path=path, timestamp=NOW_MS + 4)
        )
        assert read.status_code == 404  # a read answered BAT_001 records nothing, counts nothing
    assert await product_count(pool, tenant) == (17, 34)


async def test_concurrent_batches_are_limited_per_partner_across_processes(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    settings = Settings(pool_min=1, pool_max=2, rate_limit_batches=1)
    async with (
        gateway_client(database_url, settings=settings) as one,
        gateway_client(database_url, settings=settings) as two,
    ):
        answers: list[httpx.Response] = []

        async def dispatch(client: httpx.AsyncClient, n: int) -> None:
            payload = {"ids": tenant.ids[n : n + 1], "dispatch": True}
            answers.append(await delete(client, tenant, payload, timestamp=NOW_MS + n))

        async with anyio.create_task_group() as group:  # at once, from two processes
            group.start_soon(dispatch, one, 0)
            group.start_soon(dispatch, two, 1)
        assert sorted(r.status_code for r in answers) == [202, 429]
        limited = next(r for r in answers if r.status_code == 429)
        assert limited.headers["retry-after"] == "5"
        assert_error(
            limited,
            429,
            "RATE_001",
            "Too many requests",
            hint="At most 1 dispatched batches of one partner may be pending or processing;"
            " wait for one to finish (read its status), then retry",
            context={"openBatchLimit": 1, "retryAfterSeconds": 5},
        )
        batch_id = uuid.UUID(
            next(r for r in answers if r.status_code == 202).json()["data"]["batchId"]
        )
        async with catalog_store.connection(pool) as conn:
            cur = await conn.execute("SELECT count(*) FROM deletion_batches")
            assert await cur.fetchone() == (1,)
        while await catalog_store.process_next_chunk(
            pool, store_id=tenant.store_id, batch_id=batch_id
        ):
            pass
        # The batch finished: the partner may dispatch again.
        again = await delete(
            one, tenant, {"ids": tenant.ids[5:6], "dispatch": True}, timestamp=NOW_MS + 5
        )
        assert again.status_code == 202


async def test_no_secret_token_or_signature_is_ever_logged(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    body = body_of({"ids": tenant.ids[:1]})
    good = signed_headers(tenant, body=body)
    bad = signed_headers(tenant, body=body, timestamp=NOW_MS + 1, secret="psk_wrong")
    with structlog.testing.capture_logs() as logs:
        async with gateway_client(database_url) as client:
            assert (await client.post(DELETIONS, content=body, headers=good)).status_code == 200
            assert (await client.post(DELETIONS, content=body, headers=bad)).status_code == 401
            assert (await client.post(DELETIONS, content=body, headers=good)).status_code == 401
    text = repr(logs)
    assert len(logs) >= 3
    for secret in (tenant.secret, tenant.token, good["x-signature"], bad["x-signature"]):
        assert secret not in text
    codes: list[Any] = [entry.get("code") for entry in logs if entry.get("event") == "request"]
    assert codes == [None, "AUTH_002", "AUTH_006"]


async def test_the_cache_stays_bounded_whatever_ids_are_made_up(pool: catalog_store.Pool) -> None:
    ticks = Ticks()
    cache = CredentialCache(pool, TEST_BOX, ttl=2.0, clock=ticks, max_entries=4)
    for n in range(10):
        record = await cache.lookup(
            partner_client_id=f"made-up-{n}", store_client_id="s", store_token="t"
        )
        assert record.partner_id is None and record.secrets == ()
        assert 1 <= len(cache) <= 4
    assert len(cache) == 4
    ticks.now += 2.0  # every entry expired: the next one to come finds them all dropped
    await cache.lookup(partner_client_id="late", store_client_id="s", store_token="t")
    assert len(cache) == 1


async def test_a_secret_the_server_key_cannot_open_is_sys_001_and_leaks_nothing(
    database_url: str, tenant: Tenant
) -> None:
    """Another GATEWAY_SECRET_KEY than the one that sealed the secrets: the operator's fault,
    answered as a temporary outage with nothing changed, never as the partner's."""
    wrong = catalog_store.SecretBox(catalog_store.parse_key(catalog_store.generate_key()))
    settings = Settings(pool_min=1, pool_max=2, retry_after_seconds=7)
    body = body_of({"ids": tenant.ids[:1]})
    with structlog.testing.capture_logs() as logs:
        async with gateway_app(database_url, settings=settings, secret_box=wrong) as (_, client):
            response = await client.post(
                DELETIONS, content=body, headers=signed_headers(tenant, body=body)
            )
    assert response.headers["retry-after"] == "7"  # GATEWAY_RETRY_AFTER, as for any SYS_001
    assert_error(
        response,
        503,
        "SYS_001",
        "Service temporarily unavailable",
        hint="The gateway cannot read its credentials; nothing was changed."
        " Retry after Retry-After seconds, or tell the gateway operator",
        context={"outcome": "unchanged"},
    )
    assert {
        "event": "partner secret does not open",
        "partner_id": tenant.partner_id,
        "key_id": "k1",
        "log_level": "error",
    } in logs
    assert tenant.secret not in repr(logs)
