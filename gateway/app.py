"""The Starlette application factory: routes, error mapping, pool lifecycle."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import psycopg
import structlog
from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ExceptionHandler

import catalog_store

from .auth import Decoys
from .batch_status import batch_status
from .context import IdSource, Timer, new_request_id
from .credentials import CredentialCache, KeyUse
from .database import resolve_conninfo
from .deletions import DELETIONS_PATH, delete_products
from .envelope import Clock, error_response, unavailable, wall_clock_ms
from .errors import ApiError
from .key_health import SecretHealth
from .keys import load_secret_box
from .logs import configure_logging
from .metrics import DB_DEADLINE_CUTS, DB_ERRORS
from .middleware import RequestContextMiddleware
from .openapi import build_openapi, render_docs
from .probes import PROBE_ROUTES
from .settings import Settings, load_settings
from .stall import DatabaseDeadline, stalled_hint
from .upkeep import upkeep

__all__ = ["app_from_environment", "create_app", "resolve_conninfo"]

_log = structlog.get_logger("gateway")


async def _on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(request, exc)


async def _on_store_unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, catalog_store.StoreUnavailable)
    stalled = isinstance(exc, catalog_store.DeadlineExceeded)
    _log.warning(
        "database did not answer in time" if stalled else "database unavailable",
        error=str(exc).splitlines()[0] if str(exc) else "",
        outcome=exc.outcome,
    )
    DB_ERRORS.inc()
    if stalled:
        DB_DEADLINE_CUTS.labels(exc.outcome).inc()
    hint = stalled_hint(exc.outcome) if stalled or exc.outcome != catalog_store.UNCHANGED else None
    return unavailable(request, hint, exc.outcome)


async def _on_secret_unreadable(request: Request, exc: Exception) -> Response:
    """The operator's problem (another GATEWAY_SECRET_KEY?), never the partner's; no secret is
    in the log line or the answer."""
    assert isinstance(exc, catalog_store.SecretUnreadable)
    _log.error("partner secret does not open", partner_id=exc.partner_id, key_id=exc.key_id)
    return unavailable(
        request,
        "The gateway cannot read its credentials; nothing was changed."
        " Retry after Retry-After seconds, or tell the gateway operator",
    )


async def _on_rate_limited(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, catalog_store.RateLimited)
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


_EXCEPTION_HANDLERS: dict[Any, ExceptionHandler] = {
    ApiError: _on_api_error,
    catalog_store.StoreUnavailable: _on_store_unavailable,
    catalog_store.SecretUnreadable: _on_secret_unreadable,
    catalog_store.RateLimited: _on_rate_limited,
    HTTPException: _on_http_exception,
}


def create_app(
    settings: Settings,
    *,
    conninfo: str | None = None,
    clock: Clock = wall_clock_ms,
    connection_class: type[psycopg.AsyncConnection[Any]] = psycopg.AsyncConnection,
    secret_box: catalog_store.SecretBox | None = None,
    cache_clock: Callable[[], float] = time.monotonic,
    new_id: IdSource = new_request_id,
    timer: Timer = time.perf_counter,
    decoys: Decoys | None = None,
) -> Starlette:
    """Build the app. The pool opens in the lifespan; a database that is down at start is
    retried in the background while requests answer ``SYS_001``. The edges are passed in:
    ``clock`` (Unix ms) stamps answers and checks the signature's window, ``timer`` (seconds,
    monotonic) times requests and their body deadline, ``cache_clock`` (seconds, monotonic)
    the credentials cache, ``new_id`` draws each request's id (a UUID as text), and
    ``decoys`` are the keys nobody holds that top up a partner's secrets (drawn here when
    not given)."""
    pool = _create_pool(settings, conninfo, connection_class)
    key_use = KeyUse()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await pool.open(wait=False)
        try:
            async with upkeep(pool, settings, clock, key_use):
                yield
        finally:
            await pool.close()

    app = Starlette(
        routes=[
            Route(DELETIONS_PATH, delete_products, methods=["POST"]),
            Route(DELETIONS_PATH + "/{batch_id}", batch_status, methods=["GET"]),
            *PROBE_ROUTES,
        ],
        middleware=[
            Middleware(RequestContextMiddleware, clock=clock, new_id=new_id, timer=timer),
            Middleware(DatabaseDeadline, seconds=settings.db_deadline),
        ],
        exception_handlers=_EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    # No 307 to the slashed twin: a redirected signed request could only fail its signature.
    app.router.redirect_slashes = False
    box = secret_box if secret_box is not None else load_secret_box(settings)
    credentials = CredentialCache(
        pool, box, ttl=settings.auth_cache_seconds, clock=cache_clock, decoys=decoys
    )
    _keep_state(app.state, settings, pool, key_use, credentials, SecretHealth(pool, box))
    return app


def _create_pool(
    settings: Settings,
    conninfo: str | None,
    connection_class: type[psycopg.AsyncConnection[Any]],
) -> catalog_store.Pool:
    return catalog_store.create_pool(
        conninfo if conninfo is not None else resolve_conninfo(settings),
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        timeout=settings.db_timeout,
        connect_timeout=max(1, round(settings.db_timeout)),
        connection_class=connection_class,
        # The request path's statements are look-ups by keys and arrays of ids: one plan each.
        generic_plans=True,
    )


def _keep_state(
    state: State,
    settings: Settings,
    pool: catalog_store.Pool,
    key_use: KeyUse,
    credentials: CredentialCache,
    secret_health: SecretHealth,
) -> None:
    """What the routes read from ``request.app.state``, built once per app."""
    document = build_openapi()
    state.pool = pool
    state.settings = settings
    state.key_use = key_use
    state.credentials = credentials
    state.secret_health = secret_health
    state.rate_limit = (
        catalog_store.RateLimit(settings.rate_limit_requests, settings.rate_limit_window)
        if settings.rate_limit_requests
        else None
    )
    state.openapi_json = msgspec.json.encode(document)
    state.docs_html = render_docs(document)


def app_from_environment() -> Starlette:
    """Factory for ``uvicorn --factory`` and ``serve --workers N``: settings from the env."""
    settings = load_settings(os.environ)
    configure_logging(settings.log_format, settings.log_level)
    return create_app(settings)
