"""Deleting products, item by item, in one transaction per request."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import psycopg
import pytest

import catalog_store
from gateway.settings import Settings
from tests.support import (
    DELETIONS,
    ISO_MS,
    NOW_MS,
    FakeClock,
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


def item(tenant: Tenant, index: int) -> dict[str, Any]:
    product = tenant.products[index]
    return {"id": str(product.id), "externalId": product.external_id}


async def test_success_envelope_is_exactly_the_contracts(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    async with gateway_client(database_url) as client:
        response = await delete(client, tenant, {"ids": [str(uuid.uuid4()), tenant.ids[0]]})
    body = response.json()
    assert response.status_code == 200
    assert list(body) == ["success", "message", "requestId", "meta", "data"]
    assert body["success"] is True
    assert body["message"] == "Some products were not deleted"
    assert body["requestId"] == response.headers["x-request-id"]
    assert list(body["meta"]) == ["timestamp", "durationMs", "dispatch"]
    assert body["meta"]["timestamp"] == "2025-09-17T09:12:30.458Z"  # the gateway's clock
    assert isinstance(body["meta"]["durationMs"], int) and body["meta"]["durationMs"] >= 0
    assert body["meta"]["dispatch"] is False
    missing = body["data"]["errors"][0]["id"]
    assert body["data"] == {
        "summary": {"total": 2, "succeeded": 1, "failed": 1},
        "successItems": [item(tenant, 0)],
        "errors": [
            {"code": "PRD_014", "message": "Product ID not found", "rowIndex": 0, "id": missing}
        ],
    }
    assert await product_count(pool, tenant) == (19, 38)


@pytest.mark.parametrize(
    ("entries", "message", "left"),
    [
        (2, "Products deleted successfully", 18),
        (1, "Some products were not deleted", 19),
        (0, "No products were deleted", 20),
    ],
)
async def test_the_message_says_whether_all_some_or_none_were_deleted(
    database_url: str,
    pool: catalog_store.Pool,
    tenant: Tenant,
    entries: int,
    message: str,
    left: int,
) -> None:
    """success stays true (the request was processed); the message says what happened."""
    ids = tenant.ids[:entries] + ["not-a-uuid"] * (2 - entries)
    async with gateway_client(database_url) as client:
        response = await delete(client, tenant, {"ids": ids})
    body = response.json()
    assert response.status_code == 200
    assert (body["success"], body["message"]) == (True, message)
    assert body["data"]["summary"] == {"total": 2, "succeeded": entries, "failed": 2 - entries}
    assert await product_count(pool, tenant) == (left, 2 * left)


async def test_every_item_code_with_row_indexes_in_request_order(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    unknown = str(uuid.uuid4())
    payload = {
        "ids": [
            tenant.ids[2].upper(),  # 0: deleted (any case)
            "not-a-uuid",  # 1: PRD_017
            tenant.ids[2],  # 2: PRD_016, the same UUID in another case
            unknown,  # 3: PRD_014
            tenant.ids[1],  # 4: deleted
            "{" + tenant.ids[5] + "}",  # 5: PRD_017, only the canonical form is a UUID
        ],
        "externalIds": [
            tenant.external_ids[3],  # 0: deleted
            "no-such-external-id",  # 1: PRD_015
            tenant.external_ids[3],  # 2: PRD_016
            tenant.external_ids[1],  # 3: PRD_016, the product ids[4] already named
            tenant.external_ids[3].upper(),  # 4: PRD_015, external ids are exact
        ],
    }
    async with gateway_client(database_url) as client:
        response = await delete(client, tenant, payload)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["summary"] == {"total": 11, "succeeded": 3, "failed": 8}
    assert data["successItems"] == [item(tenant, 2), item(tenant, 1), item(tenant, 3)]
    assert data["errors"] == [
        {
            "code": "PRD_017",
            "message": "Product ID is not a valid UUID",
            "rowIndex": 1,
            "id": "not-a-uuid",
        },
        {
            "code": "PRD_016",
            "message": "Entry repeated earlier in the same request",
            "rowIndex": 2,
            "id": tenant.ids[2],
        },
        {"code": "PRD_014", "message": "Product ID not found", "rowIndex": 3, "id": unknown},
        {
            "code": "PRD_017",
            "message": "Product ID is not a valid UUID",
            "rowIndex": 5,
            "id": "{" + tenant.ids[5] + "}",
        },
        {
            "code": "PRD_015",
            "message": "Product external ID not found",
            "rowIndex": 1,
            "externalId": "no-such-external-id",
        },
        {
            "code": "PRD_016",
            "message": "Entry repeated earlier in the same request",
            "rowIndex": 2,
            "externalId": tenant.external_ids[3],
        },
        {
            "code": "PRD_016",
            "message": "Entry repeated earlier in the same request",
            "rowIndex": 3,
            "externalId": tenant.external_ids[1],
        },
        {
            "code": "PRD_015",
            "message": "Product external ID not found",
            "rowIndex": 4,
            "externalId": tenant.external_ids[3].upper(),
        },
    ]
    assert await product_count(pool, tenant) == (17, 34)


async def test_variants_go_with_their_product(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    async with gateway_client(database_url) as client:
        response = await delete(client, tenant, {"externalIds": tenant.external_ids[:5]})
    assert response.json()["data"]["summary"] == {"total": 5, "succeeded": 5, "failed": 0}
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM product_variants WHERE store_id = %s AND product_id = ANY(%s)",
            (tenant.store_id, [p.id for p in tenant.products[:5]]),
        )
        assert await cur.fetchone() == (0,)
    assert await product_count(pool, tenant) == (15, 30)


async def test_a_product_of_another_store_is_not_found(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    """Store isolation: another store's product is reported exactly like a missing one."""
    other = await make_tenant(pool, products=3, name="other")
    async with gateway_client(database_url) as client:
        response = await delete(
            client, tenant, {"ids": other.ids[:1], "externalIds": other.external_ids[1:2]}
        )
    assert response.json()["data"] == {
        "summary": {"total": 2, "succeeded": 0, "failed": 2},
        "successItems": [],
        "errors": [
            {
                "code": "PRD_014",
                "message": "Product ID not found",
                "rowIndex": 0,
                "id": other.ids[0],
            },
            {
                "code": "PRD_015",
                "message": "Product external ID not found",
                "rowIndex": 0,
                "externalId": other.external_ids[1],
            },
        ],
    }
    assert await product_count(pool, other) == (3, 6)


