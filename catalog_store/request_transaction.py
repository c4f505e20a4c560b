"""One request's transaction: its replay record, its idempotency key's claim, its work and the
answer kept under the key, committed together or not at all.

    async with request_transaction(pool, nonce=n, store_id=s, request_id=r, key=k) as tx:
        if tx.answered_before is not None:
            ...  # the key's earlier answer, to send again; nothing else is done
        outcome = await delete_products(tx, plan=plan)
        await tx.keep(status, body)  # the answer, rendered by the caller from the outcome

With a key, the transaction begins on entry: the replay record is written and the key
claimed, so that ``answered_before`` is known. Without one nothing is sent before the work
asks for the connection, so a work that is one statement can carry the replay record itself
(:attr:`RequestTransaction.one_statement`): one round trip. With the request rate limit, the
replay record's statement checks the partner's allowance and the work's last write takes the
request's step of it (replay.py). A refusal (a rate limit, the key's other body, its first
request still running) rolls everything back and then spends the nonce without counting it; a
replayed signature changes nothing.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg

from .deadline import commit_point
from .errors import IdempotencyInProgress, IdempotencyMismatch, RateLimited
from .idempotency import IdempotencyKey, KeptAnswer, claim_key, keep_answer
from .pool import Pool, connection
from .replay import Nonce, RateLimit, insert_nonce, spend_nonce, take_step

__all__ = ["RequestTransaction", "request_transaction"]

# What the store refuses after the signature verified; the request is spent all the same.
_REFUSALS = (RateLimited, IdempotencyMismatch, IdempotencyInProgress)


class RequestTransaction:
    """A request's transaction as its work sees it: who sent the request, what its key
    answered before, and the connection of the transaction, begun on first use."""

    def __init__(
        self,
        pool: Pool,
        stack: contextlib.AsyncExitStack,
        *,
        nonce: Nonce,
        store_id: int,
        request_id: uuid.UUID,
        key: IdempotencyKey | None,
        rate: RateLimit | None,
    ) -> None:
        self.pool = pool
        self.nonce = nonce
        self.store_id = store_id
        self.request_id = request_id
        self.key = key
        self.rate = rate
        #: The key's answer to an earlier request with this body: send it again, do nothing.
        self.answered_before: KeptAnswer | None = None
        self._stack = stack
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._alone = False  # the work was one statement on a connection of its own
        self._spent = False  # a refused request's replay record is committed already

    @property
    def one_statement(self) -> bool:
        """Whether the work may be a single statement that writes the replay record itself
        (no key, nothing sent yet): then it runs in :meth:`alone`."""
        return self.key is None and self._conn is None and not self._alone

    async def connection(self) -> psycopg.AsyncConnection[Any]:
        """The transaction's connection. On first use the transaction begins: the replay
        record is written (:class:`Replayed`, :class:`RateLimited`) and the key claimed."""
        if self._alone or self.answered_before is not None:
            raise RuntimeError("this request's transaction has no more work to do")
        if self._conn is None:
            conn = await self._stack.enter_async_context(connection(self.pool))
            await self._stack.enter_async_context(conn.transaction())
            self._conn = conn
            await insert_nonce(conn, self.nonce, self.rate)
            if self.key is not None:
                self.answered_before = await claim_key(
                    conn, partner_id=self.nonce.partner_id, store_id=self.store_id, key=self.key
                )
        return self._conn

    @contextlib.asynccontextmanager
    async def alone(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection of its own, in autocommit, for the work written as one statement that
        writes the replay record too (only when :attr:`one_statement`); it commits as it ends."""
        if not self.one_statement:
            raise RuntimeError("this request's work cannot be one statement")
        self._alone = True
        async with connection(self.pool) as conn:
            commit_point(conn)  # one statement in autocommit: it commits as it ends
            yield conn

    async def keep(self, status: int, body: bytes) -> None:
        """Keep the request's answer under its key, committed with the work; nothing to keep
        without a key."""
        if self.key is not None:
            await keep_answer(
                await self.connection(),
                partner_id=self.nonce.partner_id,
                store_id=self.store_id,
                key=self.key,
                answer=KeptAnswer(status, body, self.request_id),
            )

    def spent(self) -> None:
        """Say that the request, refused, has its replay record committed already (by its one
        statement): the transaction's end must not spend its nonce again."""
        self._spent = True

    async def _end(self) -> None:
        """Before the commit: a request whose work sent nothing still spends its nonce, and a
        request answered before takes its step of its rate too, as its last write (a work
        with the rate limit takes its step as its own last write: ``replay.execute_counted``
        or ``replay.take_step``)."""
        if self.one_statement:
            await self.connection()
            await take_step(self._connection(), self.nonce, self.rate)
        elif self.answered_before is not None:
            await take_step(self._connection(), self.nonce, self.rate)
        if self._conn is not None:
            commit_point(self._conn)  # the transaction's end sends COMMIT

    def _connection(self) -> psycopg.AsyncConnection[Any]:
        assert self._conn is not None
        return self._conn


@contextlib.asynccontextmanager
async def request_transaction(
    pool: Pool,
    *,
    nonce: Nonce,
    store_id: int,
    request_id: uuid.UUID,
    key: IdempotencyKey | None = None,
    rate: RateLimit | None = None,
) -> AsyncIterator[RequestTransaction]:
    """Open a request's transaction (see the module's docstring); it commits when the block
    ends, and rolls back on an error. Raises :class:`Replayed` when the nonce was already
    recorded (nothing changed), :class:`RateLimited` when the partner is over ``rate``, and
    the errors of :func:`claim_key`; after those refusals the nonce is spent."""
    stack = contextlib.AsyncExitStack()
    tx = RequestTransaction(
        pool, stack, nonce=nonce, store_id=store_id, request_id=request_id, key=key, rate=rate
    )
    try:
        async with stack:  # the connection and its transaction, once begun
            if key is not None:
                await tx.connection()
            yield tx
            await tx._end()
    except _REFUSALS:
        if not tx._spent:
            await spend_nonce(pool, nonce)
        raise
