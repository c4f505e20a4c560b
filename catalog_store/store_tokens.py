"""Stores, and the tokens they issue to partners (kept only as hashes)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from .errors import UnknownClient
from .partners import new_client_id
from .pool import Pool, connection

__all__ = [
    "DEFAULT_SCOPES",
    "SCOPE_BATCHES_READ",
    "SCOPE_DELETE",
    "IssuedToken",
    "NewStore",
    "TokenInfo",
    "clients_exist",
    "create_store",
    "hash_token",
    "issue_token",
    "list_tokens",
    "revoke_token",
]

#: ``products:delete`` for deletions and dry runs, ``batches:read`` for batch status.
SCOPE_DELETE = "products:delete"
SCOPE_BATCHES_READ = "batches:read"
#: Every scope a route can need; a token is issued with all of them unless told otherwise.
DEFAULT_SCOPES = (SCOPE_DELETE, SCOPE_BATCHES_READ)


@dataclass(frozen=True, slots=True)
class NewStore:
    id: int
    client_id: str


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    store_id: int
    partner_id: int
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A store token as an operator may see it: never the token, nor its hash."""

    partner_client_id: str
    store_client_id: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None


_INSERT_STORE = """
INSERT INTO stores (client_id, name) VALUES (%s, %s) RETURNING id
"""

_INSERT_TOKEN = """
INSERT INTO store_tokens (token_hash, store_id, partner_id, scopes)
SELECT %s, s.id, p.id, %s FROM stores s, partners p
 WHERE s.client_id = %s AND p.client_id = %s
RETURNING store_id, partner_id
"""

_REVOKE = """
UPDATE store_tokens SET revoked_at = now() WHERE token_hash = %s AND revoked_at IS NULL
"""

_CLIENTS_EXIST = """
SELECT (SELECT count(*) FROM partners WHERE client_id = %(partner)s),
       (SELECT count(*) FROM stores WHERE client_id = %(store)s)
"""

_LIST_TOKENS = """
SELECT p.client_id, s.client_id, t.scopes, t.created_at, t.revoked_at
  FROM store_tokens t
  JOIN partners p ON p.id = t.partner_id
  JOIN stores s ON s.id = t.store_id
 WHERE (%(partner)s::text IS NULL OR p.client_id = %(partner)s)
   AND (%(store)s::text IS NULL OR s.client_id = %(store)s)
 ORDER BY t.created_at, p.client_id, s.client_id
"""


def hash_token(token: str) -> bytes:
    """Tokens are 192-bit random values, so a plain SHA-256 is a safe one-way handle."""
    return hashlib.sha256(token.encode("utf-8")).digest()


async def create_store(pool: Pool, name: str) -> NewStore:
    client_id = new_client_id(21)
    async with connection(pool) as conn:
        cur = await conn.execute(_INSERT_STORE, (client_id, name))
        row = await cur.fetchone()
    assert row is not None
    return NewStore(id=row[0], client_id=client_id)


async def issue_token(
    pool: Pool,
    *,
    partner_client_id: str,
    store_client_id: str,
    scopes: tuple[str, ...] = DEFAULT_SCOPES,
) -> IssuedToken:
    """Issue a token from a store to a partner; only its hash is stored."""
    token = "stkn_" + secrets.token_urlsafe(24)
    async with connection(pool) as conn:
        cur = await conn.execute(
            _INSERT_TOKEN, (hash_token(token), list(scopes), store_client_id, partner_client_id)
        )
        row = await cur.fetchone()
    if row is None:
        raise UnknownClient("no such partner or store")
    return IssuedToken(token=token, store_id=row[0], partner_id=row[1], scopes=scopes)


async def revoke_token(pool: Pool, *, token: str) -> bool:
    """Revoke a store token by its value (only its hash is kept); False if not found or
    already revoked."""
    async with connection(pool) as conn:
        cur = await conn.execute(_REVOKE, (hash_token(token),))
    return cur.rowcount == 1


async def clients_exist(
    pool: Pool, *, partner_client_id: str, store_client_id: str
) -> tuple[bool, bool]:
    """Whether a partner and a store with these client ids exist: ``(partner, store)``."""
    async with connection(pool) as conn:
        cur = await conn.execute(
            _CLIENTS_EXIST, {"partner": partner_client_id, "store": store_client_id}
        )
        found = await cur.fetchone()
    assert found is not None
    return bool(found[0]), bool(found[1])


async def list_tokens(
    pool: Pool, *, partner_client_id: str | None = None, store_client_id: str | None = None
) -> list[TokenInfo]:
    """The tokens of a partner, of a store, or of both together, oldest first, revoked ones
    included. Raises :class:`UnknownClient` for a partner or store that does not exist."""
    if partner_client_id is None and store_client_id is None:
        raise UnknownClient("name a partner, a store, or both")
    named = {"partner": partner_client_id, "store": store_client_id}
    async with connection(pool) as conn:
        cur = await conn.execute(_CLIENTS_EXIST, named)
        found = await cur.fetchone()
        assert found is not None
        if partner_client_id is not None and not found[0]:
            raise UnknownClient(f"no partner {partner_client_id}")
        if store_client_id is not None and not found[1]:
            raise UnknownClient(f"no store {store_client_id}")
        cur = await conn.execute(_LIST_TOKENS, named)
        rows = await cur.fetchall()
    return [TokenInfo(r[0], r[1], tuple(r[2]), r[3], r[4]) for r in rows]
