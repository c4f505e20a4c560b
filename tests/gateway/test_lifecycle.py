"""Graceful lifecycle with real processes: `serve --workers N` on one port and SIGTERM with a
request in flight; a batch worker on SIGTERM finishes its chunk and hands the batch back."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

import catalog_store
from gateway.jobs import defer_batch_job
from gateway.middleware import CUT_OFF_HINT
from tests.live import BIN, clean_env, cli, free_port, partner_client, serving
from tests.support import DELETIONS, Tenant, assert_error, make_tenant, run_with_pool

pytestmark = pytest.mark.slow


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@contextmanager
def _row_locked(database_url: str, product_id: str) -> Iterator[psycopg.Connection[object]]:
    """Hold a lock on one product, so a request (or chunk) that deletes it waits for us."""
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT 1 FROM products WHERE id = %s FOR UPDATE", (product_id,))
        yield conn  # the caller commits to let the waiter go


def _someone_waits_for_a_lock(database_url: str) -> bool:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return row is not None and row[0] > 0


def _refused(url: str) -> bool:
    try:
        httpx.get(url + "/healthz", timeout=2)
    except httpx.ConnectError:
        return True
    except httpx.TransportError:
        return False
    return False


def _live_pids(folder: Path) -> set[str]:
    """The processes whose live pool gauges are in the metrics folder."""
    return {m.group(1) for f in folder.iterdir() if (m := re.search(r"livesum_(\d+)\.db$", f.name))}


def test_serve_workers_share_one_port_and_sigterm_lets_in_flight_requests_finish(
    database_url: str, tmp_path: Path
) -> None:
    """Two server processes answer on one port; on SIGTERM new connections are refused, the
    request in flight is answered in full, and `serve` exits 0."""
    tenant = run_with_pool(database_url, lambda p: make_tenant(p, products=3, name="life"))
    metrics = tmp_path / "metrics"
    with serving(
        database_url, tmp_path, "--workers", "2", PROMETHEUS_MULTIPROC_DIR=str(metrics)
    ) as server:
        _wait_for(lambda: len(_live_pids(metrics)) == 2, "two server processes")
        pids = _live_pids(metrics)
        answer: dict[str, httpx.Response] = {}
        with _row_locked(database_url, tenant.ids[0]) as lock:

            def send() -> None:
                with partner_client(server, tenant) as client:
                    answer["r"] = client.post(DELETIONS, json={"ids": tenant.ids[:2]})

            in_flight = threading.Thread(target=send)
            in_flight.start()
            _wait_for(lambda: _someone_waits_for_a_lock(database_url), "the request to wait")

            server.process.send_signal(signal.SIGTERM)
            _wait_for(lambda: _refused(server.url), "new connections to be refused", 20)
            assert server.process.poll() is None  # still finishing the request in flight
            lock.commit()
            in_flight.join(30)

        assert server.process.wait(timeout=30) == 0
    response = answer["r"]
    assert response.status_code == 200, response.text
    assert response.json()["data"]["summary"] == {"total": 2, "succeeded": 2, "failed": 0}
    left = run_with_pool(
        database_url, lambda p: catalog_store.count_products(p, store_id=tenant.store_id)
    )
    assert left == (1, 2)  # one product left, with its two variants
    # Each stopped process's live gauges were dropped from the shared metrics folder.
    assert not pids & _live_pids(metrics)


def test_sigterm_with_a_request_stuck_past_the_grace_period_still_stops_and_changes_nothing(
    database_url: str, tmp_path: Path
) -> None:
    """A request that outlives GATEWAY_SHUTDOWN_GRACE is cut off with SYS_001 and Retry-After:
    `serve` exits 0 on time, and the request's transaction is rolled back whole."""
    tenant = run_with_pool(database_url, lambda p: make_tenant(p, products=2, name="grace"))
    outcome: dict[str, httpx.Response] = {}
    with (
        serving(database_url, tmp_path, GATEWAY_SHUTDOWN_GRACE="1") as server,
        _row_locked(database_url, tenant.ids[0]) as lock,
    ):

        def send() -> None:
            with partner_client(server, tenant) as client:
                outcome["response"] = client.post(DELETIONS, json={"ids": tenant.ids})

        in_flight = threading.Thread(target=send)
        in_flight.start()
        _wait_for(lambda: _someone_waits_for_a_lock(database_url), "the request to wait")
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
        in_flight.join(30)
        lock.commit()
    response = outcome["response"]
    assert_error(
        response, 503, "SYS_001", "Service temporarily unavailable", hint=CUT_OFF_HINT, context={}
    )
    assert response.headers["retry-after"] == "5"
    left = run_with_pool(
        database_url, lambda p: catalog_store.count_products(p, store_id=tenant.store_id)
    )
    assert left == (2, 4)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM deletion_audit").fetchone() == (0,)


