"""Prometheus metrics: what each process counts, and the text that ``GET /metrics`` answers.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``serve`` always sets it for its processes), every
process writes its samples to files in that folder and a scrape of any one process reads them
all: prometheus-client's multiprocess mode. Without it (the tests' in-process app), the samples
live in this process's default registry.

Why this module reads the environment and takes no folder: prometheus-client picks its mode
from ``PROMETHEUS_MULTIPROC_DIR`` when it is imported and reads the variable again for every
metric value it makes; its API takes the folder only when collecting. So the edge decides:
``serve`` (``gateway.serving.metrics_folder``) creates the folder and sets the variable before
anything imports prometheus-client, after ``load_settings`` refused a folder it cannot use.

Long because: every metric is declared here beside its help text, with the families that a
scrape adds from the database (batches, queue, workers, secrets).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

import catalog_store

__all__ = [
    "AUTH_FAILURES",
    "CLIENT_DISCONNECTS",
    "CLOCK_SKEW",
    "CONTENT_TYPE",
    "DB_DEADLINE_CUTS",
    "DB_ERRORS",
    "ENTRIES",
    "HEADER_CAP_REFUSALS",
    "KNOWN_PATHS",
    "SLOW_CLIENTS_CUT",
    "observe_clock_skew",
    "observe_request",
    "render_metrics",
    "sample_pool",
    "sample_pool_forever",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST

REQUESTS = Counter(
    "gateway_requests",
    "HTTP requests answered, by route, method, status and error code (empty on success)",
    ["route", "method", "status", "code"],
)
LATENCY = Histogram(
    "gateway_request_duration_seconds",
    "Time from the first byte of a request to the end of its answer",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
AUTH_FAILURES = Counter(
    "gateway_auth_failures", "Requests refused by authentication, by reason", ["reason"]
)
_SKEW_BUCKETS = (-600, -300, -120, -60, -30, -10, -5, -2, -1, 0, 1, 2, 5, 10, 30, 60, 120, 300, 600)
CLOCK_SKEW = Histogram(
    "gateway_partner_clock_skew_seconds",
    "x-timestamp minus the gateway's clock, for every request whose signature verified"
    " (negative: the partner's clock is behind), clamped to +-600 s",
    buckets=_SKEW_BUCKETS,
)
HEADER_CAP_REFUSALS = Counter(
    "gateway_header_cap_refusals",
    "Requests refused by the server before the app, by the part over its cap: url (REQ_001),"
    " head (request line and headers, REQ_002) or trailer (of a chunked body)",
    ["part"],
)
SLOW_CLIENTS_CUT = Counter(
    "gateway_slow_clients_cut",
    "Connections closed because a request did not arrive in time, by phase: headers"
    " (GATEWAY_HEADER_TIMEOUT) or body (GATEWAY_BODY_TIMEOUT); both answered REQ_003",
    ["phase"],
)
CLIENT_DISCONNECTS = Counter(
    "gateway_client_disconnects",
    "Requests whose client closed the connection before the gateway had read their body"
    " (no answer is sent; not counted in gateway_requests)",
)
_ENTRIES_HELP = (
    "Deletion entries done: mode sync (HTTP 200) or batch (by a worker); outcome deleted or"
    " failed (an item error)"
)
#: Sync entries, counted by the process that answered; batch entries are read from the
#: database at scrape time (every worker's, wherever it runs), into this same family.
_ENTRIES_NAME = "gateway_entries"
ENTRIES = Counter(_ENTRIES_NAME, _ENTRIES_HELP, ["mode", "outcome"])
DB_ERRORS = Counter(
    "gateway_db_errors", "Requests answered SYS_001 because the database work failed"
)
DB_DEADLINE_CUTS = Counter(
    "gateway_db_deadline_exceeded",
    "Requests whose database work was cut at its deadline (the database stalled), by outcome:"
    " unchanged (nothing can have committed) or unknown (its commit had been sent)",
    ["outcome"],
)
POOL_SIZE = Gauge(
    "gateway_db_pool_size",
    "Database connections open in the pools of the serve processes",
    multiprocess_mode="livesum",
)
POOL_AVAILABLE = Gauge(
    "gateway_db_pool_available",
    "Open database connections idle in the pools",
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "gateway_db_pool_waiting",
    "Requests waiting for a database connection",
    multiprocess_mode="livesum",
)
POOL_ERRORS = Counter(
    "gateway_db_pool_errors",
    "Pool failures: kind connection (a connection attempt failed) or request (a request got"
    " no connection in time)",
    ["kind"],
)

_AUTH_REASONS = {
    "AUTH_001": "malformed_headers",
    "AUTH_002": "bad_signature",
    "AUTH_003": "timestamp_out_of_window",
    "AUTH_004": "unknown_partner",
    "AUTH_005": "token_refused",
    "AUTH_006": "replayed",
}
#: Routes labelled by their path; anything else unmatched is "unmatched" (no label explosion).
KNOWN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs", "/metrics"})
# Every series that alerts look at exists from the start, at 0, so a rate() is never "absent".
for _reason in _AUTH_REASONS.values():
    AUTH_FAILURES.labels(_reason)
for _outcome in ("deleted", "failed"):
    ENTRIES.labels("sync", _outcome)
for _kind in ("connection", "request"):
    POOL_ERRORS.labels(_kind)
for _part in ("url", "head", "trailer"):
    HEADER_CAP_REFUSALS.labels(_part)
for _phase in ("headers", "body"):
    SLOW_CLIENTS_CUT.labels(_phase)
for _outcome in (catalog_store.UNCHANGED, catalog_store.UNKNOWN):
    DB_DEADLINE_CUTS.labels(_outcome)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(
    *,
    route: str | None,
    path: str,
    method: str,
    status: int,
    code: str,
    seconds: float,
    deleted: int = 0,
    failed: int = 0,
) -> None:
    """Count one answered request; ``route`` is the template a signed route set, if any, and
    ``deleted``/``failed`` the entries of a deletion answered with HTTP 200."""
    label = route or (path if path in KNOWN_PATHS else "unmatched")
    method = method if method in _METHODS else "OTHER"
    REQUESTS.labels(label, method, str(status), code).inc()
    LATENCY.labels(label, method).observe(seconds)
    if deleted:
        ENTRIES.labels("sync", "deleted").inc(deleted)
    if failed:
        ENTRIES.labels("sync", "failed").inc(failed)
    reason = _AUTH_REASONS.get(code)
    if reason is not None:
        AUTH_FAILURES.labels(reason).inc()


def observe_clock_skew(seconds: float) -> None:
    """Record an authenticated partner's skew, clamped to the buckets' range: one absurd value
    must not move the sum for ever."""
    CLOCK_SKEW.observe(min(max(seconds, _SKEW_BUCKETS[0]), _SKEW_BUCKETS[-1]))


def sample_pool(pool: catalog_store.Pool) -> None:
    """Copy this process's pool figures into the gauges (and its error counts since last)."""
    stats = pool.pop_stats()
    POOL_SIZE.set(stats.get("pool_size", 0))
    POOL_AVAILABLE.set(stats.get("pool_available", 0))
    # psycopg_pool's own requests_waiting keeps counting clients that gave up until a
    # connection comes back (its queue of waiters is pruned only then): count our own.
    POOL_WAITING.set(catalog_store.requests_waiting(pool))
    POOL_ERRORS.labels("connection").inc(stats.get("connections_errors", 0))
    POOL_ERRORS.labels("request").inc(stats.get("requests_errors", 0))


