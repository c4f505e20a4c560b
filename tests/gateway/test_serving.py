"""`serve` with one process (the default) serves in its own process, with uvicorn's public
API only: no supervisor, no second interpreter; its metrics and stops as with N processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.live import BIN, clean_env, free_port, serving

pytestmark = pytest.mark.slow


def _children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (Linux: /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def test_one_process_serves_in_serve_itself_and_counts_in_its_metrics_folder(
    database_url: str, tmp_path: Path
) -> None:
    """`serve` answers itself (no child process at all), its requests are counted in the
    metrics folder under its own pid, and on SIGTERM it exits 0 and drops its live gauges."""
    metrics = tmp_path / "metrics"
    with serving(database_url, tmp_path, PROMETHEUS_MULTIPROC_DIR=str(metrics)) as server:
        pid = server.process.pid
        assert _children(pid) == []
        for _ in range(2):
            assert httpx.get(server.url + "/openapi.json").status_code == 200
        scraped = httpx.get(server.url + "/metrics").text
        assert (metrics / f"counter_{pid}.db").exists()
        assert f"gauge_livesum_{pid}.db" in os.listdir(metrics)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
    counted = 'gateway_requests_total{code="",method="GET",route="/openapi.json",status="200"} 2.0'
    assert counted in scraped.splitlines()
    assert "python_gc_objects_collected_total" not in scraped  # the folder's samples only
    assert f"gauge_livesum_{pid}.db" not in os.listdir(metrics)


def test_one_process_stopped_while_it_is_still_starting_exits_0(
    database_url: str, tmp_path: Path
) -> None:
    """A SIGTERM right after `serve` says it is serving, while it is still importing the app
    and opening its pool, stops it gracefully: exit 0, nothing killed."""
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=clean_env(database_url, GATEWAY_DATA_DIR=str(tmp_path / "data")),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert process.stdout is not None
        started = json.loads(process.stdout.readline())
        assert started["serving"] == f"http://127.0.0.1:{port}"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "killed" not in log.read_text()


def _live_pids(folder: Path) -> set[int]:
    """The processes whose live pool gauges are in the metrics folder."""
    prefix, suffix = "gauge_livesum_", ".db"
    return {
        int(name[len(prefix) : -len(suffix)])
        for name in os.listdir(folder)
        if name.startswith(prefix) and name.endswith(suffix)
    }


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_server_process_that_dies_is_replaced_and_its_live_gauges_dropped(
    database_url: str, tmp_path: Path
) -> None:
    """With `--workers 2`, a server process killed outright is replaced (logged with its exit
    code), its live gauges leave the metrics folder, as do those of the processes SIGHUP
    replaces, and `serve` still stops with 0."""
    metrics = tmp_path / "metrics"
    with serving(
        database_url, tmp_path, "--workers", "2", PROMETHEUS_MULTIPROC_DIR=str(metrics)
    ) as server:
        _wait_for(lambda: len(_live_pids(metrics)) == 2, "two server processes")
        first = _live_pids(metrics)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        _wait_for(lambda: victim not in _live_pids(metrics), "the dead one's gauges to go")
        _wait_for(lambda: len(_live_pids(metrics)) == 2, "a new server process")
        assert httpx.get(server.url + "/healthz").status_code == 200
        # SIGHUP: uvicorn's supervisor replaces both; the old ones' gauges go too.
        second = _live_pids(metrics)
        server.process.send_signal(signal.SIGHUP)
        _wait_for(lambda: not _live_pids(metrics) & second, "the replaced ones' gauges to go")
        _wait_for(lambda: len(_live_pids(metrics)) == 2, "two new server processes")
        assert httpx.get(server.url + "/healthz").status_code == 200
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
    assert _live_pids(metrics) == set()
    died = [
        line
        for line in server.log.read_text().splitlines()
        if '"server process died; starting another"' in line
    ]
    assert [json.loads(line)["exit_code"] for line in died] == [-signal.SIGKILL], (
        server.log.read_text()
    )
