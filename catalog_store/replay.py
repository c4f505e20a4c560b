"""Replay records (one per signature that verified) and the per-partner request rate limit,
checked with the record and taken last in the request's transaction; a refused request's record
spends its signature without counting."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
import psycopg.errors

from .deadline import commit_point, nothing_committed
from .errors import RateLimited, Replayed
from .pool import Pool, connection

__all__ = [
    "ACCEPT_NONCE_LIMITED",
    "INSERT_NONCE",
    "INSERT_NONCE_LIMITED",
    "STEP_REFUSED",
    "TAKE_STEP",
    "Nonce",
    "RateLimit",
    "accept_nonce",
    "execute_counted",
    "insert_nonce",
    "nonce_params",
    "not_counted",
    "over_the_limit",
    "purge_expired_nonces",
    "spend_nonce",
    "take_step",
]


@dataclass(frozen=True, slots=True)
class Nonce:
    """A request's replay record: its partner, its signature, when it can be forgotten, and
    when the gateway received it, by the clock that checks the timestamp window (that moment,
    never the database's clock, places the request in its partner's rate limit)."""

    partner_id: int
    signature: bytes
    expires_at_ms: int
    received_at_ms: int


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``requests`` accepted requests of a partner at once, given back one every
    ``window_seconds / requests`` seconds: a steady rate of ``requests`` per ``window_seconds``."""

    requests: int
    window_seconds: int

    @property
    def step_ms(self) -> Decimal:
        """The share of the window that one accepted request takes (exact to 28 digits)."""
        return Decimal(self.window_seconds * 1000) / self.requests


INSERT_NONCE = """
    INSERT INTO replay_nonces (partner_id, signature, expires_at)
    VALUES (%(partner)s, %(signature)s, to_timestamp(%(expires)s / 1000.0))
    ON CONFLICT DO NOTHING"""
# The rate limit rides on the request's own statements. Each partner has one row: the moment
# until which its allowance is spent. A request fits when one step (window / limit) from that
# moment, or from now if it lies in the past, stays within one window of now. The replay record
# is written first, whatever the limit says (a request refused for the rate is spent too), and
# the partner's row is read without a lock: over the limit, the request stops there, and the
# moment it read says when one fits again. A request that fits takes its step as its last write
# (TAKE_STEP), so the row's lock is held only until the commit and one partner's requests never
# wait for each other's work; ON CONFLICT DO UPDATE locks the row and moves it from its latest
# version, and the check of rate_allowances refuses a move past now + window: a hard cap even
# for requests that read the row at the same moment (the one that loses is rolled back whole).
INSERT_NONCE_LIMITED = """
    INSERT INTO replay_nonces (partner_id, signature, expires_at)
    VALUES (%(partner)s, %(signature)s, to_timestamp(%(expires)s / 1000.0))
    ON CONFLICT DO NOTHING
    RETURNING (SELECT greatest(max(a.spent_until_ms), %(now)s) + %(step)s
                      <= %(now)s + %(window_ms)s
                 FROM rate_allowances a WHERE a.partner_id = %(partner)s),
              (SELECT a.spent_until_ms FROM rate_allowances a WHERE a.partner_id = %(partner)s)"""
# The step, as the last write of a request's transaction (a statement of its own when the
# request has no work statement to carry it: an answer given before, a dispatch).
TAKE_STEP = """
    INSERT INTO rate_allowances AS r (partner_id, spent_until_ms, ceiling_ms)
    VALUES (%(partner)s, %(now)s + %(step)s, %(now)s + %(window_ms)s)
    ON CONFLICT (partner_id) DO UPDATE
       SET spent_until_ms = greatest(r.spent_until_ms, %(now)s) + %(step)s,
           ceiling_ms = excluded.ceiling_ms"""
# A request that changes nothing else (a batch's status read), whole, in autocommit: its record,
# the check, and its step last (after the main query: a data-modifying WITH that nothing reads
# runs at the end). No row back: a replay.
ACCEPT_NONCE_LIMITED = """
WITH nonce AS (
    INSERT INTO replay_nonces (partner_id, signature, expires_at)
    VALUES (%(partner)s, %(signature)s, to_timestamp(%(expires)s / 1000.0))
    ON CONFLICT DO NOTHING
    RETURNING 1
), allowance AS (
    SELECT greatest(a.spent_until_ms, %(now)s) + %(step)s <= %(now)s + %(window_ms)s AS fits,
           a.spent_until_ms
      FROM (SELECT (SELECT spent_until_ms FROM rate_allowances WHERE partner_id = %(partner)s)
                    AS spent_until_ms) AS a
), counted AS (
    SELECT 1 FROM nonce, allowance WHERE allowance.fits
), step AS (
    INSERT INTO rate_allowances AS r (partner_id, spent_until_ms, ceiling_ms)
    SELECT %(partner)s, %(now)s + %(step)s, %(now)s + %(window_ms)s FROM counted
    ON CONFLICT (partner_id) DO UPDATE
       SET spent_until_ms = greatest(r.spent_until_ms, %(now)s) + %(step)s,
           ceiling_ms = excluded.ceiling_ms
)
SELECT allowance.fits, allowance.spent_until_ms FROM nonce, allowance
"""
# A refused request's record: it spends the signature but does not count toward the rate.
_SPEND_NONCE = """
    INSERT INTO replay_nonces (partner_id, signature, expires_at, counts)
    VALUES (%(partner)s, %(signature)s, to_timestamp(%(expires)s / 1000.0), false)
    ON CONFLICT DO NOTHING"""
# A request refused for the rate in a statement that committed its replay record: the record
# says that it does not count (the partner's allowance was not moved for it).
_NOT_COUNTED = """
    UPDATE replay_nonces SET counts = false
     WHERE partner_id = %(partner)s AND signature = %(signature)s"""
