"""The outermost layer: a request id on every answer, and no stack trace even for a bug."""

from __future__ import annotations

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from gateway.middleware import RequestContextMiddleware
from tests.support import FakeClock, assert_error

pytestmark = pytest.mark.anyio


async def _buggy_app(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("a bug with a secret-looking value psk_do_not_show")


async def test_an_unhandled_exception_becomes_sys_002_without_a_trace() -> None:
    app = RequestContextMiddleware(_buggy_app, clock=FakeClock())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as client:
        response = await client.get("/anything")
    assert_error(
        response,
        500,
        "SYS_002",
        "Internal error",
        hint="An unexpected error. Report the requestId to the gateway operator",
        context={},
    )
    assert "psk_do_not_show" not in response.text
    assert "Traceback" not in response.text
