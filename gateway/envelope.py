"""The response envelope (docs/api.md): request ids, timestamps, success and error bodies."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import NamedTuple

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from catalog_store import UNCHANGED

from .context import Clock, request_context
from .errors import ApiError
from .wire import ErrorBody, ErrorDetails, ErrorResponse, ResponseMeta, encode

__all__ = [
    "Clock",
    "ErrorAnswer",
    "error_answer",
    "error_response",
    "iso_ms",
    "json_response",
    "response_meta",
    "unavailable",
    "wall_clock_ms",
]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def iso_ms(ms: int) -> str:
    """``2026-02-04T22:27:44.587Z``: UTC, milliseconds, a Z."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def response_meta(
    request: Request, *, dispatch: bool | None = None, dry_run: bool | None = None
) -> ResponseMeta:
    context = request_context(request)
    duration_ms = int(context.elapsed() * 1000)
    return ResponseMeta(
        timestamp=iso_ms(context.now_ms()),
        durationMs=duration_ms,
        dispatch=msgspec.UNSET if dispatch is None else dispatch,
        dryRun=msgspec.UNSET if dry_run is None else dry_run,
    )


def json_response(
    value: msgspec.Struct, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(encode(value), status, headers, media_type="application/json")


def _error_body(request_id: str, error: ApiError, now_ms: int) -> ErrorResponse:
    return ErrorResponse(
        success=False,
        requestId=request_id,
        error=ErrorBody(
            code=error.code,
            message=error.message,
            details=ErrorDetails(timestamp=iso_ms(now_ms), hint=error.hint, context=error.context),
        ),
    )


class ErrorAnswer(NamedTuple):
    """An error answer as it goes on the wire: status, headers (no request id), body."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def error_answer(request_id: str, error: ApiError, now_ms: int) -> ErrorAnswer:
    """The one renderer of the error envelope: the app's routes, the middleware's last-resort
    answers and the server's own ``REQ_00x`` answers all send what this returns."""
    body = encode(_error_body(request_id, error, now_ms))
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in error.headers.items()),
    ]
    return ErrorAnswer(error.status, headers, body)


def error_response(request: Request, error: ApiError) -> Response:
    context = request_context(request)
    context.code = error.code
    answer = error_answer(context.request_id, error, context.now_ms())
    # Starlette writes the error's own headers first, then content-length and content-type,
    # as the app's answers always had; the body is the same bytes.
    return Response(answer.body, answer.status, error.headers, media_type="application/json")


def unavailable(
    request: Request, hint: str | None = None, outcome: str = UNCHANGED, **context: int
) -> Response:
    """SYS_001, every answer of a gateway that cannot serve now: ``outcome`` says whether the
    request may have changed anything, Retry-After when to try again."""
    retry_after = str(request.app.state.settings.retry_after_seconds)
    return error_response(
        request,
        ApiError(
            "SYS_001",
            hint=hint,
            context={"outcome": outcome, **context},
            headers={"Retry-After": retry_after},
        ),
    )
