"""`serve`: N uvicorn processes on one socket, a graceful stop on SIGTERM, shared metrics files.

The parent binds the socket once and supervises N child processes that each run the app. On
SIGTERM or SIGINT it passes the signal on; each child stops accepting connections, lets its
in-flight requests finish (for at most the grace period), runs the app's shutdown and exits 0.
The parent exits 0 once every child has.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from multiprocessing import resource_tracker
from multiprocessing.context import SpawnProcess
from pathlib import Path
from types import FrameType

import structlog
import uvicorn
from prometheus_client import multiprocess
from uvicorn._subprocess import get_subprocess

__all__ = ["CANNOT_BIND", "bind_socket", "metrics_folder", "run_servers", "stop_signals"]

_log = structlog.get_logger("gateway.serve")

#: The exit status of a uvicorn process whose app could not start (bad app, port taken).
_STARTUP_FAILURE = 3
#: `serve`'s exit status when its address cannot be bound (taken, not this host's).
CANNOT_BIND = 3
#: Beyond the grace period: time for the app's own shutdown (closing the pool) before a kill.
_SHUTDOWN_MARGIN = 10.0
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_RESEND_EVERY = 0.5


class _Server(uvicorn.Server):
    """uvicorn re-raises the stopping signal once it has shut down, so the process would end
    "killed by SIGTERM"; a graceful stop is a success, so it exits 0 instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            # uvicorn's handlers are in place: let in a stop that came while this process was
            # starting (held pending if _spawn's mask was inherited, else re-sent by the parent).
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
            yield
            self._captured_signals.clear()
            # Served and shut down; only exiting is left. The parent repeats its SIGTERM until
            # this process is gone, and that must not kill it now (exit -15): block, then ignore.
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)


def _child_main(config: uvicorn.Config, sockets: list[socket.socket]) -> None:
    _Server(config).run(sockets=sockets)


def _spawn(config: uvicorn.Config, sock: socket.socket) -> SpawnProcess:
    """Start a child with the stop signals blocked until uvicorn installs its own handlers: one
    that came while it was still importing the app would kill it outright (exit -15) instead of
    stopping it gracefully. The parent sends SIGTERM again until it stops (see run_servers)."""
    process = get_subprocess(config, functools.partial(_child_main, config), [sock])
    # The child inherits the mask and unblocks them itself in _Server.capture_signals. Blocked
    # here meanwhile, a stop for this process stays pending, and is handled once unblocked.
    # (Never SIG_IGN here: a pending signal set to be ignored is discarded, and the stop lost.)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return process


@contextlib.contextmanager
def metrics_folder(given: Path | None) -> Iterator[Path]:
    """The folder of prometheus-client's multiprocess files, emptied at start (samples of an
    earlier run would be counted again); a temporary one, removed at the end, when none given."""
    if given is None:
        folder = Path(tempfile.mkdtemp(prefix="partner-gateway-metrics-"))
    else:
        folder = given
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    try:
        yield folder
    finally:
        if given is None:
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def stop_signals() -> Iterator[threading.Event]:
    """SIGTERM and SIGINT set the event instead of killing the process, for the whole block:
    entered before `serve` says it is serving, so a stop that follows at once is graceful."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in _STOP_SIGNALS}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def bind_socket(host: str, port: int) -> socket.socket:
    """The socket the processes will serve on, bound now, so `serve` says it is serving only
    once it can; ``OSError`` when it cannot (uvicorn's own bind would exit the process)."""
    sock = socket.socket(family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def run_servers(
    config: uvicorn.Config,
    sock: socket.socket,
    *,
    workers: int,
    grace: float,
    metrics: Path,
    stop: threading.Event,
) -> int:
    """Serve on ``sock`` with ``workers`` processes until ``stop`` is set; 0 when all stopped
    cleanly."""
    # Started now, not inside the first _spawn: starting it unblocks the stop signals, and the
    # first child would inherit them unblocked.
    resource_tracker.ensure_running()
    children: list[SpawnProcess] = []
    ok = True
    try:
        children = [_spawn(config, sock) for _ in range(workers)]
        while not stop.wait(0.2):
            for index, child in enumerate(children):
                if child.is_alive():
                    continue
                child.join()
                _forget(metrics, child.pid)
                if child.exitcode == _STARTUP_FAILURE:
                    _log.error("server process could not start; stopping", pid=child.pid)
                    ok = False
                    stop.set()
                    break
                _log.warning("server process died; starting another", exit_code=child.exitcode)
                children[index] = _spawn(config, sock)
    finally:
        _terminate(children)
        # The children close their copies of the socket as they stop; once this one is closed
        # too, a new connection is refused at once instead of waiting in a dead backlog.
        sock.close()
        deadline = time.monotonic() + grace + _SHUTDOWN_MARGIN
        while any(child.is_alive() for child in children) and time.monotonic() < deadline:
            time.sleep(_RESEND_EVERY)
            # Again: a child still starting ignored it; uvicorn takes a repeated SIGTERM calmly.
            _terminate(children)
        for child in children:
            child.join(max(0.0, deadline - time.monotonic()))
            if child.is_alive():
                _log.error("server process did not stop in time; killed", pid=child.pid)
                child.kill()
                child.join()
            ok = ok and child.exitcode == 0
            _forget(metrics, child.pid)
    return 0 if ok else 1


def _terminate(children: list[SpawnProcess]) -> None:
    for child in children:
        if child.is_alive() and child.pid is not None:
            os.kill(child.pid, signal.SIGTERM)


def _forget(metrics: Path, pid: int | None) -> None:
    """Drop a finished process's live gauges (pool figures); its counters stay counted."""
    if pid is not None:
        multiprocess.mark_process_dead(pid, str(metrics))  # type: ignore[no-untyped-call]
