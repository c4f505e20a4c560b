"""The HTTP server's own limits, through a real `serve` and raw sockets: caps on the request
line and header block, deadlines on headers, bodies and idle connections, trailers that never
become headers, the checks that need no body made before it is read, and clients that leave
mid-body."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.live import Server, serving
from tests.support import DELETIONS, Tenant, body_of, make_tenant, run_with_pool, signed_headers

pytestmark = pytest.mark.slow

_TIMEOUT = 1.0  # the header, body and keep-alive deadlines of the server under test
_BLOCK = 32768  # GATEWAY_MAX_HEADER_BLOCK_BYTES, the default
_URL = 8192  # GATEWAY_MAX_URL_BYTES, the default


@pytest.fixture(scope="module")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = Path(tmp_path_factory.mktemp("limits"))
    with serving(
        database_url,
        folder,
        GATEWAY_HEADER_TIMEOUT=str(_TIMEOUT),
        GATEWAY_BODY_TIMEOUT=str(_TIMEOUT),
        GATEWAY_KEEPALIVE_TIMEOUT=str(_TIMEOUT),
    ) as server:
        yield server


@pytest.fixture
def tenant(database_url: str) -> Tenant:
    return run_with_pool(database_url, lambda pool: make_tenant(pool, products=3))


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    seconds: float  # from the end of sending to the end of the answer


def _connect(server: Server) -> socket.socket:
    port = int(server.url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _read_answer(sock: socket.socket) -> tuple[bytes, bool]:
    """Everything the server sends until it closes (True) or the socket times out (False)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return data, False
    return data, True


def _parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def exchange(server: Server, request: bytes, *, then_wait: bool = True) -> Answer:
    """Send ``request`` on a new connection and read the one answer, up to the server's close."""
    with _connect(server) as sock:
        sock.sendall(request)
        sent = time.monotonic()
        raw, closed = _read_answer(sock)
    assert closed, f"the server did not close the connection; got {raw[:300]!r}"
    status, headers, body = _parse(raw)
    return Answer(status, headers, json.loads(body), time.monotonic() - sent)


def assert_envelope(answer: Answer, status: int, code: str, context: dict[str, Any]) -> None:
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["connection"] == "close"
    assert answer.body["success"] is False
    assert answer.body["requestId"] == answer.headers["x-request-id"]
    assert answer.body["error"]["code"] == code
    assert answer.body["error"]["details"]["context"] == context


