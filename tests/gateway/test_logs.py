"""Logs: one JSON line each, library lines included, with host and pid; and a log write that
fails or blocks (its reader gone, or never reading) never holds up a stop, in `worker` or
`serve`. Real processes and real pipes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx

from tests.live import BIN, clean_env, free_port

_STOP_BOUND = 20.0  # seconds: a clean stop takes a few; a blocked one never ends


def _fill(write_end: int) -> None:
    """Fill the pipe to the brim, as a reader that stopped reading leaves it: the next write
    of anyone blocks. The filling thread stays blocked until the read end is closed."""
    written = [0]

    def run() -> None:
        with contextlib.suppress(OSError):
            while True:
                written[0] += os.write(write_end, b"x" * 512)

    threading.Thread(target=run, daemon=True).start()
    deadline = time.monotonic() + 10
    while True:  # full once the filler has been blocked for a while
        seen = written[0]
        time.sleep(0.3)
        if seen and written[0] == seen:
            return
        assert time.monotonic() < deadline, "the pipe did not fill"


def _read_until(stream: IO[bytes], text: str, timeout: float = 60) -> list[str]:
    """Lines from ``stream`` up to the first that contains ``text``."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while not lines or text not in lines[-1]:
        assert time.monotonic() < deadline, lines
        line = stream.readline()
        assert line, lines  # the process ended
        lines.append(line.decode("utf-8", "replace"))
    return lines


@contextlib.contextmanager
def _worker_on_a_pipe(database_url: str) -> Iterator[tuple[subprocess.Popen[bytes], int, int]]:
    """A `worker` whose stdout and stderr are one pipe, running (its start read from the pipe);
    yields the process and the pipe's two ends."""
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        [str(BIN), "worker"], env=clean_env(database_url), stdout=write_end, stderr=write_end
    )
    try:
        with os.fdopen(os.dup(read_end), "rb", buffering=0) as reader:
            _read_until(reader, "Starting worker")  # procrastinate's line: its loop runs
        yield process, read_end, write_end
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(read_end)
        os.close(write_end)


def _stopped_in(process: subprocess.Popen[Any]) -> tuple[int, float]:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=_STOP_BOUND)
    except subprocess.TimeoutExpired:
        code = -999  # still running: the stop was held up
    return code, time.monotonic() - started


def test_a_worker_whose_log_pipe_is_full_stops_on_sigterm(database_url: str) -> None:
    """Its reader stopped reading (a stuck log shipper): the stop handler's log line cannot be
    written, and the worker still stops at once, exit 0."""
    with _worker_on_a_pipe(database_url) as (process, read_end, write_end):
        _fill(write_end)
        code, seconds = _stopped_in(process)
    assert code == 0
    assert seconds < _STOP_BOUND


def test_a_worker_whose_log_reader_is_gone_stops_on_sigterm(database_url: str) -> None:
    """Its reader has gone (the terminal or log shipper died): every write fails with EPIPE,
    and the worker still stops, exit 0."""
    with _worker_on_a_pipe(database_url) as (process, read_end, _):
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, read_end)  # the pipe's last read end is closed; the number stays ours
        os.close(null)
        code, seconds = _stopped_in(process)
    assert code == 0
    assert seconds < _STOP_BOUND


def test_serve_whose_log_pipe_is_full_answers_and_stops(database_url: str, tmp_path: Path) -> None:
    """`serve` with its standard error a full pipe: requests are still answered (their log
    lines cannot be written) and SIGTERM still stops it, exit 0."""
    port = free_port()
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=clean_env(database_url, GATEWAY_DATA_DIR=str(tmp_path / "data")),
        stdout=subprocess.PIPE,
        stderr=write_end,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert process.stdout is not None
        assert json.loads(process.stdout.readline())["serving"] == url
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        _fill(write_end)
        answers = [httpx.get(url + "/healthz", timeout=5).status_code for _ in range(3)]
        code, seconds = _stopped_in(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(read_end)
        os.close(write_end)
    assert answers == [200, 200, 200]
    assert code == 0
    assert seconds < _STOP_BOUND


_LIBRARY_LINES = """
import logging, structlog
from gateway.logs import configure_logging
configure_logging("json", "info")
structlog.get_logger("gateway").info("ours", n=1)
logging.getLogger("psycopg.pool").warning("error connecting in %r:\\nsecond line", "pool-1")
logging.getLogger("procrastinate.worker").info("Job started", extra={"job": {"id": 7}})
logging.getLogger("uvicorn.error").warning("Invalid HTTP request received.")
"""


def test_every_line_is_one_json_object_with_host_and_pid_library_lines_too() -> None:
    """psycopg_pool's multi-line warning, procrastinate's line with its extra fields and
    uvicorn's warning come out as one JSON line each, like the gateway's own."""
    done = subprocess.run(
        [sys.executable, "-c", _LIBRARY_LINES], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert {(line["host"], type(line["pid"])) for line in lines} == {(socket.gethostname(), int)}
    assert len({line["pid"] for line in lines}) == 1
    assert [(line["event"], line["level"], line.get("logger")) for line in lines] == [
        ("ours", "info", None),
        ("error connecting in 'pool-1':\nsecond line", "warning", "psycopg.pool"),
        ("Job started", "info", "procrastinate.worker"),
        ("Invalid HTTP request received.", "warning", "uvicorn.error"),
    ]
    assert lines[0]["n"] == 1
    assert lines[2]["job"] == {"id": 7}
