"""The answers of the deletion routes, rendered from the store's values: a deletion's report,
a dry run's, a dispatched batch's receipt and a batch's status."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request

import catalog_store

from .context import request_context
from .envelope import iso_ms, response_meta
from .errors import ITEM_CODES
from .paging import encode_cursor
from .wire import (
    BatchData,
    BatchResponse,
    DeletionData,
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

__all__ = ["batch_status", "deleted", "dispatched", "dry_run"]

_PROBLEM_CODES = {
    catalog_store.Problem.ID_NOT_FOUND: "PRD_014",
    catalog_store.Problem.EXTERNAL_ID_NOT_FOUND: "PRD_015",
    catalog_store.Problem.REPEATED: "PRD_016",
    catalog_store.Problem.INVALID_ID: "PRD_017",
}


def _item_error(
    problem: catalog_store.Problem, kind: catalog_store.EntryKind, row_index: int, value: str
) -> ItemError:
    """One entry's error; the entry is echoed under the wire's name of its field (``id`` for an
    entry of ``ids``, ``externalId`` for one of ``externalIds``)."""
    code = _PROBLEM_CODES[problem]
    if kind is catalog_store.EntryKind.ID:
        return ItemError(code=code, message=ITEM_CODES[code], rowIndex=row_index, id=value)
    return ItemError(code=code, message=ITEM_CODES[code], rowIndex=row_index, externalId=value)


def _item_errors(failures: Sequence[catalog_store.EntryFailure]) -> list[ItemError]:
    return [_item_error(f.problem, f.kind, f.row_index, f.value) for f in failures]


def _success_item(product: catalog_store.DeletedProduct) -> SuccessItem:
    return SuccessItem(id=product.id, externalId=product.external_id)


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


def deleted(request: Request, outcome: catalog_store.DeletionOutcome) -> DeletionResponse:
    """A synchronous deletion's report: every entry deleted or failed, in request order."""
    succeeded, failed = len(outcome.deleted), len(outcome.failures)
    data = DeletionData(
        summary=Summary(total=outcome.total, succeeded=succeeded, failed=failed),
        successItems=[_success_item(row) for row in outcome.deleted],
        errors=_item_errors(outcome.failures),
    )
    request_context(request).deleted_entries(deleted=succeeded, failed=failed)
    return DeletionResponse(
        success=True,
        message=_deleted_message(succeeded, failed),
        requestId=request_context(request).request_id,
        meta=response_meta(request, dispatch=False),
        data=data,
    )


def dry_run(request: Request, preview: catalog_store.DeletionPreview) -> DryRunResponse:
    """The report a real run would give now, with each product's variants."""
    outcome = preview.outcome
    items = [
        DryRunItem(id=p.id, externalId=p.external_id, variants=preview.variants.get(p.id, 0))
        for p in outcome.deleted
    ]
    request_context(request).dry_run(
        would_delete=len(outcome.deleted), would_fail=len(outcome.failures)
    )
    return DryRunResponse(
        success=True,
        message=_dry_run_message(len(outcome.deleted), len(outcome.failures)),
        requestId=request_context(request).request_id,
        meta=response_meta(request, dispatch=False, dry_run=True),
        data=DryRunData(
            summary=DryRunSummary(
                total=outcome.total,
                succeeded=len(outcome.deleted),
                failed=len(outcome.failures),
                variants=sum(item.variants for item in items),
            ),
            successItems=items,
            errors=_item_errors(outcome.failures),
        ),
    )


def dispatched(request: Request, batch: catalog_store.Batch) -> DispatchResponse:
    """The receipt of a dispatched batch: its id, to read its status by."""
    request_context(request).dispatched(batch_id=str(batch.id), total=batch.total)
    return DispatchResponse(
        success=True,
        message="Deletion batch accepted",
        requestId=request_context(request).request_id,
        meta=response_meta(request, dispatch=True),
        data=DispatchData(
            batchId=str(batch.id),
            status=batch.status,
            summary=Summary(total=batch.total, succeeded=0, failed=0),
        ),
    )


def batch_status(
    request: Request,
    batch: catalog_store.Batch,
    entries: Sequence[catalog_store.BatchEntry],
    *,
    offset: int,
    limit: int,
) -> BatchResponse:
    """A batch's progress and summary, with one page of its finished entries."""
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
            _item_error(e.problem, e.kind, e.row_index, e.value)
            for e in entries
            if e.problem is not None
        ],
        createdAt=iso_ms(int(batch.created_at.timestamp() * 1000)),
        updatedAt=iso_ms(int(batch.updated_at.timestamp() * 1000)),
        nextCursor=encode_cursor(next_offset) if more else None,
    )
    return BatchResponse(
        success=True,
        message="Deletion batch status",
        requestId=request_context(request).request_id,
        meta=response_meta(request),
        data=data,
    )
