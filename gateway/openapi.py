"""The OpenAPI 3.1 document, generated from the wire Structs, and /docs rendered from it."""

from __future__ import annotations

import html
from typing import Any

import msgspec

import catalog_store

from .errors import CATALOG, ITEM_CODES
from .idempotency import IDEMPOTENCY_HEADER, REPLAYED_HEADER
from .paging import CURSOR_PATTERN, DEFAULT_PAGE, MAX_PAGE
from .wire import (
    BatchResponse,
    DeletionRequest,
    DeletionResponse,
    DispatchResponse,
    DryRunResponse,
    ErrorResponse,
    HealthResponse,
    ReadyResponse,
)

__all__ = ["build_openapi", "render_docs"]

_REF = "#/components/schemas/{name}"
_SIGNED_HEADERS = [
    ("x-partner-client-id", "The partner's client id"),
    ("x-store-client-id", "The store's client id"),
    ("x-store-token", "The token this store issued to this partner"),
    ("x-timestamp", "Unix time in milliseconds, decimal; within 300 s of the server's clock"),
    ("x-signature", "Hex HMAC-SHA256 of the string to sign, keyed with the partner's secret"),
]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name=name)}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _errors(*codes: str) -> dict[str, Any]:
    by_status: dict[str, list[str]] = {}
    for code in codes:
        by_status.setdefault(str(CATALOG[code].status), []).append(code)
    return {
        status: _json("ErrorResponse", ", ".join(f"{c} {CATALOG[c].message}" for c in group))
        for status, group in sorted(by_status.items())
    }


_IDEMPOTENCY_PARAM = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "Optional, 1-255 printable ASCII characters, not signed; scoped to partner"
    " and store, kept 24 hours. Retry with the same key and body, signed anew",
}
_REPLAYED = {
    REPLAYED_HEADER: {
        "description": "true when this is the stored answer to an earlier request with the"
        " same idempotency-key and body (same requestId); absent otherwise",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
_AUTH_CODES = ("AUTH_001", "AUTH_002", "AUTH_003", "AUTH_004", "AUTH_005", "AUTH_006")


_WIRE_TYPES = [
    DeletionRequest,
    DeletionResponse,
    DryRunResponse,
    DispatchResponse,
    BatchResponse,
    ErrorResponse,
    HealthResponse,
    ReadyResponse,
]
_INFO = {
    "title": "Partner Catalog Gateway",
    "version": "1",
    "description": "Signed bulk deletion of store catalog products. Every"
    " /api/v1/partner request is signed with HMAC-SHA256; see docs/signing.md.",
}


def build_openapi() -> dict[str, Any]:
    """Build the whole document; the schemas come from msgspec, nothing is written by hand."""
    _, components = msgspec.json.schema_components(_WIRE_TYPES, ref_template=_REF)
    signed = _signed_params()
    return {
        "openapi": "3.1.0",
        "info": _INFO,
        "paths": {
            "/api/v1/partner/stores/products/deletions": {"post": _delete_products(signed)},
            "/api/v1/partner/stores/products/deletions/{batchId}": {"get": _get_batch(signed)},
            **_service_paths(),
        },
        "components": {"schemas": components},
    }


def _signed_params() -> list[dict[str, Any]]:
    """The five signed headers, each required, as OpenAPI header parameters."""
    return [
        {
            "name": name,
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": text,
        }
        for name, text in _SIGNED_HEADERS
    ]


def _delete_products(signed_params: list[dict[str, Any]]) -> dict[str, Any]:
    """POST .../deletions: the one writing route."""
    item_codes = "; ".join(f"{code} {text}" for code, text in ITEM_CODES.items())
    report = {"oneOf": [_ref("DeletionResponse"), _ref("DryRunResponse")]}
    return {
        "operationId": "deleteProducts",
        "summary": "Delete products of the caller's store by ids and external ids",
        "description": "Up to 1,000 entries in one transaction (200); 1,001 to"
        " 100,000, or dispatch true, as a batch (202). dryRun true reports what"
        " would be deleted and changes nothing (200; at most 1,000 entries, never"
        " with dispatch). The route takes no query parameters, and answers only"
        " its path as written here, nothing percent-encoded. With an idempotency-key, a"
        " retry with the same key and body gets the first answer again, byte for"
        f" byte, with {REPLAYED_HEADER}: true. Item codes: {item_codes}. The store"
        f" token needs the scope {catalog_store.SCOPE_DELETE}.",
        "parameters": [*signed_params, _IDEMPOTENCY_PARAM],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref("DeletionRequest")}},
        },
        "responses": {
            "200": {
                "description": "Per-item report (DeletionResponse), or the report"
                " of a dry run (DryRunResponse, meta.dryRun true)",
                "headers": _REPLAYED,
                "content": {"application/json": {"schema": report}},
            },
            "202": {**_json("DispatchResponse", "Dispatched as a batch"), "headers": _REPLAYED},
            **_errors(
                *_AUTH_CODES, "VAL_001", "VAL_002", "IDEM_001", "IDEM_002", "RATE_001", "SYS_001"
            ),
        },
    }


