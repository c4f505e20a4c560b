"""Regenerate signing_v1.json (and its copy in examples/vectors/) from the inputs below, and
docs/vectors.md from it:
`python -m tests.vectors.make_signing_v1`.

Every derived field (body hash, string to sign, signature) is computed by `signing`; the Python
tests and each example client then check themselves against the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import signing

SECRET = "psk_test_8f2b1c9e4d7a6b3f0e5c2a1d9b8e7f6a"
NEW_SECRET = "psk_test_rotated_0d1e2f3a4b5c6d7e8f9a0b1c"
BASE: dict[str, Any] = {
    "method": "POST",
    "path": "/api/v1/partner/stores/products/deletions",
    "query": "",
    "partnerClientId": "2025112012475048491498",
    "storeClientId": "638765489981529612855",
    "storeToken": "stkn__6AbJF05mjvxh7sh",
    "timestamp": "1758100350458",
}
BODY_1 = '{"ids":["946b3ffa-5f9e-412e-acf4-eea306736e63","66721951-5f60-47fa-828c-29040fd3595f"]}'
BATCH = "/api/v1/partner/stores/products/deletions/0b9f7d7e-1c2a-4b8e-9d3f-5a6b7c8d9e0f"
#: The file, and its copy that travels with the example clients (a partner may get only examples/).
FILES = (
    Path(__file__).with_name("signing_v1.json"),
    Path(__file__).resolve().parents[2] / "examples" / "vectors" / "signing_v1.json",
)


def _derive(case: dict[str, Any], signed_with: str | None = None) -> dict[str, Any]:
    body = case["body"].encode("utf-8")
    message = signing.string_to_sign(
        method=case["method"],
        path=case["path"],
        query=case["query"],
        partner_client_id=case["partnerClientId"],
        store_client_id=case["storeClientId"],
        store_token=case["storeToken"],
        timestamp=case["timestamp"],
        body_hash=signing.body_sha256(body),
    )
    out = {**case, "bodySha256": signing.body_sha256(body), "stringToSign": message}
    out.setdefault("signature", signing.sign(signed_with or case["secrets"][0], message))
    return out


def _valid(name: str, **changes: Any) -> dict[str, Any]:
    signed_with = changes.pop("signed_with", None)
    upper = changes.pop("upper", False)
    case = {"name": name, "expect": "valid", "secrets": [SECRET], **BASE, "body": "", **changes}
    out = _derive(case, signed_with)
    if upper:
        out["signature"] = out["signature"].upper()
    return out


def _invalid(name: str, changed: str, signed: dict[str, Any], **sent: Any) -> dict[str, Any]:
    """A request signed as ``signed`` but sent with ``sent`` changed: must not verify."""
    original = _valid(name, **signed)
    case = {**original, **sent, "expect": "invalid", "changed": changed}
    case.pop("signature")
    derived = _derive(case)
    derived["signature"] = original["signature"]
    return derived


LARGE_BODY = json.dumps(
    {"externalIds": [f"sku-{n:06d}" for n in range(6000)]}, separators=(",", ":")
)
#: How docs/vectors.md writes out the one body too long to print.
LARGE_BODY_RULE = (
    'the compact JSON `{"externalIds":["sku-000000","sku-000001",…,"sku-005999"]}`: 6,000'
    " external ids, each `sku-` and its number from 0 to 5,999 in six digits, joined by `,`"
    " with no spaces"
)


def cases() -> list[dict[str, Any]]:
    big = LARGE_BODY
    return [
        _valid("contract vector 1: POST with a body", body=BODY_1),
        _valid(
            "contract vector 2: GET with a query, empty body",
            method="GET",
            path=BATCH,
            query="limit=50&cursor=eyJvIjo1MH0",
        ),
        _valid("empty body on POST", body=""),
        _valid("GET with a query and no body", method="GET", path=BATCH, query="limit=10"),
        _valid(
            "unicode in the body, sent as UTF-8 bytes",
            body='{"externalIds":["caf\u00e9-\u00fc\u00df-\u65e5\u672c-\U0001f600"]}',
        ),
        _valid(
            "unicode external ids escaped in JSON (hash the bytes you send)",
            body='{"externalIds":["caf\\u00e9"]}',
        ),
        _valid("large body, about 70 KB", body=big),
        _valid(
            "reserved characters in the query, signed exactly as sent",
            method="GET",
            path=BATCH,
            query="cursor=a%2Bb%2Fc%3D&limit=5&x=%20y+z&k=%E6%97%A5",
        ),
        _valid(
            "query parameters in a non-sorted order, not re-sorted",
            method="GET",
            path=BATCH,
            query="z=1&a=2&m=3",
        ),
        _valid("upper-case hex signature is accepted", body=BODY_1, upper=True),
        _valid(
            "rotation: two active secrets, signed with the newer",
            body=BODY_1,
            secrets=[SECRET, NEW_SECRET],
            signed_with=NEW_SECRET,
        ),
        _valid(
            "rotation: two active secrets, signed with the older",
            body=BODY_1,
            secrets=[NEW_SECRET, SECRET],
            signed_with=SECRET,
        ),
        _valid("lower-case method is signed upper-case", method="post", body=BODY_1),
        _invalid(
            "negative: body re-serialised after signing",
            "body: spaces added by a JSON serialiser after the signature was made",
            {"body": BODY_1},
            body=BODY_1.replace(",", ", "),
        ),
        _invalid(
            "negative: timestamp in seconds",
            "timestamp: sent in seconds, signed in milliseconds",
            {"body": BODY_1},
            timestamp="1758100350",
        ),
        _invalid(
            "negative: query re-sorted",
            "query: re-sorted after signing",
            {"method": "GET", "path": BATCH, "query": "limit=50&cursor=eyJvIjo1MH0"},
            query="cursor=eyJvIjo1MH0&limit=50",
        ),
        _invalid(
            "negative: query re-encoded",
            "query: %2B decoded to + after signing",
            {"method": "GET", "path": BATCH, "query": "cursor=a%2Bb"},
            query="cursor=a+b",
        ),
        _invalid(
            "negative: wrong secret",
            "secrets: the request was signed with another key",
            {"body": BODY_1, "signed_with": "psk_someone_else"},
        ),
        _invalid(
            "negative: trailing slash on the path",
            "path: a trailing slash added",
            {"body": BODY_1},
            path=BASE["path"] + "/",
        ),
        _invalid(
            "negative: another store's token",
            "storeToken: swapped after signing",
            {"body": BODY_1},
            storeToken="stkn_other_store_token",
        ),
        _invalid(
            "negative: retired secret",
            "secrets: only the new secret is active",
            {"body": BODY_1},
            secrets=[NEW_SECRET],
        ),
    ]


def _cell(value: str) -> str:
    return f"`{value}`" if value else "(empty)"


def render_markdown(document: dict[str, Any]) -> str:
    """docs/vectors.md: every case of the vector file written out, for partners."""
    out = [
        "# Signing test vectors",
        "",
        "Every case of the shared vector file, written out: check your signing code against"
        " them. Test vectors 1 and 2 are the worked examples of [signing.md](signing.md). This"
        " page is generated from the vector file, and the test suite checks that they agree.",
        "",
        "For each case: hash the UTF-8 bytes of the body (SHA-256, lowercase hex) and compare"
        " with the body hash; build the string to sign from the method (upper-cased), path,"
        " query, the three credentials, the timestamp and the body hash, joined by LF, and"
        " compare it with the string to sign shown; compute the HMAC-SHA256 of it keyed with"
        " the UTF-8 bytes of each secret. A *valid* case passes when the signature (compared"
        " case-insensitively) equals one of those HMACs, an *invalid* one when it equals none.",
        "",
    ]
    for number, case in enumerate(document["cases"], start=1):
        out += [f"## {number}. {case['name']}", ""]
        verdict = case["expect"]
        if "changed" in case:
            verdict += f": {case['changed']}"
        body = case["body"]
        shown = LARGE_BODY_RULE if body == LARGE_BODY else _cell(body)
        out += [
            "| field | value |",
            "|---|---|",
            f"| expect | {verdict} |",
            f"| secrets | {', '.join(_cell(s) for s in case['secrets'])} |",
            f"| method | {_cell(case['method'])} |",
            f"| path | {_cell(case['path'])} |",
            f"| query | {_cell(case['query'])} |",
            f"| x-partner-client-id | {_cell(case['partnerClientId'])} |",
            f"| x-store-client-id | {_cell(case['storeClientId'])} |",
            f"| x-store-token | {_cell(case['storeToken'])} |",
            f"| x-timestamp | {_cell(case['timestamp'])} |",
            f"| body ({len(body.encode('utf-8')):,} bytes) | {shown} |",
            f"| body SHA-256 | {_cell(case['bodySha256'])} |",
            f"| x-signature | {_cell(case['signature'])} |",
            "",
            "```text",
            case["stringToSign"],
            "```",
            "",
        ]
    return "\n".join(out)


def main() -> None:
    document = {
        "version": 1,
        "description": "Signing vectors of the Partner Catalog Gateway. For each case: hash the"
        " UTF-8 bytes of body (SHA-256, lowercase hex) and compare with bodySha256; build the"
        " string to sign from method (upper-cased), path, query, partnerClientId, storeClientId,"
        " storeToken, timestamp and the body hash, joined by LF, and compare with stringToSign;"
        " HMAC-SHA256 it with the UTF-8 bytes of each of secrets. expect=valid: signature"
        " (compared case-insensitively) equals one of those HMACs. expect=invalid: it equals"
        " none of them; changed says what differs from what was signed.",
        "cases": cases(),
    }
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    for path in FILES:
        path.write_text(text, encoding="utf-8")
    docs = Path(__file__).resolve().parents[2] / "docs" / "vectors.md"
    docs.write_text(render_markdown(document), encoding="utf-8")


if __name__ == "__main__":
    main()
