"""The pool's connection check: skipped for a connection given back moments ago, done for one
idle longer, so a connection the database dropped while idle is replaced before it is lent."""

from __future__ import annotations

import socket
import uuid

import anyio
import psycopg
import pytest

import catalog_store
from catalog_store import pool as pool_module

pytestmark = pytest.mark.anyio


async def _backend_pid(pool: catalog_store.Pool) -> int:
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute("SELECT pg_backend_pid()")
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def _terminate(database_url: str, pid: int) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
    assert row == (True,)


async def _one_connection_pool(database_url: str) -> catalog_store.Pool:
    pool = catalog_store.create_pool(database_url, min_size=1, max_size=1, timeout=10)
    await pool.open(wait=True)
    return pool


async def test_a_connection_dropped_while_idle_is_replaced_before_it_is_lent(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool_module, "CHECK_IDLE_AFTER_SECONDS", 0.05)
    pool = await _one_connection_pool(database_url)
    try:
        first = await _backend_pid(pool)
        _terminate(database_url, first)
        await anyio.sleep(0.2)  # idle for longer than the check's threshold
        second = await _backend_pid(pool)
    finally:
        await pool.close()
    assert second != first


async def test_a_connection_given_back_moments_ago_is_lent_unchecked(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within the threshold the check is skipped: a connection the database dropped in that
    moment fails its request with StoreUnavailable (SYS_001, nothing changed), and the pool
    then replaces it for the next request."""
    monkeypatch.setattr(pool_module, "CHECK_IDLE_AFTER_SECONDS", 3600)
    pool = await _one_connection_pool(database_url)
    try:
        first = await _backend_pid(pool)
        _terminate(database_url, first)
        with pytest.raises(catalog_store.StoreUnavailable):
            await _backend_pid(pool)
        second = await _backend_pid(pool)
    finally:
        await pool.close()
    assert second != first


async def test_requests_waiting_counts_only_those_waiting_now(database_url: str) -> None:
    """Borrowers that gave up (timed out) are no longer counted, though no connection came
    back since."""
    pool = catalog_store.create_pool(database_url, min_size=1, max_size=1, timeout=0.2)
    await pool.open(wait=True)
    try:
        async with catalog_store.connection(pool):  # the only connection, held throughout

            async def borrow() -> None:
                with pytest.raises(catalog_store.StoreUnavailable):
                    async with catalog_store.connection(pool):
                        pass

            async with anyio.create_task_group() as group:
                for _ in range(5):
                    group.start_soon(borrow)
                await anyio.sleep(0.1)
                waiting_then = catalog_store.requests_waiting(pool)
            gave_up = catalog_store.requests_waiting(pool)
    finally:
        await pool.close()
    assert (waiting_then, gave_up) == (5, 0)


async def test_a_deadline_that_runs_out_waiting_for_a_connection_is_no_cut() -> None:
    """No connection came (the database is unreachable): plain StoreUnavailable, `unchanged`;
    DeadlineExceeded (a stall, counted as a cut) is only for a connection the deadline cut."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pool = catalog_store.create_pool(
        f"host=127.0.0.1 port={port} user=nobody dbname=none", min_size=0, max_size=1, timeout=5
    )
    await pool.open()
    try:
        with catalog_store.deadline(0.05), pytest.raises(catalog_store.StoreUnavailable) as caught:
            async with catalog_store.connection(pool):
                pass
    finally:
        await pool.close()
    assert type(caught.value) is catalog_store.StoreUnavailable
    assert caught.value.outcome == "unchanged"


async def _until_gone(database_url: str, pid: int) -> None:
    """pg_terminate_backend only signals the backend: wait until it has exited (the pool,
    meanwhile, takes back the connection given back: it does so in a task of its own)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for _ in range(200):
            await anyio.sleep(0.01)
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
            if row.fetchone() == (0,):
                return
    raise AssertionError(f"backend {pid} still there")


class _Ticks:
    """A monotonic clock that the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_the_idle_check_is_timed_by_the_clock_given_to_the_pool(database_url: str) -> None:
    """No sleeping: the pool's clock says the connection came back two seconds ago, so it is
    checked, found dropped and replaced before it is lent; a clock that has not moved lends
    the next dropped one unchecked (StoreUnavailable)."""
    ticks = _Ticks()
    pool = catalog_store.create_pool(database_url, min_size=1, max_size=1, timeout=10, clock=ticks)
    await pool.open(wait=True)
    try:
        first = await _backend_pid(pool)
        _terminate(database_url, first)
        await _until_gone(database_url, first)
        ticks.now += 2 * pool_module.CHECK_IDLE_AFTER_SECONDS
        second = await _backend_pid(pool)
        _terminate(database_url, second)
        await _until_gone(database_url, second)
        with pytest.raises(catalog_store.StoreUnavailable):
            await _backend_pid(pool)
    finally:
        await pool.close()
    assert second != first


async def test_ping_answers_while_the_database_does_and_is_store_unavailable_when_not(
    pool: catalog_store.Pool,
) -> None:
    await catalog_store.ping(pool)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    unreachable = catalog_store.create_pool(
        f"host=127.0.0.1 port={port} user=nobody dbname=none", min_size=0, max_size=1, timeout=0.2
    )
    await unreachable.open()
    try:
        with pytest.raises(catalog_store.StoreUnavailable):
            await catalog_store.ping(unreachable)
    finally:
        await unreachable.close()


_BY_IDS = "SELECT count(*) FROM products WHERE store_id = %s AND id = ANY(%s::uuid[])"


async def _plans_of_a_repeated_statement(pool: catalog_store.Pool) -> tuple[int, int]:
    """Run one statement ten times, with other values each time, on the pool's one
    connection; how the server planned its prepared form: (generic plans, custom plans)."""
    async with catalog_store.connection(pool) as conn:
        for n in range(10):
            await conn.execute(_BY_IDS, (n, [str(uuid.UUID(int=n))]))
        cur = await conn.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE 'SELECT count(*) FROM products%'"
        )
        rows = await cur.fetchall()
    assert len(rows) == 1, rows  # psycopg prepared it: it ran more than its threshold
    return int(rows[0][0]), int(rows[0][1])


async def test_a_pool_with_generic_plans_plans_each_prepared_statement_once(
    database_url: str,
) -> None:
    generic = catalog_store.create_pool(database_url, min_size=1, max_size=1, generic_plans=True)
    default = catalog_store.create_pool(database_url, min_size=1, max_size=1)
    for pool in (generic, default):
        await pool.open(wait=True)
    try:
        generic_plans, custom_plans = await _plans_of_a_repeated_statement(generic)
        assert custom_plans == 0 and generic_plans >= 1
        # Without it the server plans the first executions with their values, at least.
        assert (await _plans_of_a_repeated_statement(default))[1] >= 1
    finally:
        for pool in (generic, default):
            await pool.close()
