"""The fuzz campaign's own checks: what counts as a finding, and that each finding is reported
with the raw request and a line that replays it (against stand-in servers that misbehave)."""

from __future__ import annotations

import json
import re
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fuzz.contract import envelope_problem, server_errors
from fuzz.findings import Findings
from fuzz.hostile import run_hostile
from fuzz.raw import RAW_CASES
from fuzz.session import Budget, Session
from fuzz.target import Target
from tests.support import Tenant

_ID = "7d5c3a9e-1b2f-4c6d-8e9f-0a1b2c3d4e5f"
_ERROR = (
    b'{"success":false,"requestId":"%s","error":{"code":"AUTH_001","message":"m",'
    b'"details":{"timestamp":"t","hint":"h","context":{}}}}' % _ID.encode()
)


def test_the_gateways_envelope_holds_and_bare_or_500_answers_are_findings() -> None:
    json_headers = {"content-type": "application/json", "x-request-id": _ID}
    assert envelope_problem("/api/x", 401, json_headers, _ERROR) is None
    assert envelope_problem("/api/x", None, {}, b"") is None  # closed: allowed
    assert envelope_problem("/metrics", 200, {"content-type": "text/plain"}, b"# x") is None
    bare = envelope_problem(
        "/healthz", 400, {"content-type": "text/plain"}, b"Invalid HTTP request received."
    )
    assert bare == (
        "envelope",
        "HTTP 400, content-type 'text/plain': b'Invalid HTTP request received.'",
    )
    assert envelope_problem("/api/x", 500, json_headers, _ERROR) == (
        "500",
        "HTTP 500: " + repr(_ERROR[:160]),
    )
    other_id = {**json_headers, "x-request-id": "another"}
    assert envelope_problem("/api/x", 401, other_id, _ERROR) == (
        "envelope",
        f"HTTP 401: requestId '{_ID}' is not x-request-id",
    )


def test_the_500s_counted_in_metrics_are_summed_over_routes() -> None:
    text = (
        'gateway_requests_total{code="",method="GET",route="/healthz",status="200"} 7.0\n'
        'gateway_requests_total{code="SYS_002",method="POST",route="/a",status="500"} 2.0\n'
        'gateway_requests_total{code="SYS_002",method="GET",route="/b",status="500"} 1.0\n'
    )
    assert server_errors(text) == 3.0


def _stand_in(answer: bytes | None) -> Iterator[int]:
    """A server on a free port that reads a request and sends ``answer`` (None: stays silent
    with the connection open)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(2)
            try:
                conn.recv(65536)
            except TimeoutError:
                pass
            if answer is None:
                held.append(conn)
                continue
            conn.sendall(answer)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


@pytest.fixture
def bare_500() -> Iterator[int]:
    yield from _stand_in(
        b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\n"
        b"content-length: 4\r\nconnection: close\r\n\r\noops"
    )


@pytest.fixture
def silent() -> Iterator[int]:
    yield from _stand_in(None)


def _session(port: int, folder: Path, only: list[str]) -> Session:
    tenant = Tenant(1, "2025112012475048491498", "psk_x", 1, "638765489981529612855", "stkn_x")
    target = Target(f"http://127.0.0.1:{port}", [tenant], body_timeout=0.2)
    findings = Findings(folder, "127.0.0.1", port)
    return Session(target, findings, Budget(30, None), 2.0, 1.0, only=only)


def test_a_500_is_reported_with_the_raw_request_and_a_replay_line(
    bare_500: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = _session(bare_500, tmp_path, ["sql in ids"])
    run_hostile(session)
    [finding] = session.findings.found.values()
    assert (finding.invariant, finding.part, finding.case) == ("500", "hostile", "sql in ids")
    assert finding.detail == "HTTP 500: b'oops'"
    sent = (tmp_path / f"{finding.key}.bin").read_bytes()
    assert sent.startswith(b"POST /api/v1/partner/stores/products/deletions HTTP/1.1\r\n")
    assert sent.endswith(b'\r\n\r\n{"ids": ["\' OR 1=1 --"]}')
    record = json.loads((tmp_path / f"{finding.key}.json").read_text())
    assert record["invariant"] == "500" and record["raw"] == sent.decode("latin-1")
    assert record["replay"][1] == "python -m fuzz --only 'sql in ids'  # the case, built anew"
    out = capsys.readouterr().out
    assert f"FINDING {finding.key} [500] hostile/sql in ids" in out
    # The printed Python line sends the same bytes again, and the stand-in answers them.
    replay = shlex.split(record["replay"][0])
    assert replay[:2] == ["python3", "-c"]
    again = subprocess.run(
        [sys.executable, "-c", replay[2]], capture_output=True, text=True, timeout=30
    )
    assert again.stdout.startswith("HTTP/1.1 500 Internal Server Error"), again.stderr


def test_a_slow_body_never_cut_is_a_slow_finding(silent: int, tmp_path: Path) -> None:
    session = _session(silent, tmp_path, ["slow-body"])
    RAW_CASES["slow-body"].run(session, RAW_CASES["slow-body"])
    [finding] = session.findings.found.values()
    assert (finding.invariant, finding.case) == ("slow", "slow-body")
    # Given up on one second past the bound (the body timeout, 0.2 s, plus a second).
    assert re.fullmatch(r"still open after 2\.\d s \(bound 1\.2 s\)", finding.detail)
    assert b"content-length: 1000\r\n" in finding.raw
