"""`partner-gateway products restore` with real processes: a gateway, a worker, a batch of
10,000 deleted, retried with its idempotency key, then restored row for row."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import catalog_store
from tests.live import BIN, clean_env, cli, partner_client, serving
from tests.support import DELETIONS, make_tenant, run_with_pool

pytestmark = pytest.mark.slow


async def _rows(pool: catalog_store.Pool, sql: str, *args: Any) -> list[Any]:
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute(sql, args or None)
        return list(await cur.fetchall())


def rows(database_url: str, sql: str, *args: Any) -> list[Any]:
    return run_with_pool(database_url, lambda p: _rows(p, sql, *args))


CATALOG = (
    "SELECT (SELECT jsonb_agg(to_jsonb(p) ORDER BY id) FROM products p),"
    " (SELECT jsonb_agg(to_jsonb(v) ORDER BY id) FROM product_variants v)"
)


@pytest.fixture
def worker(database_url: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen(
        [str(BIN), "worker"],
        env=clean_env(database_url, GATEWAY_WORKER_UPKEEP_INTERVAL="0.2"),
        stdout=log,
        stderr=log,
    )
    yield process
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_a_batch_of_10000_is_restored_by_batch_id_row_for_row(
    database_url: str, tmp_path: Path
) -> None:
    tenant = run_with_pool(database_url, lambda p: make_tenant(p, products=10_000, name="big"))
    before = rows(database_url, CATALOG)
    body = json.dumps({"ids": tenant.ids[:5000], "externalIds": tenant.external_ids[5000:]})
    with serving(database_url, tmp_path) as server, partner_client(server, tenant) as client:
        headers = {"idempotency-key": "nightly-sync-2026-11-22", "content-type": "application/json"}
        accepted = client.post(DELETIONS, content=body, headers=headers)
        time.sleep(0.002)  # a retry is signed anew: another timestamp
        retried = client.post(DELETIONS, content=body, headers=headers)
    assert accepted.status_code == retried.status_code == 202
    assert retried.headers["idempotent-replayed"] == "true"
    assert retried.content == accepted.content
    batch_id = accepted.json()["data"]["batchId"]
    assert rows(database_url, "SELECT count(*) FROM deletion_batches") == [(1,)]

    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [str(BIN), "worker"], env=clean_env(database_url), stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 120
        while rows(database_url, "SELECT status FROM deletion_batches") != [("succeeded",)]:
            assert time.monotonic() < deadline and worker.poll() is None
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert rows(database_url, "SELECT count(*) FROM products") == [(0,)]

    restored = cli(database_url, "products", "restore", "--batch-id", batch_id)
    assert restored.returncode == 0, restored.stderr
    report = json.loads(restored.stdout)
    assert (report["restored"], report["refused"], len(report["items"])) == (10_000, 0, 10_000)
    by_id = {item["id"]: item for item in report["items"]}
    first = tenant.products[0]
    assert by_id[str(first.id)] == {
        "id": str(first.id),
        "externalId": first.external_id,
        "variants": 2,
        "requestId": accepted.json()["requestId"],
        "batchId": batch_id,
        "status": "restored",
    }
    assert rows(database_url, CATALOG) == before

    again = cli(database_url, "products", "restore", "--batch-id", batch_id)
    assert again.returncode == 1
    report = json.loads(again.stdout)
    assert (report["restored"], report["refused"]) == (0, 10_000)
    assert {(i["status"], i["reason"]) for i in report["items"]} == {
        ("refused", "already_restored")
    }


def test_restore_by_store_and_ids_reports_each_id(database_url: str, tmp_path: Path) -> None:
    tenant = run_with_pool(database_url, lambda p: make_tenant(p, products=3, name="ids"))
    with serving(database_url, tmp_path) as server:
        credentials = {
            "GATEWAY_URL": server.url,
            "PARTNER_CLIENT_ID": tenant.partner_client_id,
            "PARTNER_SECRET": tenant.secret,
            "STORE_CLIENT_ID": tenant.store_client_id,
            "STORE_TOKEN": tenant.token,
        }
        call = ["call", "--ids", *tenant.ids[:2], "--idempotency-key", "cli-1"]
        dry = cli(database_url, *call, "--dry-run", **credentials)
        dry_again = cli(database_url, *call, "--dry-run", **credentials)
        deleted = cli(database_url, *call, **credentials)
        with partner_client(server, tenant) as client:
            plain = client.post(DELETIONS, json={"ids": tenant.ids[:2]})
    assert dry.returncode == 0 and dry.stdout == dry_again.stdout
    assert json.loads(dry.stdout)["body"]["data"]["summary"] == {
        "total": 2,
        "succeeded": 2,
        "failed": 0,
        "variants": 4,
    }
    # The same key with another body (no dryRun) is refused; without a key it runs.
    assert json.loads(deleted.stdout)["body"]["error"]["code"] == "IDEM_001"
    assert plain.json()["data"]["summary"]["succeeded"] == 2
    unknown = str(uuid.UUID(int=5))
    result = cli(
        database_url,
        "products",
        "restore",
        "--store",
        tenant.store_client_id,
        "--ids",
        tenant.ids[0],
        unknown,
    )
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert (report["restored"], report["refused"]) == (1, 1)
    assert [(i["id"], i["status"], i.get("reason")) for i in report["items"]] == [
        (tenant.ids[0], "restored", None),
        (unknown, "refused", "not_archived"),
    ]
    assert rows(database_url, "SELECT count(*) FROM products") == [(2,)]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ([], "give exactly one of --request-id, --batch-id, or --store with --ids"),
        (["--request-id", "x", "--batch-id", "y"], "give exactly one of --request-id,"),
        (["--request-id", "nope"], "--request-id 'nope' is not a UUID"),
        (["--store", "1"], "--store needs --ids: the product ids to restore"),
        (["--batch-id", str(uuid.UUID(int=1)), "--ids", "x"], "--ids needs --store"),
        (["--store", "nope", "--ids", str(uuid.UUID(int=1))], "no store with client id 'nope'"),
    ],
)
def test_bad_restore_arguments_are_json_errors(
    database_url: str, args: list[str], error: str
) -> None:
    result = cli(database_url, "products", "restore", *args)
    assert result.returncode == 2
    message = json.loads(result.stderr.strip().splitlines()[-1])["error"]
    assert message.startswith(error), message


def test_the_worker_upkeep_purges_old_archives_and_expired_keys(
    database_url: str, worker: subprocess.Popen[bytes]
) -> None:
    tenant = run_with_pool(database_url, lambda p: make_tenant(p, products=1, name="purge"))

    async def seed(pool: catalog_store.Pool) -> None:
        async with catalog_store.connection(pool) as conn:
            for days, request in ((31, uuid.UUID(int=1)), (29, uuid.UUID(int=2))):
                await conn.execute(
                    "INSERT INTO all_products (store_id, id, name, deleted_request, deleted_by,"
                    " deleted_at) VALUES (%s, %s, 'gone', %s, %s,"
                    " now() - make_interval(days => %s))",
                    (tenant.store_id, uuid.uuid4(), request, tenant.partner_id, days),
                )
            for key, hours in (("old", -1), ("live", 1)):
                await conn.execute(
                    "INSERT INTO idempotency_keys (partner_id, store_id, key, body_sha256,"
                    " request_id, status, response, expires_at) VALUES (%s, %s, %s, '', %s,"
                    " 200, '', now() + make_interval(hours => %s))",
                    (tenant.partner_id, tenant.store_id, key, uuid.uuid4(), hours),
                )

    run_with_pool(database_url, seed)
    deadline = time.monotonic() + 60
    while rows(database_url, "SELECT count(*) FROM idempotency_keys") != [(1,)]:
        assert time.monotonic() < deadline and worker.poll() is None
        time.sleep(0.1)
    tombstones = "FROM all_products WHERE deleted_at IS NOT NULL"
    while rows(database_url, f"SELECT count(*) {tombstones}") != [(1,)]:
        assert time.monotonic() < deadline and worker.poll() is None
        time.sleep(0.1)
    assert rows(database_url, f"SELECT deleted_request {tombstones}") == [(uuid.UUID(int=2),)]
    assert rows(database_url, "SELECT key FROM idempotency_keys") == [("live",)]
