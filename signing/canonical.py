"""The contract's string to sign, HMAC-SHA256 signing and constant-time verification."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import MalformedInput

__all__ = [
    "EMPTY_BODY_SHA256",
    "HEADER_PARTNER_CLIENT_ID",
    "HEADER_SIGNATURE",
    "HEADER_STORE_CLIENT_ID",
    "HEADER_STORE_TOKEN",
    "HEADER_TIMESTAMP",
    "SIGNED_HEADERS",
    "RequestParts",
    "body_sha256",
    "is_signature_format",
    "sign",
    "sign_request",
    "string_to_sign",
    "verify",
]

HEADER_PARTNER_CLIENT_ID = "x-partner-client-id"
HEADER_STORE_CLIENT_ID = "x-store-client-id"
HEADER_STORE_TOKEN = "x-store-token"
HEADER_TIMESTAMP = "x-timestamp"
HEADER_SIGNATURE = "x-signature"

#: The five headers every signed request carries, in the order the contract lists them.
SIGNED_HEADERS = (
    HEADER_PARTNER_CLIENT_ID,
    HEADER_STORE_CLIENT_ID,
    HEADER_STORE_TOKEN,
    HEADER_TIMESTAMP,
    HEADER_SIGNATURE,
)

EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()

_HEX = frozenset("0123456789abcdefABCDEF")
_DIGITS = frozenset("0123456789")
_MAX_TIMESTAMP_DIGITS = 19


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestParts:
    """The eight inputs of a string to sign, the body already hashed."""

    method: str
    path: str
    query: str
    partner_client_id: str
    store_client_id: str
    store_token: str
    timestamp: str
    body_hash: str

    def string_to_sign(self) -> str:
        """Join the eight lines with LF, after checking each one (see :func:`string_to_sign`)."""
        return string_to_sign(
            method=self.method,
            path=self.path,
            query=self.query,
            partner_client_id=self.partner_client_id,
            store_client_id=self.store_client_id,
            store_token=self.store_token,
            timestamp=self.timestamp,
            body_hash=self.body_hash,
        )


def body_sha256(body: bytes) -> str:
    """Return the lowercase hex SHA-256 of the raw body bytes (line 8 of the string to sign)."""
    return hashlib.sha256(body).hexdigest()


def _check_line(field: str, value: str, *, allow_empty: bool = False) -> None:
    if not value and not allow_empty:
        raise MalformedInput(field, "must not be empty")
    if "\n" in value or "\r" in value:
        raise MalformedInput(field, "must not contain a line break")


def string_to_sign(
    *,
    method: str,
    path: str,
    query: str,
    partner_client_id: str,
    store_client_id: str,
    store_token: str,
    timestamp: str,
    body_hash: str,
) -> str:
    """Build the contract's string to sign: eight lines joined by LF, no trailing newline.

    The method is upper-cased; everything else is used exactly as given, nothing is decoded,
    re-encoded or sorted. Raises :class:`MalformedInput` for any value that would let two
    different requests produce the same string: a line break in any line, a timestamp that is
    not 1 to 19 decimal digits, a body hash that is not 64 lowercase hex characters, a path not
    starting with ``/`` or a query starting with ``?``.
    """
    _check_line("method", method)
    if not method.isascii() or not method.isalpha():
        raise MalformedInput("method", "must be an HTTP method name such as POST")
    _check_line("path", path)
    if not path.startswith("/"):
        raise MalformedInput("path", "must start with '/'")
    if "?" in path:
        raise MalformedInput("path", "must not contain the query; pass it as query")
    _check_line("query", query, allow_empty=True)
    if query.startswith("?"):
        raise MalformedInput("query", "must not start with '?'")
    _check_line(HEADER_PARTNER_CLIENT_ID, partner_client_id)
    _check_line(HEADER_STORE_CLIENT_ID, store_client_id)
    _check_line(HEADER_STORE_TOKEN, store_token)
    if not timestamp or len(timestamp) > _MAX_TIMESTAMP_DIGITS or not set(timestamp) <= _DIGITS:
        raise MalformedInput(
            HEADER_TIMESTAMP, "must be Unix time in milliseconds, 1 to 19 decimal digits"
        )
    if len(body_hash) != 64 or not set(body_hash) <= _HEX or body_hash != body_hash.lower():
        raise MalformedInput("body hash", "must be 64 lowercase hex characters")
    return "\n".join(
        (
            method.upper(),
            path,
            query,
            partner_client_id,
            store_client_id,
            store_token,
            timestamp,
            body_hash,
        )
    )


def _key_bytes(key: str | bytes) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else key


def sign(key: str | bytes, message: str) -> str:
    """Return the lowercase hex HMAC-SHA256 of ``message`` (UTF-8) keyed with ``key`` (UTF-8)."""
    return hmac.new(_key_bytes(key), message.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_request(
    key: str | bytes,
    *,
    method: str,
    path: str,
    query: str,
    partner_client_id: str,
    store_client_id: str,
    store_token: str,
    timestamp: str,
    body: bytes,
) -> str:
    """Sign a whole request: hash the body, build the string to sign, return the hex signature."""
    message = string_to_sign(
        method=method,
        path=path,
        query=query,
        partner_client_id=partner_client_id,
        store_client_id=store_client_id,
        store_token=store_token,
        timestamp=timestamp,
        body_hash=body_sha256(body),
    )
    return sign(key, message)


def is_signature_format(signature: str) -> bool:
    """True when ``signature`` is 64 hex characters, lower- or upper-case."""
    return len(signature) == 64 and set(signature) <= _HEX


def verify(signature: str, message: str, keys: Sequence[str | bytes]) -> int | None:
    """Return the index of the key in ``keys`` whose HMAC of ``message`` equals ``signature``.

    Upper-case hex is accepted. Every key is tried and every comparison is constant-time, so
    the time taken depends only on how many keys there are, never on which one matched or how
    much of the signature was right. Returns ``None`` when no key matches or the signature is
    not 64 hex characters.
    """
    expected = signature.lower().encode("ascii", "replace")
    if not is_signature_format(signature):
        # Still do the work, so a malformed signature costs what a wrong one costs.
        expected = b"0" * 64
        well_formed = False
    else:
        well_formed = True
    matched: int | None = None
    for index, key in enumerate(keys):
        computed = sign(key, message).encode("ascii")
        if hmac.compare_digest(computed, expected) and matched is None:
            matched = index
    return matched if well_formed else None
