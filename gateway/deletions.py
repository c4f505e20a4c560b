"""The signed routes: delete products, and read a batch."""

from __future__ import annotations

import uuid

import msgspec
from starlette.requests import Request
from starlette.responses import Response

import catalog_store as store

from .auth import AuthContext, authenticate
from .body import read_capped_body
from .context import request_context
from .decoding import BodyDecoder
from .envelope import iso_ms, json_response, response_meta
from .errors import ITEM_CODES, ApiError, InvalidField
from .idempotency import Reply, idempotency_key, run_once
from .jobs import defer_batch_job
from .paging import encode_cursor, page
from .target import query_problems, require_canonical_path
from .wire import (
    DELETIONS_PATH,
    MAX_DISPATCH_ENTRIES,
    MAX_SYNC_ENTRIES,
    BatchData,
    BatchResponse,
    DeletionData,
    DeletionRequest,
    DeletionResponse,
    DispatchData,
    DispatchResponse,
    DryRunData,
    DryRunItem,
    DryRunResponse,
    DryRunSummary,
    ItemError,
    Progress,
    SuccessItem,
    Summary,
)

__all__ = ["DELETIONS_PATH", "batch_status", "delete_products"]

_PROBLEM_CODES = {
    store.Problem.ID_NOT_FOUND: "PRD_014",
    store.Problem.EXTERNAL_ID_NOT_FOUND: "PRD_015",
    store.Problem.REPEATED: "PRD_016",
    store.Problem.INVALID_ID: "PRD_017",
}
_BODY = BodyDecoder(DeletionRequest, example='{"ids": ["<product uuid>"]}')
_DRY_RUN_DISPATCHED = (
    'cannot be sent with "dispatch": true; a dry run is answered at once, never dispatched'
)


def _raw_target(request: Request) -> tuple[str, str]:
    """The path and query exactly as sent (some servers put the query in raw_path too)."""
    raw_path: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    path = raw_path.split(b"?", 1)[0]
    query: bytes = request.scope.get("query_string", b"")
    return path.decode("utf-8", "replace"), query.decode("utf-8", "replace")


async def _spent(pool: store.Pool, auth: AuthContext, error: ApiError) -> ApiError:
    """A request refused after its signature verified is spent all the same: sent again, it is
    AUTH_006. Its replay record does not count toward the rate limit. Replay (step 6) comes
    before the body and the query: a replayed request is AUTH_006 whatever else is wrong."""
    try:
        await store.spend_nonce(pool, auth.nonce)
    except store.Replayed:
        return ApiError("AUTH_006")
    return error


async def _authenticated(request: Request, *, scope: str) -> tuple[AuthContext, bytes]:
    """Who sent the request, and its body, read only once checks 1 to 3 have passed."""
    path, query = _raw_target(request)
    context = request_context(request)
    settings = request.app.state.settings
    auth, body = await authenticate(
        request.app.state.credentials,
        method=request.method,
        path=path,
        query=query,
        headers=request.scope["headers"],
        read_body=lambda: read_capped_body(request, timeout=settings.body_timeout),
        now_ms=context.now_ms(),
        scope=scope,
        max_header_bytes=settings.max_header_bytes,
    )
    context.authenticated(
        partner=auth.partner_client_id, store=auth.store_client_id, key_id=auth.key_id
    )
    request.app.state.key_use.note(auth.partner_id, auth.key_id)
    return auth, body


def _nul_problems(payload: DeletionRequest) -> dict[str, str]:
    """PostgreSQL text cannot hold NUL, and no product id or external id contains one."""
    problems: dict[str, str] = {}
    for field, values in (("ids", payload.ids), ("externalIds", payload.externalIds)):
        index = next((i for i, value in enumerate(values) if "\x00" in value), None)
        if index is not None:
            problems[field] = f"must not contain the NUL character \\u0000 (at {field}[{index}])"
    return problems


def _check_entries(payload: DeletionRequest, body: bytes) -> None:
    # A NUL can reach a JSON string only as the escape \u0000 (a raw one is not JSON).
    if b"\\u0000" in body:
        nul = _nul_problems(payload)
        if nul:
            raise ApiError("VAL_001", context={"validationErrors": nul})
    total = len(payload.ids) + len(payload.externalIds)
    problem: str | None = None
    if total == 0:
        problem = "at least one id or external id is required"
    elif total > MAX_DISPATCH_ENTRIES:
        problem = f"at most {MAX_DISPATCH_ENTRIES:,} entries in all; got {total:,}"
    elif payload.dryRun and total > MAX_SYNC_ENTRIES:
        problem = f"a dry run takes at most {MAX_SYNC_ENTRIES:,} entries in all; got {total:,}"
    if problem is not None:
        field = "ids" if payload.ids or not payload.externalIds else "externalIds"
        raise ApiError("VAL_001", context={"validationErrors": {field: problem}})
    if payload.dryRun and payload.dispatch:
        raise ApiError("VAL_001", context={"validationErrors": {"dryRun": _DRY_RUN_DISPATCHED}})


