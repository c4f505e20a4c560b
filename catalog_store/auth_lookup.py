"""What one request's authentication reads (in one statement), and the note of secrets used."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from .pool import Pool, connection
from .sealing import SecretBox
from .store_tokens import hash_token

__all__ = ["AuthRecord", "lookup_auth", "lookup_auth_by_hash", "note_secrets_used"]


@dataclass(frozen=True, slots=True)
class AuthRecord:
    """Everything one request's authentication needs, read in one statement.

    ``partner_id`` is None for an unknown partner, ``store_id`` for an unknown store and
    ``token_*`` for a token that does not exist or was revoked.
    """

    partner_id: int | None
    partner_active: bool
    secrets: tuple[bytes, ...]
    store_id: int | None
    token_partner_id: int | None
    token_store_id: int | None
    token_scopes: tuple[str, ...]
    key_ids: tuple[str, ...] = ()  # of ``secrets``, in the same order (newest first)


_LOOKUP = """
SELECT p.id, coalesce(p.active, false),
       (SELECT array_agg(ARRAY[ps.key_id, encode(coalesce(ps.sealed, ps.secret), 'base64'),
                               CASE WHEN ps.sealed IS NULL THEN 'plain' ELSE 'sealed' END]
                         ORDER BY ps.created_at DESC, ps.key_id DESC)
          FROM partner_secrets ps
         WHERE ps.partner_id = p.id AND ps.retired_at IS NULL),
       s.id, t.partner_id, t.store_id, coalesce(t.scopes, '{}')
  FROM (VALUES (1)) AS one (x)
  LEFT JOIN partners p ON p.client_id = %(partner)s
  LEFT JOIN stores s ON s.client_id = %(store)s
  LEFT JOIN store_tokens t ON t.token_hash = %(token_hash)s AND t.revoked_at IS NULL
"""

_NOTE_USED = """
UPDATE partner_secrets AS ps SET last_used_at = now()
  FROM unnest(%s::bigint[], %s::text[]) AS u (partner_id, key_id)
 WHERE ps.partner_id = u.partner_id AND ps.key_id = u.key_id
   AND (ps.last_used_at IS NULL OR ps.last_used_at < now() - interval '1 minute')
"""


async def lookup_auth(
    pool: Pool,
    *,
    partner_client_id: str,
    store_client_id: str,
    store_token: str,
    box: SecretBox,
) -> AuthRecord:
    """Read the partner, its active secrets (opened with ``box``), the store and the token in
    one statement. Raises :class:`SecretUnreadable` when a secret does not open."""
    return await lookup_auth_by_hash(
        pool,
        partner_client_id=partner_client_id,
        store_client_id=store_client_id,
        token_hash=hash_token(store_token),
        box=box,
    )


async def lookup_auth_by_hash(
    pool: Pool,
    *,
    partner_client_id: str,
    store_client_id: str,
    token_hash: bytes,
    box: SecretBox,
) -> AuthRecord:
    """:func:`lookup_auth` for a token already hashed (the gateway's cache keys on the hash)."""
    async with connection(pool) as conn:
        cur = await conn.execute(
            _LOOKUP,
            {"partner": partner_client_id, "store": store_client_id, "token_hash": token_hash},
        )
        row = await cur.fetchone()
    assert row is not None  # the VALUES row is always there
    key_ids: list[str] = []
    opened: list[bytes] = []
    for key_id, encoded, form in row[2] or ():
        raw = base64.b64decode(encoded)
        key_ids.append(key_id)
        opened.append(raw if form == "plain" else box.open(raw, partner_id=row[0], key_id=key_id))
    return AuthRecord(
        partner_id=row[0],
        partner_active=row[1],
        secrets=tuple(opened),
        store_id=row[3],
        token_partner_id=row[4],
        token_store_id=row[5],
        token_scopes=tuple(row[6]),
        key_ids=tuple(key_ids),
    )


async def note_secrets_used(pool: Pool, used: Sequence[tuple[int, str]]) -> None:
    """Record that these (partner id, key id) secrets verified requests just now, in one
    statement; a secret whose time was written less than a minute ago is left as it is, so
    several gateway processes do not each rewrite it."""
    if not used:
        return
    async with connection(pool) as conn:
        await conn.execute(_NOTE_USED, ([partner for partner, _ in used], [key for _, key in used]))
