"""The partner-side commands: `call` signs and sends a request, `sign` shows how to sign one.

They need no database and none of the server: the HTTP client is imported inside `call`, and
`sign` takes its clock and the token's mask from modules that load no server.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import signing

from ..masking import masked_string_to_sign
from ..wire import DELETIONS_PATH
from .base import CommandError, print_json

__all__ = ["NOT_ALL_DELETED", "register"]

_DEFAULT_URL = "http://127.0.0.1:8000"

#: The exit status of `call` when the gateway processed the request but some entries were not
#: deleted (or, in a dry run, would not be).
NOT_ALL_DELETED = 3


@dataclass(frozen=True, slots=True)
class _Credentials:
    partner_client_id: str
    partner_secret: str
    store_client_id: str
    store_token: str


def _credentials(args: argparse.Namespace) -> _Credentials:
    """Each credential from its flag, else from the variable the example clients read."""
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
    return _Credentials(**{k: str(v) for k, v in values.items()})


def _url(args: argparse.Namespace) -> str:
    return str(args.url or os.environ.get("GATEWAY_URL") or _DEFAULT_URL).rstrip("/")


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


def _print_answer(value: Any) -> None:
    """What the gateway answered, its text as it came (no escaping of non-ASCII)."""
    print_json(value, ensure_ascii=False)


def _cmd_call(args: argparse.Namespace) -> int:
    import httpx

    from ..client import PartnerAuth

    creds = _credentials(args)
    auth = PartnerAuth(
        partner_client_id=creds.partner_client_id,
        partner_secret=creds.partner_secret,
        store_client_id=creds.store_client_id,
        store_token=creds.store_token,
    )
    with httpx.Client(base_url=_url(args), auth=auth, timeout=30) as client:
        if args.batch:
            response = client.get(f"{DELETIONS_PATH}/{args.batch}")
        else:
            headers = {"content-type": "application/json"}
            if args.idempotency_key:
                headers["idempotency-key"] = args.idempotency_key
            response = client.post(DELETIONS_PATH, content=_deletion_body(args), headers=headers)
    try:
        body = response.json()
    except ValueError:
        _print_answer({"status": response.status_code, "body": response.text})
        return 1
    _print_answer({"status": response.status_code, "body": body})
    if not response.is_success:
        return 1
    not_deleted = _not_deleted(body)
    if not_deleted is not None:
        sys.stderr.write(f"partner-gateway call: {not_deleted}\n")
        return NOT_ALL_DELETED
    return 0


def _not_deleted(body: Any) -> str | None:
    """A line saying how many entries were not deleted, or None when none failed."""
    try:
        summary = body["data"]["summary"]
        failed, total = int(summary["failed"]), int(summary["total"])
        dry_run = body["meta"].get("dryRun") is True
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if failed <= 0:
        return None
    if dry_run:
        return f"dry run: {failed} of {total} entries would not be deleted; see body.data.errors"
    return f"not all deleted: {failed} of {total} entries failed; see body.data.errors"


def _sign_body(args: argparse.Namespace) -> bytes:
    """The exact bytes to sign: from --body-file, --body, the deletion flags, or none."""
    if args.body_file is not None:
        return Path(args.body_file).read_bytes()
    if args.body is not None:
        return bytes(args.body.encode("utf-8"))
    if args.ids or args.ids_file or args.external_ids:
        return _deletion_body(args)
    return b""


def _string_to_sign(
    args: argparse.Namespace, creds: _Credentials, body: bytes, timestamp: str
) -> str:
    try:
        return signing.string_to_sign(
            method=args.method,
            path=args.path,
            query=args.query.removeprefix("?"),
            partner_client_id=creds.partner_client_id,
            store_client_id=creds.store_client_id,
            store_token=creds.store_token,
            timestamp=timestamp,
            body_hash=signing.body_sha256(body),
        )
    except signing.MalformedInput as exc:
        raise CommandError(str(exc)) from None


def _curl(method: str, url: str, headers: dict[str, str], body: bytes) -> str:
    parts = ["curl", "-sS", "-X", method, url]
    for name, value in headers.items():
        parts += ["-H", f"{name}: {value}"]
    if body:
        parts += ["-H", "content-type: application/json", "--data-binary", body.decode()]
    return shlex.join(parts)


def _now_ms() -> int:
    """The partner's wall clock, in Unix milliseconds (what x-timestamp carries)."""
    return time.time_ns() // 1_000_000


