"""Step 1 of the checks: the five signed headers, each present once and well-formed
(``AUTH_001`` says which are missing or wrong, and why)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import signing

from .errors import CATALOG, ApiError

__all__ = ["DEFAULT_MAX_HEADER_BYTES", "SignedHeaders", "parse_headers"]

_MAX_ID_LENGTH = 128
_MAX_TOKEN_LENGTH = 512
DEFAULT_MAX_HEADER_BYTES = 8192


@dataclass(frozen=True, slots=True)
class SignedHeaders:
    partner_client_id: str
    store_client_id: str
    store_token: str
    timestamp: str
    signature: str


def _printable(value: str, limit: int) -> str | None:
    if not value:
        return "is empty"
    if len(value) > limit:
        return f"is longer than {limit} characters"
    if not value.isascii() or not value.isprintable():
        return "must be printable ASCII"
    return None


def _header_problem(name: str, value: str) -> str | None:
    if name == signing.HEADER_TIMESTAMP:
        if not (value.isascii() and value.isdigit() and 1 <= len(value) <= 19):
            return "must be Unix time in milliseconds, decimal digits only (e.g. 1758100350458)"
        return None
    if name == signing.HEADER_SIGNATURE:
        if signing.looks_like_base64_signature(value):
            return (
                "looks like base64; send lower-case hex: the 64-character hex HMAC-SHA256"
                " of the string to sign"
            )
        if not signing.is_signature_format(value):
            return "must be the 64-character hex HMAC-SHA256 of the string to sign"
        return None
    if name == signing.HEADER_STORE_TOKEN:
        return _printable(value, _MAX_TOKEN_LENGTH)
    return _printable(value, _MAX_ID_LENGTH)


def parse_headers(
    headers: Sequence[tuple[bytes, bytes]], *, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
) -> SignedHeaders:
    """Step 1: every signed header present exactly once and well-formed, and no header of any
    name longer than ``max_header_bytes``, else ``AUTH_001``."""
    found: dict[str, list[str]] = {name: [] for name in signing.SIGNED_HEADERS}
    problems: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        if len(raw_value) > max_header_bytes:
            problems[name[:64]] = f"is longer than {max_header_bytes} bytes"
        elif name in found:
            found[name].append(raw_value.decode("latin-1"))
    missing = [name for name, values in found.items() if not values and name not in problems]
    for name, values in found.items():
        if name in problems:
            continue
        if len(values) > 1:
            problems[name] = "is sent more than once"
        elif values:
            problem = _header_problem(name, values[0])
            if problem is not None:
                problems[name] = problem
    if missing or problems:
        hint = CATALOG["AUTH_001"].hint
        if problems:
            hint += ". " + "; ".join(f"{name} {why}" for name, why in problems.items())
        raise ApiError(
            "AUTH_001",
            hint=hint,
            context={
                "missingHeaders": missing,
                "invalidHeaders": list(problems),
                "headerErrors": problems,
            },
        )
    return SignedHeaders(*(found[name][0] for name in signing.SIGNED_HEADERS))
