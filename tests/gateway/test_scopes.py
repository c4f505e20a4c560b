"""Least privilege: products:delete for deletions and dry runs, batches:read for batch status;
a token issued before batches:read existed gets both; operators list tokens without seeing them."""

from __future__ import annotations

import json
from typing import Any

import pytest

import catalog_store
from gateway.cli import main
from tests.gateway.test_batches import status
from tests.support import (
    NOW_MS,
    Tenant,
    assert_error,
    delete,
    gateway_client,
    product_count,
)

pytestmark = pytest.mark.anyio

REFUSED = "Store token not valid for this partner and store"


async def _with_scopes(pool: catalog_store.Pool, tenant: Tenant, *scopes: str) -> Tenant:
    token = await catalog_store.issue_token(
        pool,
        partner_client_id=tenant.partner_client_id,
        store_client_id=tenant.store_client_id,
        scopes=scopes,
    )
    return Tenant(**{**tenant.__dict__, "token": token.token})


async def test_a_batches_read_token_is_refused_a_delete_and_a_dry_run_but_reads_status(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    reader = await _with_scopes(pool, tenant, "batches:read")
    async with gateway_client(database_url) as client:
        accepted = await delete(client, tenant, {"ids": tenant.ids[:1], "dispatch": True})
        batch_id = accepted.json()["data"]["batchId"]
        refused = [
            await delete(client, reader, payload, timestamp=NOW_MS + n)
            for n, payload in enumerate(
                [{"ids": tenant.ids[1:2]}, {"ids": tenant.ids[1:2], "dryRun": True}], start=1
            )
        ]
        read = await status(client, reader, batch_id, ts=NOW_MS + 3)
    assert accepted.status_code == 202
    for response in refused:
        assert_error(
            response,
            403,
            "AUTH_005",
            REFUSED,
            hint="This token lacks the scope products:delete; ask the store for a token that has"
            " it",
            context={"missingScope": "products:delete"},
        )
    assert read.status_code == 200 and read.json()["data"]["batchId"] == batch_id
    assert await product_count(pool, tenant) == (20, 40)  # the batch has not run yet


async def test_a_products_delete_token_is_refused_batch_status(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    deleter = await _with_scopes(pool, tenant, "products:delete")
    async with gateway_client(database_url) as client:
        accepted = await delete(client, deleter, {"ids": tenant.ids[:1], "dispatch": True})
        batch_id = accepted.json()["data"]["batchId"]
        refused = await status(client, deleter, batch_id, ts=NOW_MS + 1)
        read = await status(client, tenant, batch_id, ts=NOW_MS + 2)  # the default token: both
    assert accepted.status_code == 202
    assert_error(
        refused,
        403,
        "AUTH_005",
        REFUSED,
        hint="This token lacks the scope batches:read; ask the store for a token that has it",
        context={"missingScope": "batches:read"},
    )
    assert read.status_code == 200


async def test_the_migration_gives_tokens_issued_before_batches_read_both_scopes(
    pool: catalog_store.Pool, tenant: Tenant
) -> None:
    old = await _with_scopes(pool, tenant, "products:delete")
    reader = await _with_scopes(pool, tenant, "batches:read")
    (migration,) = [
        m for m in catalog_store.available_migrations() if m.name.endswith("batches_read_scope")
    ]
    async with catalog_store.connection(pool) as conn:
        await conn.execute(migration.sql.encode())
        cur = await conn.execute(
            "SELECT scopes FROM store_tokens WHERE token_hash = ANY(%s) ORDER BY created_at",
            ([catalog_store.hash_token(old.token), catalog_store.hash_token(reader.token)],),
        )
        scopes = [row[0] for row in await cur.fetchall()]
    assert scopes == [["products:delete", "batches:read"], ["batches:read"]]


def test_token_issue_takes_either_scope_and_token_list_shows_scopes_never_the_token(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The console script's own entry point, in-process (a process per command costs seconds).
    Its logging set-up is left out: it would bind the logs of later tests to this test's
    captured stderr, closed once the test ends."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setattr("gateway.cli.configure_logging", lambda *args, **kwargs: None)

    def cli(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    def run(*args: str) -> Any:
        code, out, err = cli(*args)
        assert code == 0, err
        return json.loads(out)

    partner = run("partner", "create", "--name", "Scoped")["partnerClientId"]
    store = run("store", "create", "--name", "Scoped shop")["storeClientId"]
    who = ("--partner", partner, "--store", store)
    tokens = [
        run("token", "issue", *who)["storeToken"],
        run("token", "issue", *who, "--scopes", "batches:read")["storeToken"],
        run("token", "issue", *who, "--scopes", "products:delete")["storeToken"],
    ]
    run("token", "revoke", "--token", tokens[2])
    code, _, err = cli("token", "issue", *who, "--scopes", "batches:write")
    assert code == 2
    assert json.loads(err.strip().splitlines()[-1]) == {
        "error": "unknown scope batches:write; known scopes: products:delete, batches:read"
    }
    code, by_partner, _ = cli("token", "list", "--partner", partner)
    assert code == 0 and by_partner == cli("token", "list", "--store", store)[1]
    listed = json.loads(by_partner)["tokens"]
    assert [(t["partnerClientId"], t["storeClientId"], t["scopes"]) for t in listed] == [
        (partner, store, ["products:delete", "batches:read"]),
        (partner, store, ["batches:read"]),
        (partner, store, ["products:delete"]),
    ]
    assert [list(t) for t in listed] == [
        ["partnerClientId", "storeClientId", "scopes", "createdAt", "revokedAt"]
    ] * 3
    assert [t["revokedAt"] is None for t in listed] == [True, True, False]
    assert all(t["createdAt"].endswith("+00:00") for t in listed)
    for token in tokens:
        assert token not in by_partner
        assert catalog_store.hash_token(token).hex() not in by_partner
    code, _, err = cli("token", "list", "--store", "1")
    assert code == 2
    assert json.loads(err.strip().splitlines()[-1]) == {"error": "no store 1"}


def test_the_openapi_document_names_each_routes_scope() -> None:
    from gateway.openapi import build_openapi

    paths = build_openapi()["paths"]
    deletions = "/api/v1/partner/stores/products/deletions"
    assert paths[deletions]["post"]["description"].endswith(
        "The store token needs the scope products:delete."
    )
    assert paths[deletions + "/{batchId}"]["get"]["description"] == (
        "The store token needs the scope batches:read."
    )
