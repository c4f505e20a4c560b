"""The app factory hands every source of time and chance to the app: the decoy keys that top
up a partner's secrets are its (drawn per app, or given), never a module's made at import."""

from __future__ import annotations

import uuid

import pytest

import catalog_store
from catalog_store import MAX_ACTIVE_SECRETS
from gateway.app import create_app
from gateway.settings import Settings
from tests.support import (
    TEST_BOX,
    FakeClock,
    Tenant,
    assert_error,
    body_of,
    delete,
    gateway_client,
    product_count,
    signed_headers,
)

pytestmark = pytest.mark.anyio

_DECOYS = tuple(f"decoy-{n}-known-only-to-this-test".encode() for n in range(MAX_ACTIVE_SECRETS))
_MISMATCH_HINT = (
    "The signature does not match. Compare your string to sign with"
    " context.stringToSign (store token masked) and your body hash with context.bodySha256"
)


async def test_a_signature_made_with_a_decoy_key_is_refused_and_deletes_nothing(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    """The decoys given to the factory top up the partner's one secret; a request signed with
    one of them matches an HMAC the gateway computes, and is still AUTH_002."""
    body = body_of({"ids": tenant.ids[:1]})
    before = await product_count(pool, tenant)
    async with gateway_client(database_url, decoys=_DECOYS) as client:
        refused = [
            await client.post(
                "/api/v1/partner/stores/products/deletions",
                content=body,
                headers=signed_headers(tenant, body=body, secret=decoy.decode()),
            )
            for decoy in _DECOYS
        ]
        accepted = await delete(client, tenant, {"ids": tenant.ids[1:2]})
    for response in refused:
        got = assert_error(response, 401, "AUTH_002", "Invalid signature", hint=_MISMATCH_HINT)
        assert got["error"]["details"]["context"]["likelyCause"] is None
    assert accepted.status_code == 200
    assert accepted.json()["data"]["summary"] == {"total": 1, "succeeded": 1, "failed": 0}
    assert (await product_count(pool, tenant))[0] == before[0] - 1


async def test_each_app_draws_its_own_decoys_when_none_are_given(database_url: str) -> None:
    apps = [
        create_app(
            Settings(pool_min=1, pool_max=1),
            conninfo=database_url,
            clock=FakeClock(),
            secret_box=TEST_BOX,
            new_id=lambda: str(uuid.uuid4()),
        )
        for _ in range(2)
    ]
    drawn = [app.state.credentials.decoys for app in apps]
    assert drawn[0] != drawn[1]
    assert all(len(keys) == MAX_ACTIVE_SECRETS for keys in drawn)
    assert all(len(key) == 32 for keys in drawn for key in keys)
