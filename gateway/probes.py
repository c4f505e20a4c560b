"""The unsigned routes an operator's tools read: liveness, readiness, metrics, and the API's
document (OpenAPI and its page)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

import catalog_store

from .context import request_context
from .envelope import json_response, response_meta, unavailable
from .jobs import QUEUE
from .metrics import CONTENT_TYPE, DB_DEADLINE_CUTS, render_metrics, sample_pool
from .wire import HealthData, HealthResponse, ReadyData, ReadyResponse

__all__ = ["PROBE_ROUTES"]

_NO_SECRET_OPENS = (
    "The server key of this gateway opens none of the stored partner secrets:"
    " give it the GATEWAY_SECRET_KEY of the other gateways (see the operations"
    " guide, The server key)"
)


async def _healthz(request: Request) -> Response:
    return json_response(
        HealthResponse(
            success=True,
            message="Alive",
            requestId=request_context(request).request_id,
            meta=response_meta(request),
            data=HealthData(status="ok"),
        )
    )


async def _readyz(request: Request) -> Response:
    """200 while the database answers, ``degraded`` when some stored partner secrets do not
    open; 503 when the database does not answer, or when the server key opens none of the
    stored secrets (this process could authenticate no partner: another key than the others')."""
    await catalog_store.ping(request.app.state.pool)
    check: catalog_store.SecretCheck = await request.app.state.secret_health.check()
    unreadable = len(check.unreadable)
    if unreadable and unreadable == check.stored:
        return unavailable(
            request,
            _NO_SECRET_OPENS,
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
    pool: catalog_store.Pool = request.app.state.pool
    sample_pool(pool)
    stats: catalog_store.QueueStats | None
    check: catalog_store.SecretCheck | None
    try:
        stats = await catalog_store.queue_stats(
            pool, queue=QUEUE, stalled_after=request.app.state.settings.worker_stalled_after
        )
        check = await request.app.state.secret_health.check()
    except catalog_store.StoreUnavailable as exc:
        if isinstance(exc, catalog_store.DeadlineExceeded):
            DB_DEADLINE_CUTS.labels(exc.outcome).inc()
        stats = check = None  # shown as gateway_database_up 0; the scrape itself still answers
    unreadable = None if check is None else len(check.unreadable)
    return Response(render_metrics(stats, unreadable_secrets=unreadable), media_type=CONTENT_TYPE)


async def _openapi(request: Request) -> Response:
    return Response(request.app.state.openapi_json, media_type="application/json")


async def _docs(request: Request) -> Response:
    return HTMLResponse(request.app.state.docs_html)


PROBE_ROUTES = (
    Route("/healthz", _healthz, methods=["GET"]),
    Route("/readyz", _readyz, methods=["GET"]),
    Route("/openapi.json", _openapi, methods=["GET"]),
    Route("/docs", _docs, methods=["GET"]),
    Route("/metrics", _metrics, methods=["GET"]),
)
