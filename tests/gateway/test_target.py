"""The request target through a real `serve`: a signed route answers only its canonical raw
path, and refuses query parameters it does not define, before anything is deleted."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from typing import Any

import pytest

import catalog_store
from tests.live import serving
from tests.support import DELETIONS, Tenant, make_tenant, run_with_pool, signed_headers

pytestmark = pytest.mark.slow

_UNKNOWN_BATCH = DELETIONS + "/946b3ffa-5f9e-412e-acf4-eea306736e63"


def _send(
    url: str, tenant: Tenant, method: str, target: str, body: bytes, timestamp: int
) -> tuple[int, dict[str, Any]]:
    """Sign ``target`` exactly as sent (its raw path and query), send it byte for byte."""
    path, _, query = target.partition("?")
    headers = signed_headers(
        tenant, method=method, path=path, query=query, body=body, timestamp=timestamp
    )
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, target, body=body or None, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _error(answer: tuple[int, dict[str, Any]]) -> tuple[int, str, dict[str, Any]]:
    status, body = answer
    assert body["success"] is False, body
    return status, body["error"]["code"], body["error"]["details"]["context"]


def test_only_the_canonical_raw_path_and_defined_parameters_reach_a_signed_route(
    database_url: str, tmp_path: Path
) -> None:
    tenant = run_with_pool(database_url, lambda p: make_tenant(p, products=2, name="target"))
    body = json.dumps({"ids": tenant.ids[:1]}).encode()
    base = "/api/v1/partner/stores/products"
    with serving(database_url, tmp_path) as server:
        clock = int(time.time() * 1000)
        refused_paths = [
            ("POST", DELETIONS + "%0a", body),
            ("POST", DELETIONS + "%0A", body),
            ("POST", base + "/%64eletions", body),
            ("POST", base + "%2Fdeletions", body),
            ("POST", base + "%2fdeletions", body),
            ("GET", _UNKNOWN_BATCH + "%0a", b""),
            ("GET", _UNKNOWN_BATCH.replace("-412e", "%2D412e"), b""),
        ]
        for n, (method, target, payload) in enumerate(refused_paths):
            answer = _send(server.url, tenant, method, target, payload, clock + n)
            assert _error(answer) == (404, "ROUTE_001", {"path": target}), target
        dry_in_query = _send(server.url, tenant, "POST", DELETIONS + "?dryRun=true", body, clock)
        assert _error(dry_in_query) == (
            400,
            "VAL_001",
            {"validationErrors": {"dryRun": "dryRun belongs in the JSON body, not in the query"}},
        )
        unknown = _send(server.url, tenant, "GET", _UNKNOWN_BATCH + "?limit=5&x=1", b"", clock)
        assert _error(unknown) == (
            400,
            "VAL_001",
            {
                "validationErrors": {
                    "x": "is not a query parameter of this route; it takes limit and cursor"
                }
            },
        )
        counted = run_with_pool(
            database_url, lambda p: catalog_store.count_products(p, store_id=tenant.store_id)
        )
        assert counted == (2, 4)
        # The same body, signed for the canonical target, deletes: the refusals above were
        # about the target, not the signature.
        status, deleted = _send(server.url, tenant, "POST", DELETIONS, body, clock + 100)
    assert status == 200, deleted
    assert deleted["data"]["summary"] == {"total": 1, "succeeded": 1, "failed": 0}
