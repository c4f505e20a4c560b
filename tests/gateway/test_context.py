"""The typed request context: ids, clocks and timer come from the app factory; the canonical log
line and the metrics read what the route reported to the context, nothing else."""

from __future__ import annotations

import ast
import itertools
import uuid
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from prometheus_client import REGISTRY
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.context import RequestContext, request_context
from gateway.middleware import RequestContextMiddleware
from tests.support import DELETIONS, FakeClock, Tenant, delete, gateway_client

pytestmark = pytest.mark.anyio

_CAPTURE = [structlog.contextvars.merge_contextvars]


class _Steps:
    """A monotonic timer that moves a quarter of a second at every reading."""

    def __init__(self) -> None:
        self.readings = 0

    def __call__(self) -> float:
        self.readings += 1
        return (self.readings - 1) * 0.25


def _request_lines(logs: Sequence[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry.get("event") == "request"]


async def test_request_ids_come_from_the_id_source_given_to_the_factory(
    database_url: str, tenant: Tenant
) -> None:
    ids = (str(uuid.UUID(int=n)) for n in itertools.count(1))
    first, second = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))
    with structlog.testing.capture_logs(processors=_CAPTURE) as logs:
        async with gateway_client(database_url, new_id=lambda: next(ids)) as client:
            health = await client.get("/healthz")
            refused = await delete(client, tenant, {"ids": tenant.ids[:1]}, timestamp=1)
    assert (health.json()["requestId"], health.headers["x-request-id"]) == (first, first)
    assert (refused.json()["requestId"], refused.headers["x-request-id"]) == (second, second)
    assert refused.json()["error"]["code"] == "AUTH_003"
    assert [line["request_id"] for line in _request_lines(logs)] == [first, second]


async def test_a_dispatched_batch_id_comes_from_the_id_source_given_to_the_factory(
    database_url: str, tenant: Tenant
) -> None:
    """The request draws the first id and its batch the next: the store draws none itself."""
    ids = (str(uuid.UUID(int=n)) for n in itertools.count(1))
    async with gateway_client(database_url, new_id=lambda: next(ids)) as client:
        accepted = await delete(client, tenant, {"ids": tenant.ids[:2], "dispatch": True})
    assert accepted.status_code == 202
    assert accepted.json()["requestId"] == str(uuid.UUID(int=1))
    assert accepted.json()["data"]["batchId"] == str(uuid.UUID(int=2))


def test_ids_are_drawn_in_one_function_of_the_gateway_and_nowhere_in_the_store() -> None:
    """Only gateway/context.py's new_request_id calls uuid4: the server's own REQ_00x answers
    and the store's batches take their ids from it."""
    root = Path(__file__).resolve().parents[2]
    callers = sorted(
        str(path.relative_to(root))
        for package in ("gateway", "catalog_store", "signing")
        for path in (root / package).rglob("*.py")
        if any(
            isinstance(node, ast.Attribute | ast.Name)
            and getattr(node, "attr", getattr(node, "id", None)) == "uuid4"
            for node in ast.walk(ast.parse(path.read_text()))
        )
    )
    assert callers == ["gateway/context.py"]


async def test_durations_are_read_from_the_timer_given_to_the_factory(database_url: str) -> None:
    """Arrival, the answer's meta, the log line: three readings of a timer stepping 0.25 s."""
    with structlog.testing.capture_logs() as logs:
        async with gateway_client(database_url, timer=_Steps()) as client:
            health = await client.get("/healthz")
    assert health.json()["meta"]["durationMs"] == 250
    assert [line["duration_ms"] for line in _request_lines(logs)] == [500.0]


async def test_the_canonical_line_has_exactly_the_fields_of_a_deletion_and_of_a_dry_run(
    database_url: str, tenant: Tenant
) -> None:
    with structlog.testing.capture_logs() as logs:
        async with gateway_client(database_url) as client:
            dry = await delete(client, tenant, {"ids": tenant.ids[:2], "dryRun": True})
            real = await delete(client, tenant, {"ids": [*tenant.ids[:2], tenant.ids[0]]})
    assert (dry.status_code, real.status_code) == (200, 200)
    dry_line, real_line = _request_lines(logs)
    common = {"event", "log_level", "method", "route", "client", "status", "duration_ms"}
    who = {"partner", "store", "key_id", "clock_skew_ms"}
    assert set(dry_line) == common | who | {"dry_run", "would_delete", "would_fail"}
    assert (dry_line["dry_run"], dry_line["would_delete"], dry_line["would_fail"]) == (True, 2, 0)
    assert set(real_line) == common | who | {"succeeded", "failed"}
    assert (real_line["succeeded"], real_line["failed"], real_line["route"]) == (2, 1, DELETIONS)
    assert (real_line["partner"], real_line["store"]) == (
        tenant.partner_client_id,
        tenant.store_client_id,
    )


def _app_reporting(report: str) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        context = request_context(Request(scope, receive))
        context.route = "/reported"
        context.authenticated(partner="p-1", store="s-1", key_id="k1")
        structlog.get_logger("test").info("inside")
        if report == "deleted":
            context.deleted_entries(deleted=3, failed=1)
        else:
            context.dry_run(would_delete=5, would_fail=2)
        await Response(b"{}", media_type="application/json")(scope, receive, send)

    return app


def _entries(outcome: str) -> float:
    value = REGISTRY.get_sample_value("gateway_entries_total", {"mode": "sync", "outcome": outcome})
    return value or 0.0


@pytest.mark.parametrize(("report", "counted"), [("deleted", (3, 1)), ("dry run", (0, 0))])
async def test_entries_are_counted_from_what_the_route_reports(
    report: str, counted: tuple[int, int]
) -> None:
    """A deletion's counts reach gateway_entries; a dry run's figures, logged, never do; and
    every line logged while the request is served says who sent it."""
    middleware = RequestContextMiddleware(
        _app_reporting(report), clock=FakeClock(), new_id=lambda: "req-x"
    )
    before = (_entries("deleted"), _entries("failed"))
    with structlog.testing.capture_logs(processors=_CAPTURE) as logs:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=middleware), base_url="http://gateway"
        ) as client:
            assert (await client.get("/reported")).status_code == 200
    after = (_entries("deleted"), _entries("failed"))
    assert (after[0] - before[0], after[1] - before[1]) == counted
    (inside,) = [entry for entry in logs if entry["event"] == "inside"]
    assert {k: inside[k] for k in ("request_id", "partner", "store", "key_id")} == {
        "request_id": "req-x",
        "partner": "p-1",
        "store": "s-1",
        "key_id": "k1",
    }
    (line,) = _request_lines(logs)
    assert line["route"] == "/reported"
    assert ("succeeded" in line, "would_delete" in line) == (
        report == "deleted",
        report != "deleted",
    )


async def test_a_context_left_empty_adds_no_field_to_the_line() -> None:
    context = RequestContext(
        request_id="r", clock=FakeClock(), timer=lambda: 0.0, started=0.0, arrived_ms=0
    )
    assert context.log_fields() == {}
