"""Ordered SQL migrations, applied once each, one transaction each, under a PostgreSQL advisory
lock; a migration never waits on partner traffic for longer than its lock timeout.

A DDL statement that cannot get its table lock at once queues, and every query on that table
queues behind it. So each migration runs with ``lock_timeout``: when a long transaction holds
the table, the migration gives way (its transaction rolls back, nothing is left half done),
the queries behind it go on, and it is tried again a little later, until ``retry_for`` seconds
have passed.

A migration whose name ends with ``_contract`` removes what the previous version of the code
still uses: it is in the list only when asked for (``contract=True``, `partner-gateway migrate
--contract`), once no process of that version runs any more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
import psycopg.errors

from .errors import MigrationError, StoreUnavailable

__all__ = [
    "Migration",
    "MigrationReport",
    "apply_migrations",
    "available_migrations",
    "contract_migrations",
    "pending_migrations",
]

# Any constant will do, as long as nothing else in the database uses it.
_LOCK_KEY = 0x5047_4D49_4752
#: Waits between two tries of a migration that gave way: short first, then at most this long.
_FIRST_WAIT, _LONGEST_WAIT = 0.5, 5.0

#: Called before each wait: the migration's name, the tries so far, the seconds it waits now.
OnRetry = Callable[[str, int, float], None]


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    sql: str

    @property
    def contract(self) -> bool:
        """A contract step: applied only when asked for (see the module's docstring)."""
        return self.name.endswith("_contract")


@dataclass(frozen=True, slots=True)
class MigrationReport:
    applied: list[str]
    already_applied: list[str]
    #: Tries that gave way to a lock held by other sessions, over all migrations applied.
    lock_retries: int = 0


def _shipped() -> list[Migration]:
    """Every migration file shipped in the package, in name order (``0001_...sql`` first)."""
    folder = resources.files(__package__).joinpath("migrations")
    files = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    return [Migration(entry.name.removesuffix(".sql"), entry.read_text("utf-8")) for entry in files]


def available_migrations() -> list[Migration]:
    """The migrations shipped in the package that ``migrate`` applies, in name order: all but
    the contract steps."""
    return [m for m in _shipped() if not m.contract]


def contract_migrations() -> list[Migration]:
    """The contract steps shipped in the package, in name order (see the module's docstring)."""
    return [m for m in _shipped() if m.contract]


def _package_migrations(contract: bool) -> list[Migration]:
    extra = contract_migrations() if contract else []
    return sorted([*available_migrations(), *extra], key=lambda m: m.name)


async def _connect(conninfo: str) -> psycopg.AsyncConnection[Any]:
    try:
        return await psycopg.AsyncConnection.connect(conninfo, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise StoreUnavailable(f"cannot connect to the database: {exc}") from exc


async def _applied(conn: psycopg.AsyncConnection[Any]) -> set[str]:
    cur = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    row = await cur.fetchone()
    if not (row and row[0]):
        return set()
    cur = await conn.execute("SELECT name FROM schema_migrations")
    return {name for (name,) in await cur.fetchall()}


async def pending_migrations(
    conninfo: str, *, migrations: Sequence[Migration] | None = None, contract: bool = False
) -> list[str]:
    """The names of the migrations not yet applied, in order; it changes nothing."""
    wanted = _package_migrations(contract) if migrations is None else migrations
    conn = await _connect(conninfo)
    async with conn:
        try:
            done = await _applied(conn)
        except psycopg.Error as exc:
            raise StoreUnavailable(f"cannot read schema_migrations: {exc}") from exc
    return [m.name for m in wanted if m.name not in done]


async def _apply_one(
    conn: psycopg.AsyncConnection[Any], migration: Migration, lock_timeout: float
) -> None:
    """One migration and its record, in one transaction that waits ``lock_timeout`` at most
    for each lock (psycopg.errors.LockNotAvailable when it gave way)."""
    async with conn.transaction():
        await conn.execute(
            "SELECT set_config('lock_timeout', %s, true)",
            (f"{max(1, round(lock_timeout * 1000))}ms",),
        )
        await conn.execute(migration.sql.encode("utf-8"))
        await conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (migration.name,))


async def apply_migrations(
    conninfo: str,
    *,
    migrations: Sequence[Migration] | None = None,
    lock_timeout: float = 0.5,
    retry_for: float = 600.0,
    on_retry: OnRetry | None = None,
    contract: bool = False,
) -> MigrationReport:
    """Apply every migration not yet recorded, in order, each in its own transaction with
    ``lock_timeout`` seconds at most of waiting for any lock; one that gives way is tried again
    after a growing wait, for up to ``retry_for`` seconds, then fails with
    :class:`MigrationError`. A migration that fails rolls back whole; those before it stay.
    Without ``migrations``, the package's, the contract steps only with ``contract``.

    Several processes may call this at once: the advisory lock lets one apply, the others wait
    and then find nothing left to do.
    """
    conn = await _connect(conninfo)
    async with conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = await _applied(conn)
        applied: list[str] = []
        retries = 0
        wanted = _package_migrations(contract) if migrations is None else migrations
        for migration in wanted:
            if migration.name in done:
                continue
            retries += await _apply_with_retries(
                conn, migration, lock_timeout=lock_timeout, retry_for=retry_for, on_retry=on_retry
            )
            applied.append(migration.name)
        await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return MigrationReport(applied=applied, already_applied=sorted(done), lock_retries=retries)


async def _apply_with_retries(
    conn: psycopg.AsyncConnection[Any],
    migration: Migration,
    *,
    lock_timeout: float,
    retry_for: float,
    on_retry: OnRetry | None,
) -> int:
    """Apply one migration; return how many of its tries gave way to a lock."""
    give_up_at = time.monotonic() + retry_for
    tries, wait = 0, _FIRST_WAIT
    while True:
        try:
            await _apply_one(conn, migration, lock_timeout)
            return tries
        except psycopg.errors.LockNotAvailable as exc:
            tries += 1
            if time.monotonic() + wait > give_up_at:
                raise MigrationError(
                    migration.name,
                    f"could not get its locks in {tries} tries over {retry_for:g} s; a long"
                    " transaction holds them (see pg_stat_activity), retry later",
                ) from exc
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"the database went away during {migration.name}") from exc
        except psycopg.Error as exc:
            raise MigrationError(migration.name, str(exc)) from exc
        if on_retry is not None:
            on_retry(migration.name, tries, wait)
        await asyncio.sleep(wait)
        wait = min(wait * 2, _LONGEST_WAIT)
