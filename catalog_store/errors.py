"""Errors raised by the catalog store.

StoreError
 ├── StoreUnavailable   the database cannot be reached or failed the statement; nothing changed
 ├── Replayed           the signature was already accepted inside the window
 ├── UnknownClient      a partner or store client id that does not exist
 ├── IdempotencyError
 │    ├── IdempotencyMismatch    the key already answered a request with another body
 │    ├── IdempotencyInProgress  the key's first request is still running
 │    └── AnsweredBefore         the key already answered this body; carries that answer
 └── MigrationError     a migration file could not be applied
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .idempotency import StoredResponse

__all__ = [
    "AnsweredBefore",
    "IdempotencyError",
    "IdempotencyInProgress",
    "IdempotencyMismatch",
    "MigrationError",
    "Replayed",
    "StoreError",
    "StoreUnavailable",
    "UnknownClient",
]


class StoreError(Exception):
    """Base class of every error raised by :mod:`catalog_store`."""


class StoreUnavailable(StoreError):
    """The database could not be reached, or it failed mid-transaction (rolled back)."""


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


class AnsweredBefore(IdempotencyError):
    """The key already answered this body: ``response`` is that answer, to send again. Only
    the new request's replay record was committed."""

    def __init__(self, key: str, response: StoredResponse) -> None:
        super().__init__(key)
        self.response = response
