"""Errors raised by the catalog store.

StoreError
 ├── StoreUnavailable   the database cannot be reached or failed the statement; nothing changed
 ├── Replayed           the signature was already accepted inside the window
 ├── UnknownClient      a partner or store client id that does not exist
 └── MigrationError     a migration file could not be applied
"""

from __future__ import annotations

__all__ = ["MigrationError", "Replayed", "StoreError", "StoreUnavailable", "UnknownClient"]


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