def _metrics(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _metric(server: Server, name: str, **labels: str) -> float:
    return _metrics(server).get((name, frozenset(labels.items())), 0.0)


def _signed_head(
    tenant: Tenant, body: bytes, *, length: int | None = None, drop: str = ""
) -> bytes:
    """The head of a signed POST …/deletions of ``body`` (``length`` announced, if given)."""
    headers = {
        "host": "gateway",
        **signed_headers(tenant, body=body, timestamp=time.time_ns() // 1_000_000),
    }
    if length is not None:
        headers["content-length"] = str(length)
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k != drop)
    return f"POST {DELETIONS} HTTP/1.1\r\n{lines}".encode()


def _chunked(body: bytes, trailer: bytes = b"") -> bytes:
    return b"transfer-encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n%s\r\n" % (len(body), body, trailer)


# --- caps on the request line and the header block -------------------------------------


@pytest.mark.parametrize(
    ("part", "start"),
    [
        ("head", b"GET /healthz HTTP/1.1\r\nhost: gateway\r\nx-big: "),
        ("url", b"GET /healthz?q="),
    ],
)
def test_a_huge_head_is_cut_at_its_cap_while_healthz_stays_fast(
    live: Server, part: str, start: bytes
) -> None:
    """64 MiB of one header (or of one URL) sent as fast as the socket takes it: the server
    closes the connection once the cap is passed, and /healthz answers fast all along."""
    outcome: dict[str, Any] = {}

    def flood() -> None:
        piece = b"a" * (1024 * 1024)
        sent = 0
        began = time.monotonic()
        with _connect(live) as sock:
            try:
                sock.sendall(start)
                while sent < 64 * 1024 * 1024:
                    sock.sendall(piece)
                    sent += len(piece)
                outcome["closed"] = False
            except OSError:
                outcome["closed"] = True
        outcome.update(sent=sent, seconds=time.monotonic() - began)

    before = _metric(live, "gateway_header_cap_refusals_total", part=part)
    attacker = threading.Thread(target=flood)
    attacker.start()
    slowest = 0.0
    with httpx.Client(base_url=live.url, timeout=10) as client:
        while attacker.is_alive():
            began = time.monotonic()
            assert client.get("/healthz").status_code == 200
            slowest = max(slowest, time.monotonic() - began)
            time.sleep(0.02)
    attacker.join()
    assert outcome["closed"], outcome  # before the caps: all 64 MiB were taken in
    assert outcome["sent"] < 32 * 1024 * 1024, outcome  # socket buffers, not the server
    assert outcome["seconds"] < 2, outcome
    assert slowest < 0.5
    assert _metric(live, "gateway_header_cap_refusals_total", part=part) == before + 1


def test_a_header_block_over_its_cap_is_req_002_in_the_envelope(live: Server) -> None:
    head = b"GET /healthz HTTP/1.1\r\nhost: gateway\r\n"
    padding = b"".join(b"x-pad-%d: %s\r\n" % (i, b"a" * 4000) for i in range(9))
    answer = exchange(live, head + padding + b"\r\n")
    assert_envelope(answer, 431, "REQ_002", {"limitBytes": _BLOCK})
    assert answer.body["error"]["message"] == "Request headers too large"


def test_a_request_target_over_its_cap_is_req_001_in_the_envelope(live: Server) -> None:
    answer = exchange(live, b"GET /healthz?" + b"q" * _URL + b" HTTP/1.1\r\nhost: g\r\n\r\n")
    assert_envelope(answer, 414, "REQ_001", {"limitBytes": _URL})
    assert answer.body["error"]["message"] == "Request target too long"


def test_heads_and_bodies_within_the_caps_are_served(live: Server, tenant: Tenant) -> None:
    """A head just under the block cap, and a signed body far larger than it (fed past the
    cap's slicing in the same read), are answered as usual."""
    padding = "".join(f"x-pad-{i}: {'a' * 4000}\r\n" for i in range(7))
    ok = exchange(
        live, f"GET /healthz HTTP/1.1\r\nhost: g\r\n{padding}connection: close\r\n\r\n".encode()
    )
    assert ok.status == 200 and ok.body["message"] == "Alive"
    body = body_of({"ids": tenant.ids[:1]}) + b" " * 200_000
    head = _signed_head(tenant, body, length=len(body))
    deleted = exchange(live, head + b"connection: close\r\n\r\n" + body)
    assert deleted.status == 200, deleted.body
    assert deleted.body["data"]["summary"] == {"total": 1, "succeeded": 1, "failed": 0}


# --- deadlines ------------------------------------------------------------------------


def test_headers_that_do_not_arrive_in_time_are_req_003(live: Server) -> None:
    before = _metric(live, "gateway_slow_clients_cut_total", phase="headers")
    answer = exchange(live, b"GET /healthz HTTP/1.1\r\nhost: gateway\r\n")
    assert_envelope(answer, 408, "REQ_003", {"phase": "headers", "timeoutSeconds": _TIMEOUT})
    assert _TIMEOUT - 0.1 < answer.seconds < _TIMEOUT + 1
    assert _metric(live, "gateway_slow_clients_cut_total", phase="headers") == before + 1


def test_a_body_that_does_not_arrive_in_time_is_req_003(live: Server, tenant: Tenant) -> None:
    before = _metric(live, "gateway_slow_clients_cut_total", phase="body")
    body = body_of({"ids": tenant.ids[:1]})
    answer = exchange(live, _signed_head(tenant, body, length=len(body)) + b"\r\n" + body[:10])
    assert_envelope(answer, 408, "REQ_003", {"phase": "body", "timeoutSeconds": _TIMEOUT})
    assert _TIMEOUT - 0.1 < answer.seconds < _TIMEOUT + 1
    assert _metric(live, "gateway_slow_clients_cut_total", phase="body") == before + 1


def test_an_idle_connection_is_closed_after_the_keepalive_timeout(live: Server) -> None:
    with _connect(live) as sock:
        began = time.monotonic()
        assert sock.recv(1) == b""  # closed, without an answer: no request was begun
        assert time.monotonic() - began < _TIMEOUT + 1


# --- the checks that need no body come before it --------------------------------------


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [("unknown partner", 401, "AUTH_004"), ("no headers", 401, "AUTH_001")],
)
def test_a_refused_request_is_answered_without_its_body_being_read(
    live: Server, tenant: Tenant, who: str, status: int, code: str
) -> None:
    """8 MiB announced and none sent: the answer comes at once (not after the body deadline)
    and closes the connection, so nobody unknown makes the gateway hold a body."""
    if who == "unknown partner":
        stranger = Tenant(0, "9" * 22, "psk_nobody", 0, tenant.store_client_id, tenant.token)
        head = _signed_head(stranger, b"", length=8 * 1024 * 1024)
    else:
        head = b"POST %s HTTP/1.1\r\nhost: g\r\ncontent-length: 8388608\r\n" % DELETIONS.encode()
    answer = exchange(live, head + b"\r\n")
    assert answer.status == status and answer.body["error"]["code"] == code, answer.body
    assert answer.headers["connection"] == "close"
    assert answer.seconds < _TIMEOUT / 2


