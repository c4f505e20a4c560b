"""The six authentication checks, in their order, each with its code; the body is read only
after the three that need none (headers, timestamp window, partner)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import signing
from catalog_store import MAX_ACTIVE_SECRETS, AuthRecord, Nonce

from .errors import CATALOG, ApiError
from .masking import mask_token, masked_string_to_sign
from .metrics import observe_clock_skew

__all__ = [
    "AuthContext",
    "CredentialSource",
    "SignedHeaders",
    "verification_keys",
    "authenticate",
    "mask_token",
    "masked_string_to_sign",
    "parse_headers",
]

_MAX_ID_LENGTH = 128
_MAX_TOKEN_LENGTH = 512
DEFAULT_MAX_HEADER_BYTES = 8192
# A replay record is kept this long past the last instant its x-timestamp can pass the window,
# and purged by the gateway's clock (the one that checks the window): a request whose window
# check passed at the very edge still finds the record when it writes its own, however long its
# body, its database round trips or a purge between the two take, and whatever the skew between
# the clocks of the processes sharing the database, up to this margin.
REPLAY_RECORD_MARGIN_MS = 300_000
# Every signature of a known partner is checked with exactly MAX_ACTIVE_SECRETS HMACs: the
# partner's secrets, topped up with keys nobody holds, so one secret or two, and any wrong
# signature, cost the same work. Random per process, and never accepted even if matched.
_DECOY_KEYS: tuple[bytes, ...] = tuple(secrets.token_bytes(32) for _ in range(MAX_ACTIVE_SECRETS))


class CredentialSource(Protocol):
    async def lookup(
        self, *, partner_client_id: str, store_client_id: str, store_token: str
    ) -> AuthRecord: ...


@dataclass(frozen=True, slots=True)
class SignedHeaders:
    partner_client_id: str
    store_client_id: str
    store_token: str
    timestamp: str
    signature: str


@dataclass(frozen=True, slots=True)
class AuthContext:
    partner_id: int
    store_id: int
    partner_client_id: str
    store_client_id: str
    nonce: Nonce
    #: The id of the partner's secret that verified the signature (never the secret).
    key_id: str = ""


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


def _check_window(timestamp: str, now_ms: int) -> None:
    check = signing.check_timestamp(timestamp, now_ms=now_ms)
    if check.within_window:
        return
    hint = "Request timestamp must be within 300 seconds"
    if check.looks_like_seconds:
        hint += (
            f". x-timestamp {timestamp} looks like seconds: send Unix time in milliseconds,"
            f" e.g. {timestamp}000"
        )
    else:
        # ageSeconds > 0: the timestamp is in the past, so the partner's clock is behind.
        side = "behind" if check.age_seconds >= 0 else "ahead of"
        hint += (
            f". By the x-timestamp sent, your clock is {abs(check.age_seconds)} s {side}"
            " the gateway's"
        )
    raise ApiError(
        "AUTH_003",
        hint=hint,
        context={
            "providedTimestamp": check.provided_ms,
            "currentTime": check.now_ms,
            "ageSeconds": check.age_seconds,
        },
    )


def verification_keys(record: AuthRecord) -> tuple[tuple[bytes, ...], int]:
    """The keys a signature is checked against, always :data:`MAX_ACTIVE_SECRETS` of them, and
    how many of the first ones are real (0 for an unknown or inactive partner)."""
    known = record.partner_id is not None and record.partner_active
    real = record.secrets[:MAX_ACTIVE_SECRETS] if known else ()
    return real + _DECOY_KEYS[len(real) :], len(real)


def _signature_mismatch(
    signed: SignedHeaders,
    message: str | None,
    body: bytes,
    body_hash: str,
    mistake: signing.Mistake | None,
) -> ApiError:
    """``AUTH_002``: the server's string to sign (token masked), the body's length and hash, the
    signature as sent and, when the partner's secret gives it for a usual mistake, its name."""
    hint = None
    if mistake is not None:
        hint = (
            f"The signature does not match: {mistake.advice} (context.likelyCause"
            f" {mistake.cause}). Compare your string to sign with context.stringToSign"
            " (store token masked) and your body hash with context.bodySha256"
        )
    return ApiError(
        "AUTH_002",
        hint=hint,
        context={
            "stringToSign": None
            if message is None
            else masked_string_to_sign(message, signed.store_token),
            "bodySha256": body_hash,
            "bodyLength": len(body),
            "signatureProvided": signed.signature,
            "likelyCause": None if mistake is None else mistake.cause,
        },
    )


