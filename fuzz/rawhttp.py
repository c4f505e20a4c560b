"""HTTP/1.1 over a plain socket, byte for byte: what the campaign sends is exactly what a finding
reports, including requests that no HTTP client library would build."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Answer", "build_request", "exchange", "trickle"]


@dataclass
class Answer:
    """What came back: ``status`` None when the server closed (or reset) without answering."""

    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    elapsed: float = 0.0  # seconds from the first byte sent to the end of the answer (or close)
    error: str = ""


def build_request(
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes = b"",
    *,
    host: str = "gateway",
    content_length: bool = True,
) -> bytes:
    """One request as raw bytes: ``target`` is the path and query exactly as sent."""
    lines = [f"{method} {target} HTTP/1.1", f"host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if content_length and (body or method in ("POST", "PUT")):
        lines.append(f"content-length: {len(body)}")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


def _read(sock: socket.socket, method: str) -> tuple[int, dict[str, str], bytes]:
    response = http.client.HTTPResponse(sock, method=method)
    try:
        response.begin()
        body = response.read()
    finally:
        response.close()
    headers = {name.lower(): value for name, value in response.getheaders()}
    return response.status, headers, body


def exchange(
    host: str, port: int, data: bytes, *, timeout: float = 30.0, method: str = "GET"
) -> Answer:
    """Send ``data`` on a new connection and read one answer; never raises for the network."""
    start = time.monotonic()
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        return Answer(None, elapsed=time.monotonic() - start, error=f"connect: {exc}")
    with sock:
        try:
            sock.sendall(data)
        except OSError as exc:  # the server may close early (a cap): read what it said
            error = f"send: {type(exc).__name__}"
        else:
            error = ""
        try:
            status, headers, body = _read(sock, method)
        except (OSError, http.client.HTTPException) as exc:
            reason = f"{type(exc).__name__}: {exc}"[:200]
            return Answer(None, elapsed=time.monotonic() - start, error=error or reason)
    return Answer(status, headers, body, time.monotonic() - start, error)


def trickle(
    host: str,
    port: int,
    head: bytes,
    drip: bytes,
    *,
    every: float,
    give_up_after: float,
    then_close: bool = False,
) -> Answer:
    """Send ``head``, then ``drip`` one byte every ``every`` seconds, until the server answers or
    closes, or ``give_up_after`` seconds pass (then ``status`` is None and ``error`` says
    "still open"). With ``then_close``, close right after ``head``: a client that goes away."""
    start = time.monotonic()

    def gone(error: str) -> Answer:
        return Answer(None, elapsed=time.monotonic() - start, error=error)

    sock = socket.create_connection((host, port), timeout=give_up_after + 5)
    with sock:
        sock.sendall(head)
        if then_close:
            return gone("closed by the client")
        sock.settimeout(every)
        sent = 0
        while time.monotonic() - start <= give_up_after:
            try:
                peek = sock.recv(1, socket.MSG_PEEK)
            except TimeoutError:
                peek = None
            except OSError as exc:
                return gone(f"reset: {exc}")
            if peek == b"":
                return gone("closed by the server")
            if peek:
                sock.settimeout(5)
                try:
                    status, headers, body = _read(sock, "POST")
                except (OSError, http.client.HTTPException) as exc:
                    return gone(str(exc)[:200])
                return Answer(status, headers, body, time.monotonic() - start)
            if sent < len(drip):
                try:
                    sock.sendall(drip[sent : sent + 1])
                except OSError as exc:
                    return gone(f"send: {exc}")
                sent += 1
    return gone("still open")
