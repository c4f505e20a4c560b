"""Raw-socket cases, through the real HTTP server: header and request-line sizes, trailers,
slow headers and bodies, clients that go away, idle connections. While the big ones are sent,
/healthz is probed on another connection and must stay fast."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .findings import Finding
from .rawhttp import build_request, exchange, trickle
from .session import Session

__all__ = ["RAW_CASES", "run_raw"]

DELETIONS = "/api/v1/partner/stores/products/deletions"
_UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
_BODY = b'{"ids": ["' + _UNKNOWN_ID.encode() + b'"]}'
_MIB = 1024 * 1024


@dataclass(frozen=True)
class RawCase:
    name: str
    run: Callable[[Session, RawCase], None]
    size: int = 0


class _Probe:
    """/healthz on its own connections, every 50 ms, while an attack runs: the slowest answer."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.worst = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        raw = build_request("GET", "/healthz", [])
        target = self.session.target
        while not self.stop.is_set():
            answer = exchange(target.host, target.port, raw, timeout=30)
            self.worst = max(self.worst, answer.elapsed)
            self.stop.wait(0.05)

    def __enter__(self) -> _Probe:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=60)


def _send_big(session: Session, case: RawCase, raw: bytes, path: str) -> None:
    target = session.target
    with _Probe(session) as probe:
        answer = exchange(target.host, target.port, raw, timeout=60)
    request = Finding("slow", "raw", case.name, "", raw=raw)
    session.judge(request, path, answer.status, answer.headers, answer.body, answer.elapsed)
    if probe.worst > session.healthz_seconds:
        session.report(
            request,
            "slow",
            f"/healthz took {probe.worst:.2f} s while this was sent (bound"
            f" {session.healthz_seconds:.2f} s)",
        )


def _big_header(session: Session, case: RawCase) -> None:
    raw = build_request("GET", "/healthz", [("x-pad", "a" * case.size)])
    _send_big(session, case, raw, "/healthz")


def _many_headers(session: Session, case: RawCase) -> None:
    raw = build_request("GET", "/healthz", [(f"x-h{i}", "v") for i in range(case.size)])
    _send_big(session, case, raw, "/healthz")


def _long_line(session: Session, case: RawCase) -> None:
    raw = build_request("GET", "/healthz?q=" + "a" * case.size, [])
    _send_big(session, case, raw, "/healthz")


def _chunked(headers: list[tuple[str, str]], body: bytes, trailer: list[tuple[str, str]]) -> bytes:
    head = build_request(
        "POST", DELETIONS, headers + [("transfer-encoding", "chunked")], content_length=False
    )
    tail = "".join(f"{name}: {value}\r\n" for name, value in trailer).encode("latin-1")
    return head + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n" + tail + b"\r\n"


def _trailer_signature(session: Session, case: RawCase) -> None:
    """Every signed header but x-signature, which comes only in the chunked trailer."""
    signed = session.signed_headers(session.target.tenants[0], "POST", DELETIONS, "", _BODY)
    headers = [(n, v) for n, v in signed if n != "x-signature"]
    trailer = [(n, v) for n, v in signed if n == "x-signature"]
    raw = _chunked(headers, _BODY, trailer)
    _accepted_is_unsigned(session, case, raw, "the signature only in a trailer")


def _trailer_override(session: Session, case: RawCase) -> None:
    """A valid request whose trailer names another store: the headers as sent decide."""
    tenants = session.target.tenants
    signed = session.signed_headers(tenants[0], "POST", DELETIONS, "", _BODY)
    other = tenants[1].store_client_id if len(tenants) > 1 else "0"
    raw = _chunked(signed, _BODY, [("x-store-client-id", other), ("x-signature", "0" * 64)])
    target = session.target
    answer = exchange(target.host, target.port, raw, method="POST")
    request = Finding("envelope", "raw", case.name, "", raw=raw)
    if not session.judge(
        request, DELETIONS, answer.status, answer.headers, answer.body, answer.elapsed
    ):
        return
    if answer.status not in (200, 400):
        session.report(
            request,
            "answer",
            f"a signed request with a trailer got HTTP {answer.status}: the trailer was read"
            " as a header (expected 200 from its headers, or 400 refusing trailers)",
        )


def _accepted_is_unsigned(session: Session, case: RawCase, raw: bytes, what: str) -> None:
    target = session.target
    answer = exchange(target.host, target.port, raw, method="POST")
    request = Finding("unsigned-deletion", "raw", case.name, "", raw=raw)
    session.judge(request, DELETIONS, answer.status, answer.headers, answer.body, answer.elapsed)
    if answer.status is not None and 200 <= answer.status < 300:
        session.report(request, "unsigned-deletion", f"HTTP {answer.status} with {what}")


def _slow(session: Session, case: RawCase, head: bytes, drip: bytes, bound: float) -> None:
    target = session.target
    answer = trickle(target.host, target.port, head, drip, every=0.25, give_up_after=bound + 1)
    request = Finding("slow", "raw", case.name, "", raw=head + drip)
    if answer.error == "still open":
        session.report(
            request, "slow", f"still open after {answer.elapsed:.1f} s (bound {bound:.1f} s)"
        )
        return
    session.judge(
        request, DELETIONS, answer.status, answer.headers, answer.body, answer.elapsed, bound
    )


def _slow_headers(session: Session, case: RawCase) -> None:
    head = f"POST {DELETIONS} HTTP/1.1\r\nhost: gateway\r\n".encode()
    _slow(session, case, head, b"x-slow: " + b"a" * 400, session.target.header_timeout + 1)


