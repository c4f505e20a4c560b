"""The HTTP/1.1 protocol `serve` runs: uvicorn's httptools protocol with the gateway's limits.

uvicorn takes the protocol class as its ``http`` setting (an extension point); this subclass of
its :class:`HttpToolsProtocol` (uvicorn and httptools pinned by ``uv.lock``) adds what the
parser alone does not do:

- **Caps on the head.** httptools keeps no limit, and joins a long header value by copying
  it again for every piece that arrives, so one 128 MiB header held the event loop for
  seconds. The request target is counted as it arrives (``on_url``); the bytes of the request
  line and header block, and of a chunked body's trailer, are counted before they reach the
  parser, which is fed no further than the cap. Past it, the answer is ``REQ_001`` (414) or
  ``REQ_002`` (431) in the error envelope, and the connection is closed.
- **Deadlines.** An idle connection (no request begun) is closed after the keep-alive timeout,
  the first request included; a request whose headers are not all in within the header
  timeout is answered ``REQ_003`` (408) and closed. The body's deadline is the app's (it reads
  the body only after the checks that need none).
- **Headers as they stood before the body.** Trailer fields of a chunked body are dropped:
  uvicorn would append them to the request's header list, which the app reads after the body.
- **Malformed HTTP in the envelope.** What httptools cannot parse (a lower-case method, a
  space in the target, a bad header name...) is answered ``REQ_004`` (400) in the envelope
  with a request id, not uvicorn's plain-text 400, and the connection is closed.
- **No body left half-read.** An answer sent before the request's body has all arrived closes
  the connection, so a client cannot keep trickling a body that nobody reads.

Long because: one subclass, whose parser callbacks share the connection's counts and deadlines,
and this list of what it adds.
"""

from __future__ import annotations

import asyncio
import functools
import os
from dataclasses import dataclass
from typing import Any

import httptools
import structlog
from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState

from .body import slow_client
from .context import new_request_id
from .envelope import error_answer, wall_clock_ms
from .errors import ApiError
from .metrics import HEADER_CAP_REFUSALS, SLOW_CLIENTS_CUT
from .settings import Settings, load_settings

__all__ = ["GatewayHttpProtocol", "ServerLimits"]

