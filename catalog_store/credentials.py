"""Partners, their secrets, stores and the tokens stores issue to partners."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from .errors import CredentialError, SecretUnreadable, UnknownClient
from .pool import Pool, connection
from .sealing import SecretBox

__all__ = [
    "DEFAULT_SCOPES",
    "MAX_ACTIVE_SECRETS",
    "AuthRecord",
    "IssuedToken",
    "NewPartner",
    "NewSecret",
    "NewStore",
    "ResealReport",
    "RetiredSecret",
    "SCOPE_BATCHES_READ",
    "SCOPE_DELETE",
    "SecretCheck",
    "SecretInfo",
    "TokenInfo",
    "check_secrets",
    "create_partner",
    "create_store",
    "has_plain_secrets",
    "hash_token",
    "issue_token",
    "list_secrets",
    "list_tokens",
    "lookup_auth",
    "lookup_auth_by_hash",
    "note_secrets_used",
    "reseal_secrets",
    "retire_secret",
    "revoke_token",
    "rotate_secret",
    "seal_plain_secrets",
    "set_partner_active",
]

#: ``products:delete`` for deletions and dry runs, ``batches:read`` for batch status.
SCOPE_DELETE = "products:delete"
SCOPE_BATCHES_READ = "batches:read"
#: Every scope a route can need; a token is issued with all of them unless told otherwise.
DEFAULT_SCOPES = (SCOPE_DELETE, SCOPE_BATCHES_READ)
#: A partner has one secret, or two while it moves from the old to the new one.
MAX_ACTIVE_SECRETS = 2


@dataclass(frozen=True, slots=True)
class NewPartner:
    id: int
    client_id: str
    secret: str


@dataclass(frozen=True, slots=True)
class NewSecret:
    partner_client_id: str
    key_id: str
    secret: str
    created_at: datetime
    #: Active secrets that opened with no server key, retired to make room for this one.
    retired_unreadable: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SecretCheck:
    """The active stored secrets, and those of them that open with no server key, as
    ``(partner client id, key id)``."""

    stored: int
    unreadable: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ResealReport:
    """Secrets now sealed with the first server key, and those left as they were because no
    key opens them, as ``(partner client id, key id)``."""

    resealed: int
    unreadable: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class SecretInfo:
    key_id: str
    created_at: datetime
    retired_at: datetime | None
    #: When it last verified a request, to within about a minute (see note_secrets_used).
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RetiredSecret:
    partner_client_id: str
    key_id: str
    active_key_ids: tuple[str, ...]


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


def hash_token(token: str) -> bytes:
    """Tokens are 192-bit random values, so a plain SHA-256 is a safe one-way handle."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def _digits(count: int) -> str:
    return str(secrets.randbelow(9 * 10 ** (count - 1)) + 10 ** (count - 1))


def _new_secret() -> str:
    return "psk_" + secrets.token_hex(24)


async def create_partner(pool: Pool, name: str, *, box: SecretBox) -> NewPartner:
    """Create a partner and its first secret (key id ``k1``), sealed with the server key."""
    client_id = _digits(22)
    secret = _new_secret()
    async with connection(pool) as conn, conn.transaction():
        cur = await conn.execute(
            "INSERT INTO partners (client_id, name) VALUES (%s, %s) RETURNING id", (client_id, name)
        )
        row = await cur.fetchone()
        assert row is not None
        sealed = box.seal(secret.encode("utf-8"), partner_id=row[0], key_id="k1")
        await conn.execute(
            "INSERT INTO partner_secrets (partner_id, key_id, sealed) VALUES (%s, %s, %s)",
            (row[0], "k1", sealed),
        )
    return NewPartner(id=row[0], client_id=client_id, secret=secret)


