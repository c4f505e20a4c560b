"""What planning costs the deletion's one statement: custom plans (PostgreSQL's default for a
prepared statement) against one generic plan (``plan_cache_mode = force_generic_plan``, what
the gateway's pool sets: catalog_store/pool.py), per request size.

    .venv/bin/python bench/plan_cost.py [SIZE ...]        (default: 1 10 100 1000)

In a fresh database of the embedded PostgreSQL (or on ``DATABASE_URL``'s server), with 100,000
products of two variants each, it runs the statement a request without an idempotency key
sends (``counted.DELETE_AUDITED_COUNTED``: replay record, rate step, tombstones, audit row) one
after another from one connection, each time on other products and with a new signature, as
psycopg sends it (prepared after its fifth run). For each size and mode it prints the wall time
and the server backend's CPU time per statement (from ``/proc/<backend pid>/stat``, so the
server must run on this machine), both modes taking turns, twice.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.hotpath import cpu_seconds  # noqa: E402
from bench.load import Catalog, create_tenant  # noqa: E402
from bench.run import fresh_database  # noqa: E402
from catalog_store.counted import DELETE_AUDITED_COUNTED  # noqa: E402
from catalog_store.pool import GENERIC_PLANS  # noqa: E402

CATALOG = 100_000
WARM_UP = 10
ENTRIES_PER_SIZE = 60_000  # products deleted per size and mode: at least 60 statements


def _params(partner_id: int, store_id: int, ids: list[str]) -> dict[str, Any]:
    now = time.time_ns() // 1_000_000
    return {
        "partner": partner_id,
        "signature": secrets.token_bytes(32),
        "expires": now + 600_000,
        "store": store_id,
        "ids": ids,
        "external_ids": [],
        "request": uuid.uuid4(),
        "batch": None,
        "total": len(ids),
        "now": now,
        "step": 0,  # the allowance never runs out: every statement deletes
        "window_ms": 10_000,
    }


def _measure(url: str, catalog: Catalog, partner_id: int, size: int, generic: bool) -> str:
    catalog.top_up(CATALOG)
    count = max(WARM_UP + 50, ENTRIES_PER_SIZE // size)
    ids = catalog.sample(count * size)
    groups = [ids[n * size : (n + 1) * size] for n in range(count)]
    with psycopg.connect(url, autocommit=True) as conn:
        if generic:
            conn.execute(GENERIC_PLANS)
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        backend = int(row[0])
        for group in groups[:WARM_UP]:
            conn.execute(DELETE_AUDITED_COUNTED, _params(partner_id, catalog.store_id, group))
        cpu, start = cpu_seconds(backend), time.perf_counter()
        for group in groups[WARM_UP:]:
            params = _params(partner_id, catalog.store_id, group)
            conn.execute(DELETE_AUDITED_COUNTED, params).fetchall()
        wall, used = time.perf_counter() - start, cpu_seconds(backend) - cpu
    runs = count - WARM_UP
    mode = "generic plan" if generic else "custom plans"
    return (
        f"  {size:>5} entries  {mode:<13} {wall / runs * 1e6:9.1f} µs wall"
        f"  {used / runs * 1e6:9.1f} µs server CPU per statement"
    )


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [1, 10, 100, 1000]
    with fresh_database() as url:
        creds, _ = asyncio.run(create_tenant(url, "bench"))
        catalog = Catalog(url, creds.store_id)
        try:
            for size in sizes:
                for _ in range(2):
                    for generic in (False, True):
                        print(_measure(url, catalog, creds.partner_id, size, generic), flush=True)
        finally:
            catalog.close()


if __name__ == "__main__":
    main()
