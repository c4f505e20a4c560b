"""msgspec Structs of every body on the wire; the OpenAPI document is generated from them."""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

__all__ = [
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
    "ItemError",
    "Progress",
    "ResponseMeta",
    "SuccessItem",
    "Summary",
    "decode_deletion_request",
    "encode",
]

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
            " nothing; always answered at once (HTTP 200), whatever the size or dispatch"
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
_DELETION_DECODER = msgspec.json.Decoder(DeletionRequest)


def encode(value: msgspec.Struct) -> bytes:
    return _ENCODER.encode(value)


_FIELD_KEYS = (b'"ids"', b'"externalIds"', b'"dispatch"')


def _refuse_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise msgspec.ValidationError(
                f"is given more than once in the JSON object; send each field once - at `$.{key}`"
            )
        seen.add(key)
    return dict(pairs)


def decode_deletion_request(body: bytes) -> DeletionRequest:
    """Decode a deletion body; raises ``msgspec.DecodeError`` (or its ``ValidationError``).

    A field given twice (``{"ids": [...], "ids": [...]}``) is refused: JSON parsers disagree
    on which one wins, so such a body means different things to different readers.
    """
    try:
        payload = _DELETION_DECODER.decode(body)
    except UnicodeDecodeError as exc:  # msgspec raises this, not DecodeError, for bad UTF-8
        raise msgspec.DecodeError("JSON is malformed: a string is not valid UTF-8") from exc
    # msgspec keeps the last of repeated keys without a word. The body is now known to be one
    # flat object of lists of strings, so the exact check with the standard parser is safe; it
    # runs only when a field name occurs twice in the bytes, or may hide behind a \u escape.
    if b"\\u" in body or any(body.count(key) > 1 for key in _FIELD_KEYS):
        json.loads(body, object_pairs_hook=_refuse_repeated_keys)
    return payload