def _cmd_sign(args: argparse.Namespace) -> int:
    creds = _credentials(args)
    body = _sign_body(args)
    timestamp = args.timestamp or str(_now_ms())
    message = _string_to_sign(args, creds, body, timestamp)
    headers = {
        signing.HEADER_PARTNER_CLIENT_ID: creds.partner_client_id,
        signing.HEADER_STORE_CLIENT_ID: creds.store_client_id,
        signing.HEADER_STORE_TOKEN: creds.store_token,
        signing.HEADER_TIMESTAMP: timestamp,
        signing.HEADER_SIGNATURE: signing.sign(creds.partner_secret, message),
    }
    query = args.query.removeprefix("?")
    url = _url(args) + args.path + (f"?{query}" if query else "")
    if args.curl:
        sys.stdout.write(_curl(args.method.upper(), url, headers, body) + "\n")
        return 0
    shown = {
        "method": args.method.upper(),
        "url": url,
        "headers": headers,
        "bodySha256": signing.body_sha256(body),
        # As the gateway's AUTH_002 shows it (token masked), so the two can be diffed.
        "stringToSign": masked_string_to_sign(message, creds.store_token),
    }
    _print_answer(shown)
    return 0


def _credential_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help=f"gateway URL (GATEWAY_URL, default {_DEFAULT_URL})")
    parser.add_argument("--partner-client-id", help="or PARTNER_CLIENT_ID")
    parser.add_argument("--partner-secret", help="or PARTNER_SECRET")
    parser.add_argument("--store-client-id", help="or STORE_CLIENT_ID")
    parser.add_argument("--store-token", help="or STORE_TOKEN")
    parser.add_argument("--ids", nargs="+", default=[], help="product ids to delete")
    parser.add_argument("--external-ids", nargs="+", default=[], help="external ids to delete")
    parser.add_argument(
        "--ids-file", help="ids to delete, one per line (ids or `products seed` JSON lines)"
    )
    parser.add_argument(
        "--dispatch", action="store_true", help='send "dispatch": true (an asynchronous batch)'
    )
    parser.add_argument(
        "--dry-run", action="store_true", help='send "dryRun": true (report, change nothing)'
    )


def register(commands: Any) -> None:
    """Add `call` and `sign` (they need no database, only a partner's credentials)."""
    call = commands.add_parser("call", help="sign a deletion (or batch read) and send it")
    _credential_flags(call)
    call.add_argument("--batch", help="read this batch instead of deleting")
    call.add_argument(
        "--idempotency-key", help="send this idempotency-key: a retry with it gets the first answer"
    )
    call.set_defaults(run=lambda settings, args: _cmd_call(args))

    sign = commands.add_parser(
        "sign", help="print the signed headers (or a curl command) for a request, sending nothing"
    )
    _credential_flags(sign)
    sign.add_argument("--method", default="POST")
    sign.add_argument("--path", default=DELETIONS_PATH, help="the path exactly as it will be sent")
    sign.add_argument("--query", default="", help="the raw query string, exactly as sent")
    sign.add_argument("--body", help="the body as text (UTF-8); default: built from --ids")
    sign.add_argument("--body-file", help="the body's exact bytes, from a file")
    sign.add_argument("--timestamp", help="milliseconds; default: now")
    sign.add_argument("--curl", action="store_true", help="print a ready curl command instead")
    sign.set_defaults(run=lambda settings, args: _cmd_sign(args))
