"""Delete products through the Partner Catalog Gateway: a signed POST, from Python.

    python delete_products.py ID ... [-e EXTERNAL_ID ...]   sign and send one deletion request
    python delete_products.py --vectors FILE                 check a signing vector file

Live mode needs httpx and the project's ``gateway.client.PartnerAuth``; vectors mode needs only
the ``signing`` package (standard library only). See ../README.md for the spec.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, NoReturn

import signing

DELETIONS_PATH = "/api/v1/partner/stores/products/deletions"
CREDENTIALS = ("PARTNER_CLIENT_ID", "PARTNER_SECRET", "STORE_CLIENT_ID", "STORE_TOKEN")
FIELDS = (
    "expect",
    "method",
    "path",
    "query",
    "partnerClientId",
    "storeClientId",
    "storeToken",
    "timestamp",
    "body",
    "bodySha256",
    "stringToSign",
    "signature",
)
PROG = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "delete_products.py"


def usage() -> NoReturn:
    print(f"usage: {PROG} ID ... [-e EXTERNAL_ID ...]", file=sys.stderr)
    print(f"       {PROG} --vectors FILE", file=sys.stderr)
    sys.exit(2)


# --- live mode ---------------------------------------------------------------------------------


def parse_ids(args: list[str]) -> tuple[list[str], list[str]]:
    ids: list[str] = []
    external_ids: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == "-e":
            value = next(rest, None)
            if value is None:
                usage()
            external_ids.append(value)
        elif arg == "--":
            ids.extend(rest)
        elif arg.startswith("-") and arg != "-":
            usage()
        else:
            ids.append(arg)
    if not ids and not external_ids:
        usage()
    return ids, external_ids


def delete_products(args: list[str]) -> int:
    ids, external_ids = parse_ids(args)
    env: dict[str, str] = {}
    for name in CREDENTIALS:
        value = os.environ.get(name, "")
        if not value:
            print(f"{PROG}: the environment variable {name} is not set", file=sys.stderr)
            return 2
        env[name] = value
    url = os.environ.get("GATEWAY_URL") or "http://127.0.0.1:8000"

    import httpx  # only live mode needs these two

    from gateway.client import PartnerAuth

    # The body, built once as compact JSON bytes; PartnerAuth signs exactly these bytes.
    document: dict[str, list[str]] = {}
    if ids:
        document["ids"] = ids
    if external_ids:
        document["externalIds"] = external_ids
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    auth = PartnerAuth(
        partner_client_id=env["PARTNER_CLIENT_ID"],
        partner_secret=env["PARTNER_SECRET"],
        store_client_id=env["STORE_CLIENT_ID"],
        store_token=env["STORE_TOKEN"],
    )
    try:
        with httpx.Client(auth=auth, timeout=60) as client:
            response = client.post(
                url.rstrip("/") + DELETIONS_PATH,
                content=body,
                headers={"content-type": "application/json"},
            )
    except httpx.HTTPError as exc:
        print(f"{PROG}: the request to {url} failed: {exc}", file=sys.stderr)
        return 1
    print(f"HTTP {response.status_code}", file=sys.stderr)
    sys.stdout.buffer.write(response.content)
    sys.stdout.buffer.flush()
    return 0 if 200 <= response.status_code < 300 else 1


# --- vectors mode ------------------------------------------------------------------------------


def check_case(case: dict[str, Any]) -> list[str]:
    """Return what is wrong with one vector case (nothing when it passes)."""
    missing = [f'missing "{f}"' for f in FIELDS if not isinstance(case.get(f), str)]
    secrets: list[str] = case.get("secrets") or []
    if not isinstance(secrets, list) or not all(isinstance(s, str) for s in secrets):
        secrets = []
    if not secrets:
        missing.append('"secrets" is not a list of strings')
    if missing:
        return missing
    problems: list[str] = []
    try:
        body_hash = signing.body_sha256(case["body"].encode("utf-8"))
        message = signing.string_to_sign(
            method=case["method"],
            path=case["path"],
            query=case["query"],
            partner_client_id=case["partnerClientId"],
            store_client_id=case["storeClientId"],
            store_token=case["storeToken"],
            timestamp=case["timestamp"],
            body_hash=body_hash,
        )
        computed = [signing.sign(secret, message) for secret in secrets]
    except (signing.SigningError, UnicodeError) as exc:
        return [f"cannot sign these inputs: {exc}"]
    if body_hash != case["bodySha256"]:
        problems.append(f"bodySha256 is {case['bodySha256']}, the body hashes to {body_hash}")
    if message != case["stringToSign"]:
        expected_lines = case["stringToSign"].split("\n")
        built_lines = message.split("\n")
        line = 1
        while line <= min(len(expected_lines), len(built_lines)):
            if expected_lines[line - 1] != built_lines[line - 1]:
                break
            line += 1
        problems.append(f"stringToSign differs from the one built from the inputs at line {line}")
    signature = case["signature"].lower()
    matched = next((n for n, hexdigest in enumerate(computed) if hexdigest == signature), None)
    if case["expect"] == "valid":
        if matched is None:
            problems.append(f"signature matches none of the {len(secrets)} secrets")
    elif case["expect"] == "invalid":
        if matched is not None:
            problems.append(f"signature matches secrets[{matched}] but the case expects invalid")
    else:
        problems.append(f'expect is "{case["expect"]}", not valid or invalid')
    return problems


def check_vectors(path: str) -> int:
    try:
        with open(path, encoding="utf-8") as file:
            document = json.load(file)
        cases = document.get("cases") if isinstance(document, dict) else None
        if not isinstance(cases, list):
            raise ValueError('no "cases" array')
    except (OSError, ValueError) as exc:
        print(f"{PROG}: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    passed = failed = 0
    for number, case in enumerate(cases, 1):
        if not isinstance(case, dict):
            case = {}
        name = case.get("name", f"case {number}")
        problems = check_case(case)
        if problems:
            failed += 1
            print(f"FAIL {name}: {'; '.join(problems)}")
        else:
            passed += 1
            print(f"ok {name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if not argv:
        usage()
    if argv[0] == "--vectors":
        if len(argv) != 2:
            usage()
        return check_vectors(argv[1])
    if argv[0] in ("-h", "--help"):
        usage()
    return delete_products(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
