"""Contract §1 and §5 on every route: health, readiness, the API documents, unknown routes,
the batch route, and SYS_001 when the database cannot be reached."""

from __future__ import annotations

import socket
import time

import anyio
import pytest

import catalog_store
from gateway.settings import Settings
from tests.support import (
    DELETIONS,
    ISO_MS,
    NOW_MS,
    Tenant,
    assert_error,
    body_of,
    gateway_client,
    signed_headers,
)

pytestmark = pytest.mark.anyio


async def test_healthz_answers_in_the_envelope(database_url: str) -> None:
    async with gateway_client(database_url) as client:
        response = await client.get("/healthz")
    body = response.json()
    assert response.status_code == 200
    assert body["requestId"] == response.headers["x-request-id"]
    assert body["success"] is True and body["data"] == {"status": "ok"}
    assert ISO_MS.fullmatch(body["meta"]["timestamp"])
    assert set(body["meta"]) == {"timestamp", "durationMs"}


async def test_readyz_answers_when_the_database_does(database_url: str) -> None:
    async with gateway_client(database_url) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["message"] == "Ready"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


UNREACHABLE = f"host=127.0.0.1 port={_closed_port()} user=nobody dbname=none"


async def test_unreachable_database_is_sys_001_with_retry_after_quickly(tenant: Tenant) -> None:
    """Readiness and every signed route answer 503 SYS_001 within the pool timeout."""
    settings = Settings(pool_min=0, pool_max=2, db_timeout=0.5, retry_after_seconds=7)
    body = body_of({"ids": tenant.ids[:1]})
    async with gateway_client(UNREACHABLE, settings=settings) as client:
        started = time.monotonic()
        ready = await client.get("/readyz")
        deletion = await client.post(
            DELETIONS, content=body, headers=signed_headers(tenant, body=body)
        )
        elapsed = time.monotonic() - started
    for response in (ready, deletion):
        assert_error(
            response,
            503,
            "SYS_001",
            "Service temporarily unavailable",
            hint="The database cannot be reached; nothing was changed."
            " Retry after Retry-After seconds",
            context={"outcome": "unchanged"},
        )
        assert response.headers["retry-after"] == "7"
    assert elapsed < 5


async def test_unknown_route_is_route_001_in_the_envelope(database_url: str) -> None:
    async with gateway_client(database_url) as client:
        response = await client.get("/api/v1/partner/nothing-here")
    assert_error(
        response,
        404,
        "ROUTE_001",
        "Route not found",
        hint="See /docs for the routes of this API",
        context={"path": "/api/v1/partner/nothing-here"},
    )


async def test_a_trailing_slash_is_route_001_not_a_redirect(database_url: str) -> None:
    async with gateway_client(database_url) as client:
        response = await client.post(DELETIONS + "/", content=b"{}")
    assert_error(response, 404, "ROUTE_001", "Route not found", context={"path": DELETIONS + "/"})


async def test_wrong_method_is_route_002_with_allow(database_url: str) -> None:
    async with gateway_client(database_url) as client:
        response = await client.delete(DELETIONS)
    assert_error(
        response, 405, "ROUTE_002", "Method not allowed", context={"allowedMethods": ["POST"]}
    )
    assert response.headers["allow"] == "POST"


async def test_batch_of_no_such_id_is_bat_001_after_authentication(
    database_url: str, tenant: Tenant
) -> None:
    path = DELETIONS + "/0b9f7d7e-1c2a-4b8e-9d3f-5a6b7c8d9e0f"
    query = "limit=50&cursor=eyJvIjo1MH0"
    headers = signed_headers(tenant, method="GET", path=path, query=query)
    async with gateway_client(database_url) as client:
        found = await client.get(f"{path}?{query}", headers=headers)
        replayed = await client.get(f"{path}?{query}", headers=headers)
        unsigned = await client.get(path)
        resorted = await client.get(
            f"{path}?cursor=eyJvIjo1MH0&limit=50",
            headers=signed_headers(tenant, method="GET", path=path, query=query, timestamp=1),
        )
    assert_error(
        found,
        404,
        "BAT_001",
        "Batch not found",
        context={"batchId": "0b9f7d7e-1c2a-4b8e-9d3f-5a6b7c8d9e0f"},
    )
    # A read answered with an error is spent all the same: sent again, it is a replay.
    assert_error(replayed, 401, "AUTH_006", "Replayed request")
    assert unsigned.json()["error"]["code"] == "AUTH_001"
    assert resorted.json()["error"]["code"] in {"AUTH_002", "AUTH_003"}


