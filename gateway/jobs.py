"""Dispatched batches on procrastinate: the task, its deferral, the worker, and its upkeep loop.

A batch's job is deferred by :func:`defer_batch_job` through procrastinate's own API, on the
connection of the transaction that stores the batch (``catalog_store.create_batch`` calls it
there), so the two commit together and a batch never exists without its job; the worker runs
it chunk by chunk. A worker that dies
mid-chunk loses only that chunk's uncommitted transaction; its job is found stalled (no
heartbeat) by any live worker's upkeep loop and retried, and the retry starts at the first entry
not yet done.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import Sequence
from typing import Any

import procrastinate
import psycopg
import structlog

import catalog_store

from .envelope import wall_clock_ms
from .settings import Settings

__all__ = ["defer_batch_job", "job_app", "migrate", "migrations", "pending", "run_worker"]

_log = structlog.get_logger("gateway.worker")

QUEUE = "deletions"
TASK_NAME = "process_deletion_batch"

# Only defers jobs, each on the connection it is given (procrastinate's ``connection`` option
# of ``configure``: the INSERT joins that connection's transaction); never opened, so it holds
# no connection of its own.
_DEFERRER = procrastinate.App(connector=procrastinate.PsycopgConnector())


def _lock(batch_id: uuid.UUID | str) -> str:
    """The job lock of a batch: procrastinate never runs two jobs of one batch at once."""
    return f"deletion-batch-{batch_id}"


async def defer_batch_job(conn: psycopg.AsyncConnection[Any], batch: catalog_store.Batch) -> None:
    """Queue the job that runs ``batch``, in ``conn``'s open transaction (the caller commits)."""
    deferrer = _DEFERRER.configure_task(
        TASK_NAME, queue=QUEUE, lock=_lock(batch.id), connection=conn
    )
    await deferrer.defer_async(store_id=batch.store_id, batch_id=str(batch.id))


# Procrastinate's own schema, applied by our migration runner like any other migration.
PROCRASTINATE_SCHEMA = catalog_store.Migration(
    "0002_procrastinate", procrastinate.schema.SchemaManager.get_schema()
)


def migrations(*, contract: bool = False) -> list[catalog_store.Migration]:
    """Every migration: the package's SQL files (contract steps only with ``contract``) and
    procrastinate's schema."""
    extra = catalog_store.contract_migrations() if contract else []
    return sorted(
        [*catalog_store.available_migrations(), *extra, PROCRASTINATE_SCHEMA], key=lambda m: m.name
    )


async def migrate(
    conninfo: str,
    settings: Settings | None = None,
    *,
    extra: Sequence[catalog_store.Migration] = (),
    contract: bool = False,
) -> catalog_store.MigrationReport:
    """Apply the pending migrations (and ``extra`` ones, in name order among them) with the
    lock timeout and retry time of ``settings``; each retry is logged. Contract steps only
    with ``contract``."""
    settings = settings if settings is not None else Settings()

    def on_retry(name: str, tries: int, wait: float) -> None:
        _log.warning(
            "migration gave way to other sessions' locks; will retry",
            migration=name,
            tries=tries,
            wait_seconds=wait,
            lock_timeout_seconds=settings.migration_lock_timeout,
        )

    return await catalog_store.apply_migrations(
        conninfo,
        migrations=sorted([*migrations(contract=contract), *extra], key=lambda m: m.name),
        lock_timeout=settings.migration_lock_timeout,
        retry_for=settings.migration_retry_for,
        on_retry=on_retry,
    )


async def pending(conninfo: str, *, contract: bool = False) -> list[str]:
    """The migrations that ``migrate`` (with the same ``contract``) would apply, in order."""
    return await catalog_store.pending_migrations(
        conninfo, migrations=migrations(contract=contract)
    )


class _Worker:
    """What the task needs, set while a worker runs."""

    pool: catalog_store.Pool | None = None
    chunk_size: int = catalog_store.CHUNK_SIZE
    #: Bound of each chunk transaction: a stalled database cuts it, and the job is retried.
    db_deadline: float | None = None
    #: Set on SIGTERM/SIGINT: each running job ends after its current chunk and hands back.
    stopping: asyncio.Event | None = None


