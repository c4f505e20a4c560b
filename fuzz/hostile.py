"""The hostile-input table of the test suite, each case signed anew and sent byte for byte
through the real HTTP server: its exact status and code, in the envelope, in time."""

from __future__ import annotations

import json

from tests.gateway.test_hostile import CASES, hostile_body, hostile_request

from .findings import Finding
from .rawhttp import build_request, exchange
from .session import Session

__all__ = ["run_hostile"]


_SERVER_CAPS = {"REQ_001", "REQ_002"}


def _code(status: int | None, body: bytes) -> str | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if status == 200:
        errors = doc.get("data", {}).get("errors") or [{}]
        return str(errors[0].get("code"))
    error = doc.get("error")
    return str(error.get("code")) if isinstance(error, dict) else None


def run_hostile(session: Session) -> None:
    tenants = session.target.tenants
    signer = tenants[0]
    other = tenants[1] if len(tenants) > 1 else None
    ran = 0
    for case in CASES:
        if not session.budget.left():
            break
        if not session.selected(case.name):
            continue
        if b"<own>" in case.body and not signer.products:
            continue  # names one of the partner's own products: a target started for the run
        if case.other_store and other is None:
            continue  # needs a second store: a target started for the run, or a database
        pairs = hostile_request(case, signer, other or signer, now_ms=session.stamp())
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in pairs]
        target = case.path + (f"?{case.query}" if case.query else "")
        raw = build_request(case.method, target, headers, hostile_body(case, signer))
        answer = exchange(session.target.host, session.target.port, raw, method=case.method)
        session.budget.spend()
        ran += 1
        request = Finding("answer", "hostile", case.name, "", raw=raw)
        held = session.judge(
            request, case.path, answer.status, answer.headers, answer.body, answer.elapsed
        )
        code = _code(answer.status, answer.body)
        # A control character (CR, LF, NUL...) cannot travel in a header: on the wire the value
        # is two headers, or the HTTP parser refuses it (REQ_004), another request than the
        # table's in-process one; and the server's caps on the target and header block
        # (REQ_001, REQ_002) come before the route. Only the invariants above hold for those.
        on_the_wire = all(" " <= c != "\x7f" for _, value in headers for c in value)
        capped = code in _SERVER_CAPS
        if (
            held
            and on_the_wire
            and not capped
            and (answer.status, code) != (case.status, case.code)
        ):
            session.report(
                request,
                "answer",
                f"expected HTTP {case.status} {case.code}, got HTTP {answer.status} {code}"
                f" {answer.error}".rstrip(),
            )
    session.progress("hostile", f"{ran} of {len(CASES)} table cases")