_BATCH_QUERY = [
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
        "description": "Results per page. Part of the query, so signed",
    },
    {
        "name": "cursor",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "pattern": CURSOR_PATTERN},
        "description": "data.nextCursor of the page before, exactly as"
        " returned (URL-safe as it is); signed as part of the query",
    },
]


def _get_batch(signed_params: list[dict[str, Any]]) -> dict[str, Any]:
    """GET .../deletions/{batchId}: a dispatched batch's progress, one page of results."""
    batch_id = {"name": "batchId", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "operationId": "getDeletionBatch",
        "summary": "Progress and results of a dispatched deletion batch",
        "description": f"The store token needs the scope {catalog_store.SCOPE_BATCHES_READ}.",
        "parameters": [batch_id, *_BATCH_QUERY, *signed_params],
        "responses": {
            "200": _json("BatchResponse", "Progress and one page of results"),
            **_errors(*_AUTH_CODES, "VAL_001", "BAT_001", "VAL_002", "RATE_001", "SYS_001"),
        },
    }


def _plain_get(operation_id: str, summary: str, description: str, media: str) -> dict[str, Any]:
    """An unsigned GET whose 200 is a document of one media type."""
    schema = {"type": "object" if media == "application/json" else "string"}
    ok = {"description": description, "content": {media: {"schema": schema}}}
    return {"get": {"operationId": operation_id, "summary": summary, "responses": {"200": ok}}}


def _service_paths() -> dict[str, Any]:
    """The unsigned routes: health, readiness, this document, its page, metrics."""
    ready = _json(
        "ReadyResponse",
        "The database answers; data.unreadableSecrets counts the partner"
        " secrets the server key does not open",
    )
    return {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness",
                "responses": {"200": _json("HealthResponse", "The process answers")},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness: the database answers and the server key opens the"
                " stored partner secrets",
                "responses": {"200": ready, **_errors("SYS_001")},
            }
        },
        "/openapi.json": _plain_get(
            "openapi",
            "This OpenAPI 3.1 document of the whole API",
            "The OpenAPI document",
            "application/json",
        ),
        "/docs": _plain_get(
            "docs",
            "A human-readable page of this document",
            "An HTML page rendered from /openapi.json",
            "text/html",
        ),
        "/metrics": _plain_get(
            "metrics",
            "Prometheus metrics of every gateway process (text format)",
            "Prometheus text exposition format",
            "text/plain",
        ),
    }


def _schema_text(schema: dict[str, Any]) -> str:
    return html.escape(msgspec.json.format(msgspec.json.encode(schema), indent=2).decode())


def render_docs(document: dict[str, Any]) -> str:
    """A self-contained HTML page (no scripts, no external assets) of the OpenAPI document."""
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(document['info']['title'])} API</title>",
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem}code,pre{background:#f4f4f4;padding:.1rem .3rem}pre{padding:.6rem;"
        "overflow:auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:.2rem .5rem;text-align:left}</style></head><body>",
        f"<h1>{html.escape(document['info']['title'])}</h1>",
        f"<p>{html.escape(document['info']['description'])}</p>",
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a></p>",
    ]
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            out.append(f"<h2><code>{method.upper()} {html.escape(path)}</code></h2>")
            out.append(
                f"<p>{html.escape(op['summary'])}. {html.escape(op.get('description', ''))}</p>"
            )
            params = op.get("parameters", [])
            if params:
                out.append("<table><tr><th>parameter</th><th>in</th><th>meaning</th></tr>")
                for p in params:
                    out.append(
                        f"<tr><td><code>{html.escape(p['name'])}</code></td><td>{p['in']}</td>"
                        f"<td>{html.escape(p.get('description', ''))}</td></tr>"
                    )
                out.append("</table>")
            out.append("<table><tr><th>status</th><th>meaning</th></tr>")
            for status, response in op["responses"].items():
                out.append(
                    f"<tr><td>{status}</td><td>{html.escape(response['description'])}</td></tr>"
                )
            out.append("</table>")
    out.append("<h2>Schemas</h2>")
    for name, schema in document["components"]["schemas"].items():
        out.append(
            f"<h3 id='{html.escape(name)}'>{html.escape(name)}</h3>"
            f"<pre>{_schema_text(schema)}</pre>"
        )
    out.append("</body></html>")
    return "\n".join(out)