async def test_concurrent_overlapping_requests_delete_each_product_once(
    database_url: str, pool: catalog_store.Pool
) -> None:
    """Two gateways, several requests at once over the same products: each reported once."""
    tenant = await make_tenant(pool, products=200, name="busy")
    results: list[dict[str, Any]] = []

    async with gateway_client(database_url) as one, gateway_client(database_url) as two:

        async def send(client: Any, offset: int) -> None:
            payload = {"ids": tenant.ids[offset:], "externalIds": tenant.external_ids[:offset]}
            response = await delete(client, tenant, payload, timestamp=NOW_MS + offset)
            assert response.status_code == 200
            results.append(response.json()["data"])

        async with anyio.create_task_group() as group:
            for n, offset in enumerate((0, 50, 100, 150)):
                group.start_soon(send, one if n % 2 else two, offset)
    deleted = [entry["id"] for data in results for entry in data["successItems"]]
    assert sorted(deleted) == sorted(tenant.ids)
    for data in results:
        summary = data["summary"]
        assert summary["total"] == 200 == summary["succeeded"] + summary["failed"]
    assert await product_count(pool, tenant) == (0, 0)


class _FailOnAudit(Exception):
    pass


async def test_a_failure_mid_transaction_leaves_every_product_in_place(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    """The database fails the audit insert after the deletes ran: all of it is rolled back,
    the replay record too, so the same signed request succeeds once the fault is gone."""
    async with catalog_store.connection(pool) as conn:
        await conn.execute(
            "CREATE FUNCTION fail_audit() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN RAISE EXCEPTION 'injected failure'; END$$;"
            " CREATE TRIGGER fail_audit BEFORE INSERT ON deletion_audit"
            " FOR EACH ROW EXECUTE FUNCTION fail_audit();"
        )
    body = body_of({"ids": tenant.ids[:10]})
    headers = signed_headers(tenant, body=body)
    try:
        async with gateway_client(database_url) as client:
            failed = await client.post(DELETIONS, content=body, headers=headers)
            assert_error(
                failed,
                503,
                "SYS_001",
                "Service temporarily unavailable",
                hint="The database cannot be reached; nothing was changed."
                " Retry after Retry-After seconds",
                context={"outcome": "unchanged"},
            )
            assert failed.headers["retry-after"] == "5"
            assert await product_count(pool, tenant) == (20, 40)
            async with catalog_store.connection(pool) as conn:
                cur = await conn.execute("SELECT count(*) FROM replay_nonces")
                assert await cur.fetchone() == (0,)
                await conn.execute("DROP TRIGGER fail_audit ON deletion_audit")
            retried = await client.post(DELETIONS, content=body, headers=headers)
        assert retried.json()["data"]["summary"] == {"total": 10, "succeeded": 10, "failed": 0}
    finally:
        async with catalog_store.connection(pool) as conn:
            await conn.execute(
                "DROP TRIGGER IF EXISTS fail_audit ON deletion_audit;"
                " DROP FUNCTION IF EXISTS fail_audit()"
            )


@pytest.mark.parametrize("idempotency_key", [None, "audit-1"])
async def test_audit_record_is_written_with_the_request(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant, idempotency_key: str | None
) -> None:
    """Both paths (one statement; idempotent transaction) write the deleted ids in id order."""
    ids = list(reversed(tenant.ids[:3])) + ["bad"]
    body = body_of({"ids": ids})
    headers = signed_headers(tenant, body=body)
    if idempotency_key is not None:
        headers["idempotency-key"] = idempotency_key
    async with gateway_client(database_url) as client:
        response = await client.post(DELETIONS, content=body, headers=headers)
    assert response.status_code == 200
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute(
            "SELECT request_id, partner_id, store_id, total, succeeded, failed, deleted_ids"
            " FROM deletion_audit"
        )
        rows = await cur.fetchall()
    assert rows == [
        (
            uuid.UUID(response.json()["requestId"]),
            tenant.partner_id,
            tenant.store_id,
            4,
            3,
            1,
            sorted(p.id for p in tenant.products[:3]),
        )
    ]


class CountingCursor(psycopg.AsyncCursor[Any]):
    statements: list[str] = []

    async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        # Not the request's: the pool's connection check (an empty query), and the set-up of a
        # connection the pool opens meanwhile (catalog_store.pool.GENERIC_PLANS).
        if query and query != catalog_store.pool.GENERIC_PLANS:
            CountingCursor.statements.append(str(query).split()[0])
        return await super().execute(query, params, **kwargs)


class CountingConnection(psycopg.AsyncConnection[Any]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cursor_factory = CountingCursor


async def test_statement_count_is_constant_whatever_the_batch_size(
    database_url: str, pool: catalog_store.Pool
) -> None:
    tenant = await make_tenant(pool, products=1001, name="big")
    counts = []
    # The credentials cache off: every request reads its credentials (the worst case).
    uncached = Settings(pool_min=1, pool_max=4, auth_cache_seconds=0)
    async with gateway_client(
        database_url, settings=uncached, connection_class=CountingConnection
    ) as client:
        for n, payload in enumerate(
            (
                {"ids": tenant.ids[:1]},
                {"ids": tenant.ids[1:1000]},
                {"ids": tenant.ids[1000:], "externalIds": ["x"] * 999},
            )
        ):
            CountingCursor.statements.clear()
            response = await delete(client, tenant, payload, timestamp=NOW_MS + n)
            assert response.status_code == 200
            counts.append(len(CountingCursor.statements))
        last = list(CountingCursor.statements)
        CountingCursor.statements.clear()
    # the credentials lookup, then one statement: replay record, delete with its archive,
    # and audit together
    assert counts == [2, 2, 2]
    assert last == ["SELECT", "WITH"]
    # the keys that verified requests are written by the process, not by each request: one
    # statement for them all (at the latest a minute later; here as it stops)
    assert CountingCursor.statements == ["UPDATE"]
    assert await product_count(pool, tenant) == (0, 0)


async def test_a_cached_partner_costs_one_statement_rate_limit_included(
    database_url: str, pool: catalog_store.Pool
) -> None:
    """With the credentials cached, a deletion is one statement: the replay record (which also
    counts the rate limit), the delete with its archive, and the audit; no statement of its own
    for the rate limit."""
    tenant = await make_tenant(pool, products=3, name="cached")
    limited = Settings(pool_min=1, pool_max=4, rate_limit_requests=50, auth_cache_seconds=60)
    counts = []
    async with gateway_client(
        database_url, settings=limited, connection_class=CountingConnection
    ) as client:
        for n in range(3):
            CountingCursor.statements.clear()
            response = await delete(
                client, tenant, {"ids": tenant.ids[n : n + 1]}, timestamp=NOW_MS + n
            )
            assert response.status_code == 200
            counts.append(list(CountingCursor.statements))
    # credentials (first request only), then the one statement
    assert counts == [["SELECT", "WITH"], ["WITH"], ["WITH"]]


_EXTERNAL_IDS = "must be an array of strings of 1 to 255 characters"
_AN_OBJECT = 'must be a JSON object such as {"ids": ["<product uuid>"]}'


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        ({}, {"ids": "at least one id or external id is required"}),
        ({"ids": [], "externalIds": []}, {"ids": "at least one id or external id is required"}),
        ({"ids": "abc"}, {"ids": "must be an array of strings; got a string"}),
        ({"ids": [1]}, {"ids": "must be an array of strings; ids[0] is a number"}),
        (
            {"externalIds": [""]},
            {"externalIds": _EXTERNAL_IDS + "; externalIds[0] is empty"},
        ),
        (
            {"externalIds": ["x" * 256]},
            {"externalIds": _EXTERNAL_IDS + "; externalIds[0] has 256 characters"},
        ),
        (
            {"dispatch": "yes", "ids": ["a"]},
            {"dispatch": "must be true or false; got a string"},
        ),
        (
            {"externalIDs": ["a"]},
            {
                "externalIDs": "is not a field of this request;"
                " expected ids, externalIds, dispatch, dryRun"
            },
        ),
        (["a"], {"body": _AN_OBJECT + "; got an array"}),
        (
            {"ids": [], "externalIds": [], "dispatch": True},
            {"ids": "at least one id or external id is required"},
        ),
        (
            {"externalIds": ["b"] * 100_001},
            {"externalIds": "must have at most 100,000 entries; got 100,001"},
        ),
        (
            {"ids": ["a"] * 50_001, "externalIds": ["b"] * 50_000},
            {"ids": "at most 100,000 entries in all; got 100,001"},
        ),
    ],
)
async def test_bad_bodies_are_val_001_naming_the_field(
    database_url: str,
    pool: catalog_store.Pool,
    tenant: Tenant,
    payload: Any,
    errors: dict[str, str],
) -> None:
    async with gateway_client(database_url) as client:
        response = await delete(client, tenant, payload)
    assert_error(
        response,
        400,
        "VAL_001",
        "Validation failed",
        hint="Fix the fields named in context.validationErrors",
        context={"validationErrors": errors},
    )
    assert await product_count(pool, tenant) == (20, 40)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", 'is empty: send a JSON object such as {"ids": ["<product uuid>"]}'),
        (b" \r\n", 'is empty: send a JSON object such as {"ids": ["<product uuid>"]}'),
        (b"{", "is not valid JSON"),
        (b"\xff\xfe", "is not valid JSON: JSON text must be encoded in UTF-8"),
        (b'{"ids": ["a",]}', "is not valid JSON"),
        (b'{"ids": ["\xff"]}', "is not valid JSON: JSON text must be encoded in UTF-8"),
        (b'{"ids": ["a"]} x', "is not valid JSON"),
        (b"null", _AN_OBJECT + "; got null"),
        (b'"ids"', _AN_OBJECT + "; got a string"),
        (b"true", _AN_OBJECT + "; got a boolean"),
        (b"12", _AN_OBJECT + "; got a number"),
    ],
)
async def test_bodies_that_are_not_json_objects_are_val_001(
    database_url: str, tenant: Tenant, raw: bytes, reason: str
) -> None:
    async with gateway_client(database_url) as client:
        response = await client.post(
            DELETIONS, content=raw, headers=signed_headers(tenant, body=raw)
        )
    assert_error(
        response,
        400,
        "VAL_001",
        "Validation failed",
        context={"validationErrors": {"body": reason}},
    )


