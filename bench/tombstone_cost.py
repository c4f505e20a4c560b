"""What a deletion costs with tombstones, against the plain delete and the archive copy.

    .venv/bin/python bench/tombstone_cost.py [ROUNDS]        (not part of `make bench`)

Two fresh databases on one server (embedded PostgreSQL, or DATABASE_URL's): one at the schema
before the tombstones (migrations before 0012), one at the current schema. Each holds 60,000
products with 2 variants each, vacuumed. Each round draws 1,000 random live ids and times, in
turn, one statement on them, each in a transaction rolled back afterwards (so every round
sees the same catalog): the plain ``DELETE`` with its cascade to the variants, the previous
version's ``DELETE`` with its archive copy (``to_jsonb`` in a CTE), both on the previous schema,
and the tombstone ``UPDATE`` (``DELETE_PRODUCTS``) on the current one. Prints the median of
ROUNDS (30) and the spread, and writes bench/results-tombstones.json.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncio  # noqa: E402

import catalog_store  # noqa: E402
from catalog_store.deletions import DELETE_PRODUCTS  # noqa: E402
from tests.catalog_store.test_tombstone_upgrade import PREVIOUS_DELETE  # noqa: E402

PRODUCTS, VARIANTS, PER_STATEMENT = 60_000, 2, 1_000
PLAIN_DELETE = """
DELETE FROM products
 WHERE store_id = %(store)s
   AND (id = ANY(%(ids)s::uuid[]) OR external_id = ANY(%(external_ids)s::text[]))
RETURNING id, external_id
"""
_SEED = """
WITH p AS (
    INSERT INTO products (store_id, id, external_id, name)
    SELECT 1, gen_random_uuid(), 'ext-' || n, 'product ' || n
      FROM generate_series(1, %(products)s) n
    RETURNING id, external_id
)
INSERT INTO product_variants (store_id, id, product_id, sku)
SELECT 1, gen_random_uuid(), p.id, p.external_id || '-v' || v
  FROM p, generate_series(1, %(variants)s) v
"""


@contextmanager
def _database(
    server: str, migrations: list[catalog_store.Migration]
) -> Iterator[psycopg.Connection]:
    name = f"bench_tombstones_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(server, dbname=name)
    try:
        asyncio.run(catalog_store.apply_migrations(url, migrations=migrations))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO partners (client_id, name) VALUES ('p', 'p')")
            conn.execute("INSERT INTO stores (client_id, name) VALUES ('s', 's')")
            conn.execute(_SEED, {"products": PRODUCTS, "variants": VARIANTS})
            conn.execute("VACUUM ANALYZE")
            yield conn
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _time(conn: psycopg.Connection, sql: str, ids: list[Any]) -> float:
    """One statement on ``ids`` in a transaction that is rolled back; its milliseconds."""
    params = {
        "store": 1,
        "ids": ids,
        "external_ids": [],
        "request": uuid.uuid4(),
        "batch": None,
        "partner": 1,
    }
    conn.execute("BEGIN")
    started = time.perf_counter()
    rows = conn.execute(sql, params).fetchall()
    elapsed = (time.perf_counter() - started) * 1000
    conn.execute("ROLLBACK")
    assert len(rows) == len(ids)
    return elapsed


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median": round(statistics.median(ordered), 1),
        "p10": round(ordered[len(ordered) // 10], 1),
        "p90": round(ordered[(len(ordered) * 9) // 10], 1),
    }


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    server = os.environ.get("DATABASE_URL") or catalog_store.embedded_conninfo(ROOT / ".data")
    every = sorted(
        [*catalog_store.available_migrations(), *catalog_store.contract_migrations()],
        key=lambda m: m.name,
    )
    before = [m for m in every if m.name < "0012"]
    times: dict[str, list[float]] = {"plainDelete": [], "archiveCopy": [], "tombstone": []}
    with _database(server, before) as old, _database(server, every) as new:
        ids = [row[0] for row in old.execute("SELECT id FROM products")]
        new_ids = [row[0] for row in new.execute("SELECT id FROM products")]
        for _ in range(rounds):
            times["plainDelete"].append(
                _time(old, PLAIN_DELETE, secrets.SystemRandom().sample(ids, PER_STATEMENT))
            )
            times["archiveCopy"].append(
                _time(old, PREVIOUS_DELETE, secrets.SystemRandom().sample(ids, PER_STATEMENT))
            )
            times["tombstone"].append(
                _time(new, DELETE_PRODUCTS, secrets.SystemRandom().sample(new_ids, PER_STATEMENT))
            )
    results: dict[str, Any] = {name: _summary(samples) for name, samples in times.items()}
    results["setup"] = {
        "products": PRODUCTS,
        "variantsPerProduct": VARIANTS,
        "idsPerStatement": PER_STATEMENT,
        "rounds": rounds,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    (ROOT / "bench" / "results-tombstones.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