_log = structlog.get_logger("gateway.http")


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What the protocol enforces, from the settings of the same names."""

    max_url_bytes: int
    max_header_block_bytes: int
    header_timeout: float
    keepalive_timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerLimits:
        return cls(
            max_url_bytes=settings.max_url_bytes,
            max_header_block_bytes=settings.max_header_block_bytes,
            header_timeout=settings.header_timeout,
            keepalive_timeout=settings.keepalive_timeout,
        )


@functools.cache
def _environment_limits() -> ServerLimits:
    # `serve` checked the same environment before it started this process.
    return ServerLimits.from_settings(load_settings(os.environ))


class _Refused(Exception):
    """Raised in a parser callback to stop parsing a request that is over a cap."""


class GatewayHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with caps on the head, deadlines and no trailer headers."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ServerLimits | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits if limits is not None else _environment_limits()
        self.timeout_keep_alive = self.limits.keepalive_timeout  # type: ignore[assignment]
        # Bytes the current head (or trailer) may still take; None while a body streams.
        self._head_left: int | None = self.limits.max_header_block_bytes
        # Bumped whenever a new capped section starts inside a feed, so that a section that
        # ended and another that began within one piece are told apart.
        self._section = 0
        self._url_parts: list[bytes] = []
        self._url_size = 0
        self._in_head = True
        self._refusal: tuple[str, str] | None = None
        self._deferred: ApiError | None = None  # REQ_004 owed once earlier answers are out
        self._header_deadline: asyncio.TimerHandle | None = None
        self._head_began: float | None = None  # loop time of the first byte of a pending head

    # Connection --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn arms its keep-alive timer only after a first answer: a connection that never
        # sends a byte would stay open for ever.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        view = memoryview(data)
        while view and self._refusal is None and not self.transport.is_closing():
            left = self._head_left
            if left == 0:
                self._over_cap("head" if self._in_head else "trailer")
                return
            if left is None or len(view) <= left:
                if left is not None:
                    self._head_left = left - len(view)
                self._feed(view)
                break
            # Feed no more than the cap; what follows is fed only if the section ended in it.
            section = self._section
            self._head_left = 0
            self._feed(view[:left])
            view = view[left:]
            if self._section == section and self._head_left == 0:
                self._over_cap("head" if self._in_head else "trailer")
        pending = self._head_began is not None and self._header_deadline is None
        if pending and self._refusal is None and not self.transport.is_closing():
            # Armed only for a head still incomplete after a read: most heads come in one.
            assert self._head_began is not None
            delay = self.limits.header_timeout - (self.loop.time() - self._head_began)
            self._header_deadline = self.loop.call_later(delay, self._headers_too_slow)

    def _feed(self, data: memoryview) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except (httptools.HttpParserError, _Refused):
            if self._refusal is not None:
                code, part = self._refusal
                self._refuse(code, part)
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")

    # Parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._url_parts = []
        self._url_size = 0
        self._in_head = True
        self._cancel_header_deadline()
        self._head_began = self.loop.time()

    def on_url(self, url: bytes) -> None:
        # A list, joined once: uvicorn's `self.url += url` copies the URL for every piece.
        self._url_size += len(url)
        if self._url_size > self.limits.max_url_bytes:
            self._refusal = ("REQ_001", "url")
            raise _Refused
        self._url_parts.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._in_head:
            super().on_header(name, value)
        # else: a trailer field of a chunked body; the request's headers are those it began with.

    def on_headers_complete(self) -> None:
        self.url = b"".join(self._url_parts)
        self._in_head = False
        self._head_left = None
        self._cancel_header_deadline()
        super().on_headers_complete()

    def on_chunk_header(self) -> None:
        # A chunk's data, or (after the last chunk) its trailer, follows: the trailer is capped
        # like a head, and the cap is lifted as soon as data shows it is no trailer.
        self._head_left = self.limits.max_header_block_bytes
        self._section += 1

    def on_body(self, body: bytes) -> None:
        self._head_left = None
        super().on_body(body)

    def on_chunk_complete(self) -> None:
        self._head_left = None

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # The next request's head starts here (its bytes in this same piece are not counted:
        # at most one read, 256,000 bytes with uvloop; the next read is).
        self._head_left = self.limits.max_header_block_bytes
        self._section += 1

    # Answers -----------------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers what httptools cannot parse with a plain-text 400 and no request id;
        # every answer of the gateway is the envelope (REQ_004), and the connection is closed.
        # A malformed body (chunked) comes after its request was handed to the app: it is
        # answered in place of the app's answer only when that has not begun and no earlier
        # pipelined request is still owed one (an answer goes to the oldest request waiting).
        cycle = self.cycle
        instead = (
            cycle is not None
            and cycle.more_body
            and not self._in_head
            and not cycle.response_started
            and not self.pipeline
        )
        if not instead and cycle is not None and not cycle.response_complete:
            # An earlier request is still being answered: REQ_004 follows its answer (answers
            # go out in the order of the requests), and nothing more is read meanwhile.
            self._refusal = ("REQ_004", "request")
            self._deferred = ApiError("REQ_004")
            self._cancel_header_deadline()
            self.flow.pause_reading()
            return
        self._close(ApiError("REQ_004"), part="request", instead_of_app=instead)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        cycle = self.cycle
        idle = cycle is None or cycle.response_complete
        if self._deferred is not None and idle and not self.pipeline:
            error, self._deferred = self._deferred, None
            if not self.transport.is_closing():
                self._close(error, part="request")

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        super()._start_asgi_task(cycle, _close_if_body_unread(app, cycle))

    def _over_cap(self, part: str) -> None:
        self._refuse("REQ_002", part)

    def _refuse(self, code: str, part: str) -> None:
        HEADER_CAP_REFUSALS.labels(part).inc()
        limits = self.limits
        limit = limits.max_url_bytes if code == "REQ_001" else limits.max_header_block_bytes
        self._close(ApiError(code, context={"limitBytes": limit}), part=part)

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        SLOW_CLIENTS_CUT.labels("headers").inc()
        self._close(slow_client("headers", self.limits.header_timeout), part="headers")

    def _close(self, error: ApiError, *, part: str, instead_of_app: bool = False) -> None:
        """Answer the error envelope, with a request id of its own, and close: nothing more of
        this connection is read. A request whose head was refused has no answer yet; a trailer
        comes after its request's answer may have started, so then the connection is only
        closed (as it is when an earlier pipelined request is still being answered)."""
        self._refusal = (error.code, part)
        self._cancel_header_deadline()
        request_id = new_request_id()  # the gateway's one way to draw request ids
        _log.warning(
            "request refused by the server", code=error.code, part=part, request_id=request_id
        )
        cycle = self.cycle
        if instead_of_app and cycle is not None:
            cycle.disconnected = (
                True  # the app's answer, not begun, is dropped as for a client gone
            )
        idle = cycle is None or cycle.response_complete
        if part != "trailer" and (idle or instead_of_app):
            answer = error_answer(request_id, error, wall_clock_ms())
            headers = [
                *self.server_state.default_headers,
                *answer.headers,
                (b"x-request-id", request_id.encode()),
                (b"connection", b"close"),
            ]
            head = [STATUS_LINE[answer.status], *(n + b": " + v + b"\r\n" for n, v in headers)]
            self.transport.write(b"".join(head) + b"\r\n" + answer.body)
        self.transport.close()

    def _cancel_header_deadline(self) -> None:
        self._head_began = None
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None


def _close_if_body_unread(app: ASGI3Application, cycle: RequestResponseCycle) -> ASGI3Application:
    """An answer that starts before the request's body has all arrived says
    ``connection: close``, and uvicorn closes the connection once it is sent."""

    async def wrapped(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        async def send_closing(message: Any) -> None:
            if message["type"] == "http.response.start" and cycle.more_body:
                headers = [*message.get("headers", ()), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_closing)

    return wrapped
