"""The six authentication checks, in their order, each with its code; the body is read only
after the three that need none (headers, timestamp window, partner)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import signing
from catalog_store import MAX_ACTIVE_SECRETS, AuthRecord, Nonce

from .errors import ApiError
from .masking import mask_token, masked_string_to_sign
from .metrics import observe_clock_skew
from .signed_headers import DEFAULT_MAX_HEADER_BYTES, SignedHeaders, parse_headers

__all__ = [
    "AuthContext",
    "CredentialSource",
    "Decoys",
    "SignedHeaders",
    "authenticate",
    "make_decoy_keys",
    "mask_token",
    "masked_string_to_sign",
    "parse_headers",
    "verification_keys",
]

#: MAX_ACTIVE_SECRETS keys nobody holds (see :func:`make_decoy_keys`).
Decoys = tuple[bytes, ...]

# A replay record is kept this long past the last instant its x-timestamp can pass the window,
# and purged by the gateway's clock (the one that checks the window): a request whose window
# check passed at the very edge still finds the record when it writes its own, however long its
# body, its database round trips or a purge between the two take, and whatever the skew between
# the clocks of the processes sharing the database, up to this margin.
REPLAY_RECORD_MARGIN_MS = 300_000


def make_decoy_keys(random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> Decoys:
    """Keys nobody holds, drawn once per app: every signature of a known partner is checked
    with exactly MAX_ACTIVE_SECRETS HMACs, the partner's secrets topped up with these, so one
    secret or two, and any wrong signature, cost the same work. Never accepted even if
    matched."""
    return tuple(random_bytes(32) for _ in range(MAX_ACTIVE_SECRETS))


class CredentialSource(Protocol):
    """Where a request's credentials come from, with the decoy keys that top them up."""

    @property
    def decoys(self) -> Decoys: ...

    async def lookup(
        self, *, partner_client_id: str, store_client_id: str, store_token: str
    ) -> AuthRecord: ...


@dataclass(frozen=True, slots=True)
class AuthContext:
    partner_id: int
    store_id: int
    partner_client_id: str
    store_client_id: str
    nonce: Nonce
    #: The id of the partner's secret that verified the signature (never the secret).
    key_id: str = ""


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


def verification_keys(record: AuthRecord, decoys: Decoys) -> tuple[tuple[bytes, ...], int]:
    """The keys a signature is checked against, always :data:`MAX_ACTIVE_SECRETS` of them (the
    partner's secrets topped up with ``decoys``), and how many of the first ones are real (0 for
    an unknown or inactive partner)."""
    known = record.partner_id is not None and record.partner_active
    real = record.secrets[:MAX_ACTIVE_SECRETS] if known else ()
    return real + decoys[len(real) :], len(real)


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
    keys = verification_keys(record, credentials.decoys)
    matched = _verify(signed, keys, (method, path, query), body)
    # Only now is the timestamp the partner's own: nobody else moves the drift figures.
    observe_clock_skew((int(signed.timestamp) - now_ms) / 1000)
    store_id = _check_token(record, scope)
    context = AuthContext(
        partner_id=record.partner_id,
        store_id=store_id,
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


def _verify(
    signed: SignedHeaders,
    keys: tuple[tuple[bytes, ...], int],
    target: tuple[str, str, str],
    body: bytes,
) -> int:
    """Step 4: the index of the partner's secret that the signature matches, else ``AUTH_002``
    (a decoy's match included). ``target``: the method, path and query as sent."""
    method, path, query = target
    body_hash = signing.body_sha256(body)
    try:
        message: str | None = signing.string_to_sign(
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
    candidates, real = keys
    matched = signing.verify(signed.signature, message or "", candidates)
    if matched is None or matched >= real or message is None:
        # Every failing signature of a known partner recomputes the usual mistakes with both
        # keys: the same number of HMACs whatever its secrets or its mistake.
        mistake = signing.find_mistake(
            signed.signature, message or "", body=body, keys=candidates, real=real
        )
        raise _signature_mismatch(signed, message, body, body_hash, mistake)
    return matched


def _check_token(record: AuthRecord, scope: str) -> int:
    """Step 5: the store token is this store's, issued to this partner, with ``scope``;
    else ``AUTH_005``. Returns the store's id."""
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
    return record.store_id
