"""Statements of docs/api.md that a doc test cannot check: the Content-Type policy, and what is
not valid HTTP (REQ_004 in the envelope with its request id, connection closed; a known method
that a route does not serve reaches the gateway and gets ROUTE_002)."""

from __future__ import annotations

import json
import re
import socket
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import catalog_store
from tests.live import serving
from tests.support import NOW_MS, Tenant, body_of, gateway_client, product_count, signed_headers

DELETIONS = "/api/v1/partner/stores/products/deletions"


API_PAGE = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _synchronous_examples() -> list[dict[str, object]]:
    section = API_PAGE.read_text("utf-8").split("### The synchronous answer (HTTP 200)")[1]
    section = section.split("\n### ")[0]
    return [json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", section, flags=re.S)]


def _gist(answer: dict[str, object]) -> tuple[object, ...]:
    """What a partner reads in a synchronous answer, without the ids that differ per store."""
    data = answer["data"]
    assert isinstance(data, dict)
    errors = [(e["code"], e["message"], e["rowIndex"], "id" in e) for e in data["errors"]]
    return answer["success"], answer["message"], data["summary"], len(data["successItems"]), errors


@pytest.mark.anyio
async def test_the_synchronous_examples_are_what_the_gateway_answers(
    database_url: str, tenant: Tenant
) -> None:
    """The two 200 answers of docs/api.md, sent for real: the same message, summary and errors."""
    all_deleted, some_not = _synchronous_examples()
    requests = [
        {"ids": tenant.ids[:2]},
        {"ids": [str(uuid.uuid4()), tenant.ids[2], "not-a-uuid"], "externalIds": ["sku-9999"]},
    ]
    answers = []
    async with gateway_client(database_url) as client:
        for n, payload in enumerate(requests):
            body = body_of(payload)
            headers = signed_headers(tenant, body=body, timestamp=NOW_MS + n)
            response = await client.post(DELETIONS, content=body, headers=headers)
            assert response.status_code == 200
            answers.append(response.json())
    assert [_gist(a) for a in answers] == [_gist(all_deleted), _gist(some_not)]


@pytest.mark.anyio
async def test_the_body_is_json_whatever_the_content_type_says(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    statuses = []
    async with gateway_client(database_url) as client:
        for n, content_type in enumerate([None, "text/plain", "application/x-www-form-urlencoded"]):
            body = body_of({"ids": tenant.ids[n : n + 1]})
            headers = signed_headers(tenant, body=body, timestamp=NOW_MS + n)
            del headers["content-type"]
            if content_type is not None:
                headers["content-type"] = content_type
            response = await client.post(DELETIONS, content=body, headers=headers)
            statuses.append((response.status_code, response.json()["data"]["summary"]))
    assert statuses == [(200, {"total": 1, "succeeded": 1, "failed": 0})] * 3
    assert await product_count(pool, tenant) == (17, 34)


NOT_HTTP = [
    f"post {DELETIONS} HTTP/1.1\r\nHost: x\r\ncontent-length: 0\r\n\r\n",  # lower-case method
    "FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n",  # a method HTTP does not know
    "GET /heal thz HTTP/1.1\r\nHost: x\r\n\r\n",  # a space in the target
    "GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",  # a space in a header name
    "GET /healthz HTTP/1.1\r\nHost: x\r\nx-a: a\x01b\r\n\r\n",  # a control character in a value
    f"POST {DELETIONS} HTTP/1.1\r\nHost: x\r\ncontent-length: abc\r\n\r\n",
    f"POST {DELETIONS} HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
]


def _exchange(address: tuple[str, int], raw: str) -> tuple[str, dict[str, str], bytes]:
    """Send raw bytes, read the whole answer until the server closes or the body is complete."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(raw.encode("latin-1"))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        while len(body) < int(headers.get("content-length", "0")):
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return status, headers, body


def test_what_is_not_http_is_req_004_in_the_envelope_like_every_other_answer(
    database_url: str, tmp_path: Path
) -> None:
    with serving(database_url, tmp_path) as server:
        url = urlsplit(server.url)
        address = (url.hostname or "127.0.0.1", url.port or 80)
        for raw in NOT_HTTP:
            status, headers, body = _exchange(address, raw)
            assert status == "HTTP/1.1 400 Bad Request", raw
            assert headers["content-type"] == "application/json", raw
            assert headers["connection"] == "close", raw
            answer = json.loads(body)
            assert answer["success"] is False, raw
            assert answer["requestId"] == headers["x-request-id"], raw
            assert answer["error"]["code"] == "REQ_004", raw
            assert answer["error"]["message"] == "Malformed HTTP request", raw
        status, headers, body = _exchange(address, "PATCH /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == "HTTP/1.1 405 Method Not Allowed"
    assert headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert answer["error"]["code"] == "ROUTE_002"
    assert answer["requestId"] == headers["x-request-id"]


def test_garbage_after_an_answered_request_is_req_004_after_that_answer(
    database_url: str, tmp_path: Path
) -> None:
    """Pipelined: the first request gets its own answer, then the garbage gets REQ_004 and the
    connection is closed (an answer is never sent in place of an earlier request's)."""
    with serving(database_url, tmp_path) as server:
        url = urlsplit(server.url)
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 80)) as sock:
            sock.settimeout(10)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\npost / HTTP/1.1\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    first, _, rest = data.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 OK")
    second = rest[rest.index(b"HTTP/1.1 ") :]
    head, _, body = second.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request")
    assert b"connection: close" in head.lower()
    assert json.loads(body)["error"]["code"] == "REQ_004"
