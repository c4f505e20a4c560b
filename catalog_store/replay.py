"""Replay records (one per accepted signature) and the per-partner request rate limit that
rides on them; a refused request's record spends its signature without counting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from .deadline import commit_point, nothing_committed
from .errors import RateLimited, Replayed
from .pool import Pool, connection

__all__ = [
    "INSERT_NONCE",
    "INSERT_NONCE_LIMITED",
    "Nonce",
    "RateLimit",
    "accept_nonce",
    "insert_nonce",
    "nonce_params",
    "purge_expired_nonces",
    "spend_nonce",
    "why_refused",
]


@dataclass(frozen=True, slots=True)
class Nonce:
    """A request's replay record: its partner, its signature and when it can be forgotten."""

    partner_id: int
    signature: bytes
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``requests`` accepted requests per partner in any ``window_seconds``."""

    requests: int
    window_seconds: int


INSERT_NONCE = """
    INSERT INTO replay_nonces (partner_id, signature, expires_at)
    VALUES (%(partner)s, %(signature)s, to_timestamp(%(expires)s / 1000.0))
    ON CONFLICT DO NOTHING"""
# The rate limit rides on the replay record that every accepted request writes anyway: one
# statement counts the partner's accepted requests of the window (never more than the limit
# of them, from the partial (partner_id, accepted_at) index of the records that count: a
# refused request's record does not) and inserts the new record only when fewer than the limit
# are there. No extra round trip, and no row that concurrent requests of
# one partner would queue on.
INSERT_NONCE_LIMITED = """
    INSERT INTO replay_nonces (partner_id, signature, expires_at)
    SELECT %(partner)s, %(signature)s, to_timestamp(%(expires)s / 1000.0)
     WHERE (SELECT count(*) FROM (
              SELECT 1 FROM replay_nonces
               WHERE partner_id = %(partner)s AND counts
                 AND accepted_at > statement_timestamp() - make_interval(secs => %(window)s)
               LIMIT %(limit)s) recent) < %(limit)s
    ON CONFLICT DO NOTHING"""
# A refused request's record: it spends the signature but does not count toward the rate.
_SPEND_NONCE = """
    INSERT INTO replay_nonces (partner_id, signature, expires_at, counts)
    VALUES (%(partner)s, %(signature)s, to_timestamp(%(expires)s / 1000.0), false)
    ON CONFLICT DO NOTHING"""

# Only for a refused request: was it a replay, or over the limit, and until when.
_WHY_REFUSED = """
SELECT EXISTS (SELECT 1 FROM replay_nonces
                WHERE partner_id = %(partner)s AND signature = %(signature)s),
       (SELECT ceil(extract(epoch FROM min(accepted_at) + make_interval(secs => %(window)s)
                                       - statement_timestamp()))::int
          FROM (SELECT accepted_at FROM replay_nonces
                 WHERE partner_id = %(partner)s AND counts
                   AND accepted_at > statement_timestamp() - make_interval(secs => %(window)s)
                 ORDER BY accepted_at DESC LIMIT %(limit)s) recent)
"""


async def insert_nonce(
    conn: psycopg.AsyncConnection[Any], nonce: Nonce, rate: RateLimit | None = None
) -> None:
    """Record the nonce; :class:`Replayed` if it was, :class:`RateLimited` if the partner is
    over ``rate`` (counted in the same statement). Either way nothing is recorded."""
    params = nonce_params(nonce, rate)
    cur = await conn.execute(INSERT_NONCE if rate is None else INSERT_NONCE_LIMITED, params)
    if cur.rowcount != 1:
        nothing_committed(conn)
        raise await why_refused(conn, params, rate)


def nonce_params(nonce: Nonce, rate: RateLimit | None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "partner": nonce.partner_id,
        "signature": nonce.signature,
        "expires": nonce.expires_at_ms,
    }
    if rate is not None:
        params.update(window=rate.window_seconds, limit=rate.requests)
    return params


async def why_refused(
    conn: psycopg.AsyncConnection[Any], params: dict[str, Any], rate: RateLimit | None
) -> Replayed | RateLimited:
    """Why a replay record was not written: without a rate limit only a replay can refuse it;
    with one, one more statement (asked only now) says which, and until when."""
    if rate is None:
        return Replayed("signature already accepted")
    cur = await conn.execute(_WHY_REFUSED, params)
    row = await cur.fetchone()
    assert row is not None
    if row[0]:
        return Replayed("signature already accepted")
    return RateLimited(
        "requests", limit=rate.requests, retry_after=max(1, row[1] or rate.window_seconds)
    )


async def accept_nonce(pool: Pool, nonce: Nonce, rate: RateLimit | None = None) -> None:
    """Record a nonce on its own (requests that change nothing else); raises :class:`Replayed`
    or :class:`RateLimited` (then the nonce is spent without counting)."""
    try:
        async with connection(pool) as conn:
            commit_point(conn)  # autocommit: the replay record commits with its statement
            await insert_nonce(conn, nonce, rate)
    except RateLimited:
        await spend_nonce(pool, nonce)
        raise


async def spend_nonce(pool: Pool, nonce: Nonce) -> None:
    """Record the nonce of a refused request, so that it cannot be sent again, without counting
    it toward the partner's request rate; raises :class:`Replayed` when it was recorded."""
    async with connection(pool) as conn:
        commit_point(conn)  # autocommit: the replay record commits with its statement
        cur = await conn.execute(_SPEND_NONCE, nonce_params(nonce, None))
        if cur.rowcount != 1:
            nothing_committed(conn)
            raise Replayed("signature already accepted")


async def purge_expired_nonces(pool: Pool, *, now_ms: int) -> int:
    """Delete replay records that expired before ``now_ms``, the caller's clock (the one that
    checks the timestamp window, not the database's); return how many."""
    async with connection(pool) as conn:
        cur = await conn.execute(
            "DELETE FROM replay_nonces WHERE expires_at < to_timestamp(%s / 1000.0)", (now_ms,)
        )
        return cur.rowcount
