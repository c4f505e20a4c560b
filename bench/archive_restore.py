"""What a deletion's tombstone costs and what a restore takes, in the store, on PostgreSQL.

    .venv/bin/python bench/archive_restore.py        (or `make bench`)

In a fresh database (embedded PostgreSQL, or DATABASE_URL's server): the deleting statement for
1,000 products with 2 variants each, marking them deleted (the gateway's statement) against a
plain DELETE with its cascade to the variants; a restore of the 1,000 by request id; a
dispatched batch of 10,000 run in chunks of 1,000, and its restore by batch id. Writes
bench/results-archive-restore.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import secrets
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import catalog_store  # noqa: E402
from catalog_store.deletions import DELETE_PRODUCTS  # noqa: E402
from gateway.jobs import defer_batch_job, migrate  # noqa: E402
from tests.support import make_tenant  # noqa: E402

ROUNDS = 5
_PLAIN_DELETE = (
    "DELETE FROM products WHERE store_id = %(store)s"
    " AND (id = ANY(%(ids)s::uuid[]) OR external_id = ANY(%(external_ids)s::text[]))"
    " RETURNING id, external_id"
)


def _nonce(partner_id: int) -> catalog_store.Nonce:
    return catalog_store.Nonce(
        partner_id, secrets.token_bytes(32), 4_000_000_000_000, time.time_ns() // 1_000_000
    )


async def _timed(work: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await work
    return (time.perf_counter() - started) * 1000, result


async def _bench(url: str) -> dict[str, Any]:
    await migrate(url)
    pool = catalog_store.create_pool(url, min_size=1, max_size=2)
    await pool.open(wait=True)
    marked: list[float] = []
    plain: list[float] = []
    restored: list[float] = []
    try:
        for n in range(ROUNDS):
            tenant = await make_tenant(pool, products=2000, variants=2, name=f"b{n}")
            request_id = uuid.uuid4()
            async with catalog_store.connection(pool) as conn:
                started = time.perf_counter()
                await conn.execute(
                    DELETE_PRODUCTS,
                    {
                        "store": tenant.store_id,
                        "ids": tenant.ids[:1000],
                        "external_ids": [],
                        "request": request_id,
                        "batch": None,
                        "partner": tenant.partner_id,
                    },
                )
                marked.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                await conn.execute(
                    _PLAIN_DELETE,
                    {"store": tenant.store_id, "ids": tenant.ids[1000:], "external_ids": []},
                )
                plain.append((time.perf_counter() - started) * 1000)
            ms, items = await _timed(catalog_store.restore_products(pool, request_id=request_id))
            assert len(items) == 1000 and all(i.refusal is None for i in items)
            restored.append(ms)
        tenant = await make_tenant(pool, products=10_000, variants=2, name="batch")
        async with catalog_store.request_transaction(
            pool, store_id=tenant.store_id, nonce=_nonce(tenant.partner_id), request_id=uuid.uuid4()
        ) as tx:
            batch = await catalog_store.create_batch(
                tx,
                batch_id=uuid.uuid4(),
                ids=tenant.ids,
                external_ids=[],
                defer_job=defer_batch_job,
            )
        started = time.perf_counter()
        while await catalog_store.process_next_chunk(
            pool, store_id=tenant.store_id, batch_id=batch.id
        ):
            pass
        batch_ms = (time.perf_counter() - started) * 1000
        restore_ms, items = await _timed(catalog_store.restore_products(pool, batch_id=batch.id))
        assert len(items) == 10_000 and all(i.refusal is None for i in items)
    finally:
        await pool.close()
    return {
        "deleteStatement1000TombstoneMsMedian": round(statistics.median(marked), 1),
        "deleteStatement1000PlainDeleteMsMedian": round(statistics.median(plain), 1),
        "restore1000ByRequestIdMsMedian": round(statistics.median(restored), 1),
        "batch10000In10ChunksMs": round(batch_ms, 1),
        "restore10000ByBatchIdMs": round(restore_ms, 1),
        "rounds": ROUNDS,
        "variantsPerProduct": 2,
    }


def main() -> None:
    server = os.environ.get("DATABASE_URL") or catalog_store.embedded_conninfo(ROOT / ".data")
    name = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        results = asyncio.run(_bench(psycopg.conninfo.make_conninfo(server, dbname=name)))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    results["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count()}
    out = ROOT / "bench" / "results-archive-restore.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
