"""Test helpers: tenants with real credentials, a settable clock, an app client, signing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import msgspec
import psycopg
from starlette.applications import Starlette

import catalog_store
import signing
from gateway.app import create_app
from gateway.jobs import defer_batch_job
from gateway.settings import Settings

T = TypeVar("T")

# One server key for the whole session, in the environment so that the `partner-gateway`
# processes the tests start open the secrets that the tests' own pools sealed.
os.environ.setdefault("GATEWAY_SECRET_KEY", catalog_store.generate_key())
TEST_BOX = catalog_store.SecretBox(catalog_store.parse_key(os.environ["GATEWAY_SECRET_KEY"]))
DELETIONS = "/api/v1/partner/stores/products/deletions"
NOW_MS = 1_758_100_350_458


@dataclass
class FakeClock:
    """A wall clock in milliseconds that tests set by hand."""

    now_ms: int = NOW_MS

    def __call__(self) -> int:
        return self.now_ms


@dataclass
class Tenant:
    partner_id: int
    partner_client_id: str
    secret: str
    store_id: int
    store_client_id: str
    token: str
    products: list[catalog_store.ProductRef] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [str(p.id) for p in self.products]

    @property
    def external_ids(self) -> list[str]:
        return [p.external_id for p in self.products if p.external_id is not None]


async def make_tenant(
    pool: catalog_store.Pool, *, products: int = 0, variants: int = 2, name: str = "t"
) -> Tenant:
    partner = await catalog_store.create_partner(pool, f"partner {name}", box=TEST_BOX)
    store = await catalog_store.create_store(pool, f"store {name}")
    token = await catalog_store.issue_token(
        pool, partner_client_id=partner.client_id, store_client_id=store.client_id
    )
    refs = (
        await catalog_store.seed_products(
            pool, store_client_id=store.client_id, count=products, variants=variants
        )
        if products
        else []
    )
    return Tenant(
        partner_id=partner.id,
        partner_client_id=partner.client_id,
        secret=partner.secret,
        store_id=store.id,
        store_client_id=store.client_id,
        token=token.token,
        products=refs,
    )


def run_with_pool(database_url: str, work: Callable[[catalog_store.Pool], Awaitable[T]]) -> T:
    """Run store work from a synchronous test (one that drives real processes)."""

    async def go() -> T:
        pool = catalog_store.create_pool(database_url, min_size=1, max_size=1)
        await pool.open(wait=True)
        try:
            return await work(pool)
        finally:
            await pool.close()

    return asyncio.run(go())


def signed_headers(
    tenant: Tenant,
    *,
    method: str = "POST",
    path: str = DELETIONS,
    query: str = "",
    body: bytes = b"",
    timestamp: int | str = NOW_MS,
    secret: str | None = None,
) -> dict[str, str]:
    ts = str(timestamp)
    signature = signing.sign_request(
        secret if secret is not None else tenant.secret,
        method=method,
        path=path,
        query=query,
        partner_client_id=tenant.partner_client_id,
        store_client_id=tenant.store_client_id,
        store_token=tenant.token,
        timestamp=ts,
        body=body,
    )
    return {
        "x-partner-client-id": tenant.partner_client_id,
        "x-store-client-id": tenant.store_client_id,
        "x-store-token": tenant.token,
        "x-timestamp": ts,
        "x-signature": signature,
        "content-type": "application/json",
    }


def body_of(payload: Any) -> bytes:
    return msgspec.json.encode(payload)


@contextlib.asynccontextmanager
async def gateway_app(
    database_url: str,
    clock: FakeClock | None = None,
    *,
    settings: Settings | None = None,
    connection_class: type[psycopg.AsyncConnection[Any]] = psycopg.AsyncConnection,
    cache_clock: Callable[[], float] | None = None,
    secret_box: catalog_store.SecretBox = TEST_BOX,
    **edges: Any,
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """An app with its own pool (as one gateway process), lifespan run, and a client on the
    in-process transport; the app too, for a test that reads its state (its pool). ``edges``
    are more of the factory's clocks and sources (``new_id``, ``timer``...)."""
    if cache_clock is not None:
        edges["cache_clock"] = cache_clock
    app = create_app(
        settings or Settings(pool_min=1, pool_max=4),
        conninfo=database_url,
        clock=clock or FakeClock(),
        connection_class=connection_class,
        secret_box=secret_box,
        **edges,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield app, client


@contextlib.asynccontextmanager
async def gateway_client(
    database_url: str,
    clock: FakeClock | None = None,
    *,
    settings: Settings | None = None,
    connection_class: type[psycopg.AsyncConnection[Any]] = psycopg.AsyncConnection,
    cache_clock: Callable[[], float] | None = None,
    **edges: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """:func:`gateway_app`'s client alone."""
    async with gateway_app(
        database_url,
        clock,
        settings=settings,
        connection_class=connection_class,
        cache_clock=cache_clock,
        **edges,
    ) as (_, client):
        yield client


def nonce_of(tenant: Tenant, n: int) -> catalog_store.Nonce:
    """The tenant's replay record number ``n`` (its signature is ``n``'s bytes), valid for ever."""
    return catalog_store.Nonce(tenant.partner_id, n.to_bytes(32, "big"), 4_000_000_000_000, NOW_MS)


async def dispatch_batch(
    pool: catalog_store.Pool,
    tenant: Tenant,
    ids: list[str],
    external_ids: list[str],
    n: int = 1,
    *,
    request_id: uuid.UUID | None = None,
) -> catalog_store.Batch:
    """Store a batch of the tenant's and defer its job, as a dispatched request does, in a
    request transaction of its own with replay record ``n``."""
    async with catalog_store.request_transaction(
        pool,
        store_id=tenant.store_id,
        nonce=nonce_of(tenant, n),
        request_id=request_id or uuid.uuid4(),
    ) as tx:
        return await catalog_store.create_batch(
            tx,
            batch_id=uuid.uuid4(),
            ids=ids,
            external_ids=external_ids,
            defer_job=defer_batch_job,
        )


async def delete(
    client: httpx.AsyncClient,
    tenant: Tenant,
    payload: Any,
    *,
    timestamp: int = NOW_MS,
) -> httpx.Response:
    body = body_of(payload)
    return await client.post(
        DELETIONS, content=body, headers=signed_headers(tenant, body=body, timestamp=timestamp)
    )


async def product_count(pool: catalog_store.Pool, tenant: Tenant) -> tuple[int, int]:
    return await catalog_store.count_products(pool, store_id=tenant.store_id)


def assert_error(
    response: httpx.Response,
    status: int,
    code: str,
    message: str,
    *,
    hint: str | None = None,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The error envelope of docs/api.md, exactly; returns the parsed body."""
    body: dict[str, Any] = response.json()
    assert response.status_code == status, body
    assert response.headers["content-type"] == "application/json"
    assert set(body) == {"success", "requestId", "error"}
    assert body["success"] is False
    assert body["requestId"] == response.headers["x-request-id"]
    assert str(uuid.UUID(body["requestId"])) == body["requestId"]
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert (error["code"], error["message"]) == (code, message)
    assert set(error["details"]) == {"timestamp", "hint", "context"}
    assert ISO_MS.fullmatch(error["details"]["timestamp"])
    assert error["details"]["hint"]
    if hint is not None:
        assert error["details"]["hint"] == hint
    if context is not None:
        assert error["details"]["context"] == context
    return body


ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
