"""Contract §3 (dispatch) and §4 (batch status) over HTTP, the worker's chunks run in-process."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from typing import Any

import httpx
import pytest

import catalog_store
from tests.support import (
    DELETIONS,
    ISO_MS,
    NOW_MS,
    TEST_BOX,
    Tenant,
    assert_error,
    delete,
    gateway_client,
    make_tenant,
    signed_headers,
)

pytestmark = pytest.mark.anyio


async def status(
    client: httpx.AsyncClient, tenant: Tenant, batch_id: str, query: str = "", ts: int = NOW_MS
) -> httpx.Response:
    path = f"{DELETIONS}/{batch_id}"
    headers = signed_headers(tenant, method="GET", path=path, query=query, timestamp=ts)
    return await client.get(path + (f"?{query}" if query else ""), headers=headers)


async def run_all(
    pool: catalog_store.Pool, tenant: Tenant, batch_id: str, chunk: int = 1000
) -> None:
    while await catalog_store.process_next_chunk(
        pool, store_id=tenant.store_id, batch_id=uuid.UUID(batch_id), chunk_size=chunk
    ):
        pass


async def test_more_than_1000_entries_are_dispatched_with_202(
    database_url: str, pool: catalog_store.Pool
) -> None:
    tenant = await make_tenant(pool, products=1001)
    async with gateway_client(database_url) as client:
        response = await delete(client, tenant, {"ids": tenant.ids})
    body = response.json()
    assert response.status_code == 202
    assert list(body) == ["success", "message", "requestId", "meta", "data"]
    assert body["success"] is True and body["message"] == "Deletion batch accepted"
    assert body["requestId"] == response.headers["x-request-id"]
    assert body["meta"]["dispatch"] is True
    assert body["data"] == {
        "batchId": body["data"]["batchId"],
        "status": "pending",
        "summary": {"total": 1001, "succeeded": 0, "failed": 0},
    }
    # Accepted, not yet run: nothing is deleted until the worker takes the batch.
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == (1001, 2002)


async def test_dispatch_true_dispatches_any_size_and_status_follows_it(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    payload = {
        "ids": tenant.ids[:3] + ["nope"],
        "externalIds": tenant.external_ids[5:7],
        "dispatch": True,
    }
    async with gateway_client(database_url) as client:
        accepted = await delete(client, tenant, payload)
        assert accepted.status_code == 202
        batch_id = accepted.json()["data"]["batchId"]
        pending = (await status(client, tenant, batch_id, ts=NOW_MS + 1)).json()
        await run_all(pool, tenant, batch_id, chunk=2)
        done = await status(client, tenant, batch_id, ts=NOW_MS + 2)
    assert pending["data"]["status"] == "pending"
    assert pending["data"]["progress"] == {"processed": 0, "total": 6}
    assert pending["data"]["successItems"] == [] and pending["data"]["errors"] == []
    assert pending["data"]["nextCursor"] == base64.urlsafe_b64encode(b'{"o":0}').decode().rstrip(
        "="
    )
    body = done.json()
    assert done.status_code == 200 and body["message"] == "Deletion batch status"
    data = body["data"]
    assert ISO_MS.fullmatch(data["createdAt"]) and ISO_MS.fullmatch(data["updatedAt"])
    assert {k: data[k] for k in ("batchId", "status", "progress", "summary", "nextCursor")} == {
        "batchId": batch_id,
        "status": "completed",
        "progress": {"processed": 6, "total": 6},
        "summary": {"total": 6, "succeeded": 5, "failed": 1},
        "nextCursor": None,
    }
    expected = [tenant.products[i] for i in (0, 1, 2, 5, 6)]
    assert data["successItems"] == [
        {"id": str(p.id), "externalId": p.external_id} for p in expected
    ]
    assert data["errors"] == [
        {
            "code": "PRD_017",
            "message": "Product ID is not a valid UUID",
            "rowIndex": 3,
            "id": "nope",
        }
    ]


async def test_results_are_paged_with_signed_limit_and_cursor(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    async with gateway_client(database_url) as client:
        accepted = await delete(client, tenant, {"ids": tenant.ids, "dispatch": True})
        batch_id = accepted.json()["data"]["batchId"]
        await run_all(pool, tenant, batch_id)
        seen: list[str] = []
        query = "limit=7"
        for n in range(1, 10):
            page: dict[str, Any] = (
                await status(client, tenant, batch_id, query, ts=NOW_MS + n)
            ).json()["data"]
            seen += [item["id"] for item in page["successItems"]]
            if page["nextCursor"] is None:
                break
            assert json.loads(base64.urlsafe_b64decode(page["nextCursor"] + "==")) == {
                "o": len(seen)
            }
            query = f"limit=7&cursor={page['nextCursor']}"
    assert seen == tenant.ids  # every result once, in request order
    assert n == 3


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ("limit=0", {"limit": "must be a whole number from 1 to 1,000"}),
        ("limit=1001", {"limit": "must be a whole number from 1 to 1,000"}),
        (
            "limit=x&cursor=zzz",
            {
                "limit": "must be a whole number from 1 to 1,000",
                "cursor": "must be a nextCursor value returned by this endpoint",
            },
        ),
        ("cursor=eyJvIjotMX0", {"cursor": "must be a nextCursor value returned by this endpoint"}),
    ],
)
async def test_bad_paging_is_val_001(
    database_url: str, tenant: Tenant, query: str, errors: dict[str, str]
) -> None:
    async with gateway_client(database_url) as client:
        accepted = await delete(client, tenant, {"ids": tenant.ids[:1], "dispatch": True})
        response = await status(
            client, tenant, accepted.json()["data"]["batchId"], query, ts=NOW_MS + 1
        )
    assert_error(
        response, 400, "VAL_001", "Validation failed", context={"validationErrors": errors}
    )


async def test_another_stores_batch_is_bat_001(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    other = await make_tenant(pool, name="other")
    async with gateway_client(database_url) as client:
        accepted = await delete(client, tenant, {"ids": tenant.ids[:1], "dispatch": True})
        batch_id = accepted.json()["data"]["batchId"]
        response = await status(client, other, batch_id)
    assert_error(response, 404, "BAT_001", "Batch not found", context={"batchId": batch_id})


async def test_another_partners_batch_on_a_shared_store_is_bat_001(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    """Partner C holds a token of the same store as partner B: B's batch is BAT_001 to C,
    exactly as an unknown batch is, and nothing of it (its external ids) is shown."""
    partner_c = await catalog_store.create_partner(pool, "partner c", box=TEST_BOX)
    token_c = await catalog_store.issue_token(
        pool, partner_client_id=partner_c.client_id, store_client_id=tenant.store_client_id
    )
    other = dataclasses.replace(
        tenant,
        partner_id=partner_c.id,
        partner_client_id=partner_c.client_id,
        secret=partner_c.secret,
        token=token_c.token,
    )
    async with gateway_client(database_url) as client:
        accepted = await delete(
            client, tenant, {"externalIds": tenant.external_ids[:2], "dispatch": True}
        )
        batch_id = accepted.json()["data"]["batchId"]
        theirs = await status(client, other, batch_id, ts=NOW_MS + 1)
        unknown_id = str(uuid.uuid4())
        unknown = await status(client, other, unknown_id, ts=NOW_MS + 2)
        own = await status(client, tenant, batch_id, ts=NOW_MS + 3)
    assert accepted.status_code == 202
    assert_error(theirs, 404, "BAT_001", "Batch not found", context={"batchId": batch_id})
    assert_error(unknown, 404, "BAT_001", "Batch not found", context={"batchId": unknown_id})
    assert theirs.json()["error"]["details"]["hint"] == unknown.json()["error"]["details"]["hint"]
    assert own.status_code == 200


async def test_a_replayed_dispatch_creates_no_second_batch(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    body = json.dumps({"ids": tenant.ids[:2], "dispatch": True}).encode()
    headers = signed_headers(tenant, body=body)
    async with gateway_client(database_url) as client:
        first = await client.post(DELETIONS, content=body, headers=headers)
        again = await client.post(DELETIONS, content=body, headers=headers)
    assert first.status_code == 202
    assert_error(again, 401, "AUTH_006", "Replayed request")
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute("SELECT count(*) FROM deletion_batches")
        assert await cur.fetchone() == (1,)


async def test_a_status_read_answered_200_cannot_be_replayed(
    database_url: str, tenant: Tenant
) -> None:
    async with gateway_client(database_url) as client:
        accepted = await delete(client, tenant, {"ids": tenant.ids[:1], "dispatch": True})
        batch_id = accepted.json()["data"]["batchId"]
        first = await status(client, tenant, batch_id, ts=NOW_MS + 1)
        again = await status(client, tenant, batch_id, ts=NOW_MS + 1)
    assert first.status_code == 200
    assert_error(again, 401, "AUTH_006", "Replayed request")