class _Families:
    """A collector that yields metric families computed just before the scrape."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def _queue_families(stats: catalog_store.QueueStats | None) -> list[Metric]:
    up = GaugeMetricFamily(
        "gateway_database_up", "1 when this scrape could read the queue figures, else 0"
    )
    up.add_metric([], 0 if stats is None else 1)
    if stats is None:
        return [up]
    batches = GaugeMetricFamily(
        "gateway_batches", "Dispatched batches kept in the database, by status", labels=["status"]
    )
    for status in ("pending", "processing", "succeeded", "completed"):
        batches.add_metric([status], stats.batches.get(status, 0))
    depth = GaugeMetricFamily(
        "gateway_batch_queue_depth", "Batch jobs waiting for a worker (procrastinate todo)"
    )
    depth.add_metric([], stats.jobs_waiting)
    running = GaugeMetricFamily("gateway_batch_jobs_running", "Batch jobs a worker is running")
    running.add_metric([], stats.jobs_running)
    failed = GaugeMetricFamily(
        "gateway_batch_jobs_failed", "Batch jobs that failed every retry and wait for an operator"
    )
    failed.add_metric([], stats.jobs_failed)
    oldest = GaugeMetricFamily(
        "gateway_batch_oldest_unfinished_seconds",
        "Age of the oldest batch still pending or processing (0 when none)",
    )
    oldest.add_metric([], stats.oldest_unfinished_seconds)
    return [up, batches, depth, running, failed, oldest, *_worker_families(stats)]


def _worker_families(stats: catalog_store.QueueStats) -> list[Metric]:
    """The workers' health and work, from the database: every worker's, wherever it runs."""
    alive = GaugeMetricFamily(
        "gateway_workers_alive",
        "Batch workers whose last heartbeat is newer than GATEWAY_WORKER_STALLED_AFTER",
    )
    alive.add_metric([], stats.workers_alive)
    heartbeat = GaugeMetricFamily(
        "gateway_batch_oldest_heartbeat_seconds",
        "Age of the oldest last heartbeat among the workers of running batch jobs (0 when none"
        " runs); above GATEWAY_WORKER_STALLED_AFTER, that job's worker is gone",
    )
    heartbeat.add_metric([], stats.oldest_heartbeat_seconds)
    chunks = CounterMetricFamily(
        "gateway_batch_chunks",
        "Batch chunks committed by every worker (read from the database)",
        value=stats.chunks,
    )
    return [alive, heartbeat, chunks]


class _WithBatchEntries:
    """The scrape's samples, with the batch entries of every worker (read from the database
    just now) added to the ``gateway_entries`` family beside the processes' sync ones."""

    def __init__(self, source: Collector, stats: catalog_store.QueueStats | None) -> None:
        self._source = source
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        for family in self._source.collect():
            if family.name == _ENTRIES_NAME and stats is not None:
                for outcome, value in (
                    ("deleted", stats.entries_deleted),
                    ("failed", stats.entries_failed),
                ):
                    family.add_sample(
                        family.name + "_total", {"mode": "batch", "outcome": outcome}, value
                    )
            yield family


