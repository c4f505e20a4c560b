"""Schemathesis against `/openapi.json` of a real `serve` process, with a hook that signs each
generated request exactly as sent: no 500, and every response conforms to the document."""

from __future__ import annotations

import contextvars
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

import signing
from tests.live import Server, serving
from tests.support import Tenant, make_tenant, run_with_pool

pytestmark = pytest.mark.slow

_MAX_EXAMPLES = 60 if os.environ.get("CI") else 25  # as the hypothesis profiles of conftest
_signer: contextvars.ContextVar[Tenant | None] = contextvars.ContextVar("signer", default=None)
_CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


class Sign(requests.auth.AuthBase):
    """Sign the request as prepared for sending: its method, raw path and query, and body."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        raw = request.body or b""
        body = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)  # type: ignore[arg-type]
        path, _, query = (request.path_url or "/").partition("?")
        timestamp = str(time.time_ns() // 1_000_000)
        request.headers.update(
            {
                "x-partner-client-id": self.tenant.partner_client_id,
                "x-store-client-id": self.tenant.store_client_id,
                "x-store-token": self.tenant.token,
                "x-timestamp": timestamp,
                "x-signature": signing.sign_request(
                    self.tenant.secret,
                    method=request.method or "GET",
                    path=path,
                    query=query,
                    partner_client_id=self.tenant.partner_client_id,
                    store_client_id=self.tenant.store_client_id,
                    store_token=self.tenant.token,
                    timestamp=timestamp,
                    body=body,
                ),
            }
        )
        return request


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """The signing hook: every generated call of the signed routes is signed by the test's
    partner, whatever header values were generated."""
    tenant = _signer.get()
    if tenant is not None and case.path.startswith("/api/v1/partner/"):
        kwargs["auth"] = Sign(tenant)


@pytest.fixture(scope="module")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    saved = {k: os.environ.get(k) for k in ("GATEWAY_RATE_LIMIT_REQUESTS",)}
    os.environ["GATEWAY_RATE_LIMIT_REQUESTS"] = "0"  # thousands of requests from one partner
    try:
        with serving(database_url, Path(tmp_path_factory.mktemp("schema"))) as server:
            yield server
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def api_schema(live: Server) -> Any:
    return schemathesis.openapi.from_url(live.url + "/openapi.json")


@pytest.fixture
def partner(database_url: str) -> Iterator[Tenant]:
    tenant = run_with_pool(database_url, lambda pool: make_tenant(pool, products=20))
    token = _signer.set(tenant)
    yield tenant
    _signer.reset(token)


_OPERATIONS = [
    ("POST", "/api/v1/partner/stores/products/deletions"),
    ("GET", "/api/v1/partner/stores/products/deletions/{batchId}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    # /openapi.json is in the document too (test_routes), but schemathesis, loading the
    # document from that address, leaves that operation out.
    ("GET", "/docs"),
    ("GET", "/metrics"),
]


def test_the_document_has_the_operations_fuzzed_here(api_schema: Any) -> None:
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert found == set(_OPERATIONS)


@pytest.mark.parametrize(("method", "path"), _OPERATIONS)
def test_every_response_conforms_and_none_is_a_500(
    api_schema: Any, partner: Tenant, live: Server, method: str, path: str
) -> None:
    """Schemathesis's own generation (the pytest plugin of schemathesis 4 does not load under
    pytest 9, so its strategies are driven by hypothesis here)."""
    operation = api_schema[path][method]
    seen: set[int] = set()

    @settings(max_examples=_MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def fuzz(case: Any) -> None:
        response = case.call_and_validate(base_url=live.url, checks=_CHECKS)
        seen.add(response.status_code)

    fuzz()
    assert seen and 500 not in seen
    if path.startswith("/api/"):
        # Signed by the hook: requests get past authentication to the body and the store.
        assert seen & {200, 202, 400, 404}, seen
