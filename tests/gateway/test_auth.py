"""Contract §2: each authentication check, in its order, with the exact answer a partner sees."""

from __future__ import annotations

import hashlib

import pytest

import catalog_store
from tests.support import (
    DELETIONS,
    NOW_MS,
    TEST_BOX,
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

ALL_HEADERS = [
    "x-partner-client-id",
    "x-store-client-id",
    "x-store-token",
    "x-timestamp",
    "x-signature",
]


async def test_no_headers_at_all_is_auth_001_listing_all_five(database_url: str) -> None:
    async with gateway_client(database_url) as client:
        response = await client.post(DELETIONS, content=b'{"ids":["x"]}')
    assert_error(
        response,
        401,
        "AUTH_001",
        "Missing or malformed authentication headers",
        context={"missingHeaders": ALL_HEADERS, "invalidHeaders": [], "headerErrors": {}},
    )


@pytest.mark.parametrize("missing", ALL_HEADERS)
async def test_each_missing_header_is_named(
    database_url: str, tenant: Tenant, missing: str
) -> None:
    body = body_of({"ids": tenant.ids[:1]})
    headers = signed_headers(tenant, body=body)
    del headers[missing]
    async with gateway_client(database_url) as client:
        response = await client.post(DELETIONS, content=body, headers=headers)
    got = assert_error(response, 401, "AUTH_001", "Missing or malformed authentication headers")
    assert got["error"]["details"]["context"]["missingHeaders"] == [missing]


@pytest.mark.parametrize(
    ("header", "value", "why"),
    [
        ("x-timestamp", "1758100350.458", "must be Unix time in milliseconds"),
        ("x-timestamp", "-1758100350458", "must be Unix time in milliseconds"),
        ("x-timestamp", "17581003504580000000", "must be Unix time in milliseconds"),
        ("x-timestamp", "", "must be Unix time in milliseconds"),
        ("x-signature", "abc", "64-character hex"),
        ("x-signature", "g" * 64, "64-character hex"),
        ("x-partner-client-id", "p" * 129, "longer than 128"),
        ("x-store-token", "t" * 513, "longer than 512"),
        ("x-store-client-id", "caf\u00e9", "printable ASCII"),
        ("x-partner-client-id", "", "is empty"),
    ],
)
async def test_malformed_header_is_auth_001_with_the_reason(
    database_url: str, tenant: Tenant, header: str, value: str, why: str
) -> None:
    body = body_of({"ids": tenant.ids[:1]})
    headers = signed_headers(tenant, body=body)
    headers[header] = value
    async with gateway_client(database_url) as client:
        response = await client.post(
            DELETIONS,
            content=body,
            headers=[(k.encode(), v.encode("utf-8")) for k, v in headers.items()],
        )
    got = assert_error(response, 401, "AUTH_001", "Missing or malformed authentication headers")
    context = got["error"]["details"]["context"]
    assert context["missingHeaders"] == []
    assert context["invalidHeaders"] == [header]
    assert why in context["headerErrors"][header]
    assert why in got["error"]["details"]["hint"]
    assert await product_count_unchanged(database_url, tenant)


async def test_a_header_sent_twice_is_auth_001(database_url: str, tenant: Tenant) -> None:
    body = body_of({"ids": tenant.ids[:1]})
    headers = list(signed_headers(tenant, body=body).items()) + [("x-timestamp", str(NOW_MS))]
    async with gateway_client(database_url) as client:
        response = await client.post(DELETIONS, content=body, headers=headers)
    got = assert_error(response, 401, "AUTH_001", "Missing or malformed authentication headers")
    assert got["error"]["details"]["context"]["headerErrors"] == {
        "x-timestamp": "is sent more than once"
    }


async def product_count_unchanged(database_url: str, tenant: Tenant) -> bool:
    pool = catalog_store.create_pool(database_url, min_size=1, max_size=1)
    await pool.open(wait=True)
    try:
        return await product_count(pool, tenant) == (20, 40)
    finally:
        await pool.close()


@pytest.mark.parametrize(
    ("skew_ms", "age", "clock"),
    [
        (300_001, 300, "300 s behind"),
        (-300_001, -300, "300 s ahead of"),
        (361_000, 361, "361 s behind"),
        (-361_999, -361, "361 s ahead of"),
        (86_400_000, 86_400, "86400 s behind"),
    ],
)
async def test_timestamp_outside_the_window_is_auth_003_and_says_how_far_the_clock_is(
    database_url: str, tenant: Tenant, skew_ms: int, age: int, clock: str
) -> None:
    """The hint keeps its sentence and says, in words, how far the partner's clock is from the
    gateway's (the request is stamped NOW_MS; the gateway's clock is NOW_MS + skew)."""
    gateway_clock = FakeClock(NOW_MS + skew_ms)
    async with gateway_client(database_url, gateway_clock) as client:
        response = await delete(client, tenant, {"ids": tenant.ids[:1]})
    assert_error(
        response,
        401,
        "AUTH_003",
        "Expired or invalid timestamp",
        hint="Request timestamp must be within 300 seconds."
        f" By the x-timestamp sent, your clock is {clock} the gateway's",
        context={"providedTimestamp": NOW_MS, "currentTime": NOW_MS + skew_ms, "ageSeconds": age},
    )


async def test_timestamp_at_the_edge_of_the_window_is_accepted(
    database_url: str, tenant: Tenant
) -> None:
    async with gateway_client(database_url, FakeClock(NOW_MS + 300_000)) as client:
        response = await delete(client, tenant, {"ids": tenant.ids[:1]})
    assert response.status_code == 200


async def test_timestamp_in_seconds_gets_the_milliseconds_hint(
    database_url: str, tenant: Tenant
) -> None:
    seconds = NOW_MS // 1000
    async with gateway_client(database_url) as client:
        response = await delete(client, tenant, {"ids": tenant.ids[:1]}, timestamp=seconds)
    assert_error(
        response,
        401,
        "AUTH_003",
        "Expired or invalid timestamp",
        hint="Request timestamp must be within 300 seconds. x-timestamp 1758100350 looks like"
        " seconds: send Unix time in milliseconds, e.g. 1758100350000",
        context={
            "providedTimestamp": seconds,
            "currentTime": NOW_MS,
            "ageSeconds": (NOW_MS - seconds) // 1000,
        },
    )


async def test_unknown_partner_is_auth_004(database_url: str, tenant: Tenant) -> None:
    body = body_of({"ids": tenant.ids[:1]})
    headers = signed_headers(tenant, body=body)
    headers["x-partner-client-id"] = "9999999999999999999999"
    async with gateway_client(database_url) as client:
        response = await client.post(DELETIONS, content=body, headers=headers)
    assert_error(response, 401, "AUTH_004", "Unknown or inactive partner", context={})


async def test_inactive_partner_is_auth_004(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    async with catalog_store.connection(pool) as conn:
        await conn.execute("UPDATE partners SET active = false WHERE id = %s", (tenant.partner_id,))
    async with gateway_client(database_url) as client:
        response = await delete(client, tenant, {"ids": tenant.ids[:1]})
    assert_error(response, 401, "AUTH_004", "Unknown or inactive partner")
    assert await product_count(pool, tenant) == (20, 40)


async def test_wrong_secret_is_auth_002_with_the_servers_string_to_sign(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    body = body_of({"ids": tenant.ids[:1]})
    headers = signed_headers(tenant, body=body, secret="not-the-secret")
    async with gateway_client(database_url) as client:
        response = await client.post(DELETIONS, content=body, headers=headers)
    got = assert_error(response, 401, "AUTH_002", "Invalid signature")
    context = got["error"]["details"]["context"]
    masked = tenant.token[:4] + "*" * (len(tenant.token) - 4)
    assert context == {
        "stringToSign": "\n".join(
            [
                "POST",
                DELETIONS,
                "",
                tenant.partner_client_id,
                tenant.store_client_id,
                masked,
                str(NOW_MS),
                hashlib.sha256(body).hexdigest(),
            ]
        ),
        "bodySha256": hashlib.sha256(body).hexdigest(),
        "bodyLength": len(body),
        "signatureProvided": headers["x-signature"],
        "likelyCause": None,
    }
    assert tenant.token not in response.text
    assert tenant.secret not in response.text
    assert await product_count(pool, tenant) == (20, 40)


async def test_body_changed_after_signing_is_auth_002(database_url: str, tenant: Tenant) -> None:
    signed = body_of({"ids": tenant.ids[:1]})
    sent = body_of({"ids": tenant.ids[:2]})
    async with gateway_client(database_url) as client:
        response = await client.post(
            DELETIONS, content=sent, headers=signed_headers(tenant, body=signed)
        )
    got = assert_error(response, 401, "AUTH_002", "Invalid signature")
    assert got["error"]["details"]["context"]["bodySha256"] == (hashlib.sha256(sent).hexdigest())


async def test_token_of_another_store_is_auth_005(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    other = await make_tenant(pool, name="other")
    # The partner signs with its own secret but carries a token another store issued to
    # another partner.
    tenant_with_foreign_token = Tenant(**{**tenant.__dict__, "token": other.token})
    async with gateway_client(database_url) as client:
        response = await delete(client, tenant_with_foreign_token, {"ids": tenant.ids[:1]})
    assert_error(
        response, 403, "AUTH_005", "Store token not valid for this partner and store", context={}
    )


async def test_token_the_store_issued_to_another_partner_is_auth_005(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    rival = await catalog_store.create_partner(pool, "rival", box=TEST_BOX)
    rival_token = await catalog_store.issue_token(
        pool, partner_client_id=rival.client_id, store_client_id=tenant.store_client_id
    )
    borrowed = Tenant(**{**tenant.__dict__, "token": rival_token.token})
    async with gateway_client(database_url) as client:
        response = await delete(client, borrowed, {"ids": tenant.ids[:1]})
    assert_error(response, 403, "AUTH_005", "Store token not valid for this partner and store")
    assert await product_count(pool, tenant) == (20, 40)


async def test_revoked_token_is_auth_005(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    async with catalog_store.connection(pool) as conn:
        await conn.execute("UPDATE store_tokens SET revoked_at = now()")
    async with gateway_client(database_url) as client:
        response = await delete(client, tenant, {"ids": tenant.ids[:1]})
    assert_error(response, 403, "AUTH_005", "Store token not valid for this partner and store")


async def test_token_without_the_scope_is_auth_005_naming_it(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    token = await catalog_store.issue_token(
        pool,
        partner_client_id=tenant.partner_client_id,
        store_client_id=tenant.store_client_id,
        scopes=("products:read",),
    )
    narrow = Tenant(**{**tenant.__dict__, "token": token.token})
    async with gateway_client(database_url) as client:
        response = await delete(client, narrow, {"ids": tenant.ids[:1]})
    assert_error(
        response,
        403,
        "AUTH_005",
        "Store token not valid for this partner and store",
        hint="This token lacks the scope products:delete; ask the store for a token that has it",
        context={"missingScope": "products:delete"},
    )


async def test_the_same_signed_request_twice_is_auth_006(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    body = body_of({"ids": tenant.ids[:1]})
    headers = signed_headers(tenant, body=body)
    async with gateway_client(database_url) as client:
        first = await client.post(DELETIONS, content=body, headers=headers)
        again = await client.post(DELETIONS, content=body, headers=headers)
        upper = await client.post(
            DELETIONS,
            content=body,
            headers={**headers, "x-signature": headers["x-signature"].upper()},
        )
    assert first.status_code == 200
    assert_error(again, 401, "AUTH_006", "Replayed request", context={})
    assert_error(upper, 401, "AUTH_006", "Replayed request")


async def test_a_replay_accepted_by_one_instance_is_refused_by_another(
    database_url: str, tenant: Tenant
) -> None:
    """Replay records live in PostgreSQL, so two gateway processes share them."""
    body = body_of({"ids": tenant.ids[:1]})
    headers = signed_headers(tenant, body=body)
    async with gateway_client(database_url) as one, gateway_client(database_url) as two:
        first = await one.post(DELETIONS, content=body, headers=headers)
        second = await two.post(DELETIONS, content=body, headers=headers)
    assert first.status_code == 200
    assert first.json()["data"]["summary"] == {"total": 1, "succeeded": 1, "failed": 0}
    assert_error(second, 401, "AUTH_006", "Replayed request")


async def test_checks_run_in_the_contracts_order(database_url: str, tenant: Tenant) -> None:
    """A request wrong in every way is answered for the first check it fails."""
    body = body_of({"ids": tenant.ids[:1]})
    headers = signed_headers(tenant, body=body, secret="wrong")
    headers["x-partner-client-id"] = "unknown"
    async with gateway_client(database_url, FakeClock(NOW_MS + 10**7)) as client:
        expired = await client.post(DELETIONS, content=body, headers=headers)
    async with gateway_client(database_url) as client:
        unknown = await client.post(DELETIONS, content=body, headers=headers)
    assert expired.json()["error"]["code"] == "AUTH_003"
    assert unknown.json()["error"]["code"] == "AUTH_004"
