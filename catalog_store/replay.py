"""Replay records (one per signature that verified) and the per-partner request rate limit
checked in the same statement; a refused request's record spends its signature without
counting."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
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
    "not_counted",
    "over_the_limit",
    "purge_expired_nonces",
    "spend_nonce",
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
# The rate limit rides on the statement that writes the replay record, in its transaction. The
# record is written first, whatever the limit says: a request refused for the rate is spent
# too. Only a new record (not a replay) then takes its step of the partner's allowance, from
# the one row of the partner: the step is taken only while the allowance stays within one
# window of now. ON CONFLICT DO UPDATE locks that row and checks its WHERE against the row's
# latest version, so concurrent requests of one partner take their steps one after the other
# and never pass the limit; the work does not grow with the limit. The allowance is read back
# only for a refusal, to say when a request fits again.
INSERT_NONCE_LIMITED = """
WITH nonce AS (
    INSERT INTO replay_nonces (partner_id, signature, expires_at)
    VALUES (%(partner)s, %(signature)s, to_timestamp(%(expires)s / 1000.0))
    ON CONFLICT DO NOTHING
    RETURNING 1
), counted AS (
    INSERT INTO rate_allowances AS r (partner_id, spent_until_ms)
    SELECT %(partner)s, %(now)s + %(step)s FROM nonce
    ON CONFLICT (partner_id) DO UPDATE
       SET spent_until_ms = greatest(r.spent_until_ms, %(now)s) + %(step)s
     WHERE greatest(r.spent_until_ms, %(now)s) + %(step)s <= %(now)s + %(window_ms)s
    RETURNING 1
)
SELECT EXISTS (SELECT FROM nonce),
       EXISTS (SELECT FROM counted),
       CASE WHEN NOT EXISTS (SELECT FROM counted)
            THEN (SELECT spent_until_ms FROM rate_allowances WHERE partner_id = %(partner)s)
       END
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


async def insert_nonce(
    conn: psycopg.AsyncConnection[Any], nonce: Nonce, rate: RateLimit | None = None
) -> None:
    """Record the nonce; :class:`Replayed` if it was (nothing written), :class:`RateLimited` if
    the partner is over ``rate`` (checked in the same statement; the record is written, and the
    caller's transaction decides whether it stays)."""
    params = nonce_params(nonce, rate)
    if rate is None:
        cur = await conn.execute(INSERT_NONCE, params)
        if cur.rowcount != 1:
            nothing_committed(conn)
            raise Replayed("signature already accepted")
        return
    cur = await conn.execute(INSERT_NONCE_LIMITED, params)
    row = await cur.fetchone()
    assert row is not None
    recorded, counted, spent_until_ms = row
    if not recorded:
        nothing_committed(conn)
        raise Replayed("signature already accepted")
    if not counted:
        raise over_the_limit(nonce, rate, spent_until_ms)


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
    again: once its allowance, less one step, is within one window of now. An allowance not
    yet visible to the refused statement (another request's row, committed meanwhile) is taken
    as just spent: one step."""
    now = Decimal(nonce.received_at_ms)
    window_ms = rate.window_seconds * 1000
    spent = spent_until_ms if spent_until_ms is not None else now + window_ms
    wait_ms = spent + rate.step_ms - window_ms - now
    return RateLimited(
        "requests", limit=rate.requests, retry_after=max(1, math.ceil(wait_ms / 1000))
    )


async def not_counted(conn: psycopg.AsyncConnection[Any], nonce: Nonce) -> None:
    """Mark the committed replay record of a request refused for the rate as not counting."""
    await conn.execute(_NOT_COUNTED, nonce_params(nonce, None))


async def accept_nonce(pool: Pool, nonce: Nonce, rate: RateLimit | None = None) -> None:
    """Record a nonce on its own (requests that change nothing else); raises :class:`Replayed`,
    or :class:`RateLimited` (the nonce is spent all the same, without counting)."""
    async with connection(pool) as conn:
        commit_point(conn)  # autocommit: the replay record commits with its statement
        try:
            await insert_nonce(conn, nonce, rate)
        except RateLimited:
            await not_counted(conn, nonce)
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
    checks the timestamp window, not the database's), and the rate allowances that it has
    passed; return how many records."""
    async with connection(pool) as conn:
        cur = await conn.execute(_PURGE, {"now": now_ms})
        return cur.rowcount
