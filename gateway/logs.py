"""structlog set-up: JSON lines in production, console in a terminal; configured once."""

from __future__ import annotations

import logging
import sys
from typing import Any

import msgspec
import structlog

__all__ = ["configure_logging"]

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}

# msgspec writes the JSON line as bytes, about twice as fast as json.dumps, and bytes go to
# stderr's buffer unconverted (docs/performance.md). Whatever it cannot encode gets its repr.
_encoder = msgspec.json.Encoder(enc_hook=repr)


def _json_bytes(event: Any, **_: Any) -> bytes:
    return _encoder.encode(event)


def configure_logging(log_format: str = "auto", level: str = "info") -> None:
    """Configure structlog for the process. ``auto`` is console on a terminal, else JSON."""
    console = log_format == "console" or (log_format == "auto" and sys.stderr.isatty())
    buffer = getattr(sys.stderr, "buffer", None)
    renderer: structlog.types.Processor
    factory: Any
    if console or buffer is None:
        renderer = (
            structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
        )
        factory = structlog.PrintLoggerFactory(sys.stderr)
    else:
        renderer = structlog.processors.JSONRenderer(serializer=_json_bytes)
        factory = structlog.BytesLoggerFactory(buffer)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=_LEVELS[level], stream=sys.stderr, format="%(message)s")
    # httpx logs every request of `partner-gateway call` at INFO; the command prints its own.
    logging.getLogger("httpx").setLevel(logging.WARNING)
