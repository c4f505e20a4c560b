"""The safety net over HTTP: idempotent retries (sync and dispatched), dry runs, and the archive
that every deletion writes."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import catalog_store
from gateway.settings import Settings
from tests.support import (
    DELETIONS,
    NOW_MS,
    Tenant,
    assert_error,
    body_of,
    delete,
    gateway_client,
    make_tenant,
    product_count,
    signed_headers,
)

pytestmark = pytest.mark.anyio
IDEM_001 = "Idempotency key reused with a different body"
IDEM_002 = "Request with this idempotency key still running"


async def send(
    client: httpx.AsyncClient,
    tenant: Tenant,
    payload: Any,
    *,
    key: str | None = None,
    ts: int = NOW_MS,
    raw: bytes | None = None,
) -> httpx.Response:
    """A deletion signed anew at ``ts``; the key (not signed) as its own header."""
    body = raw if raw is not None else body_of(payload)
    headers = signed_headers(tenant, body=body, timestamp=ts)
    if key is not None:
        headers["idempotency-key"] = key
    return await client.post(DELETIONS, content=body, headers=headers)


async def rows(pool: catalog_store.Pool, sql: str) -> list[tuple[Any, ...]]:
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute(sql)
        return list(await cur.fetchall())


async def test_a_retry_with_the_same_key_gets_the_first_answer_byte_for_byte(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    payload = {"ids": tenant.ids[:3] + [str(uuid.UUID(int=1))]}
    async with gateway_client(database_url) as client:
        first = await send(client, tenant, payload, key="order-42")
        # A retry is a new signed request (new timestamp, new signature) with the same key.
        retry = await send(client, tenant, payload, key="order-42", ts=NOW_MS + 1000)
    assert first.status_code == retry.status_code == 200
    assert "idempotent-replayed" not in first.headers
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.content == first.content
    assert retry.headers["x-request-id"] == first.headers["x-request-id"]
    assert retry.json()["requestId"] == first.json()["requestId"]
    assert retry.json()["data"]["summary"] == {"total": 4, "succeeded": 3, "failed": 1}
    # Ran once: one audit row, three products archived, nothing reported "not found".
    assert await product_count(pool, tenant) == (17, 34)
    assert len(await rows(pool, "SELECT 1 FROM deletion_audit")) == 1
    assert len(await rows(pool, "SELECT 1 FROM all_products WHERE deleted_at IS NOT NULL")) == 3


async def test_without_a_key_a_retry_runs_again(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    async with gateway_client(database_url) as client:
        await send(client, tenant, {"ids": tenant.ids[:1]})
        again = await send(client, tenant, {"ids": tenant.ids[:1]}, ts=NOW_MS + 1)
    assert "idempotent-replayed" not in again.headers
    assert again.json()["data"]["summary"] == {"total": 1, "succeeded": 0, "failed": 1}


async def test_the_same_key_with_another_body_is_idem_001_and_changes_nothing(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    async with gateway_client(database_url) as client:
        await send(client, tenant, {"ids": tenant.ids[:1]}, key="k")
        other = await send(client, tenant, {"ids": tenant.ids[1:2]}, key="k", ts=NOW_MS + 1)
        # The same JSON spelled with other bytes is another body too.
        spaced = await send(
            client,
            tenant,
            None,
            key="k",
            ts=NOW_MS + 2,
            raw=b'{"ids": ["%s"]}' % tenant.ids[0].encode(),
        )
        # A refused request is spent all the same: sending it again is a replay.
        again = await client.post(
            DELETIONS, content=other.request.content, headers=dict(other.request.headers)
        )
    assert_error(again, 401, "AUTH_006", "Replayed request")
    for response in (other, spaced):
        assert_error(
            response,
            409,
            "IDEM_001",
            IDEM_001,
            hint="An idempotency-key is kept for 24 hours with the exact body it was first sent"
            " with: retry with the same body, or use a new key for a new request",
            context={"idempotencyKey": "k"},
        )
    assert await product_count(pool, tenant) == (19, 38)


async def test_keys_are_scoped_to_partner_and_store(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    other = await make_tenant(pool, products=2, name="other")
    async with gateway_client(database_url) as client:
        mine = await send(client, tenant, {"ids": tenant.ids[:1]}, key="same")
        theirs = await send(client, other, {"ids": other.ids[:1]}, key="same")
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["requestId"] != mine.json()["requestId"]
    assert await product_count(pool, other) == (1, 2)


async def test_a_replayed_signature_is_auth_006_even_with_a_key(
    database_url: str, tenant: Tenant
) -> None:
    async with gateway_client(database_url) as client:
        first = await send(client, tenant, {"ids": tenant.ids[:1]}, key="k")
        replay = await client.post(
            DELETIONS, content=first.request.content, headers=dict(first.request.headers)
        )
    assert_error(replay, 401, "AUTH_006", "Replayed request")


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ([("idempotency-key", "")], "must be 1 to 255 characters; got 0"),
        ([("idempotency-key", "   ")], "must be 1 to 255 characters; got 0"),
        ([("idempotency-key", "x" * 256)], "must be 1 to 255 characters; got 256"),
        ([("idempotency-key", "caf\u00e9")], "must be printable ASCII characters (space to ~)"),
        ([("idempotency-key", "a"), ("idempotency-key", "b")], "must be sent once"),
    ],
)
async def test_a_bad_key_is_val_001_and_changes_nothing(
    database_url: str,
    pool: catalog_store.Pool,
    tenant: Tenant,
    headers: list[tuple[str, str]],
    problem: str,
) -> None:
    body = body_of({"ids": tenant.ids[:1]})
    sent = [*signed_headers(tenant, body=body).items(), *headers]
    async with gateway_client(database_url) as client:
        response = await client.post(
            DELETIONS,
            content=body,
            headers=[(k.encode(), v.encode("latin-1")) for k, v in sent],
        )
    assert_error(
        response,
        400,
        "VAL_001",
        "Validation failed",
        context={"validationErrors": {"idempotency-key": problem}},
    )
    assert await product_count(pool, tenant) == (20, 40)


async def test_a_key_of_255_characters_is_accepted(database_url: str, tenant: Tenant) -> None:
    key = "~ " + "k" * 253
    async with gateway_client(database_url) as client:
        first = await send(client, tenant, {"ids": tenant.ids[:1]}, key=key)
        retry = await send(client, tenant, {"ids": tenant.ids[:1]}, key=key, ts=NOW_MS + 1)
    assert first.status_code == 200 and retry.headers["idempotent-replayed"] == "true"
    assert retry.content == first.content


async def test_a_retry_while_the_first_runs_is_idem_002_then_gets_the_answer(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    payload = {"ids": tenant.ids[:2]}
    async with gateway_client(database_url) as client:
        # Hold one of the products so that the first request waits inside its transaction.
        async with await psycopg.AsyncConnection.connect(database_url) as blocker:
            await blocker.execute(
                "SELECT 1 FROM products WHERE store_id = %s AND id = %s FOR UPDATE",
                (tenant.store_id, tenant.products[1].id),
            )
            first = asyncio.create_task(send(client, tenant, payload, key="slow"))
            while not await rows(
                pool, "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
            ):
                await asyncio.sleep(0.01)
            running = await send(client, tenant, payload, key="slow", ts=NOW_MS + 1)
            await blocker.rollback()
        answered = await first
        retry = await send(client, tenant, payload, key="slow", ts=NOW_MS + 2)
    body = assert_error(
        running,
        409,
        "IDEM_002",
        IDEM_002,
        hint="The first request with this idempotency-key has not finished: retry after"
        " Retry-After seconds, signed anew, with the same key and body",
        context={"idempotencyKey": "slow"},
    )
    assert running.headers["retry-after"] == "1"
    assert body["requestId"] != answered.json()["requestId"]
    assert answered.status_code == 200
    assert answered.json()["data"]["summary"] == {"total": 2, "succeeded": 2, "failed": 0}
    assert retry.headers["idempotent-replayed"] == "true" and retry.content == answered.content


async def test_a_dispatched_retry_gets_the_same_batch_id(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    payload = {"ids": tenant.ids[:5], "dispatch": True}
    async with gateway_client(database_url) as client:
        first = await send(client, tenant, payload, key="batch-1")
        retry = await send(client, tenant, payload, key="batch-1", ts=NOW_MS + 1)
    assert first.status_code == retry.status_code == 202
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.content == first.content
    assert len(await rows(pool, "SELECT id FROM deletion_batches")) == 1
    assert retry.json()["data"]["batchId"] == first.json()["data"]["batchId"]


async def test_an_expired_key_runs_anew(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    async with gateway_client(database_url) as client:
        first = await send(client, tenant, {"ids": tenant.ids[:1]}, key="old")
        async with catalog_store.connection(pool) as conn:
            await conn.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 s'")
        assert await catalog_store.purge_expired_keys(pool) == 1
        later = await send(client, tenant, {"ids": tenant.ids[1:2]}, key="old", ts=NOW_MS + 1)
    assert "idempotent-replayed" not in later.headers
    assert later.json()["requestId"] != first.json()["requestId"]
    assert later.json()["data"]["summary"]["succeeded"] == 1


async def test_a_dry_run_reports_what_would_go_and_changes_nothing(
    database_url: str, pool: catalog_store.Pool
) -> None:
    tenant = await make_tenant(pool, products=4, variants=3)
    payload = {
        "ids": [tenant.ids[0], "nope", tenant.ids[0]],
        "externalIds": [tenant.external_ids[1], "missing"],
        "dryRun": True,
    }
    async with gateway_client(database_url) as client:
        dry = await send(client, tenant, payload)
        real = await send(client, tenant, {**payload, "dryRun": False}, ts=NOW_MS + 1)
    body = dry.json()
    assert dry.status_code == 200
    assert list(body) == ["success", "message", "requestId", "meta", "data"]
    assert body["message"] == "Dry run: nothing was deleted; some products would not be deleted"
    assert body["meta"] == {
        "timestamp": "2025-09-17T09:12:30.458Z",
        "durationMs": body["meta"]["durationMs"],
        "dispatch": False,
        "dryRun": True,
    }
    products = [tenant.products[0], tenant.products[1]]
    assert body["data"]["summary"] == {"total": 5, "succeeded": 2, "failed": 3, "variants": 6}
    assert body["data"]["successItems"] == [
        {"id": str(p.id), "externalId": p.external_id, "variants": 3} for p in products
    ]
    # The same report as the real run that followed, variant counts aside.
    assert body["data"]["errors"] == real.json()["data"]["errors"]
    assert [{k: i[k] for k in ("id", "externalId")} for i in body["data"]["successItems"]] == (
        real.json()["data"]["successItems"]
    )
    assert [r[0] for r in await rows(pool, "SELECT request_id FROM deletion_audit")] == [
        uuid.UUID(real.json()["requestId"])
    ]
    assert len(await rows(pool, "SELECT 1 FROM all_products WHERE deleted_at IS NOT NULL")) == 2


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"ids": ["ALL"]}, "Dry run: nothing was deleted"),
        (
            {"ids": ["ALL"], "externalIds": ["missing"]},
            "Dry run: nothing was deleted; some products would not be deleted",
        ),
        ({"externalIds": ["missing"]}, "Dry run: nothing was deleted; no product would be deleted"),
    ],
)
async def test_a_dry_runs_message_says_whether_all_some_or_none_would_go(
    database_url: str,
    pool: catalog_store.Pool,
    tenant: Tenant,
    payload: dict[str, Any],
    message: str,
) -> None:
    if payload.get("ids") == ["ALL"]:
        payload = {**payload, "ids": tenant.ids[:3]}
    async with gateway_client(database_url) as client:
        dry = await send(client, tenant, {**payload, "dryRun": True})
    assert dry.status_code == 200, dry.text
    assert (dry.json()["success"], dry.json()["message"]) == (True, message)
    assert await product_count(pool, tenant) == (20, 40)


async def test_a_dry_run_of_1000_is_answered_at_once_and_more_or_dispatched_is_val_001(
    database_url: str, pool: catalog_store.Pool
) -> None:
    """A dry run is answered inline, so it takes what a synchronous request takes: 1,001
    entries, or "dispatch": true, is VAL_001 naming the field; nothing is recorded."""
    tenant = await make_tenant(pool, products=1000, variants=1)
    ids = tenant.ids
    async with gateway_client(database_url) as client:
        dry = await send(client, tenant, {"ids": ids, "dryRun": True})
        over = await send(client, tenant, {"ids": [*ids, "x"], "dryRun": True}, ts=NOW_MS + 1)
        split = await send(
            client,
            tenant,
            {"ids": ids[:500], "externalIds": ["a"] * 501, "dryRun": True},
            ts=NOW_MS + 2,
        )
        dispatched = await send(
            client, tenant, {"ids": ids[:2], "dispatch": True, "dryRun": True}, ts=NOW_MS + 3
        )
    assert dry.status_code == 200
    assert dry.json()["data"]["summary"] == {
        "total": 1000,
        "succeeded": 1000,
        "failed": 0,
        "variants": 1000,
    }
    too_many = "a dry run takes at most 1,000 entries in all; got 1,001"
    for response in (over, split):
        assert_error(
            response,
            400,
            "VAL_001",
            "Validation failed",
            hint="Fix the fields named in context.validationErrors",
            context={"validationErrors": {"ids": too_many}},
        )
    assert_error(
        dispatched,
        400,
        "VAL_001",
        "Validation failed",
        hint="Fix the fields named in context.validationErrors",
        context={
            "validationErrors": {
                "dryRun": 'cannot be sent with "dispatch": true; a dry run is answered at once,'
                " never dispatched"
            }
        },
    )
    assert await product_count(pool, tenant) == (1000, 1000)
    for table in (
        "deletion_batches",
        "deletion_audit",
        "all_products WHERE deleted_at IS NOT NULL",
    ):
        assert await rows(pool, f"SELECT 1 FROM {table}") == [], table


async def test_a_dry_run_retried_with_its_key_is_replayed(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    payload = {"ids": tenant.ids[:2], "dryRun": True}
    async with gateway_client(database_url) as client:
        first = await send(client, tenant, payload, key="dry")
        retry = await send(client, tenant, payload, key="dry", ts=NOW_MS + 1)
        real = await send(client, tenant, {"ids": tenant.ids[:2]}, key="dry", ts=NOW_MS + 2)
    assert retry.headers["idempotent-replayed"] == "true" and retry.content == first.content
    assert_error(real, 409, "IDEM_001", IDEM_001, context={"idempotencyKey": "dry"})


async def test_a_request_delete_and_restore_of_1000_leaves_the_catalog_identical(
    database_url: str, pool: catalog_store.Pool
) -> None:
    """The issue's acceptance check, over HTTP: delete 1,000, restore them by request id."""
    tenant = await make_tenant(pool, products=1000, variants=2)
    snapshot = "SELECT to_jsonb(p) FROM products p ORDER BY id"
    variants = "SELECT to_jsonb(v) FROM product_variants v ORDER BY id"
    before = (await rows(pool, snapshot), await rows(pool, variants))
    async with gateway_client(database_url) as client:
        response = await delete(client, tenant, {"ids": tenant.ids})
    assert response.json()["data"]["summary"]["succeeded"] == 1000
    assert await product_count(pool, tenant) == (0, 0)
    items = await catalog_store.restore_products(
        pool, request_id=uuid.UUID(response.json()["requestId"])
    )
    assert len(items) == 1000 and all(item.refusal is None for item in items)
    assert (await rows(pool, snapshot), await rows(pool, variants)) == before