def _item_error(problem: store.Problem, field: str, row_index: int, value: str) -> ItemError:
    code = _PROBLEM_CODES[problem]
    if field == "ids":
        return ItemError(code=code, message=ITEM_CODES[code], rowIndex=row_index, id=value)
    return ItemError(code=code, message=ITEM_CODES[code], rowIndex=row_index, externalId=value)


def _success_item(product: store.DeletedProduct) -> SuccessItem:
    return SuccessItem(id=str(product.id), externalId=product.external_id)


def _report(outcome: store.DeletionOutcome) -> DeletionData:
    errors = [_item_error(f.problem, f.field, f.row_index, f.value) for f in outcome.failures]
    return DeletionData(
        summary=Summary(
            total=outcome.total, succeeded=len(outcome.deleted), failed=len(outcome.failures)
        ),
        successItems=[_success_item(row) for row in outcome.deleted],
        errors=errors,
    )


def _deleted_message(succeeded: int, failed: int) -> str:
    """What happened, in the words a partner reads first (``success`` only says processed)."""
    if failed == 0:
        return "Products deleted successfully"
    return "Some products were not deleted" if succeeded else "No products were deleted"


def _dry_run_message(succeeded: int, failed: int) -> str:
    if failed == 0:
        return "Dry run: nothing was deleted"
    if succeeded:
        return "Dry run: nothing was deleted; some products would not be deleted"
    return "Dry run: nothing was deleted; no product would be deleted"


async def delete_products(request: Request) -> Response:
    """POST …/deletions: authenticate, check the body, delete in one transaction, report."""
    require_canonical_path(request)  # before the route label: any other path is no route
    request_context(request).route = DELETIONS_PATH
    auth, body = await _authenticated(request, scope=store.SCOPE_DELETE)
    pool = request.app.state.pool
    try:
        # A parameter in the URL is never read: "?dryRun=true" would delete for real.
        problems = query_problems(request, allowed=(), body_fields=_BODY.field_names)
        if problems:
            raise ApiError("VAL_001", context={"validationErrors": problems})
        key = idempotency_key(request)
        payload = _BODY.decode(body)
        _check_entries(payload, body)
    except (InvalidField, ApiError) as exc:
        error = exc.api_error() if isinstance(exc, InvalidField) else exc
        raise await _spent(pool, auth, error) from None
    request_id = request_context(request).request_id
    if payload.dryRun:
        return await _dry_run(request, auth, key, body, payload)
    if payload.dispatch or len(payload.ids) + len(payload.externalIds) > MAX_SYNC_ENTRIES:
        return await _dispatch(request, auth, key, body, payload)
    plan = store.plan_deletion(payload.ids, payload.externalIds)

    def render(outcome: store.DeletionOutcome) -> tuple[int, msgspec.Struct]:
        data = _report(outcome)
        request_context(request).deleted_entries(
            deleted=data.summary.succeeded, failed=data.summary.failed
        )
        return 200, DeletionResponse(
            success=True,
            message=_deleted_message(data.summary.succeeded, data.summary.failed),
            requestId=request_id,
            meta=response_meta(request, dispatch=False),
            data=data,
        )

    return await run_once(
        request,
        key,
        body,
        Reply(request_id, render),
        lambda idempotency: store.delete_products(
            pool,
            store_id=auth.store_id,
            nonce=auth.nonce,
            request_id=uuid.UUID(request_id),
            plan=plan,
            idempotency=idempotency,
            rate=request.app.state.rate_limit,
        ),
    )


