"""Figures for the operator's metrics: dispatched batches by status and the job queue, in one
statement, read at scrape time so every process reports the same database-wide numbers."""

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


_QUEUE_STATS = """
SELECT
  (SELECT coalesce(jsonb_object_agg(status, n), '{}'::jsonb)
     FROM (SELECT status, count(*) AS n FROM deletion_batches GROUP BY status) AS s),
  count(*) FILTER (WHERE j.status = 'todo'),
  count(*) FILTER (WHERE j.status = 'doing'),
  count(*) FILTER (WHERE j.status = 'failed'),
  (SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
     FROM deletion_batches WHERE status IN ('pending', 'processing'))
FROM procrastinate_jobs AS j
WHERE j.queue_name = %s
"""


async def queue_stats(pool: Pool, *, queue: str) -> QueueStats:
    """Batches by status, the queue's jobs waiting, running and failed, the oldest unfinished."""
    async with connection(pool) as conn:
        cursor = await conn.execute(_QUEUE_STATS, (queue,))
        row = await cursor.fetchone()
    assert row is not None  # an aggregate always returns one row
    batches, waiting, running, failed, oldest = row
    return QueueStats(
        batches={str(k): int(v) for k, v in batches.items()},
        jobs_waiting=int(waiting),
        jobs_running=int(running),
        jobs_failed=int(failed),
        oldest_unfinished_seconds=float(oldest),
    )
