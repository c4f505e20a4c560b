"""A table of hostile inputs: each gets its exact coded answer, none a 500, and none changes a
product of any store."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import pytest

import catalog_store
import signing
from gateway import decoding, deletions, paging, wire
from gateway.errors import CATALOG
from gateway.settings import Settings
from tests.support import DELETIONS, NOW_MS, Tenant, assert_error, gateway_client, make_tenant

pytestmark = pytest.mark.anyio

_MALFORMED_TS = "must be Unix time in milliseconds, decimal digits only (e.g. 1758100350458)"
_DEEP = 10_000
_HUGE = b'{"ids": ["' + b"a" * (8 * 1024 * 1024) + b'"]}'


@dataclass(frozen=True)
class Hostile:
    """A request built from a valid one: ``signed`` header values are signed as they are,
    ``forged`` ones replace the signed values afterwards; ``extra`` headers are appended."""

    name: str
    status: int
    code: str
    body: bytes = b'{"ids": ["946b3ffa-5f9e-412e-acf4-eea306736e63"]}'
    method: str = "POST"
    path: str = DELETIONS
    query: str = ""
    signed: dict[str, str] = field(default_factory=dict)
    forged: dict[str, str] = field(default_factory=dict)
    extra: tuple[tuple[str, str], ...] = ()
    context: dict[str, Any] | None = None
    items: list[dict[str, Any]] | None = None  # the item errors of a 200 report
    other_store: bool = False  # sign for the other tenant's store with our token


_BATCH = DELETIONS + "/946b3ffa-5f9e-412e-acf4-eea306736e63"


def _cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _val(**errors: str) -> dict[str, Any]:
    return {"validationErrors": errors}


def _bad(*invalid: str, why: str) -> dict[str, Any]:
    return {
        "missingHeaders": [],
        "invalidHeaders": list(invalid),
        "headerErrors": {name: why for name in invalid},
    }


def _item(code: str, message: str, key: str, value: str) -> dict[str, Any]:
    return {"code": code, "message": message, "rowIndex": 0, key: value}


_NOT_UUID = "Product ID is not a valid UUID"
_NOT_A_FIELD = "is not a field of this request; expected ids, externalIds, dispatch, dryRun"
_NO_EXTERNAL = "Product external ID not found"
_NOT_JSON = "is not valid JSON"
_NOT_UTF8 = "is not valid JSON: JSON text must be encoded in UTF-8"
_NOT_AN_OBJECT = 'must be a JSON object such as {"ids": ["<product uuid>"]}; '
_TOO_DEEP = "nests arrays or objects too deeply; send one flat JSON object"
_TWICE = "is given more than once in the JSON object; send each field once"
_STRINGS = "must be an array of strings"
_EXTERNAL = "must be an array of strings of 1 to 255 characters"

CASES = [
    # --- SQL where ids belong: item answers, the database never sees them as SQL ---
    Hostile(
        "sql in ids",
        200,
        "PRD_017",
        body=b'{"ids": ["\' OR 1=1 --"]}',
        items=[_item("PRD_017", _NOT_UUID, "id", "' OR 1=1 --")],
    ),
    Hostile(
        "sql union in ids",
        200,
        "PRD_017",
        body=b'{"ids": ["1 UNION SELECT id FROM products"]}',
        items=[_item("PRD_017", _NOT_UUID, "id", "1 UNION SELECT id FROM products")],
    ),
    Hostile(
        "sql in external ids",
        200,
        "PRD_015",
        body=b"{\"externalIds\": [\"x' OR '1'='1\"]}",
        items=[_item("PRD_015", _NO_EXTERNAL, "externalId", "x' OR '1'='1")],
    ),
    Hostile(
        "drop table in external ids",
        200,
        "PRD_015",
        body=b'{"externalIds": ["\'; DROP TABLE products; --"]}',
        items=[_item("PRD_015", _NO_EXTERNAL, "externalId", "'; DROP TABLE products; --")],
    ),
    Hostile(
        "like wildcard in external ids",
        200,
        "PRD_015",
        body=b'{"externalIds": ["%"]}',
        items=[_item("PRD_015", _NO_EXTERNAL, "externalId", "%")],
    ),
    # --- NUL bytes ---
    Hostile(
        "escaped NUL in an id",
        400,
        "VAL_001",
        body=b'{"ids": ["946b3ffa-5f9e-412e-acf4-eea306736e63\\u0000"]}',
        context=_val(ids="must not contain the NUL character \\u0000 (at ids[0])"),
    ),
    Hostile(
        "escaped NUL in an external id",
        400,
        "VAL_001",
        body=b'{"externalIds": ["ok", "a\\u0000b"]}',
        context=_val(externalIds="must not contain the NUL character \\u0000 (at externalIds[1])"),
    ),
    Hostile(
        "escaped NUL in a dispatched batch",
        400,
        "VAL_001",
        body=b'{"externalIds": ["\\u0000"], "dispatch": true}',
        context=_val(externalIds="must not contain the NUL character \\u0000 (at externalIds[0])"),
    ),
    Hostile(
        "raw NUL byte in a string",
        400,
        "VAL_001",
        body=b'{"ids": ["a\x00"]}',
        context=_val(body=_NOT_JSON),
    ),
    # --- nesting ---
    Hostile(
        "10,000-deep arrays as the body",
        400,
        "VAL_001",
        body=b"[" * _DEEP + b"]" * _DEEP,
        context=_val(body=_NOT_AN_OBJECT + "got an array"),
    ),
    Hostile(
        "10,000-deep arrays in ids",
        400,
        "VAL_001",
        body=b'{"ids": ' + b"[" * _DEEP + b"]" * _DEEP + b"}",
        context=_val(body=_TOO_DEEP),
    ),
    Hostile(
        "10,000-deep objects",
        400,
        "VAL_001",
        body=b'{"x": ' * _DEEP + b"1" + b"}" * _DEEP,
        context=_val(body=_TOO_DEEP),
    ),
    # --- duplicate keys ---
    Hostile(
        "duplicate ids key",
        400,
        "VAL_001",
        body=b'{"ids": ["a"], "ids": ["946b3ffa-5f9e-412e-acf4-eea306736e63"]}',
        context=_val(ids=_TWICE),
    ),
    Hostile(
        "duplicate key hidden behind an escape",
        400,
        "VAL_001",
        body=b'{"externalIds": ["a"], "\\u0065xternalIds": ["b"]}',
        context=_val(externalIds=_TWICE),
    ),
    Hostile(
        "duplicate dispatch key",
        400,
        "VAL_001",
        body=b'{"ids": ["a"], "dispatch": true, "dispatch": false}',
        context=_val(dispatch=_TWICE),
    ),
    Hostile(
        "dryRun given twice, the last false",
        400,
        "VAL_001",
        body=b'{"ids": ["<own>"], "dryRun": true, "dryRun": false}',
        context=_val(dryRun=_TWICE),
    ),
    Hostile(
        "dryRun given twice, one behind an escape",
        400,
        "VAL_001",
        body=b'{"ids": ["<own>"], "\\u0064ryRun": true, "dryRun": false}',
        context=_val(dryRun=_TWICE),
    ),
    Hostile(
        "repeated key whose first value is a number of 5,000 digits",
        400,
        "VAL_001",
        body=b'{"ids": [' + b"1" * 5000 + b'], "ids": ["<own>"]}',
        context=_val(ids=_TWICE),
    ),
    Hostile(
        "repeated key whose first value is the bad one",
        400,
        "VAL_001",
        body=b'{"ids": [1], "ids": ["<own>"]}',
        context=_val(ids=_TWICE),
    ),
    # --- encodings ---
    Hostile(
        "non-UTF-8 byte in a string",
        400,
        "VAL_001",
        body=b'{"externalIds": ["caf\xe9"]}',
        context=_val(body=_NOT_UTF8),
    ),
    Hostile(
        "non-UTF-8 bytes outside strings",
        400,
        "VAL_001",
        body=b"\xff\xfe{}",
        context=_val(body=_NOT_UTF8),
    ),
    Hostile(
        "UTF-16 body",
        400,
        "VAL_001",
        body='{"ids": ["a"]}'.encode("utf-16"),
        context=_val(body=_NOT_UTF8),
    ),
    Hostile(
        "lone surrogate escape",
        400,
        "VAL_001",
        body=b'{"externalIds": ["\\ud800"]}',
        context=_val(body=_NOT_JSON),
    ),
    # --- wrong types ---
    Hostile(
        "number in ids",
        400,
        "VAL_001",
        body=b'{"ids": [123]}',
        context=_val(ids=_STRINGS + "; ids[0] is a number"),
    ),
    Hostile(
        "number in external ids",
        400,
        "VAL_001",
        body=b'{"externalIds": ["a", 4.5]}',
        context=_val(externalIds=_EXTERNAL + "; externalIds[1] is a number"),
    ),
    Hostile(
        "huge number in ids",
        400,
        "VAL_001",
        body=b'{"ids": [1e999999]}',
        context=_val(ids=_STRINGS + "; ids[0] is a number"),
    ),
    Hostile(
        "string where the array belongs",
        400,
        "VAL_001",
        body=b'{"ids": "946b3ffa-5f9e-412e-acf4-eea306736e63"}',
        context=_val(ids=_STRINGS + "; got a string"),
    ),
    Hostile(
        "null ids",
        400,
        "VAL_001",
        body=b'{"ids": null}',
        context=_val(ids=_STRINGS + "; got null"),
    ),
    Hostile(
        "object in ids",
        400,
        "VAL_001",
        body=b'{"ids": [{"id": "x"}]}',
        context=_val(ids=_STRINGS + "; ids[0] is an object"),
    ),
    Hostile(
        "string dispatch",
        400,
        "VAL_001",
        body=b'{"ids": ["a"], "dispatch": "true"}',
        context=_val(dispatch="must be true or false; got a string"),
    ),
    Hostile(
        "string dryRun",
        400,
        "VAL_001",
        body=b'{"ids": ["a"], "dryRun": "false"}',
        context=_val(dryRun="must be true or false; got a string"),
    ),
    # --- the idempotency-key header (not signed, so anyone on the path can set it) ---
    Hostile(
        "idempotency key of 256 characters",
        400,
        "VAL_001",
        extra=(("idempotency-key", "k" * 256),),
        context=_val(**{"idempotency-key": "must be 1 to 255 characters; got 256"}),
    ),
    Hostile(
        "header injection in the idempotency key",
        400,
        "VAL_001",
        extra=(("idempotency-key", "k\r\nx-signature: 00"),),
        context=_val(**{"idempotency-key": "must be printable ASCII characters (space to ~)"}),
    ),
    Hostile(
        "idempotency key sent twice",
        400,
        "VAL_001",
        extra=(("idempotency-key", "a"), ("idempotency-key", "b")),
        context=_val(**{"idempotency-key": "must be sent once"}),
    ),
    # --- sizes and shapes ---
    Hostile(
        "100,001 ids",
        400,
        "VAL_001",
        body=b'{"ids": [' + b",".join([b'"x"'] * 100_001) + b"]}",
        context=_val(ids="must have at most 100,000 entries; got 100,001"),
    ),
    Hostile(
        "external id of 256 characters",
        400,
        "VAL_001",
        body=b'{"externalIds": ["' + b"e" * 256 + b'"]}',
        context=_val(externalIds=_EXTERNAL + "; externalIds[0] has 256 characters"),
    ),
    Hostile(
        "empty external id",
        400,
        "VAL_001",
        body=b'{"externalIds": [""]}',
        context=_val(externalIds=_EXTERNAL + "; externalIds[0] is empty"),
    ),
    Hostile(
        "no entries",
        400,
        "VAL_001",
        body=b"{}",
        context=_val(ids="at least one id or external id is required"),
    ),
    Hostile(
        "empty body",
        400,
        "VAL_001",
        body=b"",
        context=_val(body='is empty: send a JSON object such as {"ids": ["<product uuid>"]}'),
    ),
    Hostile(
        "trailing garbage",
        400,
        "VAL_001",
        body=b'{"ids": ["a"]} DROP',
        context=_val(body=_NOT_JSON),
    ),
    Hostile(
        "unknown field",
        400,
        "VAL_001",
        body=b'{"idz": ["a"]}',
        context=_val(idz=_NOT_A_FIELD),
    ),
    Hostile(
        "body over 8 MiB",
        413,
        "VAL_002",
        body=_HUGE,
        context={"limitBytes": 8 * 1024 * 1024, "contentLength": len(_HUGE)},
    ),
    # --- headers ---
    Hostile(
        "header injection in the token",
        401,
        "AUTH_001",
        forged={"x-store-token": "stkn_x\r\nx-signature: 00"},
        context=_bad("x-store-token", why="must be printable ASCII"),
    ),
    Hostile(
        "NUL in the partner id",
        401,
        "AUTH_001",
        forged={"x-partner-client-id": "2025\x00"},
        context=_bad("x-partner-client-id", why="must be printable ASCII"),
    ),
    Hostile(
        "timestamp 0",
        401,
        "AUTH_003",
        signed={"x-timestamp": "0"},
        context={"providedTimestamp": 0, "currentTime": NOW_MS, "ageSeconds": NOW_MS // 1000},
    ),
    Hostile(
        "negative timestamp",
        401,
        "AUTH_001",
        forged={"x-timestamp": str(-NOW_MS)},
        context=_bad("x-timestamp", why=_MALFORMED_TS),
    ),
    Hostile(
        "timestamp of 20 digits",
        401,
        "AUTH_001",
        forged={"x-timestamp": "1" * 20},
        context=_bad("x-timestamp", why=_MALFORMED_TS),
    ),
    Hostile(
        "float timestamp",
        401,
        "AUTH_001",
        forged={"x-timestamp": f"{NOW_MS}.0"},
        context=_bad("x-timestamp", why=_MALFORMED_TS),
    ),
    Hostile(
        "timestamp with a plus sign",
        401,
        "AUTH_001",
        forged={"x-timestamp": f"+{NOW_MS}"},
        context=_bad("x-timestamp", why=_MALFORMED_TS),
    ),
    Hostile(
        "timestamp in exponent notation",
        401,
        "AUTH_001",
        forged={"x-timestamp": "1.758100350458e12"},
        context=_bad("x-timestamp", why=_MALFORMED_TS),
    ),
    Hostile(
        "timestamp in seconds",
        401,
        "AUTH_003",
        signed={"x-timestamp": str(NOW_MS // 1000)},
        context={
            "providedTimestamp": NOW_MS // 1000,
            "currentTime": NOW_MS,
            "ageSeconds": (NOW_MS - NOW_MS // 1000) // 1000,
        },
    ),
    Hostile(
        "signature one character short",
        401,
        "AUTH_001",
        forged={"x-signature": "a" * 63},
        context=_bad(
            "x-signature", why="must be the 64-character hex HMAC-SHA256 of the string to sign"
        ),
    ),
    Hostile(
        "signature sent twice",
        401,
        "AUTH_001",
        extra=(("x-signature", "0" * 64),),
        context=_bad("x-signature", why="is sent more than once"),
    ),
    Hostile(
        "partner id of 10,000 characters",
        401,
        "AUTH_001",
        forged={"x-partner-client-id": "9" * 10_000},
        context=_bad("x-partner-client-id", why="is longer than 8192 bytes"),
    ),
    Hostile(
        "sql in the partner id",
        401,
        "AUTH_004",
        signed={"x-partner-client-id": "1' OR '1'='1"},
    ),
    # The checks that need no body come first: a stranger never gets as far as the body.
    Hostile(
        "unknown partner with a body over 8 MiB",
        401,
        "AUTH_004",
        body=_HUGE,
        forged={"x-partner-client-id": "9" * 22},
        context={},
    ),
    Hostile(
        "malformed signature with a body over 8 MiB",
        401,
        "AUTH_001",
        body=_HUGE,
        forged={"x-signature": "nope"},
        context=_bad(
            "x-signature", why="must be the 64-character hex HMAC-SHA256 of the string to sign"
        ),
    ),
    Hostile(
        "sql in the store token, signed",
        403,
        "AUTH_005",
        signed={"x-store-token": "' OR revoked_at IS NULL --"},
    ),
    Hostile("our token for another store, signed", 403, "AUTH_005", other_store=True),
    Hostile(
        "sql as the batch id",
        404,
        "BAT_001",
        method="GET",
        path=DELETIONS + "/'OR'1'='1'--",
        body=b"",
        context={"batchId": "'OR'1'='1'--"},
    ),
    # --- the path: only its canonical spelling, as sent, reaches a signed route ---
    Hostile(
        "percent-encoded sql as the batch id",
        404,
        "ROUTE_001",
        method="GET",
        path=DELETIONS + "/'%20OR%201=1",
        body=b"",
        context={"path": DELETIONS + "/'%20OR%201=1"},
    ),
    Hostile(
        "encoded newline after the path",
        404,
        "ROUTE_001",
        path=DELETIONS + "%0a",
        body=b'{"ids": ["<own>"]}',
        context={"path": DELETIONS + "%0a"},
    ),
    Hostile(
        "encoded letter in the path",
        404,
        "ROUTE_001",
        path="/api/v1/partner/stores/products/%64eletions",
        body=b'{"ids": ["<own>"]}',
        context={"path": "/api/v1/partner/stores/products/%64eletions"},
    ),
    Hostile(
        "encoded slash in the path",
        404,
        "ROUTE_001",
        path="/api/v1/partner/stores/products%2Fdeletions",
        body=b'{"ids": ["<own>"]}',
        context={"path": "/api/v1/partner/stores/products%2Fdeletions"},
    ),
    Hostile(
        "encoded lower-case slash in the path",
        404,
        "ROUTE_001",
        path="/api/v1/partner/stores/products%2fdeletions",
        body=b'{"ids": ["<own>"]}',
        context={"path": "/api/v1/partner/stores/products%2fdeletions"},
    ),
    Hostile(
        "encoded newline after a batch id",
        404,
        "ROUTE_001",
        method="GET",
        path=_BATCH + "%0A",
        body=b"",
        context={"path": _BATCH + "%0A"},
    ),
    Hostile(
        "encoded character in a batch id",
        404,
        "ROUTE_001",
        method="GET",
        path=_BATCH.replace("-412e", "%2D412e"),
        body=b"",
        context={"path": _BATCH.replace("-412e", "%2D412e")},
    ),
    # --- the query: a route reads only the parameters it defines, and refuses the others ---
    Hostile(
        "dryRun in the query",
        400,
        "VAL_001",
        query="dryRun=true",
        body=b'{"ids": ["<own>"]}',
        context=_val(dryRun="dryRun belongs in the JSON body, not in the query"),
    ),
    Hostile(
        "percent-encoded dryRun in the query",
        400,
        "VAL_001",
        query="%64ryRun=true",
        body=b'{"ids": ["<own>"]}',
        context=_val(dryRun="dryRun belongs in the JSON body, not in the query"),
    ),
    Hostile(
        "dryRun without a value in the query",
        400,
        "VAL_001",
        query="dryRun",
        body=b'{"ids": ["<own>"]}',
        context=_val(dryRun="dryRun belongs in the JSON body, not in the query"),
    ),
    Hostile(
        "unknown query parameters on the deletion route",
        400,
        "VAL_001",
        query="force=1&dispatch=false",
        body=b'{"ids": ["<own>"]}',
        context=_val(
            force="is not a query parameter of this route; it takes none",
            dispatch="dispatch belongs in the JSON body, not in the query",
        ),
    ),
    Hostile(
        "unknown query parameter on the batch route",
        400,
        "VAL_001",
        method="GET",
        path=_BATCH,
        query="limit=5&dryRun=true",
        body=b"",
        context=_val(dryRun="is not a query parameter of this route; it takes limit and cursor"),
    ),
    Hostile(
        "page limit given twice",
        400,
        "VAL_001",
        method="GET",
        path=_BATCH,
        query="limit=5&limit=1000",
        body=b"",
        context=_val(limit="is given more than once in the query; send it once"),
    ),
    Hostile(
        "page limit of 5,000 digits",
        400,
        "VAL_001",
        method="GET",
        path=_BATCH,
        query="limit=" + "1" * 5000,
        body=b"",
        context=_val(limit="must be a whole number from 1 to 1,000"),
    ),
    # --- the page cursor: decoded by a typed decoder, within bounds, or refused ---
    *(
        Hostile(
            f"page cursor: {name}",
            400,
            "VAL_001",
            method="GET",
            path=_BATCH,
            query="cursor=" + cursor,
            body=b"",
            context=_val(cursor="must be a nextCursor value returned by this endpoint"),
        )
        for name, cursor in [
            ("10,000-deep arrays", _cursor(b"[" * _DEEP + b"]" * _DEEP)),
            ("6-deep arrays", _cursor(b"[[[[[[]]]]]]")),
            ("an array", _cursor(b'[{"o": 1}]')),
            ("a float offset", _cursor(b'{"o":5.0}')),
            ("a string offset", _cursor(b'{"o":"5"}')),
            ("an offset over the bound", _cursor(b'{"o":1000000001}')),
            ("another key", _cursor(b'{"o":5,"p":1}')),
            ("another spelling", _cursor(b'{"o": 5}')),
            ("padded", _cursor(b'{"o":5}') + "%3D"),
            ("not base64", "eyJvIjo1fQ.."),
            ("empty", ""),
            ("bad UTF-8", _cursor(b'{"o":5,"\xff":1}')),
        ]
    ),
    # --- dry runs: answered at once, so small, and never dispatched ---
    Hostile(
        "dry run of 1,001 ids",
        400,
        "VAL_001",
        body=b'{"dryRun": true, "ids": [' + b",".join([b'"x"'] * 1001) + b"]}",
        context=_val(ids="a dry run takes at most 1,000 entries in all; got 1,001"),
    ),
    Hostile(
        "dry run of 1,001 external ids",
        400,
        "VAL_001",
        body=b'{"externalIds": [' + b",".join([b'"x"'] * 1001) + b'], "dryRun": true}',
        context=_val(externalIds="a dry run takes at most 1,000 entries in all; got 1,001"),
    ),
    Hostile(
        "dry run of 100,000 entries",
        400,
        "VAL_001",
        body=b'{"dryRun": true, "ids": [' + b",".join([b'"x"'] * 100_000) + b"]}",
        context=_val(ids="a dry run takes at most 1,000 entries in all; got 100,000"),
    ),
    Hostile(
        "dry run dispatched",
        400,
        "VAL_001",
        body=b'{"ids": ["<own>"], "dryRun": true, "dispatch": true}',
        context=_val(
            dryRun='cannot be sent with "dispatch": true; a dry run is answered at once,'
            " never dispatched"
        ),
    ),
    Hostile(
        "negative page limit",
        400,
        "VAL_001",
        method="GET",
        path=_BATCH,
        query="limit=-1",
        body=b"",
        context=_val(limit="must be a whole number from 1 to 1,000"),
    ),
    Hostile(
        "forged page cursor",
        400,
        "VAL_001",
        method="GET",
        path=_BATCH,
        query="cursor=eyJvIjotMX0",
        body=b"",
        context=_val(cursor="must be a nextCursor value returned by this endpoint"),
    ),
]


def _message(code: str) -> str:
    return CATALOG[code].message


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(database_url, settings=Settings(pool_min=1, pool_max=2)) as c:
        yield c


def hostile_body(case: Hostile, tenant: Tenant) -> bytes:
    """``<own>`` in a case's body stands for a product of the caller's own store."""
    if b"<own>" not in case.body:
        return case.body
    return case.body.replace(b"<own>", tenant.ids[0].encode())


def hostile_request(
    case: Hostile, tenant: Tenant, other: Tenant, *, now_ms: int = NOW_MS
) -> list[tuple[bytes, bytes]]:
    """The case's headers, signed at ``now_ms`` by ``tenant`` (the fuzz campaign's too)."""
    values = {
        "x-partner-client-id": tenant.partner_client_id,
        "x-store-client-id": other.store_client_id if case.other_store else tenant.store_client_id,
        "x-store-token": tenant.token,
        "x-timestamp": str(now_ms),
        **case.signed,
    }
    signature = signing.sign_request(
        tenant.secret,
        method=case.method,
        path=case.path,
        query=case.query,
        partner_client_id=values["x-partner-client-id"],
        store_client_id=values["x-store-client-id"],
        store_token=values["x-store-token"],
        timestamp=values["x-timestamp"],
        body=hostile_body(case, tenant),
    )
    values = {**values, "x-signature": signature, **case.forged}
    headers = [(name, value) for name, value in values.items()] + list(case.extra)
    headers.append(("content-type", "application/json"))
    return [(name.encode(), value.encode("latin-1")) for name, value in headers]


async def _snapshot(pool: catalog_store.Pool) -> list[tuple[Any, ...]]:
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute(
            "SELECT store_id, id, external_id, (SELECT count(*) FROM product_variants v"
            "  WHERE v.store_id = p.store_id AND v.product_id = p.id)"
            " FROM products p ORDER BY store_id, id"
        )
        return await cur.fetchall()


def test_the_table_has_at_least_forty_hostile_inputs() -> None:
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)


async def _answer_and_check(
    client: httpx.AsyncClient, pool: catalog_store.Pool, tenant: Tenant, case: Hostile
) -> None:
    other = await make_tenant(pool, products=3, name="other")
    before = await _snapshot(pool)
    url = case.path + (f"?{case.query}" if case.query else "")
    response = await client.request(
        case.method,
        url,
        content=hostile_body(case, tenant),
        headers=hostile_request(case, tenant, other),
    )
    if case.items is not None:
        assert response.status_code == 200, response.text
        assert response.json()["data"]["errors"] == case.items
        assert response.json()["data"]["summary"]["succeeded"] == 0
    else:
        assert_error(response, case.status, case.code, _message(case.code), context=case.context)
    assert await _snapshot(pool) == before


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_a_hostile_input_gets_its_coded_answer_and_changes_nothing(
    client: httpx.AsyncClient, pool: catalog_store.Pool, tenant: Tenant, case: Hostile
) -> None:
    await _answer_and_check(client, pool, tenant, case)


_GARBAGE = "\u2603 #%$ zz9 plural z alpha"


class _Garbling:
    """A msgspec decoder whose errors keep their class and lose their words."""

    def __init__(self, decoder: Any) -> None:
        self.decoder = decoder
        self.type = decoder.type

    def decode(self, data: Any) -> Any:
        try:
            return self.decoder.decode(data)
        except msgspec.ValidationError:
            raise msgspec.ValidationError(_GARBAGE) from None
        except msgspec.DecodeError:
            raise msgspec.DecodeError(_GARBAGE) from None


@pytest.fixture
def garbled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every decoder the gateway built, rebuilt so that msgspec's message text is garbage."""
    real = msgspec.json.Decoder
    monkeypatch.setattr(msgspec.json, "Decoder", lambda *a, **k: _Garbling(real(*a, **k)))
    replaced = 0
    for module in (wire, decoding, deletions, paging):
        for name, value in list(vars(module).items()):
            if isinstance(value, decoding.BodyDecoder):
                rebuilt: Any = decoding.BodyDecoder(value.type, example=value.example)
            elif isinstance(value, real):
                rebuilt = msgspec.json.Decoder(value.type)
            else:
                continue
            monkeypatch.setattr(module, name, rebuilt)
            replaced += 1
    assert replaced >= 1
    assert isinstance(deletions._BODY._decoder, _Garbling)


# The answers that decoding decides; the others are given before any decoder runs.
DECODED = [case for case in CASES if case.code == "VAL_001" or case.items is not None]


@pytest.mark.parametrize("case", DECODED, ids=lambda case: case.name)
async def test_the_table_holds_whatever_msgspec_says(
    garbled: None,
    client: httpx.AsyncClient,
    pool: catalog_store.Pool,
    tenant: Tenant,
    case: Hostile,
) -> None:
    """No answer depends on a library's wording: with msgspec's messages turned to garbage,
    every hostile input that is decoded still gets the same coded answer."""
    await _answer_and_check(client, pool, tenant, case)
