"""What every answer must be, as a partner sees it: the checks behind the findings."""

from __future__ import annotations

import json
import re

__all__ = ["envelope_problem", "server_errors"]

# Routes that answer in their own format (Prometheus text, the OpenAPI document, an HTML page).
_OWN_FORMAT = ("/metrics", "/openapi.json", "/docs")
_ERROR_KEYS = {"success", "requestId", "error"}
_500_SAMPLE = re.compile(r'^gateway_requests_total\{[^}]*status="500"[^}]*\} (\S+)$', re.M)


def envelope_problem(
    path: str, status: int | None, headers: dict[str, str], body: bytes
) -> tuple[str, str] | None:
    """``(invariant, detail)`` when the answer is not one the contract allows; a connection
    closed without an answer is allowed (a cap may close it)."""
    if status is None:
        return None
    if status >= 500 and status != 503:
        return "500", f"HTTP {status}: {body[:160]!r}"
    if status == 200 and path.split("?", 1)[0] in _OWN_FORMAT:
        return None
    content_type = headers.get("content-type", "")
    if not content_type.startswith("application/json"):
        return "envelope", f"HTTP {status}, content-type {content_type!r}: {body[:160]!r}"
    try:
        doc = json.loads(body)
    except ValueError:
        return "envelope", f"HTTP {status}, a body that is not JSON: {body[:160]!r}"
    if not isinstance(doc, dict):
        return "envelope", f"HTTP {status}, a JSON body that is not an object: {body[:160]!r}"
    request_id = doc.get("requestId")
    if not request_id or request_id != headers.get("x-request-id"):
        return "envelope", f"HTTP {status}: requestId {request_id!r} is not x-request-id"
    if doc.get("success") is True:
        if status not in (200, 202) or not {"message", "meta"} <= set(doc):
            return "envelope", f"HTTP {status}, a success envelope without message/meta"
        return None
    error = doc.get("error")
    if (
        doc.get("success") is not False
        or set(doc) != _ERROR_KEYS
        or not isinstance(error, dict)
        or set(error) != {"code", "message", "details"}
        or not isinstance(error["details"], dict)
        or set(error["details"]) != {"timestamp", "hint", "context"}
        or status < 400
    ):
        return "envelope", f"HTTP {status}, not the error envelope: {body[:200]!r}"
    return None


def server_errors(metrics_text: str) -> float:
    """How many answers the gateway counted as 500, all routes together."""
    return sum(float(value) for value in _500_SAMPLE.findall(metrics_text))
