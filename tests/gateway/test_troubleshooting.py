"""docs/troubleshooting.md, mistake by mistake: each one gets the error the page says it gets.

(The body over 8 MiB and the database being down are in test_deletions and test_routes.)"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import signing
from tests.support import (
    DELETIONS,
    NOW_MS,
    Tenant,
    assert_error,
    gateway_client,
    signed_headers,
)

pytestmark = pytest.mark.anyio

Request = tuple[str, str, bytes, dict[str, str]]  # method, target, body, headers


def _post(tenant: Tenant, payload: Any, **sign: Any) -> Request:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return "POST", DELETIONS, body, signed_headers(tenant, body=body, **sign)


def seconds(t: Tenant) -> Request:
    return _post(t, {"ids": t.ids[:1]}, timestamp=NOW_MS // 1000)


def clock_off(t: Tenant) -> Request:
    return _post(t, {"ids": t.ids[:1]}, timestamp=NOW_MS - 301_000)


def reserialised(t: Tenant) -> Request:
    _, target, body, headers = _post(t, {"ids": t.ids[:2]})
    return "POST", target, json.dumps(json.loads(body)).encode(), headers  # ", " and ": "


def query_resorted(t: Tenant) -> Request:
    path = DELETIONS + "/b1"
    headers = signed_headers(t, method="GET", path=path, query="limit=5&cursor=x")
    return "GET", path + "?cursor=x&limit=5", b"", headers


def query_reencoded(t: Tenant) -> Request:
    path = DELETIONS + "/b1"
    headers = signed_headers(t, method="GET", path=path, query="cursor=a%2Bb")
    return "GET", path + "?cursor=a+b", b"", headers


def trailing_slash(t: Tenant) -> Request:
    _, _, body, headers = _post(t, {"ids": t.ids[:1]})
    return "POST", DELETIONS + "/", body, headers


def lower_case_method_by_hand(t: Tenant) -> Request:
    body = json.dumps({"ids": t.ids[:1]}).encode()
    message = "\n".join(
        [
            "post",
            DELETIONS,
            "",
            t.partner_client_id,
            t.store_client_id,
            t.token,
            str(NOW_MS),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    headers = signed_headers(t, body=body)
    headers["x-signature"] = signing.sign(t.secret, message)
    return "POST", DELETIONS, body, headers


def wrong_secret(t: Tenant) -> Request:
    return _post(t, {"ids": t.ids[:1]}, secret=t.secret + "\n")


def wrong_partner(t: Tenant) -> Request:
    method, target, body, headers = _post(t, {"ids": t.ids[:1]})
    return method, target, body, {**headers, "x-partner-client-id": "1" + t.partner_client_id}


def token_of_another_store(t: Tenant) -> Request:
    # Signed correctly, but the token was not issued by the store named in the request.
    elsewhere = Tenant(**{**t.__dict__, "store_client_id": "1" + t.store_client_id})
    return _post(elsewhere, {"ids": t.ids[:1]})


def missing_header(t: Tenant) -> Request:
    method, target, body, headers = _post(t, {"ids": t.ids[:1]})
    del headers["x-store-token"]
    return method, target, body, headers


def too_many_entries(t: Tenant) -> Request:
    return _post(t, {"ids": t.ids * 5_001})  # 100,020 entries


def unknown_field(t: Tenant) -> Request:
    return _post(t, {"externalIDs": t.external_ids[:1]})


MISTAKES: list[tuple[Callable[[Tenant], Request], int, str, str]] = [
    (seconds, 401, "AUTH_003", "looks like seconds: send Unix time in milliseconds"),
    (clock_off, 401, "AUTH_003", "Request timestamp must be within 300 seconds"),
    (reserialised, 401, "AUTH_002", "context.bodySha256"),
    (query_resorted, 401, "AUTH_002", "context.stringToSign"),
    (query_reencoded, 401, "AUTH_002", "context.stringToSign"),
    (trailing_slash, 404, "ROUTE_001", "See /docs for the routes of this API"),
    (lower_case_method_by_hand, 401, "AUTH_002", "context.stringToSign"),
    (wrong_secret, 401, "AUTH_002", "context.stringToSign"),
    (wrong_partner, 401, "AUTH_004", "x-partner-client-id"),
    (token_of_another_store, 403, "AUTH_005", "the token that this store issued to you"),
    (missing_header, 401, "AUTH_001", "x-store-token"),
    (too_many_entries, 400, "VAL_001", "context.validationErrors"),
    (unknown_field, 400, "VAL_001", "context.validationErrors"),
]


@pytest.mark.parametrize(
    ("mistake", "status", "code", "says"), MISTAKES, ids=[m[0].__name__ for m in MISTAKES]
)
async def test_the_mistake_gets_the_documented_error(
    database_url: str,
    tenant: Tenant,
    mistake: Callable[[Tenant], Request],
    status: int,
    code: str,
    says: str,
) -> None:
    method, target, body, headers = mistake(tenant)
    async with gateway_client(database_url) as client:
        response = await client.request(method, target, content=body, headers=headers)
    got = assert_error(response, status, code, response.json()["error"]["message"])
    assert says in got["error"]["details"]["hint"]


async def test_the_same_request_twice_is_a_replay(database_url: str, tenant: Tenant) -> None:
    method, target, body, headers = _post(tenant, {"ids": tenant.ids[:1]})
    async with gateway_client(database_url) as client:
        first = await client.request(method, target, content=body, headers=headers)
        second = await client.request(method, target, content=body, headers=headers)
    assert first.status_code == 200
    got = assert_error(second, 401, "AUTH_006", "Replayed request")
    assert "sign a retry anew with a fresh x-timestamp" in got["error"]["details"]["hint"]


async def test_an_id_that_is_not_a_uuid_is_an_item_error(database_url: str, tenant: Tenant) -> None:
    method, target, body, headers = _post(tenant, {"ids": [tenant.ids[0][:-1]]})
    async with gateway_client(database_url) as client:
        response: httpx.Response = await client.request(
            method, target, content=body, headers=headers
        )
    assert response.json()["data"]["errors"][0]["code"] == "PRD_017"
