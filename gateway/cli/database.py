"""The database side of the operator commands: a small pool, and the schema the code needs.

The job engine (procrastinate, through ``gateway.jobs``) is imported only by the functions that
migrate or list pending migrations, so commands that need neither never load it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import psycopg_pool

import catalog_store

from ..database import resolve_conninfo
from ..keys import load_secret_box
from ..settings import Settings
from .base import CommandError

__all__ = [
    "migrate_and_seal",
    "open_pool",
    "pending_refusal",
    "prepare",
    "run_with_pool",
    "with_pool",
]


async def open_pool(conninfo: str) -> catalog_store.Pool:
    """A pool of at most two connections, open; :class:`~catalog_store.StoreUnavailable` when
    the database cannot be reached within 30 seconds."""
    pool = catalog_store.create_pool(conninfo, min_size=1, max_size=2, timeout=10)
    try:
        await pool.open(wait=True, timeout=30)
    except psycopg_pool.PoolTimeout as exc:
        await pool.close()
        raise catalog_store.StoreUnavailable(f"cannot connect to the database: {exc}") from exc
    return pool


def pending_refusal(names: Sequence[str]) -> str:
    """Why a command will not run on a schema that is behind its code."""
    return (
        f"the database has {len(names)} pending migration{'s' if len(names) > 1 else ''}"
        f" ({', '.join(names)}): run partner-gateway migrate first"
    )


async def _seal_plain(settings: Settings, conninfo: str) -> None:
    """Seal the partner secrets still stored plain (from before 0004_security), if any: only
    then is the server key needed."""
    pool = await open_pool(conninfo)
    try:
        if await catalog_store.has_plain_secrets(pool):
            await catalog_store.seal_plain_secrets(pool, box=load_secret_box(settings))
    finally:
        await pool.close()


async def migrate_and_seal(
    settings: Settings, conninfo: str, *, contract: bool = False
) -> catalog_store.MigrationReport:
    """Apply the pending migrations (the contract steps too with ``contract``), then seal any
    secret still stored plain."""
    from ..jobs import migrate

    report = await migrate(conninfo, settings, contract=contract)
    await _seal_plain(settings, conninfo)
    return report


async def prepare(settings: Settings, conninfo: str) -> catalog_store.MigrationReport:
    """The schema this code needs. The embedded database is migrated here (and plain secrets
    sealed); a DATABASE_URL one only by `migrate`, so a command finding migrations pending there
    refuses instead of taking locks behind the operator's back."""
    if settings.database_url is None:
        return await migrate_and_seal(settings, conninfo)
    from ..jobs import pending

    waiting = await pending(conninfo)
    if waiting:
        raise CommandError(pending_refusal(waiting))
    return catalog_store.MigrationReport(applied=[], already_applied=[])


async def with_pool(
    settings: Settings, work: Callable[[catalog_store.Pool], Awaitable[Any]]
) -> Any:
    """``work`` on a pool of the settings' database, once its schema is ready."""
    conninfo = resolve_conninfo(settings)
    await prepare(settings, conninfo)
    pool = await open_pool(conninfo)
    try:
        return await work(pool)
    finally:
        await pool.close()


def run_with_pool(settings: Settings, work: Callable[[catalog_store.Pool], Awaitable[Any]]) -> Any:
    """:func:`with_pool` from synchronous code: what each operator command runs."""
    return asyncio.run(with_pool(settings, work))