FAST = {
    "GATEWAY_BATCH_CHUNK_SIZE": "10",
    "GATEWAY_WORKER_HEARTBEAT": "0.2",
    "GATEWAY_WORKER_STALLED_AFTER": "1",
    "GATEWAY_WORKER_UPKEEP_INTERVAL": "0.2",
}


def _start_worker(database_url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen(
            [str(BIN), "worker"], env=clean_env(database_url, **FAST), stdout=out, stderr=out
        )


def _batch(database_url: str, tenant: Tenant, batch_id: uuid.UUID) -> catalog_store.Batch:
    batch = run_with_pool(
        database_url,
        lambda p: catalog_store.get_batch(p, store_id=tenant.store_id, batch_id=batch_id),
    )
    assert batch is not None
    return batch


def _jobs(database_url: str, batch_id: uuid.UUID) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT status::text FROM procrastinate_jobs WHERE args->>'batch_id' = %s ORDER BY id",
            (str(batch_id),),
        ).fetchall()
    return [row[0] for row in rows]


def test_a_worker_on_sigterm_finishes_its_chunk_and_hands_the_batch_back(
    database_url: str, tmp_path: Path
) -> None:
    """SIGTERM mid-chunk: the chunk commits, the rest of the batch goes back to the queue, the
    worker exits 0; the next worker resumes at the first entry not done and finishes exactly."""
    tenant = run_with_pool(database_url, lambda p: make_tenant(p, products=60, name="handback"))

    async def dispatch(pool: catalog_store.Pool) -> catalog_store.Batch:
        async with catalog_store.request_transaction(
            pool,
            store_id=tenant.store_id,
            nonce=catalog_store.Nonce(
                partner_id=tenant.partner_id,
                signature=uuid.uuid4().bytes * 2,
                expires_at_ms=int(time.time() * 1000) + 300_000,
                received_at_ms=int(time.time() * 1000),
            ),
            request_id=uuid.uuid4(),
        ) as tx:
            return await catalog_store.create_batch(
                tx,
                batch_id=uuid.uuid4(),
                ids=tenant.ids,
                external_ids=[],
                defer_job=defer_batch_job,
            )

    log = tmp_path / "worker.log"
    # Entry 25 is locked: the first two chunks commit, the third (entries 20-29) waits.
    with _row_locked(database_url, tenant.ids[25]) as lock:
        batch_id = run_with_pool(database_url, dispatch).id
        worker = _start_worker(database_url, log)
        try:
            _wait_for(lambda: _someone_waits_for_a_lock(database_url), "the third chunk to wait")
            assert _batch(database_url, tenant, batch_id).processed == 20
            worker.send_signal(signal.SIGTERM)
            _wait_for(lambda: "worker stopping" in log.read_text(), "the worker to take SIGTERM")
            lock.commit()
            assert worker.wait(timeout=30) == 0
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()

    handed_back = _batch(database_url, tenant, batch_id)
    assert (handed_back.status, handed_back.processed, handed_back.succeeded) == (
        "processing",
        30,
        30,
    )
    assert _jobs(database_url, batch_id) == ["todo"]  # the finished job gone, one to resume
    assert '"batch handed back"' in log.read_text()

    successor = _start_worker(database_url, tmp_path / "worker-2.log")
    try:
        _wait_for(lambda: _batch(database_url, tenant, batch_id).status != "processing", "done")
    finally:
        successor.send_signal(signal.SIGTERM)
        assert successor.wait(timeout=30) == 0
    done = _batch(database_url, tenant, batch_id)
    assert (done.status, done.processed, done.succeeded, done.failed) == ("succeeded", 60, 60, 0)
    left = run_with_pool(
        database_url, lambda p: catalog_store.count_products(p, store_id=tenant.store_id)
    )
    assert left == (0, 0)


