"""What the per-partner request rate limit costs: alone, and on one partner's concurrent requests.

    .venv/bin/python bench/rate_limit_cost.py [LIMIT ...]      (default: 1000 10000 100000)

In a fresh database of the embedded PostgreSQL (or DATABASE_URL's server), among 100,000 replay
records of other partners:

1. For each limit, one partner just under it (limit - 1 requests counted, over a window of
   3,600 s so that none leaves the window while it runs): 300 replay-record statements without
   a limit and 300 with it (with the check and the step, as a status read runs it), in turn,
   each rolled back (the state stays the same); the median and 90th percentile in
   microseconds.
2. One partner's requests from 8 connections at once, each a whole 1-entry deletion statement
   (replay record, rate limit, delete, audit) committed: requests per second without a limit
   and with one far above the load, 3 rounds of each in turn. A hard cap makes one partner's
   requests take turns on its allowance row, from the moment they take their step to their
   commit.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import catalog_store  # noqa: E402
from catalog_store.replay import ACCEPT_NONCE_LIMITED, INSERT_NONCE, nonce_params  # noqa: E402
from gateway.jobs import migrate  # noqa: E402

_RANDOM_SIGNATURE = "decode(md5(random()::text) || md5(random()::text), 'hex')"
WINDOW = 3600
CONNECTIONS = 8
EACH = 150
SAMPLES = 300


def _nonce(partner_id: int) -> catalog_store.Nonce:
    now = time.time_ns() // 1_000_000
    return catalog_store.Nonce(partner_id, secrets.token_bytes(32), now + 600_000, now)


async def _time(
    conn: psycopg.AsyncConnection[Any], rate: catalog_store.RateLimit
) -> tuple[list[float], list[float]]:
    """Microseconds of the replay-record statement without a limit and with ``rate``, taken in
    turn so that noise from elsewhere on the machine hits both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(SAMPLES):
        for limited, rate_or_none in enumerate((None, rate)):
            nonce = _nonce(1)
            statement = ACCEPT_NONCE_LIMITED if rate_or_none else INSERT_NONCE
            params = nonce_params(nonce, rate_or_none)
            async with conn.transaction(force_rollback=True):
                started = time.perf_counter()
                await conn.execute(statement, params)
                times[limited].append((time.perf_counter() - started) * 1e6)
    return sorted(times[0]), sorted(times[1])


async def _just_under(conn: psycopg.AsyncConnection[Any], limit: int, counted: int) -> None:
    """The partner's records and allowance as after ``limit - 2`` accepted requests (room for
    the one measured)."""
    await conn.execute(
        "INSERT INTO replay_nonces (partner_id, signature, expires_at)"
        f" SELECT 1, {_RANDOM_SIGNATURE}, now() + interval '1 hour'"
        " FROM generate_series(1, %s)",
        (limit - 1 - counted,),
    )
    rate = catalog_store.RateLimit(limit, WINDOW)
    ceiling = Decimal(time.time_ns() // 1_000_000 + WINDOW * 1000)
    await conn.execute(
        "INSERT INTO rate_allowances VALUES (1, %s, %s) ON CONFLICT (partner_id) DO UPDATE"
        " SET spent_until_ms = excluded.spent_until_ms, ceiling_ms = excluded.ceiling_ms",
        (ceiling - rate.step_ms - rate.step_ms, ceiling),
    )
    await conn.execute("ANALYZE replay_nonces")


async def _concurrent(url: str, rate: catalog_store.RateLimit | None, partner_id: int) -> float:
    pool = catalog_store.create_pool(url, min_size=CONNECTIONS, max_size=CONNECTIONS)
    await pool.open(wait=True)

    async def one_connection() -> None:
        for _ in range(EACH):
            async with catalog_store.request_transaction(
                pool, store_id=1, nonce=_nonce(partner_id), request_id=uuid.uuid4(), rate=rate
            ) as tx:
                await catalog_store.delete_products(
                    tx, plan=catalog_store.plan_deletion([str(uuid.uuid4())], [])
                )

    try:
        started = time.perf_counter()
        await asyncio.gather(*(one_connection() for _ in range(CONNECTIONS)))
        return CONNECTIONS * EACH / (time.perf_counter() - started)
    finally:
        await pool.close()


async def _run(url: str, limits: list[int]) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("INSERT INTO partners (client_id, name) VALUES ('bench', 'bench')")
        await conn.execute(
            "INSERT INTO replay_nonces (partner_id, signature, expires_at)"
            f" SELECT 10 + g % 100, {_RANDOM_SIGNATURE}, now() + interval '1 hour'"
            " FROM generate_series(1, 100000) g"
        )
        counted = 0
        for limit in sorted(limits):
            await _just_under(conn, limit, counted)
            counted = limit - 1
            unlimited, limited = await _time(conn, catalog_store.RateLimit(limit, WINDOW))
            for label, times in (("no limit", unlimited), ("limited", limited)):
                median, p90 = statistics.median(times), times[int(len(times) * 0.9)]
                print(
                    f"limit {limit:>7,}, {limit - 1:>6,} counted, {label:>8}:"
                    f" median {median:.0f} us, p90 {p90:.0f} us"
                )
    rounds: dict[str, list[float]] = {"no limit": [], "limit 1,000,000": []}
    for _ in range(3):  # in turn, as above
        for label, partner_id, rate in (
            ("no limit", 2, None),
            ("limit 1,000,000", 3, catalog_store.RateLimit(1_000_000, WINDOW)),
        ):
            rounds[label].append(await _concurrent(url, rate, partner_id))
    for label, each in rounds.items():
        shown = ", ".join(f"{r:.0f}" for r in each)
        print(
            f"one partner, {CONNECTIONS} connections, {label:>15}:"
            f" median {statistics.median(each):.0f} requests/s (rounds: {shown})"
        )


async def main() -> None:
    limits = [int(arg) for arg in sys.argv[1:]] or [1_000, 10_000, 100_000]
    server = os.environ.get("DATABASE_URL") or catalog_store.embedded_conninfo(ROOT / ".data")
    name = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(server, dbname=name)
    try:
        await migrate(url)
        await _run(url, limits)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
