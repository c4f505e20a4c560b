"""AUTH_002 names the usual signing mistake: each one, made with the partner's real secret, gets
its exact ``context.likelyCause`` and hint; the same mistake with another secret gets none."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest

import catalog_store
import signing
from tests.support import (
    DELETIONS,
    NOW_MS,
    Tenant,
    assert_error,
    body_of,
    gateway_client,
    make_tenant,
    product_count,
    signed_headers,
)

pytestmark = pytest.mark.anyio

Request = tuple[str, str, bytes, dict[str, str]]  # method, target, body, headers
BATCH = DELETIONS + "/0b9f7d7e-1c2a-4b8e-9d3f-5a6b7c8d9e0f"


def _lines(
    t: Tenant,
    *,
    method: str = "POST",
    path: str = DELETIONS,
    query: str = "",
    timestamp: str = str(NOW_MS),
    body: bytes = b"",
) -> list[str]:
    return [
        method,
        path,
        query,
        t.partner_client_id,
        t.store_client_id,
        t.token,
        timestamp,
        hashlib.sha256(body).hexdigest(),
    ]


def _sent(t: Tenant, method: str, target: str, body: bytes, signature: str) -> Request:
    headers = signed_headers(t)  # the five headers; the signature is replaced
    headers["x-signature"] = signature
    return method, target, body, headers


def _body(t: Tenant) -> bytes:
    return body_of({"ids": t.ids[:1]})


def body_newline_added(t: Tenant) -> Request:
    signed = _lines(t, body=_body(t) + b"\n")
    return _sent(t, "POST", DELETIONS, _body(t), signing.sign(t.secret, "\n".join(signed)))


def body_newline_removed(t: Tenant) -> Request:
    signed = _lines(t, body=_body(t))
    return _sent(t, "POST", DELETIONS, _body(t) + b"\n", signing.sign(t.secret, "\n".join(signed)))


def body_crlf_removed(t: Tenant) -> Request:
    signed = _lines(t, body=_body(t))
    body = _body(t) + b"\r\n"
    return _sent(t, "POST", DELETIONS, body, signing.sign(t.secret, "\n".join(signed)))


def crlf_line_joins(t: Tenant) -> Request:
    signed = _lines(t, body=_body(t))
    return _sent(t, "POST", DELETIONS, _body(t), signing.sign(t.secret, "\r\n".join(signed)))


def timestamp_in_seconds(t: Tenant) -> Request:
    signed = _lines(t, body=_body(t), timestamp=str(NOW_MS // 1000))
    return _sent(t, "POST", DELETIONS, _body(t), signing.sign(t.secret, "\n".join(signed)))


def query_omitted(t: Tenant) -> Request:
    signed = _lines(t, method="GET", path=BATCH)
    return _sent(t, "GET", BATCH + "?limit=5", b"", signing.sign(t.secret, "\n".join(signed)))


def query_sorted(t: Tenant) -> Request:
    signed = _lines(t, method="GET", path=BATCH, query="cursor=eyJvIjo1fQ&limit=5")
    target = BATCH + "?limit=5&cursor=eyJvIjo1fQ"
    return _sent(t, "GET", target, b"", signing.sign(t.secret, "\n".join(signed)))


def query_decoded(t: Tenant) -> Request:
    signed = _lines(t, method="GET", path=BATCH, query="cursor=a+b/c")
    target = BATCH + "?cursor=a%2Bb%2Fc"
    return _sent(t, "GET", target, b"", signing.sign(t.secret, "\n".join(signed)))


def path_with_query(t: Tenant) -> Request:
    signed = _lines(t, method="GET", path=BATCH + "?limit=5", query="limit=5")
    return _sent(t, "GET", BATCH + "?limit=5", b"", signing.sign(t.secret, "\n".join(signed)))


def path_with_query_line_3_empty(t: Tenant) -> Request:
    signed = _lines(t, method="GET", path=BATCH + "?limit=5")
    return _sent(t, "GET", BATCH + "?limit=5", b"", signing.sign(t.secret, "\n".join(signed)))


def method_lower_case(t: Tenant) -> Request:
    signed = _lines(t, method="post", body=_body(t))
    return _sent(t, "POST", DELETIONS, _body(t), signing.sign(t.secret, "\n".join(signed)))


def secret_hex_decoded(t: Tenant) -> Request:
    key = bytes.fromhex(t.secret.removeprefix("psk_"))
    signed = _lines(t, body=_body(t))
    return _sent(t, "POST", DELETIONS, _body(t), signing.sign(key, "\n".join(signed)))


def secret_base64_decoded(t: Tenant) -> Request:
    key = base64.urlsafe_b64decode(t.secret)  # what Node's Buffer.from(secret, 'base64') gives
    signed = _lines(t, body=_body(t))
    return _sent(t, "POST", DELETIONS, _body(t), signing.sign(key, "\n".join(signed)))


HASH_EXACTLY = "hash exactly the bytes you send"
WHOLE_SECRET = "use the UTF-8 bytes of the whole secret, prefix included, as the key"
MISTAKES: list[tuple[Callable[[Tenant], Request], str, str]] = [
    (
        body_newline_added,
        "body-newline-added",
        "you signed the body with a trailing newline that the body you sent does not have: "
        + HASH_EXACTLY,
    ),
    (
        body_newline_removed,
        "body-newline-removed",
        "the body you sent ends with a newline that your signed body did not have: " + HASH_EXACTLY,
    ),
    (
        body_crlf_removed,
        "body-newline-removed",
        "the body you sent ends with a newline that your signed body did not have: " + HASH_EXACTLY,
    ),
    (
        crlf_line_joins,
        "crlf-line-joins",
        "you joined the eight lines with CR LF (\\r\\n): join them with LF (\\n) alone",
    ),
    (
        timestamp_in_seconds,
        "timestamp-in-seconds",
        "you signed line 7 in seconds while x-timestamp is in milliseconds:"
        " sign the x-timestamp value exactly as sent",
    ),
    (
        query_omitted,
        "query-omitted",
        "you left line 3 empty: sign the query string exactly as sent, without the '?'",
    ),
    (
        query_sorted,
        "query-sorted",
        "you signed the query parameters sorted: sign them in the order you send them",
    ),
    (
        query_decoded,
        "query-decoded",
        "you signed the query percent-decoded: sign it exactly as sent, still encoded",
    ),
    (
        path_with_query,
        "path-with-query",
        "you signed the path with its query on line 2: line 2 is the path alone,"
        " the query goes on line 3",
    ),
    (
        path_with_query_line_3_empty,
        "path-with-query",
        "you signed the path with its query on line 2: line 2 is the path alone,"
        " the query goes on line 3",
    ),
    (
        method_lower_case,
        "method-lower-case",
        "you signed the method in lower case: line 1 is the method in upper case (POST, GET)",
    ),
    (
        secret_hex_decoded,
        "secret-hex-decoded",
        "you keyed the HMAC with your secret decoded from hex: " + WHOLE_SECRET,
    ),
    (
        secret_base64_decoded,
        "secret-base64-decoded",
        "you keyed the HMAC with your secret decoded from base64: " + WHOLE_SECRET,
    ),
]


@pytest.mark.parametrize(
    ("mistake", "cause", "advice"), MISTAKES, ids=[m[0].__name__ for m in MISTAKES]
)
async def test_the_mistake_is_named_in_likely_cause_and_the_hint(
    database_url: str,
    pool: catalog_store.Pool,
    tenant: Tenant,
    mistake: Callable[[Tenant], Request],
    cause: str,
    advice: str,
) -> None:
    method, target, body, headers = mistake(tenant)
    async with gateway_client(database_url) as client:
        response = await client.request(method, target, content=body, headers=headers)
    got = assert_error(
        response,
        401,
        "AUTH_002",
        "Invalid signature",
        hint=f"The signature does not match: {advice} (context.likelyCause {cause})."
        " Compare your string to sign with context.stringToSign (store token masked) and your"
        " body hash with context.bodySha256",
    )
    context = got["error"]["details"]["context"]
    path, _, query = target.partition("?")
    expected = _lines(tenant, method=method, path=path, query=query, body=body)
    expected[5] = tenant.token[:4] + "*" * (len(tenant.token) - 4)
    assert context == {
        "stringToSign": "\n".join(expected),
        "bodySha256": hashlib.sha256(body).hexdigest(),
        "bodyLength": len(body),
        "signatureProvided": headers["x-signature"],
        "likelyCause": cause,
    }
    assert tenant.secret not in response.text and tenant.token not in response.text
    assert await product_count(pool, tenant) == (20, 40)


@pytest.mark.parametrize("mistake", [m[0] for m in MISTAKES], ids=[m[0].__name__ for m in MISTAKES])
async def test_the_same_mistake_with_another_secret_is_not_named(
    database_url: str, tenant: Tenant, mistake: Callable[[Tenant], Request]
) -> None:
    """Only the partner's own secret can reveal a mistake: the same mistake made with any other
    key is a plain mismatch, likelyCause null and the catalog's hint."""
    impostor = Tenant(**{**tenant.__dict__, "secret": "psk_" + "ab" * 24})
    method, target, body, headers = mistake(impostor)
    async with gateway_client(database_url) as client:
        response = await client.request(method, target, content=body, headers=headers)
    got = assert_error(
        response,
        401,
        "AUTH_002",
        "Invalid signature",
        hint="The signature does not match. Compare your string to sign with"
        " context.stringToSign (store token masked) and your body hash with context.bodySha256",
    )
    assert got["error"]["details"]["context"]["likelyCause"] is None


