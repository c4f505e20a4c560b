"""Outermost ASGI layer: request id, timing, the canonical log line, and the last-resort net."""

from __future__ import annotations

import asyncio
import time

import structlog
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .context import Clock, IdSource, RequestContext, Timer, new_request_id
from .envelope import error_answer
from .errors import ApiError
from .metrics import CLIENT_DISCONNECTS, observe_request

__all__ = ["CUT_OFF_HINT", "RequestContextMiddleware"]

_log = structlog.get_logger("gateway.request")
_REQUEST_ID = b"x-request-id"


class RequestContextMiddleware:
    """Give every HTTP request an id (body and ``x-request-id``) and one log line, whatever
    happens below; an exception nothing else handled becomes ``SYS_002``, never a stack trace.
    The clock, the timer and the source of request ids are the app factory's."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        clock: Clock,
        new_id: IdSource = new_request_id,
        timer: Timer = time.perf_counter,
    ) -> None:
        self.app = app
        self.clock = clock
        self.new_id = new_id
        self.timer = timer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self.new_id()
        context = RequestContext(
            request_id=request_id,
            clock=self.clock,
            timer=self.timer,
            started=self.timer(),
            arrived_ms=self.clock(),
            new_id=self.new_id,
        )
        context.attach(scope)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 0
        gone = False

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = _with_request_id(message, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except asyncio.CancelledError:
            # The server cut the request off: its grace period on shutdown ran out. The
            # transaction was rolled back, so say so in the envelope rather than let the server
            # send a bare 500.
            if status == 0:
                await _answer(send_with_id, context, _cut_off(scope))
            raise
        except ClientDisconnect:
            # The client left before sending its whole body: nobody is there to answer, and
            # it is the client's doing, not an error of the gateway's (counted apart).
            gone = True
        except Exception:
            _log.exception("unhandled error")
            if status == 0:
                await _answer(send_with_id, context, ApiError("SYS_002"))
        finally:
            if gone:
                _disconnected(scope, context)
            else:
                _finished(scope, context, status)


def _with_request_id(message: Message, request_id: str) -> Message:
    headers = list(message.get("headers", []))
    # An idempotent replay carries the request id of the answer it repeats.
    if not any(name == _REQUEST_ID for name, _ in headers):
        headers.append((_REQUEST_ID, request_id.encode()))
    return {**message, "headers": headers}


async def _answer(send: Send, context: RequestContext, error: ApiError) -> None:
    """The error envelope, sent by this layer itself (nothing below answered)."""
    context.code = error.code
    answer = error_answer(context.request_id, error, context.now_ms())
    await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
    await send({"type": "http.response.body", "body": answer.body})


def _finished(scope: Scope, context: RequestContext, status: int) -> None:
    """Count the answered request (with the entries its route reported) and log its line."""
    seconds = context.elapsed()
    observe_request(
        route=context.route,
        path=scope["path"],
        method=scope["method"],
        status=status,
        code=context.code or "",
        seconds=seconds,
        deleted=context.deleted or 0,
        failed=context.failed or 0,
    )
    fields = context.log_fields()
    if context.partner is not None:
        # Who drifts: the skew histogram has no partner label, the log line has both.
        fields["clock_skew_ms"] = _skew_ms(scope, context.arrived_ms)
    client = scope.get("client")
    _log.info(
        "request",
        method=scope["method"],
        route=context.route or scope["path"][:200],
        # The partner's address: behind a proxy, from its X-Forwarded-For (uvicorn
        # trusts it from FORWARDED_ALLOW_IPS, by default 127.0.0.1; operations.md).
        client=client[0] if client else None,
        status=status,
        duration_ms=round(seconds * 1000, 2),
        **fields,
    )


def _disconnected(scope: Scope, context: RequestContext) -> None:
    """One line, no traceback, and its own counter: not a request answered."""
    CLIENT_DISCONNECTS.inc()
    _log.info(
        "client disconnected before its body was read",
        method=scope["method"],
        route=context.route or scope["path"][:200],
        duration_ms=round(context.elapsed() * 1000, 2),
    )


def _cut_off(scope: Scope) -> ApiError:
    app = scope.get("app")
    settings = getattr(getattr(app, "state", None), "settings", None)
    retry_after = getattr(settings, "retry_after_seconds", 5)
    return ApiError("SYS_001", hint=CUT_OFF_HINT, headers={"Retry-After": str(retry_after)})


CUT_OFF_HINT = (
    "The gateway process stopped before this request finished; nothing was changed."
    " Retry after Retry-After seconds"
)


def _skew_ms(scope: Scope, now_ms: int) -> int | None:
    """x-timestamp minus the clock at arrival (authenticated requests: it is well-formed)."""
    for name, value in scope["headers"]:
        if name.lower() == b"x-timestamp":
            return int(value) - now_ms if value.isdigit() else None
    return None