def test_sigterm_while_the_server_processes_are_still_starting_is_a_clean_stop(
    database_url: str, tmp_path: Path
) -> None:
    """A SIGTERM that comes while `serve`'s processes are still importing the app stops them
    gracefully (exit 0), instead of killing them outright and exiting 1."""
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            env=clean_env(database_url, GATEWAY_DATA_DIR=str(tmp_path / "data")),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert process.stdout is not None
        started = json.loads(process.stdout.readline())
        assert started["serving"] == f"http://127.0.0.1:{port}"
        process.send_signal(signal.SIGTERM)  # the children are spawned, not yet serving
        assert process.wait(timeout=60) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "killed" not in log.read_text()


def test_serve_that_cannot_start_says_why_and_never_that_it_serves(
    database_url: str, tmp_path: Path
) -> None:
    """Its port taken: exit 3; its database unreachable: exit 2; each with one {"error"} line
    on standard error, and no {"serving": ...} on standard output."""
    data = {"GATEWAY_DATA_DIR": str(tmp_path / "data")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = cli(database_url, "serve", "--host", "127.0.0.1", "--port", str(port), **data)
    down = cli(
        "host=127.0.0.1 port=1 user=x dbname=x connect_timeout=1",
        "serve",
        "--port",
        str(free_port()),
        **data,
    )
    assert (busy.returncode, busy.stdout) == (3, "")
    (line,) = busy.stderr.splitlines()
    assert json.loads(line)["error"].startswith(f"cannot listen on 127.0.0.1:{port}: ")
    assert (down.returncode, down.stdout) == (2, "")
    (line,) = down.stderr.splitlines()
    assert json.loads(line)["error"].startswith("cannot connect to the database")


_STOP_WHILE_THE_TRACKER_STARTS = """
import os, signal, tempfile
from pathlib import Path
import multiprocessing.util as util
import uvicorn
from gateway import serving

real = util.spawnv_passfds


def spawn(path, args, passfds):
    # multiprocessing's resource tracker starts with the first server process: a SIGTERM
    # arrives right then (as when the operator stops serve at once).
    if "resource_tracker" in " ".join(map(str, args)):
        os.kill(os.getpid(), signal.SIGTERM)
    return real(path, args, passfds)


util.spawnv_passfds = spawn
# An app with nothing to start: the server processes need no database here.
config = uvicorn.Config("starlette.applications:Starlette", factory=True, port=0, workers=2)
with serving.stop_signals() as stop, tempfile.TemporaryDirectory() as metrics:
    status = serving.run_servers(
        config, config.bind_socket(), workers=2, grace=1, metrics=Path(metrics), stop=stop
    )
    print(status == 0)
"""


def test_a_sigterm_while_the_first_server_process_starts_is_not_lost() -> None:
    """A SIGTERM that comes just as multiprocessing's resource tracker starts (with the first
    server process) stops `serve`: never dropped as a signal ignored meanwhile (found flaky under
    load as the clean-stop test above; this makes that moment happen every time)."""
    done = subprocess.run(
        [str(BIN.parent / "python"), "-c", _STOP_WHILE_THE_TRACKER_STARTS],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (0, "True\n"), done.stderr
