"""Pure HMAC-SHA256 request signing for the Partner Catalog Gateway (standard library only).

Partners may vendor this package: it does no I/O and reads no clock; pass ``now_ms`` in.
"""

from .canonical import (
    EMPTY_BODY_SHA256,
    HEADER_PARTNER_CLIENT_ID,
    HEADER_SIGNATURE,
    HEADER_STORE_CLIENT_ID,
    HEADER_STORE_TOKEN,
    HEADER_TIMESTAMP,
    SIGNED_HEADERS,
    RequestParts,
    body_sha256,
    is_signature_format,
    sign,
    sign_request,
    string_to_sign,
    verify,
)
from .clock import WINDOW_MS, TimestampCheck, check_timestamp
from .errors import MalformedInput, SigningError
from .mistakes import (
    BODY_MISTAKES_MAX_BYTES,
    HMACS_PER_KEY,
    MISTAKES,
    Mistake,
    find_mistake,
    looks_like_base64_signature,
)

__all__ = [
    "BODY_MISTAKES_MAX_BYTES",
    "HMACS_PER_KEY",
    "MISTAKES",
    "Mistake",
    "find_mistake",
    "looks_like_base64_signature",
    "EMPTY_BODY_SHA256",
    "HEADER_PARTNER_CLIENT_ID",
    "HEADER_SIGNATURE",
    "HEADER_STORE_CLIENT_ID",
    "HEADER_STORE_TOKEN",
    "HEADER_TIMESTAMP",
    "SIGNED_HEADERS",
    "WINDOW_MS",
    "MalformedInput",
    "RequestParts",
    "SigningError",
    "TimestampCheck",
    "body_sha256",
    "check_timestamp",
    "is_signature_format",
    "sign",
    "sign_request",
    "string_to_sign",
    "verify",
]
