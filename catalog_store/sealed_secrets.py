"""The stored partner secrets against the server key: which open, sealing plain ones, resealing."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SecretUnreadable
from .pool import Pool, connection
from .sealing import SecretBox

__all__ = [
    "ResealReport",
    "SecretCheck",
    "check_secrets",
    "has_plain_secrets",
    "opens",
    "reseal_secrets",
    "seal_plain_secrets",
]


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


_PLAIN_FOR_UPDATE = """
SELECT partner_id, key_id, secret FROM partner_secrets WHERE secret IS NOT NULL FOR UPDATE
"""

_STORE_SEALED = """
UPDATE partner_secrets SET sealed = %s, secret = NULL WHERE partner_id = %s AND key_id = %s
"""

_ANY_PLAIN = """
SELECT EXISTS (SELECT 1 FROM partner_secrets WHERE secret IS NOT NULL)
"""

_ACTIVE_SEALED = """
SELECT ps.partner_id, p.client_id, ps.key_id, ps.sealed
  FROM partner_secrets ps JOIN partners p ON p.id = ps.partner_id
 WHERE ps.retired_at IS NULL AND (ps.sealed IS NOT NULL OR ps.secret IS NOT NULL)
 ORDER BY ps.partner_id, ps.key_id
"""

_ACTIVE_FOR_UPDATE = """
SELECT ps.partner_id, p.client_id, ps.key_id, ps.sealed, ps.secret
  FROM partner_secrets ps JOIN partners p ON p.id = ps.partner_id
 WHERE ps.retired_at IS NULL AND (ps.sealed IS NOT NULL OR ps.secret IS NOT NULL)
 ORDER BY ps.partner_id, ps.key_id
   FOR UPDATE OF ps
"""


def opens(box: SecretBox, sealed: bytes | None, *, partner_id: int, key_id: str) -> bool:
    """Whether a stored secret opens with a key of ``box`` (one stored plain always does)."""
    if sealed is None:  # stored plain (before 0004_security): readable as it is
        return True
    try:
        box.open(bytes(sealed), partner_id=partner_id, key_id=key_id)
    except SecretUnreadable:
        return False
    return True


async def seal_plain_secrets(pool: Pool, *, box: SecretBox) -> int:
    """Seal every secret still stored plain (rows from before migration 0004); return how many."""
    async with connection(pool) as conn, conn.transaction():
        cur = await conn.execute(_PLAIN_FOR_UPDATE)
        plain = await cur.fetchall()
        if plain:
            async with conn.cursor() as update:
                await update.executemany(
                    _STORE_SEALED,
                    [
                        (box.seal(bytes(secret), partner_id=pid, key_id=kid), pid, kid)
                        for pid, kid, secret in plain
                    ],
                )
    return len(plain)


async def has_plain_secrets(pool: Pool) -> bool:
    """Whether any secret is still stored plain (sealing it needs the server key)."""
    async with connection(pool) as conn:
        cur = await conn.execute(_ANY_PLAIN)
        row = await cur.fetchone()
    return bool(row and row[0])


async def check_secrets(pool: Pool, *, box: SecretBox) -> SecretCheck:
    """Try every active stored secret with the server keys: how many there are, which do not
    open. One statement; the secrets opened here are dropped at once."""
    async with connection(pool) as conn:
        cur = await conn.execute(_ACTIVE_SEALED)
        rows = await cur.fetchall()
    unreadable = tuple(
        (client_id, key_id)
        for pid, client_id, key_id, sealed in rows
        if not opens(box, sealed, partner_id=pid, key_id=key_id)
    )
    return SecretCheck(stored=len(rows), unreadable=unreadable)


async def reseal_secrets(pool: Pool, *, box: SecretBox) -> ResealReport:
    """Seal every active secret anew with the first server key (plain ones too), in one
    transaction; secrets that open with no key are left as they are and reported."""
    async with connection(pool) as conn, conn.transaction():
        cur = await conn.execute(_ACTIVE_FOR_UPDATE)
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
                await update.executemany(_STORE_SEALED, updates)
    return ResealReport(resealed=len(updates), unreadable=tuple(unreadable))
