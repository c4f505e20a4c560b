"""One table of entry cases, each sent both ways: as a synchronous deletion (HTTP 200) and as a
dispatched batch (HTTP 202, its chunks run, then read with the status route). Both must report
exactly the table's outcome for every entry, whatever the chunk size of the batch."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

import catalog_store
from tests.support import (
    DELETIONS,
    NOW_MS,
    Tenant,
    delete,
    gateway_client,
    make_tenant,
    signed_headers,
)

pytestmark = pytest.mark.anyio

_UNKNOWN = "00000000-0000-4000-8000-000000000000"
_MESSAGES = {
    "PRD_014": "Product ID not found",
    "PRD_015": "Product external ID not found",
    "PRD_016": "Entry repeated earlier in the same request",
    "PRD_017": "Product ID is not a valid UUID",
}


Token = str | tuple[str, int]


@dataclass(frozen=True)
class Case:
    """Entries as sent: a literal string, or (kind, N) for product N's ``id``, its id in upper
    case (``ID``), its ``ext``ernal id, or its id as ``hex`` without dashes, in ``braces``,
    ``spaced`` (a trailing space), with a trailing ``newline`` or as a ``urn``."""

    name: str
    ids: tuple[Token, ...]
    external_ids: tuple[Token, ...]
    deleted: tuple[int, ...]  # the products reported deleted, in report order
    errors: tuple[tuple[str, str, int], ...]  # (code, "id" | "externalId", rowIndex)


CASES = [
    Case(
        "invalid ids",
        ("bad", "", ("hex", 0), ("braces", 0), ("spaced", 0), ("newline", 0), ("urn", 0)),
        (),
        (),
        tuple(("PRD_017", "id", n) for n in range(7)),
    ),
    Case(
        "an invalid id repeated",
        ("bad", "bad"),
        (),
        (),
        (("PRD_017", "id", 0), ("PRD_017", "id", 1)),
    ),
    Case("an id repeated", (("id", 0), ("id", 1), ("id", 0)), (), (0, 1), (("PRD_016", "id", 2),)),
    Case("an id in upper case", (("ID", 0),), (), (0,), ()),
    Case(
        "an id repeated in another case", (("id", 0), ("ID", 0)), (), (0,), (("PRD_016", "id", 1),)
    ),
    Case(
        "an external id repeated",
        (),
        (("ext", 2), ("ext", 3), ("ext", 2)),
        (2, 3),
        (("PRD_016", "externalId", 2),),
    ),
    Case(
        "the same product by id and by external id",
        (("id", 3), ("id", 4)),
        (("ext", 5), ("ext", 3)),
        (3, 4, 5),
        (("PRD_016", "externalId", 1),),
    ),
    Case(
        "the same product by an upper-case id and by external id",
        (("ID", 1),),
        (("ext", 1),),
        (1,),
        (("PRD_016", "externalId", 0),),
    ),
    Case(
        "not found",
        (_UNKNOWN, ("id", 0)),
        ("missing", ("ext", 1)),
        (0, 1),
        (("PRD_014", "id", 0), ("PRD_015", "externalId", 0)),
    ),
    Case(
        "an id whose product is missing, and its external id named too",
        (_UNKNOWN,),
        (("ext", 2),),
        (2,),
        (("PRD_014", "id", 0),),
    ),
    Case(
        "an id given as an external id",
        (),
        (("id", 0), ("ext", 0)),
        (0,),
        (("PRD_015", "externalId", 0),),
    ),
    Case(
        "every rule at once",
        (("id", 0), "nope", ("ID", 0), _UNKNOWN, ("id", 1)),
        (("ext", 1), ("ext", 2), "missing", ("ext", 2), ("ext", 0)),
        (0, 1, 2),
        (
            ("PRD_017", "id", 1),
            ("PRD_016", "id", 2),
            ("PRD_014", "id", 3),
            ("PRD_016", "externalId", 0),
            ("PRD_015", "externalId", 2),
            ("PRD_016", "externalId", 3),
            ("PRD_016", "externalId", 4),
        ),
    ),
]


def _entry(token: Token, tenant: Tenant) -> str:
    if isinstance(token, str):
        return token
    kind, n = token
    product = tenant.products[n]
    return {
        "id": str(product.id),
        "ID": str(product.id).upper(),
        "ext": product.external_id or "",
        "hex": product.id.hex,
        "braces": "{" + str(product.id) + "}",
        "spaced": str(product.id) + " ",
        "newline": str(product.id) + "\n",
        "urn": product.id.urn,
    }[kind]


def _expected(case: Case, tenant: Tenant, ids: list[str], ext: list[str]) -> dict[str, Any]:
    errors = [
        {
            "code": code,
            "message": _MESSAGES[code],
            "rowIndex": index,
            field: (ids if field == "id" else ext)[index],
        }
        for code, field, index in case.errors
    ]
    total = len(ids) + len(ext)
    return {
        "summary": {"total": total, "succeeded": total - len(errors), "failed": len(errors)},
        "successItems": [
            {"id": str(tenant.products[n].id), "externalId": tenant.products[n].external_id}
            for n in case.deleted
        ],
        "errors": errors,
    }


async def _twin(pool: catalog_store.Pool) -> tuple[Tenant, Tenant]:
    """Two stores holding the very same products (ids and external ids)."""
    one = await make_tenant(pool, products=6, name="sync")
    two = await make_tenant(pool, name="dispatch")
    async with catalog_store.connection(pool) as conn:
        await conn.execute(
            "INSERT INTO products (store_id, id, external_id, name)"
            " SELECT %s, id, external_id, name FROM products WHERE store_id = %s",
            (two.store_id, one.store_id),
        )
    return one, Tenant(**{**two.__dict__, "products": one.products})


async def _status(client: httpx.AsyncClient, tenant: Tenant, batch_id: str) -> httpx.Response:
    path = f"{DELETIONS}/{batch_id}"
    headers = signed_headers(tenant, method="GET", path=path, timestamp=NOW_MS + 1)
    return await client.get(path, headers=headers)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_each_entry_gets_the_same_outcome_synchronous_and_dispatched(
    database_url: str, pool: catalog_store.Pool, case: Case
) -> None:
    sync_tenant, batch_tenant = await _twin(pool)
    ids = [_entry(t, sync_tenant) for t in case.ids]
    ext = [_entry(t, sync_tenant) for t in case.external_ids]
    expected = _expected(case, sync_tenant, ids, ext)
    async with gateway_client(database_url) as client:
        sync = await delete(client, sync_tenant, {"ids": ids, "externalIds": ext})
        accepted = await delete(
            client, batch_tenant, {"ids": ids, "externalIds": ext, "dispatch": True}
        )
        batch_id = accepted.json()["data"]["batchId"]
        # One entry per chunk: every rule that spans entries is met across chunks.
        while await catalog_store.process_next_chunk(
            pool, store_id=batch_tenant.store_id, batch_id=uuid.UUID(batch_id), chunk_size=1
        ):
            pass
        batch = await _status(client, batch_tenant, batch_id)
    assert (sync.status_code, accepted.status_code, batch.status_code) == (200, 202, 200)
    sync_data = sync.json()["data"]
    batch_data = batch.json()["data"]
    assert {k: sync_data[k] for k in expected} == expected
    assert {k: batch_data[k] for k in expected} == expected
    left = {p.id for p in sync_tenant.products} - {sync_tenant.products[n].id for n in case.deleted}
    for tenant in (sync_tenant, batch_tenant):
        async with catalog_store.connection(pool) as conn:
            cur = await conn.execute(
                "SELECT id FROM products WHERE store_id = %s", (tenant.store_id,)
            )
            assert {row[0] for row in await cur.fetchall()} == left
