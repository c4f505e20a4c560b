"""Delete products through the Partner Catalog Gateway: a signed POST, from Python 3.11+.

    python3 delete_products.py [-v] [--idempotency-key KEY] ID ... [-e EXTERNAL_ID ...]
    python3 delete_products.py --vectors FILE     check a signing vector file, send nothing
    python3 delete_products.py sign [FLAGS]       print the signed headers or a curl command

Standard library only: copy this one file anywhere and run it. See README.md beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import shlex
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, NoReturn

DELETIONS_PATH = "/api/v1/partner/stores/products/deletions"
DEFAULT_URL = "http://127.0.0.1:8000"
CREDENTIALS = ("PARTNER_CLIENT_ID", "PARTNER_SECRET", "STORE_CLIENT_ID", "STORE_TOKEN")
#: Answers worth sending again, signed anew with the same idempotency-key and body bytes.
RETRIED_CODES = ("RATE_001", "SYS_001", "IDEM_002")
MAX_ATTEMPTS = 4  # the first attempt and at most three retries
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


class MalformedInput(ValueError):
    """A value that cannot be part of a string to sign (the gateway would refuse it too)."""


def usage() -> NoReturn:
    live = "[-v] [--idempotency-key KEY] ID ... [-e EXTERNAL_ID ...]"
    print(f"usage: {PROG} {live}", file=sys.stderr)
    print(f"       {PROG} --vectors FILE", file=sys.stderr)
    print(f"       {PROG} sign [--help for its flags]", file=sys.stderr)
    sys.exit(2)


# --- signing -----------------------------------------------------------------------------------


def body_sha256(body: bytes) -> str:
    """Lowercase hex SHA-256 of the raw body bytes (line 8 of the string to sign)."""
    return hashlib.sha256(body).hexdigest()


def _check_line(field: str, value: str, *, allow_empty: bool = False) -> None:
    if not value and not allow_empty:
        raise MalformedInput(f"{field}: must not be empty")
    if "\n" in value or "\r" in value:
        raise MalformedInput(f"{field}: must not contain a line break")


def string_to_sign(
    method: str,
    path: str,
    query: str,
    partner_client_id: str,
    store_client_id: str,
    store_token: str,
    timestamp: str,
    body_hash: str,
) -> str:
    """The eight lines joined by LF, no trailing newline; inputs that cannot be signed refused."""
    _check_line("method", method)
    if not method.isascii() or not method.isalpha():
        raise MalformedInput("method: must be an HTTP method name such as POST")
    _check_line("path", path)
    if not path.startswith("/"):
        raise MalformedInput("path: must start with '/'")
    if "?" in path:
        raise MalformedInput("path: must not contain the query; pass it as query")
    _check_line("query", query, allow_empty=True)
    if query.startswith("?"):
        raise MalformedInput("query: must not start with '?'")
    _check_line("x-partner-client-id", partner_client_id)
    _check_line("x-store-client-id", store_client_id)
    _check_line("x-store-token", store_token)
    if not timestamp or len(timestamp) > 19 or not all(c in "0123456789" for c in timestamp):
        raise MalformedInput(
            "x-timestamp: must be Unix time in milliseconds, 1 to 19 decimal digits"
        )
    lines = (method.upper(), path, query, partner_client_id, store_client_id, store_token)
    return "\n".join((*lines, timestamp, body_hash))


def sign(secret: str, message: str) -> str:
    """Lowercase hex HMAC-SHA256 of the message (UTF-8), keyed with the secret's UTF-8 bytes."""
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def mask_token(token: str) -> str:
    """The store token as the gateway's AUTH_002 shows it: the first four characters of a token
    longer than eight kept, every other character a star."""
    keep = 4 if len(token) > 8 else 0
    return token[:keep] + "*" * (len(token) - keep)


def masked(message: str, token: str) -> str:
    """The string to sign with line 6, the store token, masked."""
    lines = message.split("\n")
    lines[5] = mask_token(token)
    return "\n".join(lines)


