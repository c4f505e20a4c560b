"""A stalled database: every request's database work under a client-side deadline, and what
SYS_001 then tells the partner."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

import catalog_store

__all__ = ["DatabaseDeadline", "stalled_hint"]


class DatabaseDeadline:
    """Bound every database round of an HTTP request to ``seconds`` (a route may set its own
    bound for its own work, as the dispatch does)."""

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with catalog_store.deadline(self.seconds if scope["type"] == "http" else None):
            await self.app(scope, receive, send)


_UNCHANGED = (
    "The database did not answer in time; nothing was changed. Retry after Retry-After seconds"
)
_UNKNOWN = (
    "The database did not confirm the commit of this request's changes: they may have been"
    " committed, all or nothing. Retry after Retry-After seconds with the same"
    " idempotency-key: its answer tells which"
)


def stalled_hint(outcome: str) -> str:
    """The SYS_001 hint of a request cut at its deadline (or failed after its commit went)."""
    return _UNKNOWN if outcome == catalog_store.UNKNOWN else _UNCHANGED