async def test_query_is_signed_as_sent_not_re_sorted(database_url: str, tenant: Tenant) -> None:
    """A query signed in one order and sent in another fails with AUTH_002, showing line 3."""
    path = DELETIONS + "/b1"
    async with gateway_client(database_url) as client:
        response = await client.get(
            f"{path}?b=2&a=1",
            headers=signed_headers(tenant, method="GET", path=path, query="a=1&b=2"),
        )
    got = assert_error(response, 401, "AUTH_002", "Invalid signature")
    assert got["error"]["details"]["context"]["stringToSign"].split("\n")[2] == "b=2&a=1"


async def test_openapi_document_is_generated_from_the_wire_types(database_url: str) -> None:
    async with gateway_client(database_url) as client:
        response = await client.get("/openapi.json")
    document = response.json()
    assert response.status_code == 200
    assert response.headers["x-request-id"]
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {
        DELETIONS,
        DELETIONS + "/{batchId}",
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/docs",
        "/metrics",
    }
    schemas = document["components"]["schemas"]
    assert set(schemas["DeletionRequest"]["properties"]) == {
        "ids",
        "externalIds",
        "dispatch",
        "dryRun",
    }
    assert schemas["DeletionRequest"]["additionalProperties"] is False
    assert set(schemas["DeletionResponse"]["required"]) == {
        "success",
        "message",
        "requestId",
        "meta",
        "data",
    }
    post = document["paths"][DELETIONS]["post"]
    assert {"200", "400", "401", "403", "413", "503"} <= set(post["responses"])
    assert {"202", "409"} <= set(post["responses"])
    assert post["responses"]["409"]["description"] == (
        "IDEM_001 Idempotency key reused with a different body,"
        " IDEM_002 Request with this idempotency key still running"
    )
    assert set(post["responses"]["200"]["headers"]) == {"idempotent-replayed"}
    [key] = [p for p in post["parameters"] if p["name"] == "idempotency-key"]
    assert key["required"] is False and key["schema"]["maxLength"] == 255
    assert set(schemas["DryRunResponse"]["required"]) == set(
        schemas["DeletionResponse"]["required"]
    )
    assert set(schemas["DryRunItem"]["properties"]) == {"id", "externalId", "variants"}
    batch = document["paths"][DELETIONS + "/{batchId}"]["get"]
    query = {p["name"]: p for p in batch["parameters"] if p["in"] == "query"}
    assert set(query) == {"limit", "cursor"}  # docs/api.md: paged, and signed like any query
    assert query["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
        "default": 100,
    }


async def test_docs_page_renders_the_api(database_url: str) -> None:
    async with gateway_client(database_url) as client:
        response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert f"POST {DELETIONS}" in response.text
    assert "DeletionRequest" in response.text
    assert "<script" not in response.text


async def test_every_response_carries_a_distinct_request_id(database_url: str) -> None:
    async with gateway_client(database_url) as client:
        ids = {(await client.get("/healthz")).headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


async def test_replay_records_past_their_window_are_purged(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    """By the gateway's clock (the tests' fixed one, long before the database's)."""
    async with catalog_store.connection(pool) as conn:
        await conn.execute(
            "INSERT INTO replay_nonces (partner_id, signature, expires_at) VALUES"
            " (%(p)s, '\\x01', to_timestamp((%(now)s - 1000) / 1000.0)),"
            " (%(p)s, '\\x02', to_timestamp((%(now)s + 1000) / 1000.0))",
            {"p": tenant.partner_id, "now": NOW_MS},
        )
    settings = Settings(pool_min=1, pool_max=2, nonce_purge_interval=0.05)
    async with gateway_client(database_url, settings=settings):
        for _ in range(100):
            async with catalog_store.connection(pool) as conn:
                cur = await conn.execute("SELECT signature FROM replay_nonces")
                left = [bytes(row[0]) for row in await cur.fetchall()]
            if left == [b"\x02"]:
                break
            await anyio.sleep(0.05)
    assert left == [b"\x02"]