async def _lookup(credentials: CredentialSource, signed: SignedHeaders) -> AuthRecord:
    """The request's credentials; a secret that does not open with the server key raises
    :class:`~catalog_store.SecretUnreadable`, answered ``SYS_001`` by the app."""
    return await credentials.lookup(
        partner_client_id=signed.partner_client_id,
        store_client_id=signed.store_client_id,
        store_token=signed.store_token,
    )


async def authenticate(
    credentials: CredentialSource,
    *,
    method: str,
    path: str,
    query: str,
    headers: Sequence[tuple[bytes, bytes]],
    read_body: Callable[[], Awaitable[bytes]],
    now_ms: int,
    scope: str,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
) -> tuple[AuthContext, bytes]:
    """Run steps 1 to 5 of the checks and return the raw body with who sent it; step 6
    (replay) commits with the request's own work. ``read_body`` is awaited only once the
    headers, the window and the partner have passed: nobody unknown makes the gateway hold a
    body."""
    signed = parse_headers(headers, max_header_bytes=max_header_bytes)
    _check_window(signed.timestamp, now_ms)
    record = await _lookup(credentials, signed)
    if record.partner_id is None or not record.partner_active:
        raise ApiError("AUTH_004")
    body = await read_body()
    body_hash = signing.body_sha256(body)
    try:
        message = signing.string_to_sign(
            method=method,
            path=path,
            query=query,
            partner_client_id=signed.partner_client_id,
            store_client_id=signed.store_client_id,
            store_token=signed.store_token,
            timestamp=signed.timestamp,
            body_hash=body_hash,
        )
    except signing.MalformedInput:
        # Only a path or query with a line break gets here: nobody can have signed it.
        message = None
    keys, real = verification_keys(record)
    matched = signing.verify(signed.signature, message or "", keys)
    if matched is None or matched >= real or message is None:
        # Every failing signature of a known partner recomputes the usual mistakes with both
        # keys: the same number of HMACs whatever its secrets or its mistake.
        mistake = signing.find_mistake(
            signed.signature, message or "", body=body, keys=keys, real=real
        )
        raise _signature_mismatch(signed, message, body, body_hash, mistake)
    # Only now is the timestamp the partner's own: nobody else moves the drift figures.
    observe_clock_skew((int(signed.timestamp) - now_ms) / 1000)
    token_ok = (
        record.store_id is not None
        and record.token_store_id == record.store_id
        and record.token_partner_id == record.partner_id
    )
    if not token_ok or record.store_id is None:
        raise ApiError("AUTH_005")
    if scope not in record.token_scopes:
        raise ApiError(
            "AUTH_005",
            hint=f"This token lacks the scope {scope}; ask the store for a token that has it",
            context={"missingScope": scope},
        )
    context = AuthContext(
        partner_id=record.partner_id,
        store_id=record.store_id,
        partner_client_id=signed.partner_client_id,
        store_client_id=signed.store_client_id,
        nonce=Nonce(
            partner_id=record.partner_id,
            signature=bytes.fromhex(signed.signature),
            expires_at_ms=int(signed.timestamp) + signing.WINDOW_MS + REPLAY_RECORD_MARGIN_MS,
            received_at_ms=now_ms,
        ),
        key_id=record.key_ids[matched] if matched < len(record.key_ids) else "",
    )
    return context, body
