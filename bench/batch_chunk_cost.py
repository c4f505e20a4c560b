"""What one chunk of a dispatched batch costs, in the store, on a real PostgreSQL.

    .venv/bin/python bench/batch_chunk_cost.py [--products N] [--rounds R]

In a fresh database (embedded PostgreSQL under .data/, or DATABASE_URL's server): a store of
N products (default 100,000) with 2 variants each, one batch naming all of them by id, run
chunk by chunk (1,000 entries each) with ``process_next_chunk``, each chunk timed; R rounds
(default 2), a fresh store each. Prints per-chunk wall time (median, p90, max), the batch's
total, the WAL each chunk writes and the size of the batch tables after the run. Not part of
``make bench``: a small script to compare the chunk before and after a change.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import secrets
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(os.environ.get("BENCH_ROOT", Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(ROOT))

import catalog_store  # noqa: E402
from gateway.jobs import migrate  # noqa: E402
from tests.support import make_tenant  # noqa: E402

_WAL = "SELECT pg_current_wal_lsn()"
_WAL_BYTES = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)::bigint"
_SIZES = """
SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
  FROM pg_class c
 WHERE c.relkind = 'r' AND c.relname LIKE 'deletion_batch%%'
"""


async def _create(pool: catalog_store.Pool, tenant: Any) -> catalog_store.Batch:
    """The batch, through whichever create_batch this checkout has."""
    kwargs: dict[str, Any] = {
        "store_id": tenant.store_id,
        "nonce": catalog_store.Nonce(
            tenant.partner_id, secrets.token_bytes(32), 4_000_000_000_000, int(time.time() * 1000)
        ),
        "request_id": uuid.uuid4(),
        "ids": tenant.ids,
        "external_ids": [],
    }
    params = inspect.signature(catalog_store.create_batch).parameters
    if "job" in params:  # before: the store wrote procrastinate's row itself
        from gateway.jobs import BATCH_JOB  # type: ignore[attr-defined]

        kwargs["job"] = BATCH_JOB
    else:
        from gateway.jobs import defer_batch_job

        kwargs["defer_job"] = defer_batch_job
    if "batch_id" in params:  # since the caller draws the batch's id
        kwargs["batch_id"] = uuid.uuid4()
    if "tx" in params:  # after the request transaction: it carries who sent the request
        async with catalog_store.request_transaction(
            pool,
            store_id=kwargs.pop("store_id"),
            nonce=kwargs.pop("nonce"),
            request_id=kwargs.pop("request_id"),
        ) as tx:
            return await catalog_store.create_batch(tx, **kwargs)
    return await catalog_store.create_batch(pool, **kwargs)  # type: ignore[arg-type]  # before it


async def _round(pool: catalog_store.Pool, products: int, n: int) -> dict[str, Any]:
    tenant = await make_tenant(pool, products=products, variants=2, name=f"r{n}")
    batch = await _create(pool, tenant)
    chunks: list[float] = []
    wal: list[int] = []
    async with catalog_store.connection(pool) as conn:
        await conn.execute("VACUUM ANALYZE")
    async with catalog_store.connection(pool) as probe:
        while True:
            cur = await probe.execute(_WAL)
            row = await cur.fetchone()
            assert row is not None
            started = time.perf_counter()
            step = await catalog_store.process_next_chunk(
                pool, store_id=tenant.store_id, batch_id=batch.id
            )
            elapsed = (time.perf_counter() - started) * 1000
            if step is None:
                break
            chunks.append(elapsed)
            cur = await probe.execute(_WAL_BYTES, (row[0],))
            bytes_row = await cur.fetchone()
            assert bytes_row is not None
            wal.append(int(bytes_row[0]))
        cur = await probe.execute(_SIZES)
        size_row = await cur.fetchone()
        assert size_row is not None
    assert step is None and len(chunks) == -(-products // 1000)
    chunks_sorted = sorted(chunks)
    return {
        "chunkMsMedian": round(statistics.median(chunks), 1),
        "chunkMsP90": round(chunks_sorted[int(len(chunks) * 0.9) - 1], 1),
        "chunkMsMax": round(chunks_sorted[-1], 1),
        "batchMsTotal": round(sum(chunks), 1),
        "walKiBPerChunkMedian": round(statistics.median(wal) / 1024, 1),
        "batchTablesMiB": round(int(size_row[0]) / 2**20, 1),
    }


async def _bench(url: str, products: int, rounds: int) -> list[dict[str, Any]]:
    await migrate(url)
    pool = catalog_store.create_pool(url, min_size=1, max_size=2)
    await pool.open(wait=True)
    try:
        return [await _round(pool, products, n) for n in range(rounds)]
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL") or catalog_store.embedded_conninfo(ROOT / ".data")
    name = f"bench_chunk_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = psycopg.conninfo.make_conninfo(server, dbname=name)
        results = asyncio.run(_bench(url, args.products, args.rounds))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    print(json.dumps({"products": args.products, "rounds": results}, indent=2))


if __name__ == "__main__":
    main()
