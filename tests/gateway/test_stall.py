"""A database that stalls rather than goes away: PostgreSQL frozen with SIGSTOP (postmaster and
every backend: a paused VM, a stalled disk, a partition that keeps TCP up) under load through a
real `serve`, then thawed with SIGCONT. Nothing closes a socket, so only the gateway's own
deadlines can answer the partner."""

from __future__ import annotations

import asyncio
import secrets
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

import catalog_store
from gateway.jobs import defer_batch_job, migrate
from tests.live import BIN, clean_env, partner_client, serving
from tests.load import DeletionLoad, Sent, wait_for
from tests.own_postgres import OwnPostgres, own_postgres
from tests.support import DELETIONS, Tenant, assert_error, make_tenant, run_with_pool

pytestmark = pytest.mark.slow

#: A sync request, /readyz, /metrics and the batch route answer within this of a stall.
SYNC_BOUND = 2.0
FREEZE_SECONDS = 3.5
UNREACHABLE = "The database cannot be reached; nothing was changed. Retry after Retry-After seconds"
STALLED_UNCHANGED = (
    "The database did not answer in time; nothing was changed. Retry after Retry-After seconds"
)
STALLED_UNKNOWN = (
    "The database did not confirm the commit of this request's changes: they may have been"
    " committed, all or nothing. Retry after Retry-After seconds with the same"
    " idempotency-key: its answer tells which"
)


@contextmanager
def frozen(pg: OwnPostgres) -> Iterator[None]:
    processes = pg.freeze()
    try:
        yield
    finally:
        pg.thaw(processes)


def _timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def _probe_in_background(calls: dict[str, Any]) -> tuple[dict[str, Any], list[threading.Thread]]:
    results: dict[str, Any] = {}

    def run(name: str, call: Any) -> None:
        results[name] = _timed(call)

    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    for thread in threads:
        thread.start()
    return results, threads


def _settled(pg: OwnPostgres) -> bool:
    """No session is in the middle of anything: cut backends have rolled back or committed."""
    with psycopg.connect(pg.conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            " AND pid <> pg_backend_pid() AND state <> 'idle'"
        ).fetchone()
    return row == (0,)


@dataclass
class State:
    left: set[str]
    audited: set[str]
    nonces: set[bytes]


def _state(pg: OwnPostgres, tenant: Tenant) -> State:
    with psycopg.connect(pg.conninfo) as conn:
        left = conn.execute(
            "SELECT id::text FROM products WHERE store_id = %s", (tenant.store_id,)
        ).fetchall()
        audited = conn.execute("SELECT request_id::text FROM deletion_audit").fetchall()
        nonces = conn.execute(
            "SELECT signature FROM replay_nonces WHERE partner_id = %s", (tenant.partner_id,)
        ).fetchall()
    return State(
        {row[0] for row in left}, {row[0] for row in audited}, {bytes(row[0]) for row in nonces}
    )


