"""msgspec Structs of every body on the wire; the OpenAPI document is generated from them."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

__all__ = [
    "DELETIONS_PATH",
    "MAX_DISPATCH_ENTRIES",
    "MAX_SYNC_ENTRIES",
    "BatchData",
    "BatchResponse",
    "DeletionData",
    "DeletionRequest",
    "DeletionResponse",
    "DispatchData",
    "DispatchResponse",
    "DryRunData",
    "DryRunItem",
    "DryRunResponse",
    "DryRunSummary",
    "ErrorBody",
    "ErrorDetails",
    "ErrorResponse",
    "HealthData",
    "HealthResponse",
    "ReadyData",
    "ReadyResponse",
    "ItemError",
    "Progress",
    "ResponseMeta",
    "SuccessItem",
    "Summary",
    "encode",
]

#: The deletion route; a batch's status is read at ``DELETIONS_PATH/{batchId}``.
DELETIONS_PATH = "/api/v1/partner/stores/products/deletions"
MAX_SYNC_ENTRIES = 1_000
MAX_DISPATCH_ENTRIES = 100_000


class Wire(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every wire type."""


ExternalId = Annotated[
    str, Meta(min_length=1, max_length=255, description="The partner's own identifier")
]


class DeletionRequest(Wire, frozen=True):
    """Products to delete from the caller's store; at least one entry is required."""

    ids: Annotated[
        list[str],
        Meta(max_length=MAX_DISPATCH_ENTRIES, description="Product UUIDs, any case"),
    ] = []
    externalIds: Annotated[list[ExternalId], Meta(max_length=MAX_DISPATCH_ENTRIES)] = []
    dispatch: Annotated[
        bool, Meta(description="Run as an asynchronous batch, whatever the size")
    ] = False
    dryRun: Annotated[
        bool,
        Meta(
            description="Report what would be deleted, variant counts included, and change"
            " nothing; answered at once (HTTP 200), so at most 1,000 entries and never with"
            " dispatch true"
        ),
    ] = False


class ResponseMeta(Wire, frozen=True):
    timestamp: Annotated[str, Meta(description="ISO-8601 UTC with milliseconds")]
    durationMs: int
    dispatch: bool | UnsetType = UNSET
    dryRun: bool | UnsetType = UNSET


class Summary(Wire, frozen=True):
    total: int
    succeeded: int
    failed: int


class SuccessItem(Wire, frozen=True):
    id: str
    externalId: str | None


class ItemError(Wire, frozen=True):
    code: Annotated[str, Meta(description="PRD_014, PRD_015, PRD_016 or PRD_017")]
    message: str
    rowIndex: Annotated[int, Meta(description="Index in the array the entry came from")]
    id: str | UnsetType = UNSET
    externalId: str | UnsetType = UNSET


class DeletionData(Wire, frozen=True):
    summary: Summary
    successItems: list[SuccessItem]
    errors: list[ItemError]


class DeletionResponse(Wire, frozen=True):
    success: bool
    message: str
    requestId: str
    meta: ResponseMeta
    data: DeletionData


class DryRunSummary(Wire, frozen=True):
    total: int
    succeeded: Annotated[int, Meta(description="Entries that would delete a product")]
    failed: int
    variants: Annotated[int, Meta(description="Variants that would go with those products")]


class DryRunItem(Wire, frozen=True):
    id: str
    externalId: str | None
    variants: Annotated[int, Meta(description="Variants that would go with the product")]


class DryRunData(Wire, frozen=True):
    summary: DryRunSummary
    successItems: list[DryRunItem]
    errors: list[ItemError]


class DryRunResponse(Wire, frozen=True):
    """The report of a dry run (``"dryRun": true``): what a real run would do now."""

    success: bool
    message: str
    requestId: str
    meta: ResponseMeta
    data: DryRunData


class DispatchData(Wire, frozen=True):
    batchId: str
    status: str
    summary: Summary


class DispatchResponse(Wire, frozen=True):
    success: bool
    message: str
    requestId: str
    meta: ResponseMeta
    data: DispatchData


class Progress(Wire, frozen=True):
    processed: int
    total: int


class BatchData(Wire, frozen=True):
    batchId: str
    status: Annotated[str, Meta(description="pending, processing, succeeded or completed")]
    progress: Progress
    summary: Summary
    successItems: list[SuccessItem]
    errors: list[ItemError]
    createdAt: str
    updatedAt: str
    nextCursor: Annotated[
        str | None,
        Meta(description="Pass as cursor for the next page of results; null when there is none"),
    ]


class BatchResponse(Wire, frozen=True):
    success: bool
    message: str
    requestId: str
    meta: ResponseMeta
    data: BatchData


class HealthData(Wire, frozen=True):
    status: str


class HealthResponse(Wire, frozen=True):
    success: bool
    message: str
    requestId: str
    meta: ResponseMeta
    data: HealthData


class ReadyData(Wire, frozen=True):
    status: Annotated[
        str, Meta(description="ok, or degraded when some stored partner secrets do not open")
    ]
    unreadableSecrets: Annotated[
        int,
        Meta(
            ge=0,
            description="Active partner secrets that this process's server key does not open;"
            " those partners are answered SYS_001",
        ),
    ]


class ReadyResponse(Wire, frozen=True):
    success: bool
    message: str
    requestId: str
    meta: ResponseMeta
    data: ReadyData


class ErrorDetails(Wire, frozen=True):
    timestamp: str
    hint: str
    context: dict[str, Any]


class ErrorBody(Wire, frozen=True):
    code: str
    message: str
    details: ErrorDetails


class ErrorResponse(Wire, frozen=True):
    success: bool
    requestId: str
    error: ErrorBody


_ENCODER = msgspec.json.Encoder()


def encode(value: msgspec.Struct) -> bytes:
    return _ENCODER.encode(value)
