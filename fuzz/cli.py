"""``python -m fuzz`` (``make fuzz``): run a campaign, or replay one finding.

    python -m fuzz --duration 600               # a serve started for the run, 10 minutes
    python -m fuzz --cases 5000 --parts schema  # stop after 5,000 cases
    python -m fuzz --url https://gw.example --partner-client-id … (or PARTNER_CLIENT_ID …)
    python -m fuzz replay .data/fuzz/findings/<key>.json

Exit status 0 when no invariant broke, 1 when some did (each printed as FINDING), 2 on bad use.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

from .findings import INVARIANTS, Findings
from .hostile import run_hostile
from .rawhttp import build_request, exchange
from .session import Budget, Session
from .target import Target, given_target, local_target

__all__ = ["main"]

PARTS = ("hostile", "raw", "attacker", "schema")
_SIGNING_HEADERS = {
    "x-partner-client-id",
    "x-store-client-id",
    "x-store-token",
    "x-timestamp",
    "x-signature",
    "content-length",
    "host",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fuzz",
        description="Fuzz campaign against a real gateway: the attacker state machine,"
        " schemathesis, the hostile inputs and raw-socket cases.",
        epilog="Invariants: " + "; ".join(f"{k}: {v}" for k, v in INVARIANTS.items()),
    )
    parser.add_argument("action", nargs="?", choices=["run", "replay"], default="run")
    parser.add_argument("finding", nargs="?", help="replay: a findings/<key>.json file")
    parser.add_argument(
        "--duration", type=float, help="seconds to run (default 60 without --cases)"
    )
    parser.add_argument("--cases", type=int, help="stop after this many cases")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help="comma list of " + ", ".join(PARTS)
    )
    parser.add_argument("--only", action="append", help="run only this case (by name; repeat)")
    parser.add_argument("--skip", action="append", default=[], help="skip this case (repeat)")
    parser.add_argument(
        "--skip-file", type=Path, help="skip the cases named in this file, one a line (# comments)"
    )
    parser.add_argument("--max-header-mib", type=int, default=4, help="largest header sent (4)")
    parser.add_argument("--corpus", type=Path, default=Path(".data/fuzz"), help="(.data/fuzz)")
    parser.add_argument("--slow-ms", type=float, default=2000, help="bound on an answer (2000)")
    parser.add_argument("--healthz-ms", type=float, default=1000, help="bound on /healthz (1000)")
    parser.add_argument("--examples", type=int, default=20, help="examples per round (20)")
    parser.add_argument(
        "--derandomize",
        action="store_true",
        help="the same generated cases on every run (for CI), no hypothesis database",
    )
    parser.add_argument(
        "--shrink", action="store_true", help="shrink the attacker's failing sequence (slow)"
    )
    target = parser.add_argument_group("a gateway already running (else one is started)")
    target.add_argument("--url", default=os.environ.get("GATEWAY_URL"), help="or GATEWAY_URL")
    target.add_argument("--partner-client-id", default=os.environ.get("PARTNER_CLIENT_ID"))
    target.add_argument("--partner-secret", default=os.environ.get("PARTNER_SECRET"))
    target.add_argument("--store-client-id", default=os.environ.get("STORE_CLIENT_ID"))
    target.add_argument("--store-token", default=os.environ.get("STORE_TOKEN"))
    target.add_argument(
        "--database-url",
        help="the gateway's database (with its GATEWAY_SECRET_KEY in the environment): the"
        " attacker makes its own partners there, and deletions are checked",
    )
    target.add_argument("--header-timeout", type=float, default=10.0, help="its bound (10)")
    target.add_argument("--body-timeout", type=float, default=60.0, help="its bound (60)")
    target.add_argument("--keepalive-timeout", type=float, default=5.0, help="its bound (5)")
    return parser


@contextlib.contextmanager
def _target(args: argparse.Namespace) -> Iterator[Target]:
    if args.url is None:
        with tempfile.TemporaryDirectory(prefix="fuzz-") as folder:
            print("starting serve on a database of the run's own...", flush=True)
            with local_target(Path(folder)) as target:
                print(f"serve at {target.url} (log {target.log})", flush=True)
                yield target
        return
    creds = {
        "partner_client_id": args.partner_client_id,
        "partner_secret": args.partner_secret,
        "store_client_id": args.store_client_id,
        "store_token": args.store_token,
    }
    missing = [name for name, value in creds.items() if not value]
    if missing:
        raise SystemExit(f"--url needs the partner's credentials: missing {', '.join(missing)}")
    yield given_target(
        args.url,
        **creds,
        database_url=args.database_url,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        keepalive_timeout=args.keepalive_timeout,
    )


def _names_in(path: Path | None) -> set[str]:
    if path is None:
        return set()
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {line for line in lines if line}


def _run(args: argparse.Namespace, target: Target) -> int:
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise SystemExit(f"unknown parts: {', '.join(unknown)}")
    seconds = args.duration if args.duration is not None or args.cases else 60.0
    findings = Findings(args.corpus / "findings", target.host, target.port)
    session = Session(
        target,
        findings,
        Budget(seconds, args.cases),
        args.slow_ms / 1000,
        args.healthz_ms / 1000,
        only=args.only,
        skip=set(args.skip) | _names_in(args.skip_file),
    )
    if "hostile" in parts:
        run_hostile(session)
    if "raw" in parts:
        from .raw import run_raw

        run_raw(session, args.max_header_mib)
    rounds: list[Callable[[], None]] = []
    closing: list[Callable[[], None]] = []
    if "attacker" in parts and args.only is None:
        from .attacker import Attacker

        if target.database_url is None:
            print("attacker: skipped (needs the gateway's database: --database-url)", flush=True)
        else:
            attacker = Attacker(
                session, args.corpus, shrink=args.shrink, derandomize=args.derandomize
            )
            rounds.append(lambda: attacker.round(max(1, args.examples // 4), 12))
            closing.append(attacker.driver.client.close)
    if "schema" in parts and args.only is None:
        from .schema import SchemaFuzz

        schema = SchemaFuzz(session, derandomize=args.derandomize)
        rounds.append(lambda: schema.round(args.examples))
        closing.append(schema.http.close)
    while rounds and session.budget.left():
        for one_round in rounds:
            if session.budget.left():
                one_round()
    for close in closing:  # idle keep-alive connections would hold up the server's stop
        close()
    print("\n" + findings.summary(), flush=True)
    print(f"corpus and findings: {args.corpus}", flush=True)
    return 1 if findings.found else 0


def _replay(args: argparse.Namespace, target: Target) -> int:
    record = json.loads(Path(args.finding).read_text())
    if not record.get("url"):
        raise SystemExit("this finding has no URL: run its case again with --only (see replay)")
    parts = urllib.parse.urlsplit(record["url"])
    body = b""
    body_file = Path(args.finding).with_suffix(".body")
    if body_file.exists():
        body = body_file.read_bytes()
    headers = [(n, v) for n, v in record["headers"] if n.lower() not in _SIGNING_HEADERS]
    if record.get("signed"):
        session = Session(
            target,
            Findings(args.corpus / "replays", target.host, target.port),
            Budget(None, None),
            args.slow_ms / 1000,
            args.healthz_ms / 1000,
        )
        signed = session.signed_headers(
            target.tenants[0], record["method"], parts.path, parts.query, body
        )
        headers = [(n, v) for n, v in headers if n.lower() != "content-type"] + signed
    target_path = parts.path + (f"?{parts.query}" if parts.query else "")
    raw = build_request(record["method"], target_path, headers, body)
    answer = exchange(target.host, target.port, raw, method=record["method"])
    print(raw[:4096].decode("latin-1"))
    print(f"--> HTTP {answer.status} in {answer.elapsed:.3f} s {answer.error}")
    for name, value in answer.headers.items():
        print(f"{name}: {value}")
    print(answer.body[:4096].decode("utf-8", "replace"))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.action == "replay" and not args.finding:
        print("replay needs a findings/<key>.json file", file=sys.stderr)
        return 2
    with _target(args) as target:
        return _replay(args, target) if args.action == "replay" else _run(args, target)