def _metric(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{line_start} not in /metrics")


def test_a_frozen_database_answers_within_the_bound_and_leaves_nothing_half_done(
    tmp_path: Path,
) -> None:
    """Freeze PostgreSQL under load: deletions, /readyz, /metrics and the batch route all answer
    within 2 s (SYS_001 with Retry-After and context.outcome; /metrics 200), nothing is half
    done, an `unchanged` changed nothing; thaw: the same serve resumes by itself with no broken
    connection lent, and a retry with the same idempotency key says what happened."""
    with own_postgres() as pg:
        asyncio.run(migrate(pg.conninfo))
        tenant = run_with_pool(
            pg.conninfo, lambda p: make_tenant(p, products=4000, variants=0, name="stall")
        )
        batch_ids, load_ids = tenant.ids[:3], tenant.ids[3:]
        with serving(pg.conninfo, tmp_path, GATEWAY_RETRY_AFTER="3") as server:
            with partner_client(server, tenant) as client:
                dispatched = client.post(DELETIONS, json={"ids": batch_ids, "dispatch": True})
                assert dispatched.status_code == 202, dispatched.text
                batch_path = f"{DELETIONS}/{dispatched.json()['data']['batchId']}"
                with DeletionLoad(server, tenant, load_ids, keys=True) as load:
                    wait_for(lambda: load.count(200) >= 10, "deletions before the freeze")
                    with frozen(pg):
                        froze = time.monotonic()
                        probes, threads = _probe_in_background(
                            {
                                "readyz": lambda: httpx.get(server.url + "/readyz", timeout=15),
                                "metrics": lambda: httpx.get(server.url + "/metrics", timeout=15),
                                "batch": lambda: client.get(batch_path, timeout=15),
                            }
                        )
                        time.sleep(FREEZE_SECONDS)
                        for thread in threads:
                            thread.join()
                    thawed = time.monotonic()
                    wait_for(lambda: load.count(200, after=thawed) >= 10, "deletions after")
                    resumed = load.count(200, after=thawed)
                    # Requests all through: any broken connection lent would fail one.
                    wait_for(lambda: load.count(200, after=thawed + 2.0) >= 20, "a steady service")
                ready_after = httpx.get(server.url + "/readyz", timeout=15)
                metrics_after = httpx.get(server.url + "/metrics", timeout=15).text
                assert server.process.poll() is None  # the very same serve, never restarted
                sent = list(load.sent)
                wait_for(lambda: _settled(pg), "cut sessions to end")
                before_retries = _state(pg, tenant)
                retried = {
                    s.key: _retry(client, s)
                    for s in sent
                    if s.key is not None
                    and s.response is not None
                    and s.response.status_code == 503
                }
            after_retries = _state(pg, tenant)

    # No hang: every answer, deletions and probes, within the bound of its class.
    assert [s.error for s in sent if s.response is None] == []
    slowest = max(sent, key=lambda s: s.seconds)
    assert slowest.seconds < SYNC_BOUND, (slowest.seconds, slowest.ids)
    for name, (_, seconds) in probes.items():
        assert seconds < SYNC_BOUND, (name, seconds)
    # While frozen: /readyz and the batch route SYS_001, /metrics answers that the database is
    # down.
    for name in ("readyz", "batch"):
        response = probes[name][0]
        assert_error(
            response,
            503,
            "SYS_001",
            "Service temporarily unavailable",
            context={"outcome": "unchanged"},
        )
        assert response.json()["error"]["details"]["hint"] in (UNREACHABLE, STALLED_UNCHANGED)
        assert response.headers["retry-after"] == "3"
    assert probes["metrics"][0].status_code == 200
    assert "gateway_database_up 0.0" in probes["metrics"][0].text
    assert ready_after.status_code == 200 and ready_after.json()["message"] == "Ready"
    assert resumed >= 10

    unchanged = unknown = 0
    for s in sent:
        assert s.response is not None
        request_id = s.response.headers["x-request-id"]
        gone = not set(s.ids) & before_retries.left
        # One transaction: its deletes, audit row and replay record exist together, or none.
        assert (request_id in before_retries.audited) == gone, s
        assert (s.signature in before_retries.nonces) == gone, s
        if s.response.status_code == 200:
            assert s.response.json()["data"]["summary"] == {
                "total": 2,
                "succeeded": 2,
                "failed": 0,
            }
            assert gone
            continue
        body = assert_error(s.response, 503, "SYS_001", "Service temporarily unavailable")
        assert s.response.headers["retry-after"] == "3"
        assert s.started > froze - SYNC_BOUND and s.started < thawed, s
        outcome = body["error"]["details"]["context"]["outcome"]
        assert body["error"]["details"]["context"] == {"outcome": outcome}
        if outcome == "unchanged":
            assert body["error"]["details"]["hint"] in (UNREACHABLE, STALLED_UNCHANGED)
            assert set(s.ids) <= before_retries.left, s  # changed nothing
            unchanged += 1
        else:
            assert outcome == "unknown"
            assert body["error"]["details"]["hint"] == STALLED_UNKNOWN
            unknown += 1
        if s.key is not None:
            # The retry tells the partner: the first answer again if it committed, else a
            # fresh run that deletes now. Either way the products are gone after it.
            retry = retried[s.key]
            assert retry.status_code == 200, retry.text
            assert retry.json()["data"]["summary"] == {"total": 2, "succeeded": 2, "failed": 0}
            assert (retry.headers.get("idempotent-replayed") == "true") == gone, s
            if gone:
                assert retry.json()["requestId"] == request_id
            assert not set(s.ids) & after_retries.left
    print(
        "STATS",
        len(sent),
        unchanged,
        unknown,
        resumed,
        max(s.seconds for s in sent),
        {k: round(v[1], 2) for k, v in probes.items()},
    )
    assert unchanged + unknown >= 4  # every thread met the freeze
    cut = _metric(metrics_after, 'gateway_db_deadline_exceeded_total{outcome="unchanged"}')
    cut_unknown = _metric(metrics_after, 'gateway_db_deadline_exceeded_total{outcome="unknown"}')
    assert cut_unknown >= unknown and cut + cut_unknown >= 2  # at least /readyz and the batch


def _retry(client: httpx.Client, sent: Sent) -> httpx.Response:
    """The same body with the same key, signed anew; IDEM_002 (a cut session still ending)
    is retried as its Retry-After says."""
    assert sent.key is not None
    for _ in range(50):
        response = client.post(
            DELETIONS, json={"ids": sent.ids}, headers={"idempotency-key": sent.key}
        )
        if response.status_code != 409:
            return response
        time.sleep(0.2)
    raise AssertionError(f"{sent.key} still running")


def test_a_batch_worker_under_a_frozen_database_finishes_its_batch_exactly(
    tmp_path: Path,
) -> None:
    """Freeze PostgreSQL while a worker runs a batch: its chunk transaction is cut at the
    worker's deadline; after the thaw the batch is retried from the first entry not done and
    finishes with an exact summary: every product deleted once, nothing lost or counted twice."""
    with own_postgres() as pg:
        asyncio.run(migrate(pg.conninfo))
        tenant = run_with_pool(
            pg.conninfo, lambda p: make_tenant(p, products=3000, variants=0, name="worker")
        )
        batch_id = run_with_pool(pg.conninfo, lambda p: _dispatch(p, tenant))
        log = tmp_path / "worker.log"
        with log.open("w") as out:
            worker = subprocess.Popen(
                [str(BIN), "worker"],
                env=clean_env(
                    pg.conninfo,
                    GATEWAY_BATCH_CHUNK_SIZE="100",
                    GATEWAY_WORKER_DB_DEADLINE="1",
                ),
                stdout=out,
                stderr=out,
            )
        try:
            wait_for(lambda: _batch(pg, batch_id)[1] >= 300, "the first chunks", timeout=90)
            with frozen(pg):
                time.sleep(FREEZE_SECONDS)
            thawed = time.monotonic()
            wait_for(lambda: _batch(pg, batch_id)[0] == "succeeded", "the batch", timeout=90)
            finished_after = time.monotonic() - thawed
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        status, processed, succeeded, failed = _batch(pg, batch_id)
        with psycopg.connect(pg.conninfo) as conn:
            entries = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE r.code IS NULL),"
                " count(DISTINCT r.product_id) FROM deletion_batch_chunks c,"
                " unnest(c.codes, c.product_ids) AS r (code, product_id) WHERE c.batch_id = %s",
                (batch_id,),
            ).fetchone()
            left = conn.execute(
                "SELECT count(*) FROM products WHERE store_id = %s", (tenant.store_id,)
            ).fetchone()
            archived = conn.execute(
                "SELECT count(*), count(DISTINCT id) FROM all_products WHERE deleted_batch = %s",
                (batch_id,),
            ).fetchone()
    assert (status, processed, succeeded, failed) == ("succeeded", 3000, 3000, 0)
    assert entries == (3000, 3000, 3000)
    assert left == (0,)
    assert archived == (3000, 3000)
    cut = [line for line in log.read_text().splitlines() if "chunk cut at its deadline" in line]
    assert cut, log.read_text()[-3000:]
    assert finished_after < 60


async def _dispatch(pool: catalog_store.Pool, tenant: Tenant) -> uuid.UUID:
    async with catalog_store.request_transaction(
        pool,
        store_id=tenant.store_id,
        nonce=catalog_store.Nonce(
            tenant.partner_id,
            secrets.token_bytes(32),
            int(time.time() * 1000) + 600_000,
            int(time.time() * 1000),
        ),
        request_id=uuid.uuid4(),
    ) as tx:
        batch = await catalog_store.create_batch(
            tx, batch_id=uuid.uuid4(), ids=tenant.ids, external_ids=[], defer_job=defer_batch_job
        )
    return batch.id


def _batch(pg: OwnPostgres, batch_id: uuid.UUID) -> tuple[str, int, int, int]:
    with psycopg.connect(pg.conninfo) as conn:
        row = conn.execute(
            "SELECT status, processed, succeeded, failed FROM deletion_batches WHERE id = %s",
            (batch_id,),
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2], row[3]