async def _lock_partner(conn: psycopg.AsyncConnection[Any], partner_client_id: str) -> int:
    """The partner's id, its row locked until the transaction ends (one change at a time)."""
    cur = await conn.execute(
        "SELECT id FROM partners WHERE client_id = %s FOR UPDATE", (partner_client_id,)
    )
    row = await cur.fetchone()
    if row is None:
        raise UnknownClient(f"no partner {partner_client_id}")
    return int(row[0])


def _opens(box: SecretBox, sealed: bytes | None, *, partner_id: int, key_id: str) -> bool:
    if sealed is None:  # stored plain (before 0004_security): readable as it is
        return True
    try:
        box.open(bytes(sealed), partner_id=partner_id, key_id=key_id)
    except SecretUnreadable:
        return False
    return True


async def rotate_secret(pool: Pool, *, partner_client_id: str, box: SecretBox) -> NewSecret:
    """Add a new active secret beside the current one; both verify until one is retired.

    Active secrets that open with no server key are retired first (they can verify nothing),
    so a partner whose secrets were sealed under a lost key gets a working one.
    Raises :class:`CredentialError` when the partner already has two active secrets.
    """
    secret = _new_secret()
    async with connection(pool) as conn, conn.transaction():
        partner_id = await _lock_partner(conn, partner_client_id)
        cur = await conn.execute(
            "SELECT key_id, sealed FROM partner_secrets"
            " WHERE partner_id = %s AND retired_at IS NULL ORDER BY key_id",
            (partner_id,),
        )
        dead = [
            key_id
            for key_id, sealed in await cur.fetchall()
            if not _opens(box, sealed, partner_id=partner_id, key_id=key_id)
        ]
        if dead:
            await conn.execute(
                "UPDATE partner_secrets SET retired_at = now(), sealed = NULL, secret = NULL"
                " WHERE partner_id = %s AND key_id = ANY(%s)",
                (partner_id, dead),
            )
        cur = await conn.execute(
            "SELECT count(*) FILTER (WHERE retired_at IS NULL),"
            " coalesce(max(substr(key_id, 2)::int) FILTER (WHERE key_id ~ '^k[0-9]{1,9}$'), 0)"
            " FROM partner_secrets WHERE partner_id = %s",
            (partner_id,),
        )
        row = await cur.fetchone()
        assert row is not None
        active, highest = int(row[0]), int(row[1])
        if active >= MAX_ACTIVE_SECRETS:
            raise CredentialError(
                f"partner {partner_client_id} already has {MAX_ACTIVE_SECRETS} active secrets:"
                " retire one first (partner retire-secret)"
            )
        key_id = f"k{highest + 1}"
        sealed = box.seal(secret.encode("utf-8"), partner_id=partner_id, key_id=key_id)
        cur = await conn.execute(
            "INSERT INTO partner_secrets (partner_id, key_id, sealed) VALUES (%s, %s, %s)"
            " RETURNING created_at",
            (partner_id, key_id, sealed),
        )
        created = await cur.fetchone()
        assert created is not None
    return NewSecret(partner_client_id, key_id, secret, created[0], tuple(dead))


async def retire_secret(
    pool: Pool, *, partner_client_id: str, key_id: str | None = None
) -> RetiredSecret:
    """Retire ``key_id``, or else the oldest active secret, and destroy its key material.

    Raises :class:`CredentialError` for an unknown or already retired key id, and for the
    partner's last active secret (rotate first, so the partner is never left without one).
    """
    async with connection(pool) as conn, conn.transaction():
        partner_id = await _lock_partner(conn, partner_client_id)
        cur = await conn.execute(
            "SELECT key_id FROM partner_secrets WHERE partner_id = %s AND retired_at IS NULL"
            " ORDER BY created_at, key_id",
            (partner_id,),
        )
        active = [row[0] for row in await cur.fetchall()]
        target = key_id if key_id is not None else (active[0] if active else None)
        if target is None or target not in active:
            raise CredentialError(
                f"partner {partner_client_id} has no active secret {target}; active: "
                + (", ".join(active) or "none")
            )
        if len(active) < 2:
            raise CredentialError(
                f"{target} is the only active secret of partner {partner_client_id}:"
                " rotate first (partner rotate-secret), then retire the old one"
            )
        await conn.execute(
            "UPDATE partner_secrets SET retired_at = now(), sealed = NULL, secret = NULL"
            " WHERE partner_id = %s AND key_id = %s",
            (partner_id, target),
        )
    return RetiredSecret(partner_client_id, target, tuple(k for k in active if k != target))


