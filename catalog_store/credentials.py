"""Partners, their secrets, stores and the tokens stores issue to partners."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from .errors import UnknownClient
from .pool import Pool, connection

__all__ = [
    "DEFAULT_SCOPES",
    "AuthRecord",
    "IssuedToken",
    "NewPartner",
    "NewStore",
    "create_partner",
    "create_store",
    "hash_token",
    "issue_token",
    "lookup_auth",
]

DEFAULT_SCOPES = ("products:delete",)


@dataclass(frozen=True, slots=True)
class NewPartner:
    id: int
    client_id: str
    secret: str


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


def hash_token(token: str) -> bytes:
    """Tokens are 192-bit random values, so a plain SHA-256 is a safe one-way handle."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def _digits(count: int) -> str:
    return str(secrets.randbelow(9 * 10 ** (count - 1)) + 10 ** (count - 1))


async def create_partner(pool: Pool, name: str) -> NewPartner:
    client_id = _digits(22)
    secret = "psk_" + secrets.token_hex(24)
    async with connection(pool) as conn, conn.transaction():
        cur = await conn.execute(
            "INSERT INTO partners (client_id, name) VALUES (%s, %s) RETURNING id", (client_id, name)
        )
        row = await cur.fetchone()
        assert row is not None
        await conn.execute(
            "INSERT INTO partner_secrets (partner_id, key_id, secret) VALUES (%s, %s, %s)",
            (row[0], "k1", secret.encode("utf-8")),
        )
    return NewPartner(id=row[0], client_id=client_id, secret=secret)


async def create_store(pool: Pool, name: str) -> NewStore:
    client_id = _digits(21)
    async with connection(pool) as conn:
        cur = await conn.execute(
            "INSERT INTO stores (client_id, name) VALUES (%s, %s) RETURNING id", (client_id, name)
        )
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
            "INSERT INTO store_tokens (token_hash, store_id, partner_id, scopes)"
            " SELECT %s, s.id, p.id, %s FROM stores s, partners p"
            " WHERE s.client_id = %s AND p.client_id = %s RETURNING store_id, partner_id",
            (hash_token(token), list(scopes), store_client_id, partner_client_id),
        )
        row = await cur.fetchone()
    if row is None:
        raise UnknownClient("no such partner or store")
    return IssuedToken(token=token, store_id=row[0], partner_id=row[1], scopes=scopes)


_LOOKUP = """
SELECT p.id, coalesce(p.active, false),
       coalesce((SELECT array_agg(ps.secret ORDER BY ps.created_at DESC)
                   FROM partner_secrets ps
                  WHERE ps.partner_id = p.id AND ps.retired_at IS NULL), '{}'),
       s.id, t.partner_id, t.store_id, coalesce(t.scopes, '{}')
  FROM (VALUES (1)) AS one (x)
  LEFT JOIN partners p ON p.client_id = %(partner)s
  LEFT JOIN stores s ON s.client_id = %(store)s
  LEFT JOIN store_tokens t ON t.token_hash = %(token_hash)s AND t.revoked_at IS NULL
"""


async def lookup_auth(
    pool: Pool, *, partner_client_id: str, store_client_id: str, store_token: str
) -> AuthRecord:
    """Read the partner, its active secrets, the store and the token in one statement."""
    async with connection(pool) as conn:
        cur = await conn.execute(
            _LOOKUP,
            {
                "partner": partner_client_id,
                "store": store_client_id,
                "token_hash": hash_token(store_token),
            },
        )
        row = await cur.fetchone()
    assert row is not None  # the VALUES row is always there
    return AuthRecord(
        partner_id=row[0],
        partner_active=row[1],
        secrets=tuple(bytes(s) for s in row[2]),
        store_id=row[3],
        token_partner_id=row[4],
        token_store_id=row[5],
        token_scopes=tuple(row[6]),
    )
