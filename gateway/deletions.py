"""The signed routes of contract §3 and §4: delete products, and read a batch."""

from __future__ import annotations

import re
import uuid
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

import catalog_store as store

from .auth import AuthContext, authenticate
from .body import read_capped_body
from .envelope import json_response, response_meta
from .errors import ITEM_CODES, ApiError
from .wire import (
    MAX_DISPATCH_ENTRIES,
    MAX_SYNC_ENTRIES,
    DeletionData,
    DeletionRequest,
    DeletionResponse,
    ItemError,
    SuccessItem,
    Summary,
    decode_deletion_request,
)

__all__ = ["DELETIONS_PATH", "batch_status", "delete_products"]

DELETIONS_PATH = "/api/v1/partner/stores/products/deletions"
SCOPE_DELETE = "products:delete"

_PROBLEM_CODES = {
    store.Problem.ID_NOT_FOUND: "PRD_014",
    store.Problem.EXTERNAL_ID_NOT_FOUND: "PRD_015",
    store.Problem.REPEATED: "PRD_016",
    store.Problem.INVALID_ID: "PRD_017",
}
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_FIELD = re.compile(r"^\.(?P<field>[A-Za-z_][A-Za-z0-9_]*)")
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `(?P<field>[^`]*)`")


def _raw_target(request: Request) -> tuple[str, str]:
    """The path and query exactly as sent (some servers put the query in raw_path too)."""
    raw_path: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    path = raw_path.split(b"?", 1)[0]
    query: bytes = request.scope.get("query_string", b"")
    return path.decode("utf-8", "replace"), query.decode("utf-8", "replace")


async def _authenticated(request: Request, body: bytes) -> AuthContext:
    path, query = _raw_target(request)
    state: dict[str, Any] = request.scope["state"]
    auth = await authenticate(
        request.app.state.pool,
        method=request.method,
        path=path,
        query=query,
        headers=request.scope["headers"],
        body=body,
        now_ms=state["clock"](),
        scope=SCOPE_DELETE,
    )
    state["log"].update(partner=auth.partner_client_id, store=auth.store_client_id)
    return auth


def _validation_error(exc: msgspec.DecodeError, body: bytes) -> ApiError:
    """Name the field that is wrong, in the ``validationErrors`` map of contract §5."""
    text = str(exc)
    match = _AT.search(text)
    reason = text[: match.start()] if match else text
    path = match.group("path") if match else ""
    field_match = _FIELD.match(path)
    unknown = _UNKNOWN_FIELD.match(reason)
    if unknown and not path:
        field = unknown.group("field")
        reason = "is not a field of this request; expected ids, externalIds, dispatch"
    elif field_match:
        field = field_match.group("field")
        reason = f"{reason} (at {path[1:]})" if path != f".{field}" else reason
    else:
        field = "body"
        if not body:
            reason = 'is empty: send a JSON object such as {"ids": ["<product uuid>"]}'
        elif not isinstance(exc, msgspec.ValidationError):
            reason = f"is not valid JSON: {reason}"
        else:
            reason = f"must be a JSON object: {reason}"
    return ApiError("VAL_001", context={"validationErrors": {field: reason}})


def _check_entries(payload: DeletionRequest) -> None:
    total = len(payload.ids) + len(payload.externalIds)
    problem: str | None = None
    if total == 0:
        problem = "at least one id or external id is required"
    elif total > MAX_DISPATCH_ENTRIES:
        problem = f"at most {MAX_DISPATCH_ENTRIES:,} entries in all; got {total:,}"
    elif payload.dispatch or total > MAX_SYNC_ENTRIES:
        # Dispatched batches (contract §3, 202) are not enabled on this gateway yet.
        problem = (
            f"at most {MAX_SYNC_ENTRIES:,} entries per request while dispatched batches are not"
            f" enabled; got {total:,}" + (" with dispatch: true" if payload.dispatch else "")
        )
    if problem is not None:
        field = "ids" if payload.ids or not payload.externalIds else "externalIds"
        if payload.dispatch and total and total <= MAX_SYNC_ENTRIES:
            field = "dispatch"
        raise ApiError("VAL_001", context={"validationErrors": {field: problem}})


def _report(outcome: store.DeletionOutcome) -> DeletionData:
    errors = []
    for failure in outcome.failures:
        code = _PROBLEM_CODES[failure.problem]
        item = ItemError(code=code, message=ITEM_CODES[code], rowIndex=failure.row_index)
        if failure.field == "ids":
            item = msgspec.structs.replace(item, id=failure.value)
        else:
            item = msgspec.structs.replace(item, externalId=failure.value)
        errors.append(item)
    return DeletionData(
        summary=Summary(
            total=outcome.total, succeeded=len(outcome.deleted), failed=len(outcome.failures)
        ),
        successItems=[
            SuccessItem(id=str(row.id), externalId=row.external_id) for row in outcome.deleted
        ],
        errors=errors,
    )


async def delete_products(request: Request) -> Response:
    """POST …/deletions: authenticate, check the body, delete in one transaction, report."""
    request.scope["state"]["log"]["route"] = DELETIONS_PATH
    body = await read_capped_body(request)
    auth = await _authenticated(request, body)
    pool = request.app.state.pool
    try:
        payload = decode_deletion_request(body)
        _check_entries(payload)
    except (msgspec.DecodeError, ApiError) as exc:
        # Replay (step 6) is decided before the body: a replayed request is AUTH_006 whatever
        # its body says. Nothing is recorded for a request that changes nothing.
        if await store.nonce_seen(pool, auth.nonce):
            raise ApiError("AUTH_006") from None
        if isinstance(exc, ApiError):
            raise
        raise _validation_error(exc, body) from None
    request_id = uuid.UUID(request.scope["state"]["request_id"])
    try:
        outcome = await store.delete_products(
            pool,
            store_id=auth.store_id,
            nonce=auth.nonce,
            request_id=request_id,
            plan=store.plan_deletion(payload.ids, payload.externalIds),
        )
    except store.Replayed:
        raise ApiError("AUTH_006") from None
    data = _report(outcome)
    request.scope["state"]["log"].update(
        succeeded=data.summary.succeeded, failed=data.summary.failed
    )
    return json_response(
        DeletionResponse(
            success=True,
            message="Products deleted successfully",
            requestId=str(request_id),
            meta=response_meta(request, dispatch=False),
            data=data,
        )
    )


async def batch_status(request: Request) -> Response:
    """GET …/deletions/{batchId}: signed like any request; no batch exists until dispatch is
    enabled, so every id is ``BAT_001`` for now."""
    request.scope["state"]["log"]["route"] = DELETIONS_PATH + "/{batchId}"
    body = await read_capped_body(request)
    auth = await _authenticated(request, body)
    try:
        await store.accept_nonce(request.app.state.pool, auth.nonce)
    except store.Replayed:
        raise ApiError("AUTH_006") from None
    raise ApiError("BAT_001", context={"batchId": request.path_params["batch_id"]})
