"""POST …/deletions: authenticate, check the body, then delete now, dry-run or dispatch, each
in the request's one transaction; the answer is rendered from the store's values and, under an
idempotency key, kept with the work."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response

import catalog_store

from . import report
from .auth import AuthContext
from .context import request_context
from .decoding import BodyDecoder
from .errors import ApiError, InvalidField
from .idempotency import idempotency_key, keep_and_answer, request_transaction, sent_again
from .jobs import defer_batch_job
from .signed import authenticated, spent
from .target import query_problems, require_canonical_path
from .wire import DELETIONS_PATH, MAX_DISPATCH_ENTRIES, MAX_SYNC_ENTRIES, DeletionRequest

__all__ = ["DELETIONS_PATH", "delete_products"]

_BODY = BodyDecoder(DeletionRequest, example='{"ids": ["<product uuid>"]}')
_DRY_RUN_DISPATCHED = (
    'cannot be sent with "dispatch": true; a dry run is answered at once, never dispatched'
)


async def delete_products(request: Request) -> Response:
    """POST …/deletions: authenticate, check the body, delete in one transaction, report."""
    require_canonical_path(request)  # before the route label: any other path is no route
    request_context(request).route = DELETIONS_PATH
    auth, body = await authenticated(request, scope=catalog_store.SCOPE_DELETE)
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
        raise await spent(request.app.state.pool, auth, error) from None
    if payload.dryRun:
        return await _dry_run(request, auth, key, body, payload)
    if payload.dispatch or len(payload.ids) + len(payload.externalIds) > MAX_SYNC_ENTRIES:
        return await _dispatch(request, auth, key, body, payload)
    return await _delete_now(request, auth, key, body, payload)


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


async def _delete_now(
    request: Request, auth: AuthContext, key: str | None, body: bytes, payload: DeletionRequest
) -> Response:
    """Delete, archive and audit in one transaction (one statement without a key); 200."""
    plan = catalog_store.plan_deletion(payload.ids, payload.externalIds)
    async with request_transaction(request, auth, key, body) as tx:
        if tx.answered_before is not None:
            return sent_again(request, tx.answered_before)
        outcome = await catalog_store.delete_products(tx, plan=plan)
        return await keep_and_answer(tx, report.deleted(request, outcome))


async def _dry_run(
    request: Request, auth: AuthContext, key: str | None, body: bytes, payload: DeletionRequest
) -> Response:
    """A dry run: the report a real run would give now, with variant counts; no change."""
    plan = catalog_store.plan_deletion(payload.ids, payload.externalIds)
    async with request_transaction(request, auth, key, body) as tx:
        if tx.answered_before is not None:
            return sent_again(request, tx.answered_before)
        preview = await catalog_store.preview_deletion(tx, plan=plan)
        return await keep_and_answer(tx, report.dry_run(request, preview))


async def _dispatch(
    request: Request, auth: AuthContext, key: str | None, body: bytes, payload: DeletionRequest
) -> Response:
    """Dispatched: store the batch and its job in one transaction, answer 202."""
    settings = request.app.state.settings
    # Streaming up to 100,000 entries (COPY) takes longer than a sync request: its own bound.
    with catalog_store.deadline(settings.db_deadline_dispatch):
        async with request_transaction(request, auth, key, body) as tx:
            if tx.answered_before is not None:
                return sent_again(request, tx.answered_before)
            batch = await catalog_store.create_batch(
                tx,
                batch_id=uuid.UUID(request_context(request).new_id()),
                ids=payload.ids,
                external_ids=payload.externalIds,
                defer_job=defer_batch_job,
                max_open_batches=settings.rate_limit_batches,
                retry_after=settings.retry_after_seconds,
            )
            return await keep_and_answer(tx, report.dispatched(request, batch), status=202)
