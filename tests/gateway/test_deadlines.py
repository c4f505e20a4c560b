"""Client-side deadlines on a database that is alive but does not answer in time (a lock held by
another session): the request is cut at its class's deadline and answered SYS_001 with its
outcome, the statement is cancelled, and a dispatch has a larger bound of its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import psycopg
import pytest
from prometheus_client import REGISTRY

import catalog_store
from gateway.settings import Settings
from tests.support import (
    DELETIONS,
    Tenant,
    assert_error,
    body_of,
    gateway_client,
    product_count,
    signed_headers,
)

pytestmark = pytest.mark.anyio

STALLED_UNCHANGED = (
    "The database did not answer in time; nothing was changed. Retry after Retry-After seconds"
)
STALLED_UNKNOWN = (
    "The database did not confirm the commit of this request's changes: they may have been"
    " committed, all or nothing. Retry after Retry-After seconds with the same"
    " idempotency-key: its answer tells which"
)


@contextmanager
def locked(database_url: str, table: str, *, release_after: float | None = None) -> Iterator[None]:
    """Another session holds an exclusive lock on ``table`` (until the block ends, or for
    ``release_after`` seconds)."""
    conn = psycopg.connect(database_url)
    conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    timer = threading.Timer(release_after or 0, conn.rollback) if release_after else None
    if timer is not None:
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.join()
        conn.rollback()
        conn.close()


def _waiting_on_locks(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def _cuts(outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("gateway_db_deadline_exceeded_total", {"outcome": outcome}) or 0
    )


async def test_a_deletion_held_up_by_the_database_is_cut_at_its_deadline_and_cancelled(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    """Past GATEWAY_DB_DEADLINE: SYS_001 with Retry-After, `unchanged` when the commit was not
    sent (a request with a key: cut mid-transaction), `unknown` when it was (the one-statement
    request); both statements are cancelled on the server, nothing changed, the cuts are
    counted, and a retry with the same key runs for real."""
    settings = Settings(pool_min=1, pool_max=3, db_deadline=0.5, retry_after_seconds=7)
    keyed = body_of({"ids": tenant.ids[:5]})
    plain = body_of({"ids": tenant.ids[5:10]})
    before = {outcome: _cuts(outcome) for outcome in ("unchanged", "unknown")}
    async with gateway_client(database_url, settings=settings) as client:
        with locked(database_url, "products"):
            started = time.monotonic()
            cut_keyed = await client.post(
                DELETIONS,
                content=keyed,
                headers={**signed_headers(tenant, body=keyed), "idempotency-key": "k-1"},
            )
            cut_plain = await client.post(
                DELETIONS, content=plain, headers=signed_headers(tenant, body=plain)
            )
            elapsed = time.monotonic() - started
            # The cancel requests reached the server: nobody waits on the lock any more.
            deadline = time.monotonic() + 5
            while _waiting_on_locks(database_url):
                assert time.monotonic() < deadline, "the cut statements still wait on the lock"
                await anyio.sleep(0.05)  # the cancel requests run on this event loop
        # Nothing changed: products, audit rows and replay records as before.
        assert await product_count(pool, tenant) == (20, 40)
        async with catalog_store.connection(pool) as conn:
            cur = await conn.execute(
                "SELECT (SELECT count(*) FROM deletion_audit), (SELECT count(*) FROM replay_nonces)"
            )
            assert await cur.fetchone() == (0, 0)
        retried = await client.post(
            DELETIONS,
            content=keyed,
            headers={
                **signed_headers(tenant, body=keyed, timestamp=1_758_100_350_459),
                "idempotency-key": "k-1",
            },
        )
    assert_error(
        cut_keyed,
        503,
        "SYS_001",
        "Service temporarily unavailable",
        hint=STALLED_UNCHANGED,
        context={"outcome": "unchanged"},
    )
    assert_error(
        cut_plain,
        503,
        "SYS_001",
        "Service temporarily unavailable",
        hint=STALLED_UNKNOWN,
        context={"outcome": "unknown"},
    )
    assert cut_keyed.headers["retry-after"] == cut_plain.headers["retry-after"] == "7"
    assert elapsed < 2 * 0.5 + 0.5
    assert _cuts("unchanged") == before["unchanged"] + 1
    assert _cuts("unknown") == before["unknown"] + 1
    assert retried.status_code == 200 and "idempotent-replayed" not in retried.headers
    assert retried.json()["data"]["summary"] == {"total": 5, "succeeded": 5, "failed": 0}


async def test_a_dispatch_is_bounded_by_its_own_larger_deadline(
    database_url: str, tenant: Tenant
) -> None:
    """A dispatch that waits 1 s for the database is not cut by the 0.3 s deadline of sync
    requests: GATEWAY_DB_DEADLINE_DISPATCH is its bound; a batch read is cut meanwhile."""
    settings = Settings(pool_min=1, pool_max=3, db_deadline=0.3, db_deadline_dispatch=10)
    body = body_of({"ids": tenant.ids, "dispatch": True})
    async with gateway_client(database_url, settings=settings) as client:
        with locked(database_url, "deletion_batches", release_after=1.0):
            started = time.monotonic()
            dispatched = await client.post(
                DELETIONS, content=body, headers=signed_headers(tenant, body=body)
            )
            elapsed = time.monotonic() - started
        assert dispatched.status_code == 202, dispatched.text
        assert elapsed >= 0.9
        batch_path = f"{DELETIONS}/{dispatched.json()['data']['batchId']}"
        with locked(database_url, "deletion_batches"):
            read = await client.get(
                batch_path,
                headers=signed_headers(
                    tenant, method="GET", path=batch_path, timestamp=1_758_100_350_459
                ),
            )
    assert_error(
        read,
        503,
        "SYS_001",
        "Service temporarily unavailable",
        hint=STALLED_UNCHANGED,
        context={"outcome": "unchanged"},
    )
