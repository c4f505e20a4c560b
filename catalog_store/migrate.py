"""Ordered SQL migrations, applied once each under a PostgreSQL advisory lock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import psycopg

from .errors import MigrationError, StoreUnavailable

__all__ = ["Migration", "MigrationReport", "apply_migrations", "available_migrations"]

# Any constant will do, as long as nothing else in the database uses it.
_LOCK_KEY = 0x5047_4D49_4752


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    sql: str


@dataclass(frozen=True, slots=True)
class MigrationReport:
    applied: list[str]
    already_applied: list[str]


def available_migrations() -> list[Migration]:
    """The migration files shipped in the package, in name order (``0001_...sql`` first)."""
    folder = resources.files(__package__).joinpath("migrations")
    files = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    return [Migration(entry.name.removesuffix(".sql"), entry.read_text("utf-8")) for entry in files]


async def apply_migrations(
    conninfo: str, *, migrations: Sequence[Migration] | None = None
) -> MigrationReport:
    """Apply every migration not yet recorded, in one transaction held under an advisory lock.

    Several processes may call this at once: the second waits for the first and then finds
    nothing left to do.
    """
    try:
        conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise StoreUnavailable(f"cannot connect to the database: {exc}") from exc
    async with conn:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur = await conn.execute("SELECT name FROM schema_migrations ORDER BY name")
            done = {row[0] for row in await cur.fetchall()}
            applied: list[str] = []
            for migration in available_migrations() if migrations is None else migrations:
                if migration.name in done:
                    continue
                try:
                    await conn.execute(migration.sql.encode("utf-8"))
                except psycopg.Error as exc:
                    raise MigrationError(migration.name, str(exc)) from exc
                await conn.execute(
                    "INSERT INTO schema_migrations (name) VALUES (%s)", (migration.name,)
                )
                applied.append(migration.name)
    return MigrationReport(applied=applied, already_applied=sorted(done))
