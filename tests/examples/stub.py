"""A stand-in for the gateway on loopback that answers a script of replies and records what it
received: for what the real gateway answers only under conditions a test cannot cheaply make
(a database outage's SYS_001, IDEM_002 while a first request still runs)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.monotonic()


_REQUEST_ID = "00000000-0000-4000-8000-000000000000"


def refused(code: str, status: int, retry_after: str) -> Reply:
    """An error envelope as the gateway sends it, with Retry-After."""
    body = {
        "success": False,
        "requestId": _REQUEST_ID,
        "error": {
            "code": code,
            "message": "Service temporarily unavailable",
            "details": {"timestamp": "2026-11-30T23:00:00.000Z", "hint": "Retry", "context": {}},
        },
    }
    return Reply(
        status, json.dumps(body, separators=(",", ":")).encode(), {"Retry-After": retry_after}
    )


def deleted(*, total: int, failed: int) -> Reply:
    """A processed deletion's report: ``failed`` of ``total`` entries not found."""
    body = {
        "success": True,
        "message": "Products deleted successfully"
        if not failed
        else "Some products were not deleted",
        "requestId": _REQUEST_ID,
        "meta": {"timestamp": "2026-11-30T23:00:00.000Z", "durationMs": 1, "dispatch": False},
        "data": {
            "summary": {"total": total, "succeeded": total - failed, "failed": failed},
            "successItems": [],
            "errors": [
                {"code": "PRD_014", "message": "Product ID not found", "rowIndex": n, "id": "x"}
                for n in range(failed)
            ],
        },
    }
    return Reply(200, json.dumps(body, separators=(",", ":")).encode(), {})


class StubGateway:
    """Answers the script's replies in turn (the last one from then on), until the block ends."""

    def __init__(self, script: list[Reply]) -> None:
        self._script = script
        self.requests: list[Received] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                stub.requests.append(Received(headers, body, time.monotonic()))
                reply = stub._script[min(len(stub.requests), len(stub._script)) - 1]
                self.send_response(reply.status)
                for name, value in {"content-type": "application/json", **reply.headers}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> StubGateway:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