async def test_a_replayed_request_is_auth_006_even_with_a_bad_body(
    database_url: str, tenant: Tenant
) -> None:
    """Step 6 comes before the body is read as JSON; a VAL_001 request is spent all the same."""
    good = body_of({"ids": tenant.ids[:1]})
    headers = signed_headers(tenant, body=good)
    bad = b"{"
    bad_headers = signed_headers(tenant, body=bad, timestamp=NOW_MS + 1)
    async with gateway_client(database_url) as client:
        assert (await client.post(DELETIONS, content=good, headers=headers)).status_code == 200
        bad_first = await client.post(DELETIONS, content=bad, headers=bad_headers)
        bad_again = await client.post(DELETIONS, content=bad, headers=bad_headers)
        # A replay of the accepted request with a different body no longer matches its
        # signature: AUTH_002, never a second deletion.
        replay = await client.post(DELETIONS, content=good, headers=headers)
    assert bad_first.json()["error"]["code"] == "VAL_001"
    assert_error(bad_again, 401, "AUTH_006", "Replayed request")
    assert_error(replay, 401, "AUTH_006", "Replayed request")


async def test_body_over_8_mib_is_val_002_before_reading_it_all(
    database_url: str, tenant: Tenant
) -> None:
    """The gateway stops pulling a streamed body once 8 MiB have passed."""
    chunk = b" " * (1024 * 1024)
    pulled = 0

    async def stream() -> Any:
        nonlocal pulled
        for _ in range(64):
            pulled += 1
            yield chunk

    headers = signed_headers(tenant, body=b"")
    async with gateway_client(database_url) as client:
        response = await client.post(DELETIONS, content=stream(), headers=headers)
    assert_error(
        response,
        413,
        "VAL_002",
        "Request body too large",
        hint="Send a body of at most 8 MiB",
        context={"limitBytes": 8 * 1024 * 1024},
    )
    assert pulled <= 10


