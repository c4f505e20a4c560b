"""The Starlette application factory: routes, error mapping, pool lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import psycopg
import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

import catalog_store as store

from .batch_status import batch_status
from .context import IdSource, Timer, new_request_id, request_context
from .credentials import KEY_USE_INTERVAL, CredentialCache, KeyUse
from .database import resolve_conninfo
from .deletions import DELETIONS_PATH, delete_products
from .envelope import Clock, error_response, json_response, response_meta, wall_clock_ms
from .errors import ApiError
from .jobs import QUEUE
from .key_health import SecretHealth
from .keys import load_secret_box
from .logs import configure_logging
from .metrics import (
    CONTENT_TYPE,
    DB_DEADLINE_CUTS,
    DB_ERRORS,
    render_metrics,
    sample_pool,
    sample_pool_forever,
)
from .middleware import RequestContextMiddleware
from .openapi import build_openapi, render_docs
from .settings import Settings, load_settings
from .stall import DatabaseDeadline, stalled_hint
from .wire import HealthData, HealthResponse, ReadyData, ReadyResponse

__all__ = ["app_from_environment", "create_app", "resolve_conninfo"]

_log = structlog.get_logger("gateway")


async def _healthz(request: Request) -> Response:
    return _health(request, "Alive")


def _health(request: Request, message: str) -> Response:
    return json_response(
        HealthResponse(
            success=True,
            message=message,
            requestId=request_context(request).request_id,
            meta=response_meta(request),
            data=HealthData(status="ok"),
        )
    )


async def _readyz(request: Request) -> Response:
    """200 while the database answers, ``degraded`` when some stored partner secrets do not
    open; 503 when the database does not answer, or when the server key opens none of the
    stored secrets (this process could authenticate no partner: another key than the others')."""
    pool: store.Pool = request.app.state.pool
    async with store.connection(pool) as conn:
        await conn.execute("SELECT 1")
    check: store.SecretCheck = await request.app.state.secret_health.check()
    unreadable = len(check.unreadable)
    if unreadable and unreadable == check.stored:
        return _unavailable(
            request,
            "The server key of this gateway opens none of the stored partner secrets:"
            " give it the GATEWAY_SECRET_KEY of the other gateways (see the operations"
            " guide, The server key)",
            storedSecrets=check.stored,
            unreadableSecrets=unreadable,
        )
    return json_response(
        ReadyResponse(
            success=True,
            message="Ready",
            requestId=request_context(request).request_id,
            meta=response_meta(request),
            data=ReadyData(status="degraded" if unreadable else "ok", unreadableSecrets=unreadable),
        )
    )


async def _metrics(request: Request) -> Response:
    """Every process's samples, and the batch queue as the database has it now."""
    pool: store.Pool = request.app.state.pool
    sample_pool(pool)
    stats: store.QueueStats | None
    check: store.SecretCheck | None
    try:
        stats = await store.queue_stats(
            pool, queue=QUEUE, stalled_after=request.app.state.settings.worker_stalled_after
        )
        check = await request.app.state.secret_health.check()
    except store.StoreUnavailable as exc:
        if isinstance(exc, store.DeadlineExceeded):
            DB_DEADLINE_CUTS.labels(exc.outcome).inc()
        stats = check = None  # shown as gateway_database_up 0; the scrape itself still answers
    unreadable = None if check is None else len(check.unreadable)
    return Response(render_metrics(stats, unreadable_secrets=unreadable), media_type=CONTENT_TYPE)


async def _openapi(request: Request) -> Response:
    return Response(request.app.state.openapi_json, media_type="application/json")


async def _docs(request: Request) -> Response:
    return HTMLResponse(request.app.state.docs_html)


async def _on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(request, exc)


def _unavailable(
    request: Request, hint: str | None = None, outcome: str = store.UNCHANGED, **context: int
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


async def _on_store_unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, store.StoreUnavailable)
    stalled = isinstance(exc, store.DeadlineExceeded)
    _log.warning(
        "database did not answer in time" if stalled else "database unavailable",
        error=str(exc).splitlines()[0] if str(exc) else "",
        outcome=exc.outcome,
    )
    DB_ERRORS.inc()
    if stalled:
        DB_DEADLINE_CUTS.labels(exc.outcome).inc()
    hint = stalled_hint(exc.outcome) if stalled or exc.outcome != store.UNCHANGED else None
    return _unavailable(request, hint, exc.outcome)


async def _on_secret_unreadable(request: Request, exc: Exception) -> Response:
    """The operator's problem (another GATEWAY_SECRET_KEY?), never the partner's; no secret is
    in the log line or the answer."""
    assert isinstance(exc, store.SecretUnreadable)
    _log.error("partner secret does not open", partner_id=exc.partner_id, key_id=exc.key_id)
    return _unavailable(
        request,
        "The gateway cannot read its credentials; nothing was changed."
        " Retry after Retry-After seconds, or tell the gateway operator",
    )


async def _on_rate_limited(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, store.RateLimited)
    settings: Settings = request.app.state.settings
    if exc.kind == "requests":
        hint = (
            f"At most {exc.limit} requests per {settings.rate_limit_window} seconds are accepted"
            " from one partner; retry after Retry-After seconds"
        )
        context: dict[str, Any] = {
            "limit": exc.limit,
            "windowSeconds": settings.rate_limit_window,
            "retryAfterSeconds": exc.retry_after,
        }
    else:
        hint = (
            f"At most {exc.limit} dispatched batches of one partner may be pending or processing;"
            " wait for one to finish (read its status), then retry"
        )
        context = {"openBatchLimit": exc.limit, "retryAfterSeconds": exc.retry_after}
    return error_response(
        request,
        ApiError(
            "RATE_001", hint=hint, context=context, headers={"Retry-After": str(exc.retry_after)}
        ),
    )


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        return error_response(
            request,
            ApiError(
                "ROUTE_002",
                context={"allowedMethods": allow.split(", ") if allow else []},
                headers={"Allow": allow} if allow else None,
            ),
        )
    return error_response(request, ApiError("ROUTE_001", context={"path": request.url.path[:200]}))


async def _write_key_use_forever(key_use: KeyUse, pool: store.Pool) -> None:
    while True:
        await asyncio.sleep(KEY_USE_INTERVAL)
        await key_use.write(pool)


async def _purge_nonces_forever(
    pool: store.Pool, interval: float, deadline: float, clock: Clock
) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            # The clock that checks the window decides when a record may go (never the
            # database's, which may differ from it).
            with store.deadline(deadline):
                purged = await store.purge_expired_nonces(pool, now_ms=clock())
        except store.StoreUnavailable:
            continue
        if purged:
            _log.info("purged expired replay records", count=purged)


def create_app(
    settings: Settings,
    *,
    conninfo: str | None = None,
    clock: Clock = wall_clock_ms,
    connection_class: type[psycopg.AsyncConnection[Any]] = psycopg.AsyncConnection,
    secret_box: store.SecretBox | None = None,
    cache_clock: Callable[[], float] = time.monotonic,
    new_id: IdSource = new_request_id,
    timer: Timer = time.perf_counter,
) -> Starlette:
    """Build the app. The pool opens in the lifespan; a database that is down at start is
    retried in the background while requests answer ``SYS_001``. The edges are passed in:
    ``clock`` (Unix ms) stamps answers and checks the signature's window, ``timer`` (seconds,
    monotonic) times requests and their body deadline, ``cache_clock`` (seconds, monotonic)
    the credentials cache, and ``new_id`` draws each request's id."""
    pool = store.create_pool(
        conninfo if conninfo is not None else resolve_conninfo(settings),
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        timeout=settings.db_timeout,
        connect_timeout=max(1, round(settings.db_timeout)),
        connection_class=connection_class,
    )

    key_use = KeyUse()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await pool.open(wait=False)
        purger = asyncio.create_task(
            _purge_nonces_forever(pool, settings.nonce_purge_interval, settings.db_deadline, clock)
        )
        sampler = asyncio.create_task(sample_pool_forever(pool))
        recorder = asyncio.create_task(_write_key_use_forever(key_use, pool))
        try:
            yield
        finally:
            for task in (purger, sampler, recorder):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await key_use.write(pool)  # the last minute's uses, before the pool closes
            await pool.close()

    app = Starlette(
        routes=[
            Route(DELETIONS_PATH, delete_products, methods=["POST"]),
            Route(DELETIONS_PATH + "/{batch_id}", batch_status, methods=["GET"]),
            Route("/healthz", _healthz, methods=["GET"]),
            Route("/readyz", _readyz, methods=["GET"]),
            Route("/openapi.json", _openapi, methods=["GET"]),
            Route("/docs", _docs, methods=["GET"]),
            Route("/metrics", _metrics, methods=["GET"]),
        ],
        middleware=[
            Middleware(RequestContextMiddleware, clock=clock, new_id=new_id, timer=timer),
            Middleware(DatabaseDeadline, seconds=settings.db_deadline),
        ],
        exception_handlers={
            ApiError: _on_api_error,
            store.StoreUnavailable: _on_store_unavailable,
            store.SecretUnreadable: _on_secret_unreadable,
            store.RateLimited: _on_rate_limited,
            HTTPException: _on_http_exception,
        },
        lifespan=lifespan,
    )
    # No 307 to the slashed twin: a redirected signed request could only fail its signature.
    app.router.redirect_slashes = False
    document = build_openapi()
    app.state.pool = pool
    app.state.settings = settings
    app.state.key_use = key_use
    box = secret_box if secret_box is not None else load_secret_box(settings)
    app.state.credentials = CredentialCache(
        pool, box, ttl=settings.auth_cache_seconds, clock=cache_clock
    )
    app.state.secret_health = SecretHealth(pool, box)
    app.state.rate_limit = (
        store.RateLimit(settings.rate_limit_requests, settings.rate_limit_window)
        if settings.rate_limit_requests
        else None
    )
    app.state.openapi_json = msgspec.json.encode(document)
    app.state.docs_html = render_docs(document)
    return app


def app_from_environment() -> Starlette:
    """Factory for ``uvicorn --factory`` and ``serve --workers N``: settings from the env."""
    settings = load_settings(os.environ)
    configure_logging(settings.log_format, settings.log_level)
    return create_app(settings)
