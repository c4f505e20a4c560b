"""Hypothesis against the live app: arbitrary headers and bodies never get a 500, and nothing is
deleted by a request that the partner did not sign exactly as sent."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import catalog_store as store
from tests.support import DELETIONS, NOW_MS, Tenant, body_of, gateway_client, signed_headers

pytestmark = pytest.mark.anyio

_HEADER_NAMES = [
    "x-partner-client-id",
    "x-store-client-id",
    "x-store-token",
    "x-timestamp",
    "x-signature",
]
_header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80)
_mutation = st.one_of(
    st.tuples(st.just("drop"), st.sampled_from(_HEADER_NAMES), st.none()),
    st.tuples(st.just("set"), st.sampled_from(_HEADER_NAMES), _header_text),
    st.tuples(st.just("flip"), st.sampled_from(["x-signature", "x-timestamp"]), st.none()),
    st.tuples(st.just("body"), st.none(), st.binary(max_size=200)),
    st.tuples(
        st.just("json"),
        st.none(),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(
                    st.sampled_from(["ids", "externalIds", "dispatch", "x"]), inner, max_size=3
                )
            ),
            max_leaves=10,
        ),
    ),
)
_counter = itertools.count(1)


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(database_url) as c:
        yield c


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutations=st.lists(_mutation, max_size=3), take=st.integers(0, 5))
async def test_arbitrary_requests_never_500_and_never_delete_unless_signed(
    client: httpx.AsyncClient,
    pool: store.Pool,
    tenant: Tenant,
    mutations: list[tuple[str, Any, Any]],
    take: int,
) -> None:
    body = body_of({"ids": tenant.ids[:take], "externalIds": tenant.external_ids[-take:]})
    timestamp = NOW_MS - next(_counter)  # unique, so only a mutation can make it a replay
    headers = signed_headers(tenant, body=body, timestamp=timestamp)
    signed = (dict(headers), body)
    for kind, name, value in mutations:
        if kind == "drop":
            headers.pop(name, None)
        elif kind == "set":
            headers[name] = value
        elif kind == "flip" and name in headers:
            old = headers[name]
            headers[name] = old[:-1] + ("0" if old[-1] != "0" else "1")
        elif kind == "body":
            body = value
        elif kind == "json":
            body = body_of(value)
    # Judged on the request as sent: two flips of one header can give back the signed value.
    changed = (headers, body) != signed
    before = await store.count_products(pool, store_id=tenant.store_id)
    response = await client.post(
        DELETIONS,
        content=body,
        headers=[(k.encode(), v.encode("latin-1")) for k, v in headers.items()],
    )
    after = await store.count_products(pool, store_id=tenant.store_id)
    assert response.status_code != 500, response.text
    assert response.status_code in {200, 400, 401, 403, 413}
    assert response.json()["requestId"] == response.headers["x-request-id"]
    if changed:
        assert response.status_code != 200, "a request changed after signing was accepted"
    else:
        assert response.status_code == 200, response.text
    if response.status_code != 200:
        assert after == before
