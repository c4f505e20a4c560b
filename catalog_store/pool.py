"""The connection pool, and the one place where driver failures become store errors."""

from __future__ import annotations

import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import psycopg_pool

from .errors import StoreUnavailable

__all__ = ["Pool", "create_pool", "requests_waiting"]

Pool = psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]]

#: A connection given back to the pool this recently was working then, and is lent again
#: without a check: under load, checking every borrow cost a round trip per request
#: (docs/performance.md). One idle for longer is checked before it is lent.
CHECK_IDLE_AFTER_SECONDS = 1.0

_returned_at: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = (
    weakref.WeakKeyDictionary()
)


async def _note_return(conn: psycopg.AsyncConnection[Any]) -> None:
    # Called by the pool only for a connection that comes back healthy and idle.
    _returned_at[conn] = time.monotonic()


async def _check_when_idle(conn: psycopg.AsyncConnection[Any]) -> None:
    returned = _returned_at.get(conn)
    if returned is not None and time.monotonic() - returned < CHECK_IDLE_AFTER_SECONDS:
        return
    await psycopg_pool.AsyncConnectionPool.check_connection(conn)


def create_pool(
    conninfo: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    timeout: float = 2.0,
    connect_timeout: int = 2,
    connection_class: type[psycopg.AsyncConnection[Any]] = psycopg.AsyncConnection,
) -> Pool:
    """Build a closed pool; open it with ``await pool.open()`` (the app does so in its lifespan).

    ``timeout`` bounds how long a request waits for a connection, so an unreachable database
    answers quickly instead of hanging. A connection is checked before it is lent when it has
    been idle for more than :data:`CHECK_IDLE_AFTER_SECONDS`.
    """
    return psycopg_pool.AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        open=False,
        connection_class=connection_class,
        kwargs={"autocommit": True, "connect_timeout": connect_timeout},
        check=_check_when_idle,
        reset=_note_return,
        reconnect_timeout=0,  # never give up reconnecting: the database may come back
    )


#: Per pool, the borrowers still waiting for their connection now. psycopg_pool's own
#: ``requests_waiting`` is the length of its queue of waiters, which keeps those that gave up
#: (timed out) until a connection comes back, so in an outage it only grows.
_waiting: weakref.WeakKeyDictionary[Pool, int] = weakref.WeakKeyDictionary()


def requests_waiting(pool: Pool) -> int:
    """How many borrowers of ``pool`` in this process are waiting for a connection now."""
    return _waiting.get(pool, 0)


@asynccontextmanager
async def connection(pool: Pool) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """Borrow a connection; any driver failure leaves as :class:`StoreUnavailable`."""
    _waiting[pool] = _waiting.get(pool, 0) + 1
    waiting = True
    try:
        async with pool.connection() as conn:
            _waiting[pool] -= 1
            waiting = False
            yield conn
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg.InternalError) as exc:
        raise StoreUnavailable(str(exc)) from exc
    except psycopg.Error as exc:
        raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
    finally:
        if waiting:  # it gave up (timeout, cancelled): no longer waiting
            _waiting[pool] -= 1