def now_ms() -> str:
    return str(time.time_ns() // 1_000_000)  # Unix time in milliseconds


# --- live mode ---------------------------------------------------------------------------------


def parse_live(args: list[str]) -> tuple[list[str], list[str], bool, str | None]:
    ids: list[str] = []
    external_ids: list[str] = []
    verbose = False
    key: str | None = None
    rest = iter(args)
    for arg in rest:
        if arg == "-e":
            value = next(rest, None)
            if value is None:
                usage()
            external_ids.append(value)
        elif arg in ("-v", "--verbose"):
            verbose = True
        elif arg == "--idempotency-key":
            key = next(rest, None)
            if not key:
                usage()
        elif arg == "--":
            ids.extend(rest)
        elif arg.startswith("-") and arg != "-":
            usage()
        else:
            ids.append(arg)
    if not ids and not external_ids:
        usage()
    return ids, external_ids, verbose, key


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would re-send (or drop) the signed body: report it instead of following it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def send(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """POST the body bytes; any HTTP answer is returned, never raised."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=60) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers.items()), error.read()


def answer_json(answer: bytes) -> dict[str, Any]:
    try:
        document = json.loads(answer)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def error_code(answer: bytes) -> str | None:
    error = answer_json(answer).get("error")
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def retry_after(headers: dict[str, str]) -> int:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), "").strip()
    return int(value) if value.isdigit() else 1  # seconds; one second when absent


def show_signing(message: str, token: str, body: bytes, timestamp: str, signature: str) -> None:
    """--verbose: what was signed, in the terms of an AUTH_002 answer's context."""
    print("stringToSign (line 6, the store token, masked as AUTH_002 masks it):", file=sys.stderr)
    print(masked(message, token), file=sys.stderr)
    print(f"bodyLength: {len(body)}", file=sys.stderr)
    print(f"bodySha256: {body_sha256(body)}", file=sys.stderr)
    print(f"x-timestamp: {timestamp}", file=sys.stderr)
    print(f"x-signature: {signature}", file=sys.stderr)


def not_deleted(answer: bytes) -> str | None:
    """The line to print when the gateway processed the request but did not delete everything."""
    data = answer_json(answer).get("data")
    summary = data.get("summary") if isinstance(data, dict) else None
    if not isinstance(summary, dict) or not isinstance(summary.get("failed"), int):
        return None
    if summary["failed"] == 0:
        return None
    return f"{summary['failed']} of {summary.get('total')} entries not deleted (see data.errors)"


def delete_products(args: list[str]) -> int:
    ids, external_ids, verbose, key = parse_live(args)
    env: dict[str, str] = {}
    for name in CREDENTIALS:
        value = os.environ.get(name, "")
        if not value:
            print(f"{PROG}: the environment variable {name} is not set", file=sys.stderr)
            return 2
        env[name] = value
    url = (os.environ.get("GATEWAY_URL") or DEFAULT_URL).rstrip("/") + DELETIONS_PATH

    # The body, built once as compact JSON bytes; every attempt hashes and sends these bytes.
    document: dict[str, list[str]] = {}
    if ids:
        document["ids"] = ids
    if external_ids:
        document["externalIds"] = external_ids
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    key = key or str(uuid.uuid4())
    print(f"idempotency-key: {key}", file=sys.stderr)

    for attempt in range(1, MAX_ATTEMPTS + 1):
        timestamp = now_ms()  # fresh on every attempt, and so is the signature
        try:
            message = string_to_sign(
                "POST",
                DELETIONS_PATH,
                "",
                env["PARTNER_CLIENT_ID"],
                env["STORE_CLIENT_ID"],
                env["STORE_TOKEN"],
                timestamp,
                body_sha256(body),
            )
        except MalformedInput as exc:
            print(f"{PROG}: cannot sign: {exc}", file=sys.stderr)
            return 2
        signature = sign(env["PARTNER_SECRET"], message)
        if verbose:
            show_signing(message, env["STORE_TOKEN"], body, timestamp, signature)
        headers = {
            "content-type": "application/json",
            "x-partner-client-id": env["PARTNER_CLIENT_ID"],
            "x-store-client-id": env["STORE_CLIENT_ID"],
            "x-store-token": env["STORE_TOKEN"],
            "x-timestamp": timestamp,
            "x-signature": signature,
            "idempotency-key": key,
        }
        try:
            status, answer_headers, answer = send(url, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            print(f"{PROG}: the request to {url} failed: {reason}", file=sys.stderr)
            return 1
        print(f"HTTP {status}", file=sys.stderr)
        code = error_code(answer)
        if code in RETRIED_CODES and attempt < MAX_ATTEMPTS:
            wait = retry_after(answer_headers)
            print(
                f"{code}: retry {attempt} of {MAX_ATTEMPTS - 1} in {wait} s,"
                " signed anew, same idempotency-key and body",
                file=sys.stderr,
            )
            time.sleep(wait)
            continue
        break
    # The verdict on standard error first, then the body as received (it ends with no newline).
    if code in RETRIED_CODES:
        print(f"{code}: giving up after {MAX_ATTEMPTS} attempts", file=sys.stderr)
    exit_status = 0 if 200 <= status < 300 else 1
    line = not_deleted(answer) if exit_status == 0 else None
    if line is not None:
        print(line, file=sys.stderr)
        exit_status = 3
    sys.stdout.buffer.write(answer)
    sys.stdout.buffer.flush()
    return exit_status


# --- sign mode: what `partner-gateway sign` prints, on the standard library alone --------------


class CommandError(Exception):
    """Printed as {"error": ...} on standard error, exit status 2 (as partner-gateway does)."""


def _ids_from_file(path: str) -> list[str]:
    """One product per line: a bare id, or a JSON object with "id" (as `products seed` prints)."""
    ids = []
    try:
        lines = Path(path).read_text("utf-8").splitlines()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                ids.append(str(json.loads(line)["id"]))
            except (ValueError, KeyError, TypeError):
                raise CommandError(f"{path}:{number}: expected a JSON object with an id") from None
        else:
            ids.append(line)
    return ids


def _deletion_body(args: argparse.Namespace) -> bytes:
    ids = list(args.ids) + (_ids_from_file(args.ids_file) if args.ids_file else [])
    if not ids and not args.external_ids:
        raise CommandError("name products with --ids, --ids-file and/or --external-ids")
    body: dict[str, Any] = {}
    if ids:
        body["ids"] = ids
    if args.external_ids:
        body["externalIds"] = args.external_ids
    if args.dispatch:
        body["dispatch"] = True
    if args.dry_run:
        body["dryRun"] = True
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _sign_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} sign",
        description="print the signed headers (or a curl command) for a request, sending nothing",
    )
    parser.add_argument("--url", help=f"gateway URL (GATEWAY_URL, default {DEFAULT_URL})")
    parser.add_argument("--partner-client-id", help="or PARTNER_CLIENT_ID")
    parser.add_argument("--partner-secret", help="or PARTNER_SECRET")
    parser.add_argument("--store-client-id", help="or STORE_CLIENT_ID")
    parser.add_argument("--store-token", help="or STORE_TOKEN")
    parser.add_argument("--ids", nargs="+", default=[], help="product ids to delete")
    parser.add_argument("--external-ids", nargs="+", default=[], help="external ids to delete")
    parser.add_argument(
        "--ids-file", help="ids to delete, one per line (ids or `products seed` JSON lines)"
    )
    parser.add_argument("--dispatch", action="store_true", help='send "dispatch": true')
    parser.add_argument("--dry-run", action="store_true", help='send "dryRun": true')
    parser.add_argument("--method", default="POST")
    parser.add_argument("--path", default=DELETIONS_PATH, help="the path exactly as sent")
    parser.add_argument("--query", default="", help="the raw query string, exactly as sent")
    parser.add_argument("--body", help="the body as text (UTF-8); default: built from --ids")
    parser.add_argument("--body-file", help="the body's exact bytes, from a file")
    parser.add_argument("--timestamp", help="milliseconds; default: now")
    parser.add_argument("--curl", action="store_true", help="print a ready curl command instead")
    return parser


def _print(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")


def _sign(args: argparse.Namespace) -> int:
    values = {
        "partner_client_id": args.partner_client_id or os.environ.get("PARTNER_CLIENT_ID"),
        "partner_secret": args.partner_secret or os.environ.get("PARTNER_SECRET"),
        "store_client_id": args.store_client_id or os.environ.get("STORE_CLIENT_ID"),
        "store_token": args.store_token or os.environ.get("STORE_TOKEN"),
    }
    missing = [name for name, value in values.items() if not value]
    if missing:
        flags = ", ".join("--" + name.replace("_", "-") for name in missing)
        raise CommandError(f"missing credentials: give {flags} (or their environment variables)")
    creds = {name: str(value) for name, value in values.items()}
    if args.body_file is not None:
        try:
            body = Path(args.body_file).read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {args.body_file}: {exc.strerror}") from None
    elif args.body is not None:
        body = args.body.encode("utf-8")
    elif args.ids or args.ids_file or args.external_ids:
        body = _deletion_body(args)
    else:
        body = b""
    timestamp = args.timestamp or now_ms()
    query = args.query.removeprefix("?")
    try:
        message = string_to_sign(
            args.method,
            args.path,
            query,
            creds["partner_client_id"],
            creds["store_client_id"],
            creds["store_token"],
            timestamp,
            body_sha256(body),
        )
    except MalformedInput as exc:
        raise CommandError(str(exc)) from None
    headers = {
        "x-partner-client-id": creds["partner_client_id"],
        "x-store-client-id": creds["store_client_id"],
        "x-store-token": creds["store_token"],
        "x-timestamp": timestamp,
        "x-signature": sign(creds["partner_secret"], message),
    }
    base = str(args.url or os.environ.get("GATEWAY_URL") or DEFAULT_URL).rstrip("/")
    url = base + args.path + (f"?{query}" if query else "")
    if args.curl:
        parts = ["curl", "-sS", "-X", args.method.upper(), url]
        for name, value in headers.items():
            parts += ["-H", f"{name}: {value}"]
        if body:
            parts += ["-H", "content-type: application/json", "--data-binary", body.decode()]
        sys.stdout.write(shlex.join(parts) + "\n")
        return 0
    _print(
        {
            "method": args.method.upper(),
            "url": url,
            "headers": headers,
            "bodySha256": body_sha256(body),
            # As the gateway's AUTH_002 shows it (token masked), so the two can be diffed.
            "stringToSign": masked(message, creds["store_token"]),
        }
    )
    return 0


def sign_command(argv: list[str]) -> int:
    args = _sign_parser().parse_args(argv)
    try:
        return _sign(args)
    except CommandError as exc:
        sys.stderr.write(json.dumps({"error": str(exc)}) + "\n")
        return 2


# --- vectors mode ------------------------------------------------------------------------------


def first_difference(expected: str, built: str, token: str) -> int | None:
    """The first line (1-based) where the two strings to sign differ, or None. Line 6 is not a
    difference when the expected one is the store token masked, as an AUTH_002 answer shows it."""
    expected_lines = expected.split("\n")
    built_lines = built.split("\n")
    for line in range(1, max(len(expected_lines), len(built_lines)) + 1):
        if line > len(expected_lines) or line > len(built_lines):
            return line
        want, got = expected_lines[line - 1], built_lines[line - 1]
        if want != got and not (line == 6 and want == mask_token(token)):
            return line
    return None


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
        body_hash = body_sha256(case["body"].encode("utf-8"))
        message = string_to_sign(
            case["method"],
            case["path"],
            case["query"],
            case["partnerClientId"],
            case["storeClientId"],
            case["storeToken"],
            case["timestamp"],
            body_hash,
        )
        computed = [sign(secret, message) for secret in secrets]
    except (MalformedInput, UnicodeError) as exc:
        return [f"cannot sign these inputs: {exc}"]
    if body_hash != case["bodySha256"]:
        problems.append(f"bodySha256 is {case['bodySha256']}, the body hashes to {body_hash}")
    line = first_difference(case["stringToSign"], message, case["storeToken"])
    if line is not None:
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
    if not argv or argv[0] in ("-h", "--help"):
        usage()
    if argv[0] == "--vectors":
        if len(argv) != 2:
            usage()
        return check_vectors(argv[1])
    if argv[0] == "sign":
        return sign_command(argv[1:])
    return delete_products(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