async def list_secrets(pool: Pool, *, partner_client_id: str) -> list[SecretInfo]:
    """Every secret of a partner, active or retired, oldest first (never the secret itself)."""
    async with connection(pool) as conn:
        cur = await conn.execute(
            "SELECT ps.key_id, ps.created_at, ps.retired_at, ps.last_used_at FROM partners p"
            " LEFT JOIN partner_secrets ps ON ps.partner_id = p.id"
            " WHERE p.client_id = %s ORDER BY ps.created_at, ps.key_id",
            (partner_client_id,),
        )
        rows = await cur.fetchall()
    if not rows:
        raise UnknownClient(f"no partner {partner_client_id}")
    return [SecretInfo(r[0], r[1], r[2], r[3]) for r in rows if r[0] is not None]


async def list_tokens(
    pool: Pool, *, partner_client_id: str | None = None, store_client_id: str | None = None
) -> list[TokenInfo]:
    """The tokens of a partner, of a store, or of both together, oldest first, revoked ones
    included. Raises :class:`UnknownClient` for a partner or store that does not exist."""
    if partner_client_id is None and store_client_id is None:
        raise UnknownClient("name a partner, a store, or both")
    async with connection(pool) as conn:
        cur = await conn.execute(
            "SELECT (SELECT count(*) FROM partners WHERE client_id = %(partner)s),"
            " (SELECT count(*) FROM stores WHERE client_id = %(store)s)",
            {"partner": partner_client_id, "store": store_client_id},
        )
        found = await cur.fetchone()
        assert found is not None
        if partner_client_id is not None and not found[0]:
            raise UnknownClient(f"no partner {partner_client_id}")
        if store_client_id is not None and not found[1]:
            raise UnknownClient(f"no store {store_client_id}")
        cur = await conn.execute(
            "SELECT p.client_id, s.client_id, t.scopes, t.created_at, t.revoked_at"
            "  FROM store_tokens t"
            "  JOIN partners p ON p.id = t.partner_id"
            "  JOIN stores s ON s.id = t.store_id"
            " WHERE (%(partner)s::text IS NULL OR p.client_id = %(partner)s)"
            "   AND (%(store)s::text IS NULL OR s.client_id = %(store)s)"
            " ORDER BY t.created_at, p.client_id, s.client_id",
            {"partner": partner_client_id, "store": store_client_id},
        )
        rows = await cur.fetchall()
    return [TokenInfo(r[0], r[1], tuple(r[2]), r[3], r[4]) for r in rows]


async def set_partner_active(pool: Pool, *, partner_client_id: str, active: bool) -> None:
    """Disable (or enable again) a partner: a disabled partner's requests get ``AUTH_004``."""
    async with connection(pool) as conn:
        cur = await conn.execute(
            "UPDATE partners SET active = %s WHERE client_id = %s", (active, partner_client_id)
        )
    if cur.rowcount != 1:
        raise UnknownClient(f"no partner {partner_client_id}")


async def revoke_token(pool: Pool, *, token: str) -> bool:
    """Revoke a store token by its value (only its hash is kept); False if not found or
    already revoked."""
    async with connection(pool) as conn:
        cur = await conn.execute(
            "UPDATE store_tokens SET revoked_at = now()"
            " WHERE token_hash = %s AND revoked_at IS NULL",
            (hash_token(token),),
        )
    return cur.rowcount == 1


