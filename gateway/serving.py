"""`serve`: uvicorn on a socket bound once, a graceful stop on SIGTERM, shared metrics files.

Only uvicorn's public API is used. With one process (``--workers 1``, the default) uvicorn's
``Server`` runs in the `serve` process itself: no supervisor, no second interpreter. With N,
uvicorn's own supervisor (``uvicorn.supervisors.Multiprocess``, what ``uvicorn --workers N``
runs) starts N processes on the socket and starts a new one when one dies; a subclass adds
what docs/operations.md promises beyond it, through the supervisor's public methods: the log
lines, the live gauges of a stopped process dropped from the metrics folder, the socket closed
as soon as the processes are told to stop (new connections are refused at once instead of
waiting in a dead backlog), a kill after the grace period, and the exit status.

On SIGTERM or SIGINT each server process stops accepting connections, lets its in-flight
requests finish (for at most the grace period), runs the app's shutdown and ends. uvicorn
then re-raises the signal, as its own CLI does: a server process of the supervisor ends
"killed by SIGTERM" after a graceful stop, and one told to stop while still starting (still
importing the app, with no request to finish) ends the same way, so both count as clean
stops. In one process the signal comes back to `serve`'s own handler (``stop_signals``),
and `serve` exits 0.

Nothing here imports the app, Starlette or prometheus-client at import time: the supervisor
of N processes never loads the app, and prometheus-client must first be imported after
``metrics_folder`` has set ``PROMETHEUS_MULTIPROC_DIR`` (it picks its mode when imported).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import structlog
import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from .logs import flush_logs

__all__ = ["CANNOT_BIND", "bind_socket", "metrics_folder", "run_servers", "stop_signals"]

_log = structlog.get_logger("gateway.serve")

#: `serve`'s exit status when its address cannot be bound (taken, not this host's).
CANNOT_BIND = 3
#: Beyond the grace period: time for the app's own shutdown (closing the pool) before a kill.
_SHUTDOWN_MARGIN = 10.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: How a server process of the supervisor ends after a clean stop (see the docstring above).
_CLEAN_EXITS = {0, -signal.SIGTERM, -signal.SIGINT}


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
    """Serve on ``sock`` with ``workers`` processes until SIGTERM or SIGINT (``stop``, set by
    ``stop_signals``, covers one that came before); 0 when every process stopped cleanly."""
    if workers == 1:
        return _serve_here(config, sock, grace=grace, metrics=metrics, stop=stop)
    supervisor = _Supervisor(config, [sock], grace=grace, metrics=metrics)
    # Its handlers are in place from here on; a stop that came before is in ``stop``.
    if stop.is_set():
        supervisor.should_exit.set()
    supervisor.run()
    return supervisor.exit_status()


def _serve_here(
    config: uvicorn.Config,
    sock: socket.socket,
    *,
    grace: float,
    metrics: Path,
    stop: threading.Event,
) -> int:
    """uvicorn's server in this process. A stop that comes before uvicorn's own handlers are in
    place (while the app is imported) or after them reaches ``stop``; uvicorn's own handlers
    set ``should_exit``; the watchdog joins the two, and ends the process if the stop takes
    longer than the grace period and the margin."""
    server = uvicorn.Server(config)
    done = threading.Event()
    watchdog = threading.Thread(
        target=_watch, args=(server, stop, done, grace + _SHUTDOWN_MARGIN), daemon=True
    )
    watchdog.start()
    try:
        server.run(sockets=[sock])
    except SystemExit as exc:  # the app could not start (uvicorn exits with STARTUP_FAILURE)
        _log.error(
            "server process could not start; stopping", process=os.getpid(), exit_code=exc.code
        )
        return 1
    finally:
        done.set()
        sock.close()
        _forget(metrics, os.getpid())
    return 0


def _watch(
    server: uvicorn.Server, stop: threading.Event, done: threading.Event, limit: float
) -> None:
    while not (stop.wait(0.1) or server.should_exit or done.is_set()):
        pass
    server.should_exit = True
    if not done.wait(limit):
        _log.error("server process did not stop in time; killed", process=os.getpid())
        flush_logs(1.0)
        os._exit(1)


class _Supervisor(Multiprocess):
    """uvicorn's supervisor of N server processes, with the gateway's log lines, metrics
    upkeep, refused connections once stopping, a deadline, and an exit status."""

    def __init__(
        self, config: uvicorn.Config, sockets: list[socket.socket], *, grace: float, metrics: Path
    ) -> None:
        super().__init__(config, sockets)
        self._grace = grace
        self._metrics = metrics
        self._failed = False
        self._seen: set[int | None] = set()

    def keep_subprocess_alive(self) -> None:
        before = list(self.processes)
        stopping = self.should_exit.is_set()
        super().keep_subprocess_alive()
        for process in before:
            if process not in self.processes:  # it had died, and uvicorn started another
                _forget(self._metrics, process.pid)
                _log.warning(
                    "server process died; starting another",
                    exit_code=process.exitcode,
                    process=process.pid,
                )
        # Processes retired otherwise (SIGHUP replaces them all, SIGTTOU removes one).
        current = {process.pid for process in self.processes}
        for pid in self._seen - current:
            _forget(self._metrics, pid)
        self._seen = current
        if stopping or not self.should_exit.is_set():
            return
        # uvicorn stops when a process exits with STARTUP_FAILURE: it would fail the same way.
        for process in self.processes:
            if process.exitcode == STARTUP_FAILURE:
                _forget(self._metrics, process.pid)
                _log.error("server process could not start; stopping", process=process.pid)
                self._failed = True

    def terminate_all(self) -> None:
        super().terminate_all()
        # The processes close their copies of the socket as they stop; once this one is closed
        # too, a new connection is refused at once instead of waiting in a dead backlog.
        for sock in self.sockets:
            sock.close()

    def join_all(self) -> None:
        deadline = time.monotonic() + self._grace + _SHUTDOWN_MARGIN
        for process in self.processes:
            process.process.join(max(0.0, deadline - time.monotonic()))
            if process.process.is_alive():
                _log.error("server process did not stop in time; killed", process=process.pid)
                process.kill()
                process.join()
                self._failed = True
            _forget(self._metrics, process.pid)

    def exit_status(self) -> int:
        """0 when every process stopped cleanly, else 1."""
        clean = all(process.exitcode in _CLEAN_EXITS for process in self.processes)
        return 0 if clean and not self._failed else 1


def _forget(metrics: Path, pid: int | None) -> None:
    """Drop a finished process's live gauges (pool figures); its counters stay counted."""
    if pid is None:
        return
    # Imported here: only after metrics_folder has set the folder (see the module docstring).
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(metrics))  # type: ignore[no-untyped-call]