async def test_declared_content_length_over_8_mib_is_val_002_at_once(
    database_url: str, tenant: Tenant
) -> None:
    body = b" " * (8 * 1024 * 1024 + 1)
    async with gateway_client(database_url) as client:
        response = await client.post(DELETIONS, content=body, headers=signed_headers(tenant))
    assert_error(
        response,
        413,
        "VAL_002",
        "Request body too large",
        context={"limitBytes": 8 * 1024 * 1024, "contentLength": len(body)},
    )


async def test_exactly_8_mib_is_not_too_large(database_url: str, tenant: Tenant) -> None:
    payload = body_of({"ids": tenant.ids[:1]})
    body = payload + b" " * (8 * 1024 * 1024 - len(payload))
    async with gateway_client(database_url) as client:
        response = await client.post(
            DELETIONS, content=body, headers=signed_headers(tenant, body=body)
        )
    assert response.status_code == 200


async def test_meta_duration_and_timestamp_come_from_the_clock(
    database_url: str, tenant: Tenant
) -> None:
    async with gateway_client(database_url, FakeClock(NOW_MS + 1234)) as client:
        response = await delete(client, tenant, {"ids": tenant.ids[:1]})
    meta = response.json()["meta"]
    assert ISO_MS.fullmatch(meta["timestamp"])
    assert meta["timestamp"] == "2025-09-17T09:12:31.692Z"
