"""The usual signing mistakes, named: what a partner signed instead, recomputed to find which.

Only a signature that failed is looked at here. For each of the partner's keys, every mistake is
recomputed, always all of them, so that a failing signature costs the same number of HMACs
whatever it is and whatever it matches (:data:`HMACS_PER_KEY` per key).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import string
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from . import canonical

__all__ = [
    "BODY_MISTAKES_MAX_BYTES",
    "HMACS_PER_KEY",
    "MISTAKES",
    "Mistake",
    "find_mistake",
    "looks_like_base64_signature",
    "mistaken_keys",
    "mistaken_messages",
]

#: The body's newline mistakes are looked for only in bodies of at most this many bytes (64 KiB,
#: more than a 1,000-entry request); a larger body pays the same number of HMACs without them.
BODY_MISTAKES_MAX_BYTES = 65_536


@dataclass(frozen=True, slots=True)
class Mistake:
    """One usual mistake: its ``likelyCause`` value and what to do about it."""

    cause: str
    advice: str


BODY_NEWLINE_ADDED = Mistake(
    "body-newline-added",
    "you signed the body with a trailing newline that the body you sent does not have:"
    " hash exactly the bytes you send",
)
BODY_NEWLINE_REMOVED = Mistake(
    "body-newline-removed",
    "the body you sent ends with a newline that your signed body did not have:"
    " hash exactly the bytes you send",
)
CRLF_JOINS = Mistake(
    "crlf-line-joins",
    "you joined the eight lines with CR LF (\\r\\n): join them with LF (\\n) alone",
)
TIMESTAMP_IN_SECONDS = Mistake(
    "timestamp-in-seconds",
    "you signed line 7 in seconds while x-timestamp is in milliseconds:"
    " sign the x-timestamp value exactly as sent",
)
QUERY_OMITTED = Mistake(
    "query-omitted",
    "you left line 3 empty: sign the query string exactly as sent, without the '?'",
)
QUERY_SORTED = Mistake(
    "query-sorted",
    "you signed the query parameters sorted: sign them in the order you send them",
)
QUERY_DECODED = Mistake(
    "query-decoded",
    "you signed the query percent-decoded: sign it exactly as sent, still encoded",
)
PATH_WITH_QUERY = Mistake(
    "path-with-query",
    "you signed the path with its query on line 2: line 2 is the path alone,"
    " the query goes on line 3",
)
METHOD_LOWER_CASE = Mistake(
    "method-lower-case",
    "you signed the method in lower case: line 1 is the method in upper case (POST, GET)",
)
SECRET_HEX_DECODED = Mistake(
    "secret-hex-decoded",
    "you keyed the HMAC with your secret decoded from hex: use the UTF-8 bytes of the whole"
    " secret, prefix included, as the key",
)
SECRET_BASE64_DECODED = Mistake(
    "secret-base64-decoded",
    "you keyed the HMAC with your secret decoded from base64: use the UTF-8 bytes of the whole"
    " secret, prefix included, as the key",
)

#: The mistakes of the string to sign, in the order of :func:`mistaken_messages`.
_MESSAGE_MISTAKES = (
    BODY_NEWLINE_ADDED,
    BODY_NEWLINE_REMOVED,
    CRLF_JOINS,
    TIMESTAMP_IN_SECONDS,
    QUERY_OMITTED,
    QUERY_SORTED,
    QUERY_DECODED,
    PATH_WITH_QUERY,  # line 3 still the query
    PATH_WITH_QUERY,  # line 3 left empty
    METHOD_LOWER_CASE,
)
#: The mistakes of the key, in the order of :func:`mistaken_keys`.
_KEY_MISTAKES = (SECRET_HEX_DECODED, SECRET_BASE64_DECODED)

#: Every mistake looked for, each once, in the order they are tried.
MISTAKES: tuple[Mistake, ...] = tuple(dict.fromkeys(_MESSAGE_MISTAKES + _KEY_MISTAKES))

#: HMACs computed per key for a failing signature, whatever it matches.
HMACS_PER_KEY = len(_MESSAGE_MISTAKES) + len(_KEY_MISTAKES)

_LINES = 8
_BASE64 = frozenset(string.ascii_letters + string.digits + "+/-_")
_HEX_DIGITS = frozenset(string.hexdigits)


def _hash_with_newline_added(body: bytes) -> str:
    return hashlib.sha256(body + b"\n").hexdigest()


def _hash_with_newline_removed(body: bytes) -> str | None:
    for ending in (b"\r\n", b"\n"):
        if body.endswith(ending):
            return hashlib.sha256(body[: -len(ending)]).hexdigest()
    return None


def mistaken_messages(message: str, *, body: bytes) -> tuple[str, ...]:
    """The strings a partner may have signed instead of ``message`` (the right one, built for
    the request with ``body``), one per entry of the message mistakes, in their order.

    Where a mistake cannot apply (no query, a body over :data:`BODY_MISTAKES_MAX_BYTES`, a
    malformed ``message``), its entry is ``message`` itself, so the count never changes.
    """
    lines = message.split("\n")
    if len(lines) != _LINES:
        return (message,) * len(_MESSAGE_MISTAKES)
    method, path, query, _, _, _, timestamp, _ = lines

    def with_lines(**changed: str) -> str:
        names = ("method", "path", "query", "p", "s", "t", "timestamp", "body_hash")
        return "\n".join(changed.get(name, line) for name, line in zip(names, lines, strict=True))

    added: str | None = None
    removed: str | None = None
    if len(body) <= BODY_MISTAKES_MAX_BYTES:
        added = _hash_with_newline_added(body)
        removed = _hash_with_newline_removed(body)
    sorted_query = "&".join(sorted(query.split("&")))
    decoded_query = unquote(query)
    candidates = (
        with_lines(body_hash=added) if added else None,
        with_lines(body_hash=removed) if removed else None,
        "\r\n".join(lines),
        with_lines(timestamp=timestamp[:-3]) if len(timestamp) > 3 else None,
        with_lines(query="") if query else None,
        with_lines(query=sorted_query) if sorted_query != query else None,
        with_lines(query=decoded_query) if decoded_query != query else None,
        with_lines(path=f"{path}?{query}") if query else None,
        with_lines(path=f"{path}?{query}", query="") if query else None,
        with_lines(method=method.lower()) if method.lower() != method else None,
    )
    return tuple(message if candidate is None else candidate for candidate in candidates)


def _lenient_base64(text: str) -> bytes:
    """Decode as the lenient decoders do (Node's ``Buffer.from(s, 'base64')``): URL-safe or
    standard alphabet, other characters skipped, stop at ``=``, a dangling character dropped."""
    kept = "".join(c for c in text.split("=", 1)[0] if c in _BASE64)
    kept = kept.replace("-", "+").replace("_", "/")
    if len(kept) % 4 == 1:
        kept = kept[:-1]
    return base64.b64decode(kept + "=" * (-len(kept) % 4))


def mistaken_keys(key: bytes) -> tuple[bytes, bytes]:
    """The keys a partner may have used instead of the UTF-8 bytes of its secret ``key``: the
    hex digits after its prefix decoded, and the whole secret decoded as base64. Where one cannot
    apply, its entry is ``key`` itself."""
    try:
        text = key.decode("ascii")
    except UnicodeDecodeError:
        return key, key
    digits = text.rsplit("_", 1)[-1]
    hex_key = key
    if digits and len(digits) % 2 == 0 and set(digits) <= _HEX_DIGITS:
        hex_key = bytes.fromhex(digits)
    try:
        base64_key = _lenient_base64(text) or key
    except binascii.Error:
        base64_key = key
    return hex_key, base64_key


def find_mistake(
    signature: str, message: str, *, body: bytes, keys: Sequence[bytes], real: int
) -> Mistake | None:
    """Name the mistake that produced ``signature``, which failed against ``message``.

    Every mistake is recomputed with every key in ``keys``, always: exactly
    ``len(keys) * HMACS_PER_KEY`` HMACs, each compared in constant time. Only a match with one
    of the first ``real`` keys (the partner's own secrets) counts. A match proves that the
    signer holds that secret, so naming the mistake tells nothing to anyone who does not.
    """
    expected = signature.lower().encode("ascii", "replace")
    messages = mistaken_messages(message, body=body)
    found: Mistake | None = None
    for index, key in enumerate(keys):
        tries = [
            (mistake, key, text) for mistake, text in zip(_MESSAGE_MISTAKES, messages, strict=True)
        ]
        tries += [(m, k, message) for m, k in zip(_KEY_MISTAKES, mistaken_keys(key), strict=True)]
        for mistake, used_key, text in tries:
            computed = canonical.sign(used_key, text).encode("ascii")
            if hmac.compare_digest(computed, expected) and found is None and index < real:
                found = mistake
    return found


def looks_like_base64_signature(value: str) -> bool:
    """True when ``value`` is base64 (either alphabet, padded or not) of the 32 bytes of an
    HMAC-SHA256, or of its 64 hex characters: the digest was sent base64-encoded, not as hex."""
    if len(value) not in (43, 44, 86, 87, 88) or not set(value.rstrip("=")) <= _BASE64:
        return False
    if len(value) in (44, 88) and not value.endswith("="):
        return False
    try:
        decoded = _lenient_base64(value)
    except binascii.Error:
        return False
    if len(decoded) == 32:
        return True
    return len(decoded) == 64 and set(decoded.decode("latin-1")) <= _HEX_DIGITS