async def test_with_a_key_the_statement_count_is_still_constant(
    database_url: str, pool: catalog_store.Pool
) -> None:
    from tests.gateway.test_deletions import CountingConnection, CountingCursor

    tenant = await make_tenant(pool, products=1001, variants=1, name="big")
    counts = []
    # The credentials cache off: every request reads its credentials (the worst case).
    uncached = Settings(pool_min=1, pool_max=4, auth_cache_seconds=0)
    async with gateway_client(
        database_url, settings=uncached, connection_class=CountingConnection
    ) as client:
        for n, ids in enumerate((tenant.ids[:1], tenant.ids[1:1000])):
            CountingCursor.statements.clear()
            response = await send(client, tenant, {"ids": ids}, key=f"k{n}", ts=NOW_MS + n)
            assert response.status_code == 200
            counts.append(len(CountingCursor.statements))
        last = list(CountingCursor.statements)
    # credentials, replay record, key lock, key lookup, delete with archive, audit, answer
    assert counts == [7, 7]
    assert last == [
        "SELECT",
        "INSERT",
        "SELECT",
        "SELECT",
        "WITH",
        "INSERT",
        "INSERT",
    ]


async def test_a_batch_read_ignores_the_key(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    async with gateway_client(database_url) as client:
        accepted = await send(client, tenant, {"ids": tenant.ids[:1], "dispatch": True})
        path = f"{DELETIONS}/{accepted.json()['data']['batchId']}"
        reads = []
        for n in (1, 2):
            headers = signed_headers(tenant, method="GET", path=path, timestamp=NOW_MS + n)
            reads.append(await client.get(path, headers={**headers, "idempotency-key": "r"}))
    assert [r.status_code for r in reads] == [200, 200]
    assert all("idempotent-replayed" not in r.headers for r in reads)
    assert reads[0].json()["requestId"] != reads[1].json()["requestId"]
    assert await rows(pool, "SELECT 1 FROM idempotency_keys") == []


_key_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=300)
_counter = itertools.count(1)


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(database_url) as c:
        yield c


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(key=_key_text, take=st.integers(0, 2))
async def test_any_key_is_accepted_or_val_001_never_a_500(
    client: httpx.AsyncClient, pool: catalog_store.Pool, tenant: Tenant, key: str, take: int
) -> None:
    """A key of 1-255 printable ASCII characters is used; any other is VAL_001, changing
    nothing. Keys repeat across examples with other bodies: those are IDEM_001."""
    body = body_of({"ids": tenant.ids[:take], "externalIds": ["x"]})
    headers = signed_headers(tenant, body=body, timestamp=NOW_MS - next(_counter))
    before = await product_count(pool, tenant)
    response = await client.post(
        DELETIONS,
        content=body,
        headers=[
            *[(k.encode(), v.encode()) for k, v in headers.items()],
            (b"idempotency-key", key.encode("latin-1")),
        ],
    )
    # A value's leading and trailing spaces are not part of it: " a " is the key "a".
    stripped = key.strip(" ")
    valid = 1 <= len(stripped) <= 255 and all(" " <= c <= "~" for c in stripped)
    assert response.status_code in ({200, 409} if valid else {400}), response.text
    assert response.json()["requestId"] == response.headers["x-request-id"]
    if response.status_code != 200:
        assert await product_count(pool, tenant) == before