async def _dry_run(
    request: Request, auth: AuthContext, key: str | None, body: bytes, payload: DeletionRequest
) -> Response:
    """A dry run: the report a real run would give now, with variant counts; no change."""
    request_id = request_context(request).request_id
    plan = store.plan_deletion(payload.ids, payload.externalIds)

    def render(preview: store.DeletionPreview) -> tuple[int, msgspec.Struct]:
        outcome = preview.outcome
        items = [
            DryRunItem(
                id=str(p.id), externalId=p.external_id, variants=preview.variants.get(p.id, 0)
            )
            for p in outcome.deleted
        ]
        request_context(request).dry_run(
            would_delete=len(outcome.deleted), would_fail=len(outcome.failures)
        )
        return 200, DryRunResponse(
            success=True,
            message=_dry_run_message(len(outcome.deleted), len(outcome.failures)),
            requestId=request_id,
            meta=response_meta(request, dispatch=False, dry_run=True),
            data=DryRunData(
                summary=DryRunSummary(
                    total=outcome.total,
                    succeeded=len(outcome.deleted),
                    failed=len(outcome.failures),
                    variants=sum(item.variants for item in items),
                ),
                successItems=items,
                errors=[
                    _item_error(f.problem, f.field, f.row_index, f.value) for f in outcome.failures
                ],
            ),
        )

    return await run_once(
        request,
        key,
        body,
        Reply(request_id, render),
        lambda idempotency: store.preview_deletion(
            request.app.state.pool,
            store_id=auth.store_id,
            nonce=auth.nonce,
            plan=plan,
            idempotency=idempotency,
            rate=request.app.state.rate_limit,
        ),
    )


async def _dispatch(
    request: Request, auth: AuthContext, key: str | None, body: bytes, payload: DeletionRequest
) -> Response:
    """Dispatched: store the batch and its job in one transaction, answer 202."""
    request_id = request_context(request).request_id

    def render(batch: store.Batch) -> tuple[int, msgspec.Struct]:
        request_context(request).dispatched(batch_id=str(batch.id), total=batch.total)
        return 202, DispatchResponse(
            success=True,
            message="Deletion batch accepted",
            requestId=request_id,
            meta=response_meta(request, dispatch=True),
            data=DispatchData(
                batchId=str(batch.id),
                status=batch.status,
                summary=Summary(total=batch.total, succeeded=0, failed=0),
            ),
        )

    settings = request.app.state.settings

    async def create(idempotency: store.Idempotency[store.Batch] | None) -> store.Batch:
        # Streaming up to 100,000 entries (COPY) takes longer than a sync request: its own bound.
        with store.deadline(settings.db_deadline_dispatch):
            return await store.create_batch(
                request.app.state.pool,
                store_id=auth.store_id,
                nonce=auth.nonce,
                request_id=uuid.UUID(request_id),
                ids=payload.ids,
                external_ids=payload.externalIds,
                defer_job=defer_batch_job,
                idempotency=idempotency,
                rate=request.app.state.rate_limit,
                max_open_batches=settings.rate_limit_batches,
                retry_after=settings.retry_after_seconds,
            )

    return await run_once(request, key, body, Reply(request_id, render), create)


async def batch_status(request: Request) -> Response:
    """GET …/deletions/{batchId}: progress, summary and one page of the results."""
    require_canonical_path(request)  # before the route label: any other path is no route
    request_context(request).route = DELETIONS_PATH + "/{batchId}"
    auth, body = await _authenticated(request, scope=store.SCOPE_BATCHES_READ)
    pool = request.app.state.pool
    raw_id = request.path_params["batch_id"]
    try:
        limit, offset = page(request)
        try:
            batch_id = uuid.UUID(raw_id)
        except ValueError:
            batch = None
        else:
            batch = await store.get_batch(
                pool, store_id=auth.store_id, batch_id=batch_id, partner_id=auth.partner_id
            )
        if batch is None:
            raise ApiError("BAT_001", context={"batchId": raw_id})
    except ApiError as exc:
        raise await _spent(pool, auth, exc) from None
    try:
        await store.accept_nonce(pool, auth.nonce, request.app.state.rate_limit)
    except store.Replayed:
        raise ApiError("AUTH_006") from None
    entries = await store.list_batch_entries(
        pool, store_id=auth.store_id, batch_id=batch.id, after_seq=offset - 1, limit=limit
    )
    finished = batch.status in ("succeeded", "completed")
    next_offset = offset + len(entries)
    more = next_offset < batch.total and (len(entries) == limit or not finished)
    data = BatchData(
        batchId=str(batch.id),
        status=batch.status,
        progress=Progress(processed=batch.processed, total=batch.total),
        summary=Summary(total=batch.total, succeeded=batch.succeeded, failed=batch.failed),
        successItems=[_success_item(e.product) for e in entries if e.product is not None],
        errors=[
            _item_error(e.problem, e.field, e.row_index, e.value)
            for e in entries
            if e.problem is not None
        ],
        createdAt=iso_ms(int(batch.created_at.timestamp() * 1000)),
        updatedAt=iso_ms(int(batch.updated_at.timestamp() * 1000)),
        nextCursor=encode_cursor(next_offset) if more else None,
    )
    return json_response(
        BatchResponse(
            success=True,
            message="Deletion batch status",
            requestId=request_context(request).request_id,
            meta=response_meta(request),
            data=data,
        )
    )
