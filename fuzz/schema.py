"""Schemathesis against /openapi.json of the target: every generated request signed as sent
(so it gets past authentication), every answer checked against the document and the envelope,
and every accepted deletion sent again, which must be AUTH_006."""

from __future__ import annotations

import json
import time
from typing import Any, cast

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks

from tests.gateway.test_schema_fuzz import Sign

from .findings import Finding
from .session import Session

__all__ = ["SchemaFuzz"]

_CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def _request_of(response: Any, case_name: str) -> Finding:
    prepared = response.request
    raw = prepared.body
    body = raw.encode() if isinstance(raw, str) else raw if isinstance(raw, bytes) else b""
    headers = [
        (name, value if isinstance(value, str) else value.decode("latin-1"))
        for name, value in prepared.headers.items()
    ]
    return Finding(
        "envelope",
        "schema",
        case_name,
        "",
        method=prepared.method or "GET",
        url=prepared.url or "",
        headers=headers,
        body=body,
        signed="/api/" in (prepared.url or ""),
    )


class SchemaFuzz:
    """One hypothesis run per operation and round; nothing is shrunk, every finding reported."""

    def __init__(self, session: Session, *, derandomize: bool) -> None:
        self.session = session
        self.derandomize = derandomize
        schema = cast(Any, schemathesis.openapi.from_url(session.target.url + "/openapi.json"))
        self.operations = [op.ok() for op in schema.get_all_operations()]
        self.http = requests.Session()

    def round(self, examples: int) -> None:
        for operation in self.operations:
            if not self.session.budget.left():
                return
            self._operation(operation, examples)
        self.session.progress("schema", f"a round of up to {examples} examples per operation")

    def _operation(self, operation: Any, examples: int) -> None:
        session = self.session
        name = f"{operation.method.upper()} {operation.path}"
        if not self.session.selected(name):
            return
        signed = operation.path.startswith("/api/")
        auth = Sign(session.target.tenants[0]) if signed else None

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=self.derandomize,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def fuzz(case: Any) -> None:
            if not session.budget.left():
                return
            session.budget.spend()
            session.tick("schema")
            started = time.monotonic()
            try:
                response = case.call(
                    base_url=session.target.url, session=self.http, auth=auth, timeout=60
                )
            except requests.RequestException as exc:
                session.report(
                    Finding("envelope", "schema", name, "", method=case.method),
                    "envelope",
                    f"no answer: {type(exc).__name__}",
                )
                return
            elapsed = time.monotonic() - started
            request = _request_of(response, name)
            path = operation.path if "{" not in operation.path else response.request.path_url
            held = session.judge(
                request,
                path,
                response.status_code,
                {name.lower(): values[-1] for name, values in response.headers.items()},
                response.content,
                elapsed,
            )
            if held:
                try:
                    case.validate_response(response, checks=_CHECKS)
                except Exception as exc:  # schemathesis raises its own failure types
                    first = str(exc).strip().splitlines()
                    session.report(
                        request, "envelope", f"not as documented: {first[0] if first else exc}"
                    )
            if signed and case.method.upper() == "POST" and 200 <= response.status_code < 300:
                self._replay(request, response)

        fuzz()

    def _replay(self, request: Finding, first: Any) -> None:
        """The very same signed request again: AUTH_006, never a second acceptance."""
        prepared = first.request.copy()
        again = self.http.send(prepared, timeout=60)
        code = None
        try:
            code = json.loads(again.content).get("error", {}).get("code")
        except (ValueError, AttributeError):
            pass
        if (again.status_code, code) != (401, "AUTH_006"):
            self.session.report(
                request, "replay", f"sent again, got HTTP {again.status_code} {code}"
            )