# Replay records past their expiry, and allowances whose moment has passed (such a row says no
# more than no row at all), by the caller's clock; the count returned is the records'.
_PURGE = """
WITH allowances AS (
    DELETE FROM rate_allowances WHERE spent_until_ms < %(now)s
)
DELETE FROM replay_nonces WHERE expires_at < to_timestamp(%(now)s / 1000.0)
"""
#: The check that refuses a step past the window: another request of the partner took the
#: allowance between this one's read and its step.
STEP_REFUSED = "rate_allowances_within_window"


async def insert_nonce(
    conn: psycopg.AsyncConnection[Any], nonce: Nonce, rate: RateLimit | None = None
) -> None:
    """Record the nonce; :class:`Replayed` if it was (nothing written), :class:`RateLimited` if
    the partner is over ``rate`` as its allowance stands (the record is written, and the
    caller's transaction decides whether it stays). A request that fits must then take its
    step, last in its transaction (:func:`take_step`)."""
    params = nonce_params(nonce, rate)
    if rate is None:
        cur = await conn.execute(INSERT_NONCE, params)
        if cur.rowcount != 1:
            nothing_committed(conn)
            raise Replayed("signature already accepted")
        return
    cur = await conn.execute(INSERT_NONCE_LIMITED, params)
    row = await cur.fetchone()
    if row is None:
        nothing_committed(conn)
        raise Replayed("signature already accepted")
    fits, spent_until_ms = row
    if not fits:
        raise over_the_limit(nonce, rate, spent_until_ms)


async def take_step(
    conn: psycopg.AsyncConnection[Any], nonce: Nonce, rate: RateLimit | None
) -> None:
    """The request's step of its partner's allowance, as a statement of its own, the last write
    of its transaction; raises as :func:`execute_counted`."""
    if rate is not None:
        await execute_counted(conn, TAKE_STEP, nonce_params(nonce, rate), nonce, rate)


async def execute_counted(
    conn: psycopg.AsyncConnection[Any],
    statement: str,
    params: dict[str, Any],
    nonce: Nonce,
    rate: RateLimit,
) -> psycopg.AsyncCursor[Any]:
    """Run a statement whose last write is the request's step; :class:`RateLimited` when the
    check refuses it (another request of the partner took the allowance since this one read
    it): the statement failed, and the caller's transaction must roll back."""
    try:
        return await conn.execute(statement, params)
    except psycopg.errors.CheckViolation as exc:
        if exc.diag.constraint_name != STEP_REFUSED:
            raise
        raise over_the_limit(nonce, rate, None) from None


def nonce_params(nonce: Nonce, rate: RateLimit | None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "partner": nonce.partner_id,
        "signature": nonce.signature,
        "expires": nonce.expires_at_ms,
    }
    if rate is not None:
        params.update(
            now=nonce.received_at_ms, step=rate.step_ms, window_ms=rate.window_seconds * 1000
        )
    return params


def over_the_limit(nonce: Nonce, rate: RateLimit, spent_until_ms: Decimal | None) -> RateLimited:
    """The refusal, with the whole seconds (at least 1) until a request of the partner fits
    again: once its allowance, less one step, is within one window of now. Refused at its step
    (``None``: another request took the allowance just before), the allowance is taken as just
    spent: one step."""
    now = Decimal(nonce.received_at_ms)
    window_ms = rate.window_seconds * 1000
    spent = spent_until_ms if spent_until_ms is not None else now + window_ms
    wait_ms = spent + rate.step_ms - window_ms - now
    retry_after = max(1, math.ceil(wait_ms / 1000))
    return RateLimited("requests", limit=rate.requests, retry_after=retry_after)


async def not_counted(conn: psycopg.AsyncConnection[Any], nonce: Nonce) -> None:
    """Mark the committed replay record of a request refused for the rate as not counting."""
    await conn.execute(_NOT_COUNTED, nonce_params(nonce, None))


async def accept_nonce(pool: Pool, nonce: Nonce, rate: RateLimit | None = None) -> None:
    """Record a nonce on its own (requests that change nothing else) and take its step, in one
    statement; raises :class:`Replayed`, or :class:`RateLimited` (the nonce is spent all the
    same, without counting)."""
    async with connection(pool) as conn:
        commit_point(conn)  # autocommit: the replay record commits with its statement
        if rate is None:
            await insert_nonce(conn, nonce)
            return
        lost_the_step = await _accept_limited(conn, nonce, rate)
    if lost_the_step:
        await spend_nonce(pool, nonce)
        raise over_the_limit(nonce, rate, None)


async def _accept_limited(
    conn: psycopg.AsyncConnection[Any], nonce: Nonce, rate: RateLimit
) -> bool:
    """True when the step was refused (the statement rolled back whole: the nonce is still to
    spend); raises when the allowance was already spent as read (the record stays, marked)."""
    try:
        cur = await conn.execute(ACCEPT_NONCE_LIMITED, nonce_params(nonce, rate))
    except psycopg.errors.CheckViolation as exc:
        if exc.diag.constraint_name != STEP_REFUSED:
            raise
        nothing_committed(conn)
        return True
    row = await cur.fetchone()
    if row is None:
        nothing_committed(conn)
        raise Replayed("signature already accepted")
    fits, spent_until_ms = row
    if not fits:
        await not_counted(conn, nonce)
        raise over_the_limit(nonce, rate, spent_until_ms)
    return False


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
    checks the timestamp window, not the database's), and the rate allowances that it has
    passed; return how many records."""
    async with connection(pool) as conn:
        cur = await conn.execute(_PURGE, {"now": now_ms})
        return cur.rowcount