def _slow_body(session: Session, case: RawCase) -> None:
    signed = session.signed_headers(session.target.tenants[0], "POST", DELETIONS, "", _BODY)
    head = build_request(
        "POST", DELETIONS, signed + [("content-length", "1000")], content_length=False
    )
    _slow(session, case, head, b"a" * 1000, session.target.body_timeout + 1)


def _unsigned_big_body(session: Session, case: RawCase) -> None:
    """No credentials, 8 MiB announced, nothing sent: refused before the body is waited for."""
    head = build_request(
        "POST", DELETIONS, [("content-length", str(8 * _MIB))], content_length=False
    )
    _slow(session, case, head, b"", session.slow_seconds)


def _disconnect(session: Session, case: RawCase) -> None:
    """1,000 bytes announced, 10 sent, then the client is gone: no 500 counted."""
    signed = session.signed_headers(session.target.tenants[0], "POST", DELETIONS, "", _BODY)
    head = build_request(
        "POST", DELETIONS, signed + [("content-length", "1000")], content_length=False
    )
    target = session.target
    before = target.server_errors()
    trickle(
        target.host,
        target.port,
        head + _BODY[:10],
        b"",
        every=0.1,
        give_up_after=1,
        then_close=True,
    )
    time.sleep(0.5)
    after = target.server_errors()
    if after > before:
        request = Finding("500", "raw", case.name, "", raw=head + _BODY[:10])
        session.report(request, "500", f"/metrics counted {after - before:g} more 500s")


def _expect(
    session: Session, case: RawCase, method: str, path: str, query: str, status: int, code: str
) -> None:
    """A request signed exactly as sent (raw path and query), and the coded answer it must get."""
    body = _BODY if method == "POST" else b""
    signed = session.signed_headers(session.target.tenants[0], method, path, query, body)
    raw = build_request(method, path + (f"?{query}" if query else ""), signed, body)
    target = session.target
    answer = exchange(target.host, target.port, raw, method=method)
    request = Finding("answer", "raw", case.name, "", raw=raw)
    if not session.judge(request, path, answer.status, answer.headers, answer.body, answer.elapsed):
        return
    try:
        got = json.loads(answer.body).get("error", {}).get("code")
    except (ValueError, AttributeError):
        got = None
    if (answer.status, got) != (status, code):
        session.report(
            request, "answer", f"expected HTTP {status} {code}, got HTTP {answer.status} {got}"
        )


def _deep_cursor(session: Session, case: RawCase) -> None:
    """A cursor of 1,500 nested arrays (deeper than Python's recursion limit, and within the
    request-target cap): VAL_001 like any malformed cursor, never a 500."""
    nested = base64.urlsafe_b64encode(b"[" * 1_500 + b"]" * 1_500).rstrip(b"=").decode()
    _expect(session, case, "GET", f"{DELETIONS}/{_UNKNOWN_ID}", f"cursor={nested}", 400, "VAL_001")


def _path_variant(raw_path: str) -> Callable[[Session, RawCase], None]:
    """A deletion signed for a path that is not the route's canonical raw path: ROUTE_001."""

    def run(session: Session, case: RawCase) -> None:
        _expect(session, case, "POST", raw_path, "", 404, "ROUTE_001")

    return run


def _unknown_query(session: Session, case: RawCase) -> None:
    """A query parameter the deletion route does not define, signed: VAL_001 naming it."""
    _expect(session, case, "POST", DELETIONS, "dryRun=true", 400, "VAL_001")


RAW_CASES: dict[str, RawCase] = {}


def _register(*cases: RawCase) -> None:
    for case in cases:
        RAW_CASES[case.name] = case


_register(
    RawCase("trailer-signature", _trailer_signature),
    RawCase("trailer-override", _trailer_override),
    RawCase("disconnect-mid-body", _disconnect),
    RawCase("slow-headers", _slow_headers),
    RawCase("slow-body", _slow_body),
    RawCase("unsigned-announced-body", _unsigned_big_body),
    RawCase("deep-cursor", _deep_cursor),
    RawCase("path-with-newline", _path_variant(DELETIONS + "%0a")),
    RawCase(
        "path-with-encoded-letter", _path_variant(DELETIONS.replace("/deletions", "/%64eletions"))
    ),
    RawCase(
        "path-with-encoded-slash", _path_variant(DELETIONS.replace("s/deletions", "s%2Fdeletions"))
    ),
    RawCase("unknown-query-parameter", _unknown_query),
)


def size_cases(max_mib: int) -> list[RawCase]:
    """Header, header count and request-line cases, doubling up to ``max_mib`` MiB."""
    sizes = [64 * 1024]
    while sizes[-1] * 4 <= max_mib * _MIB:
        sizes.append(sizes[-1] * 4)
    cases = []
    for size in sizes:
        label = f"{size // 1024}KiB" if size < _MIB else f"{size // _MIB}MiB"
        cases.append(RawCase(f"header-{label}", _big_header, size))
        cases.append(RawCase(f"request-line-{label}", _long_line, size))
    cases.append(RawCase("headers-10000", _many_headers, 10_000))
    return cases


def run_raw(session: Session, max_mib: int) -> None:
    cases = list(RAW_CASES.values()) + size_cases(max_mib)
    for case in cases:
        if not session.selected(case.name):
            continue
        if not session.budget.left():
            break
        case.run(session, case)
        session.budget.spend()
        session.progress("raw", case.name)