def _secret_families(unreadable: int | None) -> list[Metric]:
    if unreadable is None:
        return []
    family = GaugeMetricFamily(
        "gateway_partner_secrets_unreadable",
        "Active partner secrets that this process's server key (GATEWAY_SECRET_KEY) does not"
        " open; their partners are answered SYS_001",
    )
    family.add_metric([], unreadable)
    return [family]


def render_metrics(
    stats: catalog_store.QueueStats | None, *, unreadable_secrets: int | None = None
) -> bytes:
    """The Prometheus text of every process's samples plus the queue figures read just now, and
    the stored partner secrets that the server key does not open (None: not known)."""
    registry = CollectorRegistry()
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Forward(REGISTRY))
    registry.register(_Families(_queue_families(stats) + _secret_families(unreadable_secrets)))
    return generate_latest(_WithBatchEntries(registry, stats))


class _Forward:
    """This process's default registry, inside a scrape registry of its own."""

    def __init__(self, source: Collector) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        return self._source.collect()


#: Seconds between two copies of a process's pool figures into the shared gauges.
POOL_SAMPLE_INTERVAL = 1.0


async def sample_pool_forever(pool: catalog_store.Pool) -> None:
    """Keep this process's pool gauges fresh, so a scrape of any process sees every pool."""
    while True:
        sample_pool(pool)
        await asyncio.sleep(POOL_SAMPLE_INTERVAL)
