"""The typed context of one HTTP request: its id, its clocks, its route, who sent it and what
it did, as the canonical log line and the metrics read them.

The outermost middleware makes one :class:`RequestContext` per request and puts it in the ASGI
scope; everything below reaches it by :func:`request_context`. Who sent the request is bound
with structlog's contextvars too, so every line logged while it is served carries it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.requests import Request

__all__ = [
    "Clock",
    "IdSource",
    "RequestContext",
    "Timer",
    "new_request_id",
    "request_context",
]

#: Wall-clock time in Unix milliseconds: timestamps, and the signature's time window.
Clock = Callable[[], int]
#: Monotonic seconds: how long a request has taken (its duration, its body deadline).
Timer = Callable[[], float]
#: A new request id, as the partner sees it.
IdSource = Callable[[], str]

_SCOPE_KEY = "gateway.context"


def new_request_id() -> str:
    """A random UUID (version 4), as text: the one place request ids are drawn."""
    return str(uuid.uuid4())


@dataclass(slots=True, eq=False)
class RequestContext:
    """One request as the gateway saw it; fields left ``None`` stay out of its log line."""

    request_id: str
    clock: Clock
    timer: Timer
    #: ``timer()`` and ``clock()`` when the request arrived.
    started: float
    arrived_ms: int
    #: Draws the ids the gateway gives out while serving the request (a dispatched batch's).
    new_id: IdSource = new_request_id
    #: The route's template, set by a signed route (the metrics label and the log's route).
    route: str | None = None
    #: The error code answered, if any.
    code: str | None = None
    partner: str | None = None
    store: str | None = None
    key_id: str | None = None
    #: Entries of a synchronous deletion answered 200: deleted, and item errors.
    deleted: int | None = None
    failed: int | None = None
    #: A dry run's entries that would be deleted, and that would not.
    would_delete: int | None = None
    would_fail: int | None = None
    #: A dispatched batch: its id and its entries.
    batch_id: str | None = None
    total: int | None = None
    #: An idempotent replay: the request id of the answer repeated.
    replay_of: str | None = None

    def now_ms(self) -> int:
        return self.clock()

    def elapsed(self) -> float:
        """Seconds since the request arrived."""
        return self.timer() - self.started

    def authenticated(self, *, partner: str, store: str, key_id: str) -> None:
        """Who sent the request: on its log line and on every line logged while it is served."""
        self.partner, self.store, self.key_id = partner, store, key_id
        structlog.contextvars.bind_contextvars(partner=partner, store=store, key_id=key_id)

    def deleted_entries(self, *, deleted: int, failed: int) -> None:
        """The entries a synchronous deletion deleted and failed (counted by the metrics)."""
        self.deleted, self.failed = deleted, failed

    def dry_run(self, *, would_delete: int, would_fail: int) -> None:
        """A dry run's figures: logged, never counted as entries deleted."""
        self.would_delete, self.would_fail = would_delete, would_fail

    def dispatched(self, *, batch_id: str, total: int) -> None:
        self.batch_id, self.total = batch_id, total

    def log_fields(self) -> dict[str, Any]:
        """The fields this request adds to its canonical log line (route and timing aside)."""
        fields: dict[str, Any] = {}
        if self.code is not None:
            fields["code"] = self.code
        if self.partner is not None:
            fields["partner"] = self.partner
            fields["store"] = self.store
            fields["key_id"] = self.key_id
        if self.deleted is not None:
            fields["succeeded"] = self.deleted
            fields["failed"] = self.failed
        if self.would_delete is not None:
            fields["dry_run"] = True
            fields["would_delete"] = self.would_delete
            fields["would_fail"] = self.would_fail
        if self.batch_id is not None:
            fields["batch_id"] = self.batch_id
            fields["total"] = self.total
        if self.replay_of is not None:
            fields["replay_of"] = self.replay_of
        return fields

    def attach(self, scope: MutableMapping[str, Any]) -> None:
        scope[_SCOPE_KEY] = self


def request_context(request: Request) -> RequestContext:
    """The context the middleware made for this request."""
    context: RequestContext = request.scope[_SCOPE_KEY]
    return context
