"""One request's transaction: its replay record, its idempotency key's claim, its work and the
answer kept under the key, committed together."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg

from .deadline import commit_point
from .errors import AnsweredBefore, IdempotencyInProgress, IdempotencyMismatch, RateLimited
from .idempotency import Idempotency, StoredResponse, claim_key, record_response
from .pool import Pool, connection
from .replay import Nonce, RateLimit, insert_nonce, spend_nonce, take_step

__all__ = ["begin_request", "end_request", "in_request_transaction"]

T = TypeVar("T")

# What the store refuses after the signature verified; the request is spent all the same.
_REFUSALS = (RateLimited, IdempotencyMismatch, IdempotencyInProgress)


async def begin_request(
    conn: psycopg.AsyncConnection[Any],
    nonce: Nonce,
    store_id: int,
    idempotency: Idempotency[Any] | None,
    rate: RateLimit | None = None,
) -> StoredResponse | None:
    """Inside the request's transaction: record the nonce (and check the partner's rate), then
    claim the idempotency key; return the key's earlier answer, if any (then the request must
    do nothing else). The request's step of its rate is the last write of its work (see
    replay.py), so that its partner's row stays locked only until the commit."""
    await insert_nonce(conn, nonce, rate)
    if idempotency is None:
        return None
    return await claim_key(conn, partner_id=nonce.partner_id, store_id=store_id, key=idempotency)


async def end_request(
    conn: psycopg.AsyncConnection[Any],
    nonce: Nonce,
    store_id: int,
    idempotency: Idempotency[T] | None,
    result: T,
) -> None:
    """Inside the request's transaction, after its work: keep its answer under its key."""
    if idempotency is not None:
        await record_response(
            conn,
            partner_id=nonce.partner_id,
            store_id=store_id,
            key=idempotency,
            response=idempotency.respond(result),
        )


async def in_request_transaction(
    pool: Pool,
    nonce: Nonce,
    store_id: int,
    idempotency: Idempotency[T] | None,
    rate: RateLimit | None,
    work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]],
) -> T:
    """One request's transaction: its nonce, its idempotency key's claim, ``work`` and the
    answer kept under the key. With ``rate``, the last write of ``work`` must be the request's
    step of its partner's allowance (``replay.execute_counted`` or ``replay.take_step``).
    Raises :class:`AnsweredBefore` (only the nonce was recorded, ``work`` never ran) when the
    key already has an answer. A refusal (rate limit, the key's other body or first request
    still running) rolls it all back and then spends the nonce without counting it
    (:func:`spend_nonce`)."""
    try:
        async with connection(pool) as conn:
            async with conn.transaction():
                before = await begin_request(conn, nonce, store_id, idempotency, rate)
                if before is None:
                    result = await work(conn)  # its last write is the request's step
                    await end_request(conn, nonce, store_id, idempotency, result)
                else:
                    await take_step(conn, nonce, rate)  # an answer given again counts too
                commit_point(conn)  # the block's end sends COMMIT
    except _REFUSALS:
        await spend_nonce(pool, nonce)
        raise
    if before is not None:
        assert idempotency is not None
        raise AnsweredBefore(idempotency.key, before)
    return result
