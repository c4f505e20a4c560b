"""What the per-partner rate limit adds to the replay record's INSERT, the statement it rides on.

    .venv/bin/python bench/rate_limit_cost.py

In a fresh database of the embedded PostgreSQL (or DATABASE_URL's server): one partner with
50, then 999, accepted requests inside the window, among 100,000 records of other partners.
Times 400 replay-record inserts (each rolled back) without a limit and with the default limit
of 1,000 per 10 s, and prints the median and 90th percentile in microseconds.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import catalog_store as store  # noqa: E402
from catalog_store.replay import insert_nonce  # noqa: E402
from gateway.jobs import migrate  # noqa: E402

_RANDOM_SIGNATURE = "decode(md5(random()::text) || md5(random()::text), 'hex')"


async def _time(conn: psycopg.AsyncConnection[Any], rate: store.RateLimit | None) -> list[float]:
    times = []
    for _ in range(400):
        nonce = store.Nonce(
            partner_id=1,
            signature=secrets.token_bytes(32),
            expires_at_ms=time.time_ns() // 1_000_000 + 300_000,
        )
        async with conn.transaction(force_rollback=True):
            started = time.perf_counter()
            await insert_nonce(conn, nonce, rate)
            times.append((time.perf_counter() - started) * 1e6)
    return sorted(times)


async def main() -> None:
    server = os.environ.get("DATABASE_URL") or store.embedded_conninfo(ROOT / ".data")
    name = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(server, dbname=name)
    try:
        await migrate(url)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("INSERT INTO partners (client_id, name) VALUES ('bench', 'bench')")
            await conn.execute(
                "INSERT INTO replay_nonces (partner_id, signature, expires_at)"
                f" SELECT 2 + g % 100, {_RANDOM_SIGNATURE}, now() + interval '5 min'"
                " FROM generate_series(1, 100000) g"
            )
            counted = 0
            for recent in (50, 999):
                await conn.execute(
                    "INSERT INTO replay_nonces (partner_id, signature, expires_at)"
                    f" SELECT 1, {_RANDOM_SIGNATURE}, now() + interval '5 min'"
                    " FROM generate_series(1, %s)",
                    (recent - counted,),
                )
                counted = recent
                await conn.execute("ANALYZE replay_nonces")
                for label, rate in (("no limit", None), ("1000/10s", store.RateLimit(1000, 10))):
                    times = await _time(conn, rate)
                    median, p90 = statistics.median(times), times[int(len(times) * 0.9)]
                    print(
                        f"{recent:>4} counted, {label:>9}: median {median:.0f} us, p90 {p90:.0f} us"
                    )
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
