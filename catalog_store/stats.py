"""Figures for the operator's metrics: dispatched batches by status, the job queue, the workers'
heartbeats and the work they did, in one statement, read at scrape time so every process
reports the same database-wide numbers.

The one place where the store reads procrastinate's tables (``procrastinate_jobs``,
``procrastinate_workers``, ``procrastinate_events``; it never writes them), for want of a
supported way: procrastinate's API has no reading of workers' heartbeats, and its queue counts
(``JobManager.list_queues_async``) need a pool of procrastinate's own in every ``serve``
process and one round trip more per scrape. The columns read are those of procrastinate 3.10's
schema (uv.lock); tests/gateway/test_metrics.py and test_worker.py read them back, so an
upgrade of procrastinate that changes them fails there.
"""

from __future__ import annotations

from dataclasses import dataclass

from .pool import Pool, connection

__all__ = ["QueueStats", "queue_stats"]


@dataclass(frozen=True, slots=True)
class QueueStats:
    batches: dict[str, int]
    jobs_waiting: int
    jobs_running: int
    jobs_failed: int
    oldest_unfinished_seconds: float
    #: Workers whose last heartbeat is more recent than the stalled-after setting.
    workers_alive: int = 0
    #: The age of the oldest heartbeat among the workers of running jobs (0 when none run).
    oldest_heartbeat_seconds: float = 0.0
    #: Chunks committed and entries done by every worker, ever (batch_work_totals).
    chunks: int = 0
    entries_deleted: int = 0
    entries_failed: int = 0


# A running job whose worker row is gone (pruned by another worker as stalled) counts from its
# last event, so it looks as old as it is, not healthy.
_QUEUE_STATS = """
SELECT
  (SELECT coalesce(jsonb_object_agg(status, n), '{}'::jsonb)
     FROM (SELECT status, count(*) AS n FROM deletion_batches GROUP BY status) AS s),
  count(*) FILTER (WHERE j.status = 'todo'),
  count(*) FILTER (WHERE j.status = 'doing'),
  count(*) FILTER (WHERE j.status = 'failed'),
  (SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
     FROM deletion_batches WHERE status IN ('pending', 'processing')),
  (SELECT count(*) FROM procrastinate_workers
    WHERE last_heartbeat > now() - make_interval(secs => %(stalled_after)s)),
  (SELECT coalesce(max(extract(epoch FROM now() - coalesce(w.last_heartbeat,
            (SELECT max(e.at) FROM procrastinate_events AS e WHERE e.job_id = d.id)))), 0)::float8
     FROM procrastinate_jobs AS d LEFT JOIN procrastinate_workers AS w ON w.id = d.worker_id
    WHERE d.queue_name = %(queue)s AND d.status = 'doing'),
  coalesce((SELECT chunks FROM batch_work_totals), 0),
  coalesce((SELECT deleted FROM batch_work_totals), 0),
  coalesce((SELECT failed FROM batch_work_totals), 0)
FROM procrastinate_jobs AS j
WHERE j.queue_name = %(queue)s
"""


async def queue_stats(pool: Pool, *, queue: str, stalled_after: float = 30.0) -> QueueStats:
    """Batches by status, the queue's jobs waiting, running and failed, the oldest unfinished
    batch; workers alive (a heartbeat within ``stalled_after`` seconds), the oldest heartbeat
    of a running job, and the chunks and entries all workers have done."""
    async with connection(pool) as conn:
        cursor = await conn.execute(_QUEUE_STATS, {"queue": queue, "stalled_after": stalled_after})
        row = await cursor.fetchone()
    assert row is not None  # an aggregate always returns one row
    batches, waiting, running, failed, oldest, alive, heartbeat, chunks, deleted, bad = row
    return QueueStats(
        batches={str(k): int(v) for k, v in batches.items()},
        jobs_waiting=int(waiting),
        jobs_running=int(running),
        jobs_failed=int(failed),
        oldest_unfinished_seconds=float(oldest),
        workers_alive=int(alive),
        oldest_heartbeat_seconds=float(heartbeat),
        chunks=int(chunks),
        entries_deleted=int(deleted),
        entries_failed=int(bad),
    )
