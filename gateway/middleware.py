"""Outermost ASGI layer: request id, timing, the canonical log line, and the last-resort net."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import structlog
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .envelope import Clock, error_body
from .errors import ApiError
from .metrics import CLIENT_DISCONNECTS, observe_request
from .wire import encode

__all__ = ["CUT_OFF_HINT", "RequestContextMiddleware"]

_log = structlog.get_logger("gateway.request")


class RequestContextMiddleware:
    """Give every HTTP request an id (body and ``x-request-id``) and one log line, whatever
    happens below; an exception nothing else handled becomes ``SYS_002``, never a stack trace."""

    def __init__(self, app: ASGIApp, *, clock: Clock) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        arrived_ms = self.clock()
        log_fields: dict[str, Any] = {}
        scope.setdefault("state", {}).update(
            request_id=request_id, started=time.perf_counter(), clock=self.clock, log=log_fields
        )
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 0
        gone = False

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                # An idempotent replay carries the request id of the answer it repeats.
                if not any(name == b"x-request-id" for name, _ in headers):
                    headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        async def answer(error: ApiError) -> None:
            log_fields["code"] = error.code
            body = encode(error_body(request_id, error, self.clock()))
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *((k.lower().encode(), v.encode()) for k, v in error.headers.items()),
            ]
            await send_with_id(
                {"type": "http.response.start", "status": error.status, "headers": headers}
            )
            await send_with_id({"type": "http.response.body", "body": body})

        try:
            await self.app(scope, receive, send_with_id)
        except asyncio.CancelledError:
            # The server cut the request off: its grace period on shutdown ran out. The
            # transaction was rolled back, so say so in the envelope rather than let the server
            # send a bare 500.
            if status == 0:
                await answer(_cut_off(scope))
            raise
        except ClientDisconnect:
            # The client left before sending its whole body: nobody is there to answer, and
            # it is the client's doing, not an error of the gateway's (counted apart).
            gone = True
        except Exception:
            _log.exception("unhandled error")
            if status == 0:
                await answer(ApiError("SYS_002"))
        finally:
            seconds = time.perf_counter() - scope["state"]["started"]
            route = log_fields.pop("route", None)
            if gone:
                _disconnected(scope, route, seconds)
            else:
                observe_request(
                    route=route,
                    path=scope["path"],
                    method=scope["method"],
                    status=status,
                    code=log_fields.get("code", ""),
                    seconds=seconds,
                    deleted=log_fields.get("succeeded", 0),
                    failed=log_fields.get("failed", 0),
                )
                if "partner" in log_fields:
                    # Who drifts: the skew histogram has no partner label, the log line has both.
                    log_fields["clock_skew_ms"] = _skew_ms(scope, arrived_ms)
                client = scope.get("client")
                _log.info(
                    "request",
                    method=scope["method"],
                    route=route or scope["path"][:200],
                    # The partner's address: behind a proxy, from its X-Forwarded-For (uvicorn
                    # trusts it from FORWARDED_ALLOW_IPS, by default 127.0.0.1; operations.md).
                    client=client[0] if client else None,
                    status=status,
                    duration_ms=round(seconds * 1000, 2),
                    **log_fields,
                )


def _disconnected(scope: Scope, route: str | None, seconds: float) -> None:
    """One line, no traceback, and its own counter: not a request answered."""
    CLIENT_DISCONNECTS.inc()
    _log.info(
        "client disconnected before its body was read",
        method=scope["method"],
        route=route or scope["path"][:200],
        duration_ms=round(seconds * 1000, 2),
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