# --- trailers -------------------------------------------------------------------------


def test_a_signature_in_a_chunked_trailer_is_not_a_header(live: Server, tenant: Tenant) -> None:
    body = body_of({"ids": tenant.ids[:1]})
    head = _signed_head(tenant, body, drop="x-signature")
    signed = _signed_head(tenant, body).split(b"x-signature: ")[1].split(b"\r\n")[0]
    answer = exchange(
        live, head + b"connection: close\r\n" + _chunked(body, b"x-signature: " + signed + b"\r\n")
    )
    assert answer.status == 401, answer.body
    assert answer.body["error"]["code"] == "AUTH_001"
    assert answer.body["error"]["details"]["context"]["missingHeaders"] == ["x-signature"]


def test_a_trailer_is_ignored_and_a_huge_one_closes_the_connection(
    live: Server, tenant: Tenant
) -> None:
    """A signed chunked request whose trailer repeats x-signature is served (the trailer is
    not a second header); a trailer over the block cap closes the connection at once."""
    body = body_of({"ids": tenant.ids[:1]})
    forged = b"x-signature: " + b"0" * 64 + b"\r\n"
    answer = exchange(
        live, _signed_head(tenant, body) + b"connection: close\r\n" + _chunked(body, forged)
    )
    assert answer.status == 200, answer.body
    before = _metric(live, "gateway_header_cap_refusals_total", part="trailer")
    huge = b"x-pad: " + b"a" * (2 * _BLOCK) + b"\r\n"
    with _connect(live) as sock:
        sock.sendall(_signed_head(tenant, body) + _chunked(body, huge))
        began = time.monotonic()
        raw, closed = _read_answer(sock)
    assert closed and raw == b""  # cut while the body was being read: no answer
    assert time.monotonic() - began < _TIMEOUT / 2
    assert _metric(live, "gateway_header_cap_refusals_total", part="trailer") == before + 1


# --- a client that leaves mid-body ----------------------------------------------------


def test_a_client_gone_mid_body_is_one_log_line_and_a_count(live: Server, tenant: Tenant) -> None:
    """content-length 1000, 10 bytes, close: no 500, no traceback, one line, its own count."""
    before = _metrics(live)
    body = body_of({"ids": tenant.ids[:1]})
    with _connect(live) as sock:
        sock.sendall(_signed_head(tenant, body, length=1000) + b"\r\n" + body[:10])
        time.sleep(0.2)  # the app is waiting for the rest of the body
    deadline = time.monotonic() + 5
    while _metric(live, "gateway_client_disconnects_total") == before.get(
        ("gateway_client_disconnects_total", frozenset()), 0.0
    ):
        assert time.monotonic() < deadline, "the disconnect was not counted"
        time.sleep(0.05)
    after = _metrics(live)
    errors = [
        key for key, value in after.items()
        if key[0] == "gateway_requests_total" and ("status", "500") in key[1] and value
    ]  # fmt: skip
    assert errors == []
    log = live.log.read_text()
    assert "Traceback" not in log and "unhandled error" not in log
    assert (
        log.count("client disconnected before its body was read")
        == after[("gateway_client_disconnects_total", frozenset())]
    )
