"""The error catalog: every request-level code, its HTTP status, message and default hint.

ApiError       raised anywhere in gateway/, rendered into the error envelope in one place
InvalidField   a request value that does not decode: the field it names and why, in our words
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CATALOG", "ApiError", "ErrorSpec", "ITEM_CODES", "InvalidField"]


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    status: int
    message: str
    hint: str


CATALOG: dict[str, ErrorSpec] = {
    "AUTH_001": ErrorSpec(
        401,
        "Missing or malformed authentication headers",
        "Send x-partner-client-id, x-store-client-id, x-store-token, x-timestamp and"
        " x-signature, each once; see context for the ones missing or malformed",
    ),
    "AUTH_002": ErrorSpec(
        401,
        "Invalid signature",
        "The signature does not match. Compare your string to sign with context.stringToSign"
        " (store token masked) and your body hash with context.bodySha256",
    ),
    "AUTH_003": ErrorSpec(
        401, "Expired or invalid timestamp", "Request timestamp must be within 300 seconds"
    ),
    "AUTH_004": ErrorSpec(
        401,
        "Unknown or inactive partner",
        "Check x-partner-client-id: it must be the client id you were given, and active",
    ),
    "AUTH_005": ErrorSpec(
        403,
        "Store token not valid for this partner and store",
        "Send the token that this store issued to you, with the scope this route needs",
    ),
    "AUTH_006": ErrorSpec(
        401,
        "Replayed request",
        "Each signed request is accepted once: sign a retry anew with a fresh x-timestamp",
    ),
    "VAL_001": ErrorSpec(
        400, "Validation failed", "Fix the fields named in context.validationErrors"
    ),
    "VAL_002": ErrorSpec(413, "Request body too large", "Send a body of at most 8 MiB"),
    "BAT_001": ErrorSpec(
        404,
        "Batch not found",
        "Check the batchId: a batch is visible only to the partner that created it,"
        " for its own store",
    ),
    "IDEM_001": ErrorSpec(
        409,
        "Idempotency key reused with a different body",
        "An idempotency-key is kept for 24 hours with the exact body it was first sent with:"
        " retry with the same body, or use a new key for a new request",
    ),
    "IDEM_002": ErrorSpec(
        409,
        "Request with this idempotency key still running",
        "The first request with this idempotency-key has not finished: retry after"
        " Retry-After seconds, signed anew, with the same key and body",
    ),
    "RATE_001": ErrorSpec(
        429,
        "Too many requests",
        "Slow down: retry after the number of seconds in the Retry-After header",
    ),
    "SYS_001": ErrorSpec(
        503,
        "Service temporarily unavailable",
        "The database cannot be reached; nothing was changed. Retry after Retry-After seconds",
    ),
    "SYS_002": ErrorSpec(
        500,
        "Internal error",
        "An unexpected error. Report the requestId to the gateway operator",
    ),
    "REQ_001": ErrorSpec(
        414, "Request target too long", "Send a path and query of at most the bytes in context"
    ),
    "REQ_002": ErrorSpec(
        431,
        "Request headers too large",
        "Send a request line and headers (or a trailer) of at most the bytes in context",
    ),
    "REQ_003": ErrorSpec(
        408,
        "Request timeout",
        "Send the whole request without pauses: the headers and the body each have a deadline,"
        " in context. Retry on a new connection",
    ),
    "REQ_004": ErrorSpec(
        400,
        "Malformed HTTP request",
        "Send HTTP/1.1: an upper-case method, a target with no spaces, valid header names and"
        " values, a numeric content-length or a well-formed chunked body",
    ),
    "ROUTE_001": ErrorSpec(404, "Route not found", "See /docs for the routes of this API"),
    "ROUTE_002": ErrorSpec(
        405, "Method not allowed", "See the Allow header and /docs for the methods of this route"
    ),
}

#: Item-level codes of a deletion report.
ITEM_CODES: dict[str, str] = {
    "PRD_014": "Product ID not found",
    "PRD_015": "Product external ID not found",
    "PRD_016": "Entry repeated earlier in the same request",
    "PRD_017": "Product ID is not a valid UUID",
}


class ApiError(Exception):
    """A request-level failure with its catalog code, optional hint, context and headers."""

    def __init__(
        self,
        code: str,
        *,
        hint: str | None = None,
        context: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        spec = CATALOG[code]
        super().__init__(f"{code}: {spec.message}")
        self.code = code
        self.status = spec.status
        self.message = spec.message
        self.hint = hint if hint is not None else spec.hint
        self.context = context if context is not None else {}
        self.headers = headers if headers is not None else {}


class InvalidField(ValueError):
    """A body or query value that does not decode: ``field`` names it, ``reason`` says why in a
    sentence of ours (a library's message is never passed on)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field = field
        self.reason = reason

    def api_error(self) -> ApiError:
        return ApiError("VAL_001", context={"validationErrors": {self.field: self.reason}})
