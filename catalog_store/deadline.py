"""Client-side deadlines on database work, so a stalled server never holds a caller for long.

A server that is frozen (a paused VM, a stalled disk), or a network that keeps the TCP
connection up while nothing gets through, never answers and never closes the socket:
``statement_timeout`` is never enforced, and a statement waits forever. A deadline set with
:func:`deadline` bounds every connection borrowed in its scope, from the moment it is asked
for. Past it the connection's socket is shut down, so the driver fails at once with a
connection error whatever it was doing. (Cancelling the coroutine instead makes psycopg send
a cancel request and wait for the server before it gives up: seconds that a frozen server
never answers.) A cancel request still goes out, bounded, for a server that is alive but
stuck, in a lock wait say; the connection is then closed, never lent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import socket
import weakref
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import psycopg

from .errors import UNCHANGED, UNKNOWN

__all__ = [
    "CANCEL_TIMEOUT_SECONDS",
    "Watch",
    "borrowing",
    "commit_point",
    "current_deadline",
    "deadline",
    "nothing_committed",
]

#: How long a cancel request sent at a deadline may wait for the server.
CANCEL_TIMEOUT_SECONDS = 5.0

_log = logging.getLogger("catalog_store")
_limit: ContextVar[float | None] = ContextVar("catalog_store_deadline", default=None)
#: The borrow under way in this task, while the pool checks the connection it will lend.
borrowing: ContextVar[Watch | None] = ContextVar("catalog_store_borrowing", default=None)
_watches: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], Watch] = (
    weakref.WeakKeyDictionary()
)
_cancels: set[asyncio.Task[None]] = set()


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Bound each connection borrowed in this scope (by this task and the tasks it starts
    here) to ``seconds``, waiting for it included; None: no bound."""
    token = _limit.set(seconds)
    try:
        yield
    finally:
        _limit.reset(token)


def current_deadline() -> float | None:
    return _limit.get()


def commit_point(conn: psycopg.AsyncConnection[Any]) -> None:
    """Say that what is sent next on ``conn`` may commit (a COMMIT, or a write in autocommit):
    from here on a failure leaves the outcome unknown. After the deadline fired nothing more
    reaches the server, and neither does anything sent on a connection that the server has
    already closed (a restart, a shutdown): then it changes nothing."""
    watch = _watches.get(conn)
    if watch is not None and not watch.fired and not _hung_up(conn):
        watch.committing = True


def _hung_up(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether the server closed this idle connection: nothing arrives unasked on a healthy
    one, so a readable socket is read (without blocking) to see whether it was the end."""
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
        if readable:
            conn.pgconn.consume_input()
    except (psycopg.OperationalError, OSError, ValueError):
        return True
    return conn.pgconn.status != psycopg.pq.ConnStatus.OK


def nothing_committed(conn: psycopg.AsyncConnection[Any]) -> None:
    """The statement after :func:`commit_point` is known to have written nothing."""
    watch = _watches.get(conn)
    if watch is not None:
        watch.committing = False


class Watch:
    """One borrow: its deadline (if any), whether it fired and cut a connection, whether a
    commit may have been sent."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.fired = False
        self.cut = False
        self.committing = False
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._timer: asyncio.TimerHandle | None = None
        if seconds is not None:
            self._timer = asyncio.get_running_loop().call_later(seconds, self._fire)

    @property
    def outcome(self) -> str:
        return UNKNOWN if self.committing else UNCHANGED

    def wait_timeout(self, pool_timeout: float) -> float:
        """How long to wait for a connection: the pool's timeout, within the deadline."""
        return pool_timeout if self.seconds is None else min(pool_timeout, self.seconds)

    def watch(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """From now on the deadline cuts ``conn`` (at once, if it already fired)."""
        self._conn = conn
        _watches[conn] = self
        if self.fired:
            self.cut = _cut(conn) or self.cut

    def unwatch(self) -> None:
        if self._conn is not None:
            _watches.pop(self._conn, None)
            self._conn = None

    def end(self) -> None:
        """The borrow is over: disarm the deadline."""
        if self._timer is not None:
            self._timer.cancel()
        self.unwatch()

    def _fire(self) -> None:
        self.fired = True
        if self._conn is not None:
            self.cut = _cut(self._conn)


def _cut(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Send a cancel request (in the background, bounded) and shut the socket down now; False
    when the connection was already lost."""
    if conn.closed:
        return False
    try:
        fd = conn.pgconn.socket
    except psycopg.OperationalError:
        return False
    # The cancel task's first step builds its cancel connection from this connection's
    # parameters; it runs before the driver's next read sees the socket shut.
    task = asyncio.get_running_loop().create_task(_cancel(conn))
    _cancels.add(task)
    task.add_done_callback(_cancels.discard)
    # Shut down a duplicate of the descriptor: the socket is shared, so the driver's own
    # descriptor sees end-of-file at once; closing the duplicate leaves the driver's open.
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
        sock.shutdown(socket.SHUT_RDWR)
    return True


async def _cancel(conn: psycopg.AsyncConnection[Any]) -> None:
    try:
        await conn.cancel_safe(timeout=CANCEL_TIMEOUT_SECONDS)
    except (psycopg.Error, OSError) as exc:
        # A frozen server takes no cancel request either; closing the connection is enough
        # there: the server finds the client gone when it wakes, and rolls back.
        _log.info("cancel request at a deadline not delivered: %s", type(exc).__name__)
