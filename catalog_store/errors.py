"""Errors raised by the catalog store.

StoreError
 ├── StoreUnavailable   the database cannot be reached or failed the work; ``outcome`` says
 │    │                 whether anything may have changed
 │    └── DeadlineExceeded  the database did not answer within the deadline (the connection
 │                          was cut and discarded)
 ├── Replayed           the signature was already accepted inside the window
 ├── RateLimited        the partner is over its request rate or its open batches
 ├── UnknownClient      a partner or store client id that does not exist
 ├── IdempotencyError
 │    ├── IdempotencyMismatch    the key already answered a request with another body
 │    └── IdempotencyInProgress  the key's first request is still running
 ├── CredentialError    a rotation, retirement or revocation that cannot be done
 ├── SecretUnreadable   a sealed partner secret does not open with the server key
 └── MigrationError     a migration file could not be applied
"""

from __future__ import annotations

__all__ = [
    "CredentialError",
    "DeadlineExceeded",
    "IdempotencyError",
    "IdempotencyInProgress",
    "IdempotencyMismatch",
    "MigrationError",
    "RateLimited",
    "Replayed",
    "SecretUnreadable",
    "StoreError",
    "StoreUnavailable",
    "UnknownClient",
]


class StoreError(Exception):
    """Base class of every error raised by :mod:`catalog_store`."""


#: A failed transaction changed nothing ...
UNCHANGED = "unchanged"
#: ... or it may have committed, all or nothing: its commit had been sent when it failed.
UNKNOWN = "unknown"


class StoreUnavailable(StoreError):
    """The database could not be reached, or it failed mid-work. ``outcome`` is
    :data:`UNCHANGED` when nothing can have committed (rolled back, or never sent), and
    :data:`UNKNOWN` when the failure came after the commit was sent."""

    def __init__(self, message: str, *, outcome: str = UNCHANGED) -> None:
        super().__init__(message)
        self.outcome = outcome


class DeadlineExceeded(StoreUnavailable):
    """The database did not answer within the deadline: the connection was cut (a cancel
    request sent where the server takes one) and discarded, never lent again."""


class Replayed(StoreError):
    """A signature already recorded for this partner; the transaction was rolled back."""


class MigrationError(StoreError):
    """A migration failed; ``name`` is the file that failed."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"migration {name} failed: {reason}")
        self.name = name


class UnknownClient(StoreError, LookupError):
    """A partner or store client id that does not exist."""


class IdempotencyError(StoreError):
    """An idempotency key decided the request's fate; ``key`` is the key as sent."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r}")
        self.key = key


class IdempotencyMismatch(IdempotencyError):
    """The key already answered a request with another body; nothing changed."""


class IdempotencyInProgress(IdempotencyError):
    """Another request with the key is running; nothing changed."""


class CredentialError(StoreError):
    """A credential change that cannot be made (a third secret, retiring the last one...)."""


class SecretUnreadable(StoreError):
    """A sealed secret that the server key cannot open: another key, another row, or damage."""

    def __init__(self, partner_id: int, key_id: str) -> None:
        super().__init__(f"partner {partner_id} secret {key_id} does not open with the server key")
        self.partner_id = partner_id
        self.key_id = key_id


class RateLimited(StoreError):
    """Over a per-partner limit; nothing was recorded. ``retry_after`` is in whole seconds."""

    def __init__(self, kind: str, *, limit: int, retry_after: int) -> None:
        super().__init__(f"{kind} limit of {limit} reached")
        self.kind = kind  # "requests" or "batches"
        self.limit = limit
        self.retry_after = retry_after
