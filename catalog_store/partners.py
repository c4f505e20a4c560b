"""Partners and their secrets: create, rotate, retire, list, disable."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from .errors import CredentialError, UnknownClient
from .pool import Pool, connection
from .sealed_secrets import opens
from .sealing import SecretBox

__all__ = [
    "MAX_ACTIVE_SECRETS",
    "NewPartner",
    "NewSecret",
    "RetiredSecret",
    "SecretInfo",
    "create_partner",
    "list_secrets",
    "new_client_id",
    "retire_secret",
    "rotate_secret",
    "set_partner_active",
]

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


_INSERT_PARTNER = """
INSERT INTO partners (client_id, name) VALUES (%s, %s) RETURNING id
"""

_INSERT_SECRET = """
INSERT INTO partner_secrets (partner_id, key_id, sealed) VALUES (%s, %s, %s) RETURNING created_at
"""

_LOCK_PARTNER = """
SELECT id FROM partners WHERE client_id = %s FOR UPDATE
"""

_ACTIVE_SECRETS = """
SELECT key_id, sealed FROM partner_secrets
 WHERE partner_id = %s AND retired_at IS NULL
 ORDER BY key_id
"""

_ACTIVE_KEY_IDS_OLDEST_FIRST = """
SELECT key_id FROM partner_secrets
 WHERE partner_id = %s AND retired_at IS NULL
 ORDER BY created_at, key_id
"""

_RETIRE = """
UPDATE partner_secrets SET retired_at = now(), sealed = NULL, secret = NULL
 WHERE partner_id = %s AND key_id = ANY(%s)
"""

_ACTIVE_AND_HIGHEST = """
SELECT count(*) FILTER (WHERE retired_at IS NULL),
       coalesce(max(substr(key_id, 2)::int) FILTER (WHERE key_id ~ '^k[0-9]{1,9}$'), 0)
  FROM partner_secrets
 WHERE partner_id = %s
"""

_LIST_SECRETS = """
SELECT ps.key_id, ps.created_at, ps.retired_at, ps.last_used_at
  FROM partners p LEFT JOIN partner_secrets ps ON ps.partner_id = p.id
 WHERE p.client_id = %s
 ORDER BY ps.created_at, ps.key_id
"""

_SET_ACTIVE = """
UPDATE partners SET active = %s WHERE client_id = %s
"""


def new_client_id(digits: int) -> str:
    """A random client id of ``digits`` decimal digits, the first not zero."""
    return str(secrets.randbelow(9 * 10 ** (digits - 1)) + 10 ** (digits - 1))


def _new_secret() -> str:
    return "psk_" + secrets.token_hex(24)


async def create_partner(pool: Pool, name: str, *, box: SecretBox) -> NewPartner:
    """Create a partner and its first secret (key id ``k1``), sealed with the server key."""
    client_id = new_client_id(22)
    secret = _new_secret()
    async with connection(pool) as conn, conn.transaction():
        cur = await conn.execute(_INSERT_PARTNER, (client_id, name))
        row = await cur.fetchone()
        assert row is not None
        sealed = box.seal(secret.encode("utf-8"), partner_id=row[0], key_id="k1")
        await conn.execute(_INSERT_SECRET, (row[0], "k1", sealed))
    return NewPartner(id=row[0], client_id=client_id, secret=secret)


async def _lock_partner(conn: psycopg.AsyncConnection[Any], partner_client_id: str) -> int:
    """The partner's id, its row locked until the transaction ends (one change at a time)."""
    cur = await conn.execute(_LOCK_PARTNER, (partner_client_id,))
    row = await cur.fetchone()
    if row is None:
        raise UnknownClient(f"no partner {partner_client_id}")
    return int(row[0])


async def _retire_unreadable(
    conn: psycopg.AsyncConnection[Any], partner_id: int, box: SecretBox
) -> list[str]:
    """Retire the partner's active secrets that open with no server key; their key ids."""
    cur = await conn.execute(_ACTIVE_SECRETS, (partner_id,))
    dead = [
        key_id
        for key_id, sealed in await cur.fetchall()
        if not opens(box, sealed, partner_id=partner_id, key_id=key_id)
    ]
    if dead:
        await conn.execute(_RETIRE, (partner_id, dead))
    return dead


async def rotate_secret(pool: Pool, *, partner_client_id: str, box: SecretBox) -> NewSecret:
    """Add a new active secret beside the current one; both verify until one is retired.

    Active secrets that open with no server key are retired first (they can verify nothing),
    so a partner whose secrets were sealed under a lost key gets a working one.
    Raises :class:`CredentialError` when the partner already has two active secrets.
    """
    secret = _new_secret()
    async with connection(pool) as conn, conn.transaction():
        partner_id = await _lock_partner(conn, partner_client_id)
        dead = await _retire_unreadable(conn, partner_id, box)
        cur = await conn.execute(_ACTIVE_AND_HIGHEST, (partner_id,))
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
        cur = await conn.execute(_INSERT_SECRET, (partner_id, key_id, sealed))
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
        cur = await conn.execute(_ACTIVE_KEY_IDS_OLDEST_FIRST, (partner_id,))
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
        await conn.execute(_RETIRE, (partner_id, [target]))
    return RetiredSecret(partner_client_id, target, tuple(k for k in active if k != target))


async def list_secrets(pool: Pool, *, partner_client_id: str) -> list[SecretInfo]:
    """Every secret of a partner, active or retired, oldest first (never the secret itself)."""
    async with connection(pool) as conn:
        cur = await conn.execute(_LIST_SECRETS, (partner_client_id,))
        rows = await cur.fetchall()
    if not rows:
        raise UnknownClient(f"no partner {partner_client_id}")
    return [SecretInfo(r[0], r[1], r[2], r[3]) for r in rows if r[0] is not None]


async def set_partner_active(pool: Pool, *, partner_client_id: str, active: bool) -> None:
    """Disable (or enable again) a partner: a disabled partner's requests get ``AUTH_004``."""
    async with connection(pool) as conn:
        cur = await conn.execute(_SET_ACTIVE, (active, partner_client_id))
    if cur.rowcount != 1:
        raise UnknownClient(f"no partner {partner_client_id}")