async def seal_plain_secrets(pool: Pool, *, box: SecretBox) -> int:
    """Seal every secret still stored plain (rows from before migration 0004); return how many."""
    async with connection(pool) as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT partner_id, key_id, secret FROM partner_secrets"
            " WHERE secret IS NOT NULL FOR UPDATE"
        )
        plain = await cur.fetchall()
        if plain:
            async with conn.cursor() as update:
                await update.executemany(
                    "UPDATE partner_secrets SET sealed = %s, secret = NULL"
                    " WHERE partner_id = %s AND key_id = %s",
                    [
                        (box.seal(bytes(secret), partner_id=pid, key_id=kid), pid, kid)
                        for pid, kid, secret in plain
                    ],
                )
    return len(plain)


async def has_plain_secrets(pool: Pool) -> bool:
    """Whether any secret is still stored plain (sealing it needs the server key)."""
    async with connection(pool) as conn:
        cur = await conn.execute(
            "SELECT EXISTS (SELECT 1 FROM partner_secrets WHERE secret IS NOT NULL)"
        )
        row = await cur.fetchone()
    return bool(row and row[0])


async def check_secrets(pool: Pool, *, box: SecretBox) -> SecretCheck:
    """Try every active stored secret with the server keys: how many there are, which do not
    open. One statement; the secrets opened here are dropped at once."""
    async with connection(pool) as conn:
        cur = await conn.execute(
            "SELECT ps.partner_id, p.client_id, ps.key_id, ps.sealed FROM partner_secrets ps"
            " JOIN partners p ON p.id = ps.partner_id WHERE ps.retired_at IS NULL"
            " AND (ps.sealed IS NOT NULL OR ps.secret IS NOT NULL)"
            " ORDER BY ps.partner_id, ps.key_id"
        )
        rows = await cur.fetchall()
    unreadable = tuple(
        (client_id, key_id)
        for pid, client_id, key_id, sealed in rows
        if not _opens(box, sealed, partner_id=pid, key_id=key_id)
    )
    return SecretCheck(stored=len(rows), unreadable=unreadable)


async def reseal_secrets(pool: Pool, *, box: SecretBox) -> ResealReport:
    """Seal every active secret anew with the first server key (plain ones too), in one
    transaction; secrets that open with no key are left as they are and reported."""
    async with connection(pool) as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT ps.partner_id, p.client_id, ps.key_id, ps.sealed, ps.secret"
            " FROM partner_secrets ps JOIN partners p ON p.id = ps.partner_id"
            " WHERE ps.retired_at IS NULL AND (ps.sealed IS NOT NULL OR ps.secret IS NOT NULL)"
            " ORDER BY ps.partner_id, ps.key_id FOR UPDATE OF ps"
        )
        updates: list[tuple[bytes, int, str]] = []
        unreadable: list[tuple[str, str]] = []
        for pid, client_id, key_id, sealed, plain in await cur.fetchall():
            try:
                secret = (
                    bytes(plain)
                    if sealed is None
                    else box.open(bytes(sealed), partner_id=pid, key_id=key_id)
                )
            except SecretUnreadable:
                unreadable.append((client_id, key_id))
                continue
            updates.append((box.seal(secret, partner_id=pid, key_id=key_id), pid, key_id))
        if updates:
            async with conn.cursor() as update:
                await update.executemany(
                    "UPDATE partner_secrets SET sealed = %s, secret = NULL"
                    " WHERE partner_id = %s AND key_id = %s",
                    updates,
                )
    return ResealReport(resealed=len(updates), unreadable=tuple(unreadable))


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
        await conn.execute(
            "UPDATE partner_secrets AS ps SET last_used_at = now()"
            " FROM unnest(%s::bigint[], %s::text[]) AS u (partner_id, key_id)"
            " WHERE ps.partner_id = u.partner_id AND ps.key_id = u.key_id"
            " AND (ps.last_used_at IS NULL OR ps.last_used_at < now() - interval '1 minute')",
            ([partner for partner, _ in used], [key for _, key in used]),
        )
