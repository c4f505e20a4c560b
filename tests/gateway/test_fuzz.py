"""Hypothesis against the live app: arbitrary headers and bodies never get a 500, and nothing is
deleted by a request that the partner did not sign exactly as sent."""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import catalog_store
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
    pool: catalog_store.Pool,
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
        elif kind == "flip" and headers.get(name):  # an earlier "set" may have emptied it
            old = headers[name]
            headers[name] = old[:-1] + ("0" if old[-1] != "0" else "1")
        elif kind == "body":
            body = value
        elif kind == "json":
            body = body_of(value)
    # Judged on the request as sent: two flips of one header can give back the signed value.
    changed = (headers, body) != signed
    before = await catalog_store.count_products(pool, store_id=tenant.store_id)
    response = await client.post(
        DELETIONS,
        content=body,
        headers=[(k.encode(), v.encode("latin-1")) for k, v in headers.items()],
    )
    after = await catalog_store.count_products(pool, store_id=tenant.store_id)
    assert response.status_code != 500, response.text
    assert response.status_code in {200, 400, 401, 403, 413}
    assert response.json()["requestId"] == response.headers["x-request-id"]
    if changed:
        assert response.status_code != 200, "a request changed after signing was accepted"
    else:
        assert response.status_code == 200, response.text
    if response.status_code != 200:
        assert after == before


_query_name = st.sampled_from(["dryRun", "dispatch", "ids", "limit", "cursor", "x", "%64ryRun"])
_query = st.lists(
    st.tuples(_query_name, st.sampled_from(["", "=true", "=1", "=%00", "=eyJvIjowfQ"])),
    min_size=1,
    max_size=3,
).map(lambda pairs: "&".join(name + value for name, value in pairs))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(query=_query)
async def test_a_signed_deletion_with_any_query_is_val_001_and_deletes_nothing(
    client: httpx.AsyncClient, pool: catalog_store.Pool, tenant: Tenant, query: str
) -> None:
    """The deletion route defines no query parameter: whatever the URL says, nothing goes."""
    body = body_of({"ids": tenant.ids[:1]})
    headers = signed_headers(tenant, body=body, query=query, timestamp=NOW_MS - next(_counter))
    before = await catalog_store.count_products(pool, store_id=tenant.store_id)
    response = await client.post(f"{DELETIONS}?{query}", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "VAL_001"
    assert await catalog_store.count_products(pool, store_id=tenant.store_id) == before


def _made_by_the_route(cursor: str) -> bool:
    """Whether ``cursor`` is one the batch route hands out: {"o":N} in unpadded base64url."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", cursor):
        return False
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except ValueError:
        return False
    match = re.fullmatch(rb'\{"o":(0|[1-9][0-9]{0,9})\}', raw)
    canonical = base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == cursor
    return match is not None and int(match.group(1)) <= 10**9 and canonical


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    cursor=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)
    | st.binary(max_size=40).map(lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("="))
    | st.integers(-5, 2 * 10**9).map(
        lambda n: base64.urlsafe_b64encode(b'{"o":%d}' % n).decode().rstrip("=")
    )
)
async def test_any_signed_page_cursor_is_read_or_val_001_never_a_500(
    client: httpx.AsyncClient, tenant: Tenant, cursor: str
) -> None:
    """Only a cursor the route hands out is read (here: a batch not found); any other is
    VAL_001 naming it."""
    path = DELETIONS + "/946b3ffa-5f9e-412e-acf4-eea306736e63"
    query = "cursor=" + quote(cursor, safe="")
    headers = signed_headers(
        tenant, method="GET", path=path, query=query, timestamp=NOW_MS - next(_counter)
    )
    response = await client.get(f"{path}?{query}", headers=headers)
    error = response.json()["error"]
    if _made_by_the_route(cursor):
        assert (response.status_code, error["code"]) == (404, "BAT_001"), response.text
    else:
        assert (response.status_code, error["code"]) == (400, "VAL_001"), response.text
        assert error["details"]["context"] == {
            "validationErrors": {"cursor": "must be a nextCursor value returned by this endpoint"}
        }
