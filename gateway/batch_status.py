"""GET …/deletions/{batchId}: a dispatched batch's progress, summary and one page of results."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response

import catalog_store

from . import report
from .context import request_context
from .envelope import json_response
from .errors import ApiError
from .paging import page
from .signed import authenticated, spent
from .target import require_canonical_path
from .wire import DELETIONS_PATH

__all__ = ["batch_status"]


async def batch_status(request: Request) -> Response:
    """GET …/deletions/{batchId}: progress, summary and one page of the results."""
    require_canonical_path(request)  # before the route label: any other path is no route
    request_context(request).route = DELETIONS_PATH + "/{batchId}"
    auth, _body = await authenticated(request, scope=catalog_store.SCOPE_BATCHES_READ)
    pool = request.app.state.pool
    raw_id = request.path_params["batch_id"]
    try:
        limit, offset = page(request)
        try:
            batch_id = uuid.UUID(raw_id)
        except ValueError:
            batch = None
        else:
            batch = await catalog_store.get_batch(
                pool, store_id=auth.store_id, batch_id=batch_id, partner_id=auth.partner_id
            )
        if batch is None:
            raise ApiError("BAT_001", context={"batchId": raw_id})
    except ApiError as exc:
        raise await spent(pool, auth, exc) from None
    try:
        await catalog_store.accept_nonce(pool, auth.nonce, request.app.state.rate_limit)
    except catalog_store.Replayed:
        raise ApiError("AUTH_006") from None
    entries = await catalog_store.list_batch_entries(
        pool, store_id=auth.store_id, batch_id=batch.id, after_seq=offset - 1, limit=limit
    )
    return json_response(report.batch_status(request, batch, entries, offset=offset, limit=limit))
