"""structlog set-up: JSON lines in production, console in a terminal; configured once.

Every line carries ``host`` and ``pid``. Libraries' standard ``logging`` records (psycopg_pool,
procrastinate, uvicorn) go through the same processors (structlog's ``ProcessorFormatter``), so
in JSON mode each is one JSON line too. Lines are handed to a writer thread: a log write never
blocks the caller on a full pipe, nor fails it on a closed one, so a stop signal is always
handled (a line that cannot be written is dropped).
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import socket
import sys
import threading
import time
from typing import Any, TextIO

import msgspec
import structlog
from structlog.typing import EventDict

__all__ = ["configure_logging", "flush_logs"]

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_HOST = socket.gethostname()
#: Lines waiting for the writer thread; beyond this many, new ones are dropped.
_MAX_PENDING = 10_000
#: How long the writer waits, once woken, for more lines to write with the first.
_LINGER_SECONDS = 0.01
#: At exit, how long the writer may take to write what is pending (a full pipe never empties).
_EXIT_FLUSH_SECONDS = 2.0
#: Libraries whose INFO lines are per request or per connection, or only list the tasks that a
#: procrastinate App registers as it is built (gateway.jobs builds one on import, which a
#: command like `serve` now does after logging is set up): warnings and errors only.
_CHATTY = ("httpx", "psycopg.pool", "procrastinate.blueprints")

# msgspec writes the JSON line as bytes, about twice as fast as json.dumps (docs/performance.md).
# Whatever it cannot encode gets its repr.
_encoder = msgspec.json.Encoder(enc_hook=repr)


def _json_bytes(event: Any, **_: Any) -> bytes:
    return _encoder.encode(event)


def _json_text(event: Any, **_: Any) -> str:
    return _encoder.encode(event).decode("utf-8")


def _add_process(logger: Any, method: str, event: EventDict) -> EventDict:
    """Which process wrote the line: several gateways and workers share one log stream."""
    event["host"] = _HOST
    event["pid"] = os.getpid()
    return event


def _record_extras(logger: Any, method: str, event: EventDict) -> EventDict:
    """A library record's ``extra`` fields (procrastinate's job and worker), its logger name."""
    record: logging.LogRecord | None = event.get("_record")
    if record is not None and not event.get("_from_structlog"):
        event["logger"] = record.name
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and key not in event and not key.startswith("_"):
                event[key] = value
    return event


_RECORD_FIELDS = frozenset(
    {*logging.makeLogRecord({}).__dict__, "message", "asctime", "color_message", "taskName"}
)


class _Writer:
    """Writes lines to a file descriptor from a daemon thread, never blocking the caller.

    The thread is woken only by the first line after it went idle, then lingers a moment so
    that the lines of every request served meanwhile go out in one write: under load it wakes
    at most about a hundred times a second, not once per line (each wake takes the GIL from the
    event loop: docs/performance.md)."""

    def __init__(self, fd: int, linger: float = _LINGER_SECONDS) -> None:
        self._fd = fd
        self._linger = linger
        self._lines: collections.deque[bytes] = collections.deque()
        self._writing = 0
        self._parked = False
        lock = threading.Lock()
        self._ready = threading.Condition(lock)
        self._idle = threading.Condition(lock)
        threading.Thread(target=self._run, name="log-writer", daemon=True).start()

    def put(self, line: bytes) -> None:
        with self._ready:
            if len(self._lines) >= _MAX_PENDING:
                return  # the reader is far behind, or stuck: drop, never wait
            self._lines.append(line)
            if self._parked:
                self._parked = False
                self._ready.notify()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._lines:
                    self._parked = True
                    self._ready.wait()
                self._parked = False
            time.sleep(self._linger)  # the lines of the next few moments join these
            with self._ready:
                lines = list(self._lines)  # every line waiting: one write for all of them
                self._lines.clear()
                self._writing = len(lines)
            data = memoryview(b"".join(lines))
            try:
                while data:
                    data = data[os.write(self._fd, data) :]
            except OSError:
                pass  # the reader has gone (EPIPE, EIO): these lines have nowhere to go
            with self._idle:
                self._writing = 0
                self._idle.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until every line handed over was written or dropped."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._lines and not self._writing, timeout)


class _Sink:
    """The file-like object structlog's loggers write to: lines go to the writer thread, or,
    for a stream without a file descriptor (a test's capture), straight to it; a failing
    write is dropped, never raised."""

    def __init__(self, writer: _Writer | None, stream: TextIO) -> None:
        self._writer = writer
        self._stream = stream

    def write(self, data: bytes | str) -> None:
        if self._writer is not None:
            self._writer.put(data if isinstance(data, bytes) else data.encode("utf-8"))
            return
        try:
            self._stream.write(data if isinstance(data, str) else data.decode("utf-8"))
        except (OSError, ValueError):
            pass

    def flush(self) -> None:
        if self._writer is None:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                pass


class _LibraryHandler(logging.Handler):
    """Standard ``logging`` records, formatted by structlog's processors, into the same sink."""

    def __init__(self, sink: _Sink, formatter: logging.Formatter) -> None:
        super().__init__()
        self._sink = sink
        self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._sink.write(self.format(record) + "\n")
        except Exception:  # a record that cannot be formatted must not stop its caller
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:
        # logging's default prints a traceback to stderr, which may be the full or closed pipe.
        return


_writers: dict[int, _Writer] = {}
_writers_lock = threading.Lock()


def _writer_for(stream: TextIO) -> _Writer | None:
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    with _writers_lock:
        writer = _writers.get(fd)
        if writer is None:
            writer = _writers[fd] = _Writer(fd)
    return writer


def flush_logs(timeout: float = _EXIT_FLUSH_SECONDS) -> bool:
    """Wait until the lines logged so far are written (at most ``timeout`` s for them all)."""
    return all(writer.flush(timeout) for writer in list(_writers.values()))


atexit.register(flush_logs)


def configure_logging(log_format: str = "auto", level: str = "info") -> None:
    """Configure structlog and the standard ``logging`` root for the process. ``auto`` is
    console on a terminal, else JSON."""
    stream = sys.stderr
    console = log_format == "console" or (log_format == "auto" and stream.isatty())
    sink = _Sink(_writer_for(stream), stream)
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_process,
    ]
    renderer: structlog.types.Processor
    factory: Any
    if console:
        renderer = structlog.dev.ConsoleRenderer()
        factory = structlog.PrintLoggerFactory(sink)  # type: ignore[arg-type]
    else:
        renderer = structlog.processors.JSONRenderer(serializer=_json_bytes)
        factory = structlog.BytesLoggerFactory(sink)  # type: ignore[arg-type]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _record_extras],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer if console else structlog.processors.JSONRenderer(serializer=_json_text),
        ],
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(_LibraryHandler(sink, formatter))
    root.setLevel(_LEVELS[level])
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(logging.WARNING, _LEVELS[level]))
