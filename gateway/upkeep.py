"""What each gateway process does beside answering requests, from its start to its stop:
purge expired replay records, write the partner keys' uses, sample its pool."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog

import catalog_store

from .context import Clock
from .credentials import KEY_USE_INTERVAL, KeyUse
from .metrics import sample_pool_forever
from .settings import Settings

__all__ = ["upkeep"]

_log = structlog.get_logger("gateway")


async def _write_key_use_forever(key_use: KeyUse, pool: catalog_store.Pool) -> None:
    while True:
        await asyncio.sleep(KEY_USE_INTERVAL)
        await key_use.write(pool)


async def _purge_nonces_forever(
    pool: catalog_store.Pool, interval: float, deadline: float, clock: Clock
) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            # The clock that checks the window decides when a record may go (never the
            # database's, which may differ from it).
            with catalog_store.deadline(deadline):
                purged = await catalog_store.purge_expired_nonces(pool, now_ms=clock())
        except catalog_store.StoreUnavailable:
            continue
        if purged:
            _log.info("purged expired replay records", count=purged)


@contextlib.asynccontextmanager
async def upkeep(
    pool: catalog_store.Pool, settings: Settings, clock: Clock, key_use: KeyUse
) -> AsyncIterator[None]:
    """Run the process's background tasks while the app serves; at the stop, cancel them and
    write the last minute's key uses (before the pool closes)."""
    tasks = [
        asyncio.create_task(
            _purge_nonces_forever(pool, settings.nonce_purge_interval, settings.db_deadline, clock)
        ),
        asyncio.create_task(sample_pool_forever(pool)),
        asyncio.create_task(_write_key_use_forever(key_use, pool)),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await key_use.write(pool)