def job_app(conninfo: str) -> procrastinate.App:
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=conninfo, min_size=1, max_size=4)
    )

    # A chunk that fails (the database went away, say) rolled back whole; try again later.
    @app.task(
        name=TASK_NAME,
        queue=QUEUE,
        retry=procrastinate.RetryStrategy(max_attempts=50, wait=2, linear_wait=2),
    )
    async def process_deletion_batch(store_id: int, batch_id: str) -> None:
        pool = _Worker.pool
        assert pool is not None, "the worker sets the pool before taking jobs"
        batch_uuid = uuid.UUID(batch_id)
        while True:
            # A chunk cut at its deadline (its commit perhaps sent) fails the job, which is
            # retried: the retry starts at the first entry not done, so none counts twice.
            try:
                with catalog_store.deadline(_Worker.db_deadline):
                    batch = await catalog_store.process_next_chunk(
                        pool, store_id=store_id, batch_id=batch_uuid, chunk_size=_Worker.chunk_size
                    )
            except catalog_store.DeadlineExceeded as exc:
                _log.warning(
                    "chunk cut at its deadline; the batch will be retried",
                    batch_id=batch_id,
                    outcome=exc.outcome,
                )
                raise
            if batch is None:
                return
            _log.info(
                "chunk done",
                batch_id=batch_id,
                processed=batch.processed,
                total=batch.total,
                status=batch.status,
            )
            stopping = _Worker.stopping
            if stopping is not None and stopping.is_set() and batch.processed < batch.total:
                # Hand the rest back: a new job (same lock) that any worker resumes at the
                # first entry not done. This one ends now, so the worker can exit.
                await process_deletion_batch.configure(lock=_lock(batch_id)).defer_async(
                    store_id=store_id, batch_id=batch_id
                )
                _log.info("batch handed back", batch_id=batch_id, processed=batch.processed)
                return

    return app


async def _upkeep(app: procrastinate.App, pool: catalog_store.Pool, settings: Settings) -> None:
    """Retry jobs whose worker stopped beating; purge old batches, replay records, archived
    products and idempotency keys."""
    while True:
        try:
            stalled = await app.job_manager.get_stalled_jobs(
                queue=QUEUE, seconds_since_heartbeat=settings.worker_stalled_after
            )
            for job in stalled:
                _log.warning("retrying stalled batch job", job_id=job.id)
                await app.job_manager.retry_job(job)
            with catalog_store.deadline(settings.worker_db_deadline):
                await catalog_store.purge_old_batches(
                    pool, older_than_days=settings.batch_retention_days
                )
                await catalog_store.purge_expired_nonces(pool, now_ms=wall_clock_ms())
                await catalog_store.purge_archive(
                    pool, older_than_days=settings.archive_retention_days
                )
                await catalog_store.purge_expired_keys(pool)
        except (
            catalog_store.StoreUnavailable,
            OSError,
            procrastinate.exceptions.ConnectorException,
        ):
            _log.warning("upkeep could not reach the database; will retry")
        except Exception as exc:  # the loop must outlive any one round: it requeues stalled jobs
            _log.error("upkeep round failed; will retry", error=repr(exc))
        await asyncio.sleep(settings.worker_upkeep_interval)


async def run_worker(conninfo: str, settings: Settings, *, concurrency: int = 1) -> None:
    """Run until SIGINT/SIGTERM: take batch jobs, and keep the upkeep loop going.

    On the signal, no new job is taken; each running job finishes the chunk it is in (one
    short transaction), hands the rest of its batch back to the queue, and the worker returns.
    """
    pool = catalog_store.create_pool(conninfo, min_size=1, max_size=max(2, concurrency + 1))
    await pool.open(wait=True, timeout=30)
    stopping = asyncio.Event()
    _Worker.pool, _Worker.chunk_size, _Worker.stopping = pool, settings.batch_chunk_size, stopping
    _Worker.db_deadline = settings.worker_db_deadline
    app = job_app(conninfo)
    loop = asyncio.get_running_loop()
    try:
        async with app.open_async():
            upkeep = asyncio.create_task(_upkeep(app, pool, settings))
            worker = asyncio.create_task(
                app.run_worker_async(
                    queues=[QUEUE],
                    concurrency=concurrency,
                    update_heartbeat_interval=settings.worker_heartbeat,
                    stalled_worker_timeout=settings.worker_stalled_after,
                    delete_jobs="successful",
                    install_signal_handlers=False,
                )
            )

            def stop() -> None:
                if stopping.is_set():
                    return
                # The stop first, the log line after: a log write never holds up a stop.
                stopping.set()
                # Cancelling procrastinate's run is its graceful stop: it takes no new job and
                # waits for the running ones, which now end at their next chunk boundary.
                worker.cancel()
                _log.info("worker stopping")

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop)
            try:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
                upkeep.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await upkeep
    finally:
        _Worker.pool, _Worker.stopping = None, None
        await pool.close()