async def test_a_mistake_of_an_unknown_partner_is_only_auth_004(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    method, target, body, headers = crlf_line_joins(tenant)
    headers["x-partner-client-id"] = "9" * 22
    async with gateway_client(database_url) as client:
        response = await client.request(method, target, content=body, headers=headers)
    assert_error(response, 401, "AUTH_004", "Unknown or inactive partner", context={})


async def test_body_mistakes_are_looked_for_only_up_to_64_kib(
    database_url: str, pool: catalog_store.Pool
) -> None:
    """A body of 64 KiB gets its newline named; one byte more is a plain mismatch."""
    tenant = await make_tenant(pool, name="big")
    causes = []
    async with gateway_client(database_url) as client:
        for n, size in enumerate(
            [signing.BODY_MISTAKES_MAX_BYTES, signing.BODY_MISTAKES_MAX_BYTES + 1]
        ):
            prefix = b'{"externalIds":["'
            signed = prefix + b"x" * (size - 1 - len(prefix) - 3) + b'"]}'
            headers = signed_headers(tenant, body=signed, timestamp=NOW_MS + n)
            response = await client.post(DELETIONS, content=signed + b"\n", headers=headers)
            got = assert_error(response, 401, "AUTH_002", "Invalid signature")
            assert got["error"]["details"]["context"]["bodyLength"] == size
            causes.append(got["error"]["details"]["context"]["likelyCause"])
    assert causes == ["body-newline-removed", None]


async def test_a_base64_signature_is_auth_001_saying_so(database_url: str, tenant: Tenant) -> None:
    body = body_of({"ids": tenant.ids[:1]})
    headers = signed_headers(tenant, body=body)
    as_base64 = base64.b64encode(bytes.fromhex(headers["x-signature"])).decode()
    why = (
        "looks like base64; send lower-case hex: the 64-character hex HMAC-SHA256 of the string"
        " to sign"
    )
    async with gateway_client(database_url) as client:
        for sent in (
            as_base64,
            as_base64.rstrip("="),
            base64.b64encode(headers["x-signature"].encode()).decode(),
        ):
            response = await client.post(
                DELETIONS, content=body, headers={**headers, "x-signature": sent}
            )
            assert_error(
                response,
                401,
                "AUTH_001",
                "Missing or malformed authentication headers",
                hint=signing_hint(why),
                context={
                    "missingHeaders": [],
                    "invalidHeaders": ["x-signature"],
                    "headerErrors": {"x-signature": why},
                },
            )


def signing_hint(why: str) -> str:
    return (
        "Send x-partner-client-id, x-store-client-id, x-store-token, x-timestamp and"
        " x-signature, each once; see context for the ones missing or malformed. x-signature " + why
    )
