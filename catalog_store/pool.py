"""The connection pool, and the one place where driver failures become store errors."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from weakref import WeakKeyDictionary

import psycopg
import psycopg_pool

from .deadline import Watch, borrowing, current_deadline
from .errors import UNCHANGED, DeadlineExceeded, StoreUnavailable

__all__ = ["Pool", "connection", "create_pool", "ping", "requests_waiting"]

_IDLE = psycopg.pq.TransactionStatus.IDLE

#: A connection given back to the pool this recently was working then, and is lent again
#: without a check: under load, checking every borrow cost a round trip per request
#: (docs/performance.md). One idle for longer is checked before it is lent.
CHECK_IDLE_AFTER_SECONDS = 1.0


class Pool(psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]]):
    """psycopg_pool's pool, with what this store keeps per pool: its borrowers waiting now.

    psycopg_pool's own ``requests_waiting`` is the length of its queue of waiters, which keeps
    those that gave up (timed out) until a connection comes back, so in an outage it only grows.
    """

    waiting: int = 0
    #: When each connection came back healthy (set by :func:`create_pool`).
    freshness: _Freshness | None = None


class _Freshness:
    """When each connection of one pool came back healthy, by the clock given to the pool."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._returned_at: WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = (
            WeakKeyDictionary()
        )

    def note_return(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """``conn`` is being given back: healthy if it is open and idle (the borrow committed or
        rolled back). Noted here rather than in the pool's ``reset`` callback, which psycopg_pool
        runs in a task of its own for every connection given back: one more hop through the
        event loop per request, before the connection can be lent again."""
        if not conn.closed and conn.pgconn.transaction_status == _IDLE:
            self._returned_at[conn] = self._clock()

    async def check_when_idle(self, conn: psycopg.AsyncConnection[Any]) -> None:
        returned = self._returned_at.get(conn)
        if returned is not None and self._clock() - returned < CHECK_IDLE_AFTER_SECONDS:
            return
        # The check is a round trip too: the borrow's deadline bounds it (a connection it cuts
        # fails the check, and the pool replaces it).
        watch = borrowing.get()
        if watch is not None:
            watch.watch(conn)
        try:
            await psycopg_pool.AsyncConnectionPool.check_connection(conn)
        finally:
            if watch is not None:
                watch.unwatch()


def create_pool(
    conninfo: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    timeout: float = 2.0,
    connect_timeout: int = 2,
    connection_class: type[psycopg.AsyncConnection[Any]] = psycopg.AsyncConnection,
    clock: Callable[[], float] = time.monotonic,
    generic_plans: bool = False,
) -> Pool:
    """Build a closed pool; open it with ``await pool.open()`` (the app does so in its lifespan).

    ``timeout`` bounds how long a request waits for a connection, so an unreachable database
    answers quickly instead of hanging. A connection is checked before it is lent when it has
    been idle for more than :data:`CHECK_IDLE_AFTER_SECONDS` by ``clock`` (seconds, monotonic).

    ``generic_plans``: each connection asks the server to plan its prepared statements once,
    for any values (see :data:`GENERIC_PLANS`). For a pool whose statements are key look-ups by
    arrays of ids, the plan never depends on the values, and planning them anew for every
    execution is most of what a small request costs the server.
    """
    freshness = _Freshness(clock)
    pool = Pool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        open=False,
        connection_class=connection_class,
        kwargs={"autocommit": True, "connect_timeout": connect_timeout},
        check=freshness.check_when_idle,
        reconnect_timeout=0,  # never give up reconnecting: the database may come back
        configure=_plan_once if generic_plans else None,
    )
    pool.freshness = freshness
    return pool


#: psycopg prepares a statement on a connection once it has run it a few times; the server
#: then plans each execution with its values (a custom plan) for as long as it estimates that
#: cheaper than one plan for any values. The deletion's statement, with its replay record,
#: tombstones, audit row and rate step, takes longer to plan than to run: on PostgreSQL 18,
#: planning it for every 1-entry request cost about 250 µs of the server's CPU, which one plan
#: per connection saves (docs/performance.md). Only prepared statements are affected: those
#: run once are planned with their values, as always. (A setting of PostgreSQL 12 and newer.)
GENERIC_PLANS = "SET plan_cache_mode = force_generic_plan"


async def _plan_once(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute(GENERIC_PLANS)


def requests_waiting(pool: Pool) -> int:
    """How many borrowers of ``pool`` in this process are waiting for a connection now."""
    return pool.waiting


@asynccontextmanager
async def connection(pool: Pool) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """Borrow a connection; any driver failure leaves as :class:`StoreUnavailable`, whose
    ``outcome`` says whether the work may have committed (see :func:`.deadline.commit_point`).

    Inside a :func:`.deadline.deadline` scope the borrow is bounded, waiting for the connection
    included: past the deadline the connection is cut and :class:`DeadlineExceeded` raised.
    A connection that was cut is closed before it goes back, so the pool replaces it.
    """
    watch = Watch(current_deadline())
    pool.waiting += 1
    try:
        token = borrowing.set(watch)
        try:
            conn = await pool.getconn(timeout=watch.wait_timeout(pool.timeout))
        finally:
            borrowing.reset(token)
            pool.waiting -= 1  # got one, or gave up (timeout, cancelled): no longer waiting
        try:
            watch.watch(conn)
            async with conn:  # as pool.connection(): roll back on an error
                yield conn
        finally:
            watch.end()
            if watch.cut:
                await conn.close()
            elif pool.freshness is not None:
                pool.freshness.note_return(conn)
            await pool.putconn(conn)
    except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
        raise _unavailable(exc, watch) from exc
    finally:
        watch.end()


def _unavailable(exc: Exception, watch: Watch) -> StoreUnavailable:
    # An error the server sent (it has a SQLSTATE) means it rolled the work back; only a
    # connection lost or cut after the commit went out leaves the outcome unknown.
    answered = isinstance(exc, psycopg.Error) and exc.sqlstate is not None
    outcome = UNCHANGED if answered else watch.outcome
    if watch.cut:  # not when the time ran out waiting for a connection: none was cut
        return DeadlineExceeded(
            f"the database did not answer within {watch.seconds} s", outcome=outcome
        )
    if isinstance(exc, psycopg.OperationalError | psycopg_pool.PoolTimeout | psycopg.InternalError):
        return StoreUnavailable(str(exc), outcome=outcome)
    return StoreUnavailable(f"{type(exc).__name__}: {exc}", outcome=outcome)


_PING = "SELECT 1"


async def ping(pool: Pool) -> None:
    """One round trip to the database; :class:`StoreUnavailable` when it does not answer."""
    async with connection(pool) as conn:
        await conn.execute(_PING)
