"""The `partner-gateway` command line (README, docs/operations.md): every command prints JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg_pool

import catalog_store as store

from .app import resolve_conninfo
from .demo import ensure_demo, print_welcome
from .jobs import QUEUE, migrate, pending, run_worker
from .key_health import SecretHealth
from .keys import load_secret_box, server_key_text
from .logs import configure_logging, flush_logs
from .partner_cli import CommandError, add_partner_commands
from .restore import add_restore_command
from .serving import CANNOT_BIND, bind_socket, metrics_folder, run_servers, stop_signals
from .settings import Settings, SettingsError, effective_settings, load_settings

__all__ = ["KNOWN_SCOPES", "main", "pending_refusal"]

#: The scopes a route can need; `token issue` refuses any other (a typo would make a dead token).
KNOWN_SCOPES = (store.SCOPE_DELETE, store.SCOPE_BATCHES_READ)


def _print(value: Any) -> None:
    sys.stdout.write(json.dumps(value) + "\n")


async def _open_pool(conninfo: str) -> store.Pool:
    pool = store.create_pool(conninfo, min_size=1, max_size=2, timeout=10)
    try:
        await pool.open(wait=True, timeout=30)
    except psycopg_pool.PoolTimeout as exc:
        await pool.close()
        raise store.StoreUnavailable(f"cannot connect to the database: {exc}") from exc
    return pool


def pending_refusal(names: Sequence[str]) -> str:
    """Why a command will not run on a schema that is behind its code."""
    return (
        f"the database has {len(names)} pending migration{'s' if len(names) > 1 else ''}"
        f" ({', '.join(names)}): run partner-gateway migrate first"
    )


async def _seal_plain(settings: Settings, conninfo: str) -> None:
    """Seal the partner secrets still stored plain (from before 0004_security), if any: only
    then is the server key needed."""
    pool = await _open_pool(conninfo)
    try:
        if await store.has_plain_secrets(pool):
            await store.seal_plain_secrets(pool, box=load_secret_box(settings))
    finally:
        await pool.close()


async def _prepare(settings: Settings, conninfo: str) -> store.MigrationReport:
    """The schema this code needs. The embedded database is migrated here (and plain secrets
    sealed); a DATABASE_URL one only by `migrate`, so a command finding migrations pending there
    refuses instead of taking locks behind the operator's back."""
    if settings.database_url is None:
        report = await migrate(conninfo, settings)
        await _seal_plain(settings, conninfo)
        return report
    waiting = await pending(conninfo)
    if waiting:
        raise CommandError(pending_refusal(waiting))
    return store.MigrationReport(applied=[], already_applied=[])


async def _with_pool(settings: Settings, work: Callable[[store.Pool], Awaitable[Any]]) -> Any:
    conninfo = resolve_conninfo(settings)
    await _prepare(settings, conninfo)
    pool = await _open_pool(conninfo)
    try:
        return await work(pool)
    finally:
        await pool.close()


def _cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    conninfo = resolve_conninfo(settings)
    if args.check:
        waiting = asyncio.run(pending(conninfo))
        _print({"pending": waiting})
        return 1 if waiting else 0

    async def run() -> store.MigrationReport:
        report = await migrate(conninfo, settings)
        await _seal_plain(settings, conninfo)
        return report

    report = asyncio.run(run())
    _print({"applied": report.applied, "alreadyApplied": report.already_applied})
    return 0


def _cmd_partner_create(settings: Settings, args: argparse.Namespace) -> int:
    box = load_secret_box(settings)
    partner = asyncio.run(
        _with_pool(settings, lambda p: store.create_partner(p, args.name, box=box))
    )
    _print({"partnerClientId": partner.client_id, "secret": partner.secret})
    return 0


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _cmd_partner_rotate(settings: Settings, args: argparse.Namespace) -> int:
    box = load_secret_box(settings)
    new = asyncio.run(
        _with_pool(
            settings, lambda p: store.rotate_secret(p, partner_client_id=args.partner, box=box)
        )
    )
    shown: dict[str, Any] = {
        "partnerClientId": new.partner_client_id,
        "keyId": new.key_id,
        "secret": new.secret,
        "createdAt": _iso(new.created_at),
    }
    if new.retired_unreadable:
        shown["retiredKeyIds"] = list(new.retired_unreadable)
    _print(shown)
    return 0


def _cmd_partner_retire(settings: Settings, args: argparse.Namespace) -> int:
    retired = asyncio.run(
        _with_pool(
            settings,
            lambda p: store.retire_secret(p, partner_client_id=args.partner, key_id=args.key_id),
        )
    )
    _print(
        {
            "partnerClientId": retired.partner_client_id,
            "retiredKeyId": retired.key_id,
            "activeKeyIds": list(retired.active_key_ids),
        }
    )
    return 0


def _cmd_partner_secrets(settings: Settings, args: argparse.Namespace) -> int:
    infos = asyncio.run(
        _with_pool(settings, lambda p: store.list_secrets(p, partner_client_id=args.partner))
    )
    _print(
        {
            "partnerClientId": args.partner,
            "secrets": [
                {
                    "keyId": info.key_id,
                    "createdAt": _iso(info.created_at),
                    "retiredAt": _iso(info.retired_at),
                    "lastUsedAt": _iso(info.last_used_at),
                }
                for info in infos
            ],
        }
    )
    return 0


def _set_active(settings: Settings, partner: str, active: bool) -> int:
    asyncio.run(
        _with_pool(
            settings,
            lambda p: store.set_partner_active(p, partner_client_id=partner, active=active),
        )
    )
    _print({"partnerClientId": partner, "active": active})
    return 0


def _cmd_token_revoke(settings: Settings, args: argparse.Namespace) -> int:
    token = args.token if args.token != "-" else sys.stdin.readline().strip()
    if not asyncio.run(_with_pool(settings, lambda p: store.revoke_token(p, token=token))):
        raise CommandError("no live token with that value (unknown, or already revoked)")
    _print({"revoked": True})
    return 0


def _cmd_token_list(settings: Settings, args: argparse.Namespace) -> int:
    infos = asyncio.run(
        _with_pool(
            settings,
            lambda p: store.list_tokens(
                p, partner_client_id=args.partner, store_client_id=args.store
            ),
        )
    )
    _print(
        {
            "tokens": [
                {
                    "partnerClientId": info.partner_client_id,
                    "storeClientId": info.store_client_id,
                    "scopes": list(info.scopes),
                    "createdAt": _iso(info.created_at),
                    "revokedAt": _iso(info.revoked_at),
                }
                for info in infos
            ]
        }
    )
    return 0


def _cmd_key_generate(settings: Settings, args: argparse.Namespace) -> int:
    _print({"secretKey": store.generate_key()})
    return 0


def _cmd_key_reseal(settings: Settings, args: argparse.Namespace) -> int:
    box = load_secret_box(settings)
    report = asyncio.run(_with_pool(settings, lambda p: store.reseal_secrets(p, box=box)))
    shown: dict[str, Any] = {"resealed": report.resealed}
    if report.unreadable:
        shown["unreadable"] = [
            {"partnerClientId": partner, "keyId": key_id} for partner, key_id in report.unreadable
        ]
    _print(shown)
    return 0


def _cmd_store_create(settings: Settings, args: argparse.Namespace) -> int:
    shop = asyncio.run(_with_pool(settings, lambda p: store.create_store(p, args.name)))
    _print({"storeClientId": shop.client_id})
    return 0


def _cmd_token_issue(settings: Settings, args: argparse.Namespace) -> int:
    scopes = tuple(s for s in args.scopes.replace(",", " ").split() if s)
    if not scopes:
        raise CommandError("--scopes needs at least one scope, e.g. products:delete")
    unknown = [s for s in scopes if s not in KNOWN_SCOPES]
    if unknown:
        raise CommandError(
            f"unknown scope {', '.join(unknown)}; known scopes: {', '.join(KNOWN_SCOPES)}"
        )
    token = asyncio.run(
        _with_pool(
            settings,
            lambda p: store.issue_token(
                p, partner_client_id=args.partner, store_client_id=args.store, scopes=scopes
            ),
        )
    )
    _print({"storeToken": token.token})
    return 0


def _cmd_products_seed(settings: Settings, args: argparse.Namespace) -> int:
    refs = asyncio.run(
        _with_pool(
            settings,
            lambda p: store.seed_products(
                p, store_client_id=args.store, count=args.count, variants=args.variants
            ),
        )
    )
    lines = "".join(
        json.dumps({"id": str(ref.id), "externalId": ref.external_id}) + "\n" for ref in refs
    )
    if args.out:
        Path(args.out).write_text(lines, encoding="utf-8")
    sys.stdout.write(lines)
    return 0


def _cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    conninfo = resolve_conninfo(settings)
    asyncio.run(_prepare(settings, conninfo))
    _print({"worker": "running", "queue": QUEUE, "concurrency": args.concurrency})
    sys.stdout.flush()
    asyncio.run(run_worker(conninfo, settings, concurrency=args.concurrency))
    return 0


def _start_worker(conninfo: str) -> subprocess.Popen[bytes]:
    """A `partner-gateway worker` beside `serve` (for `make run`), stopped with it."""
    env = {**os.environ, "DATABASE_URL": conninfo}
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "worker"], env=env, preexec_fn=_die_with_parent
    )


def _die_with_parent() -> None:
    """Linux: the worker gets SIGTERM if `serve` dies without stopping it (SIGKILL, say)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


async def _log_unreadable_secrets(conninfo: str, box: store.SecretBox) -> None:
    """Log the stored secrets that no key opens now, before any probe asks (they block
    nothing: /readyz and /metrics report them too)."""
    pool = await _open_pool(conninfo)
    try:
        await SecretHealth(pool, box).check()
    finally:
        await pool.close()


def _cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    conninfo = resolve_conninfo(settings)
    key = server_key_text(settings)  # no key, no serving: before the database is touched
    report = asyncio.run(_prepare(settings, conninfo))
    asyncio.run(_log_unreadable_secrets(conninfo, store.SecretBox(*store.parse_keys(key))))
    # The processes build their own app from the environment; hand them the resolved database,
    # and the embedded database's key file as GATEWAY_SECRET_KEY (with the database as
    # DATABASE_URL, they would not make or read a key file).
    os.environ["DATABASE_URL"] = conninfo
    os.environ["GATEWAY_SECRET_KEY"] = key
    with stop_signals() as stop:
        return _serve(settings, args, conninfo, report, host, port, stop)


def _serve(
    settings: Settings,
    args: argparse.Namespace,
    conninfo: str,
    report: store.MigrationReport,
    host: str,
    port: int,
    stop: threading.Event,
) -> int:
    import uvicorn

    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        return CANNOT_BIND
    if args.demo:
        data_dir = settings.data_dir
        box = load_secret_box(settings)
        demo = asyncio.run(_with_pool(settings, lambda p: ensure_demo(p, data_dir, box=box)))
        print_welcome(demo, f"http://{host}:{port}")
    else:
        _print({"serving": f"http://{host}:{port}", "migrationsApplied": report.applied})
        sys.stdout.flush()
    config = uvicorn.Config(
        "gateway.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        access_log=False,
        log_level="warning",
        log_config=None,  # uvicorn's lines go through the gateway's logging (gateway/logs.py)
        server_header=False,
        timeout_graceful_shutdown=settings.shutdown_grace,  # type: ignore[arg-type]
        # Always uvicorn's httptools protocol, with the gateway's caps and deadlines.
        http="gateway.http_protocol:GatewayHttpProtocol",
        timeout_keep_alive=settings.keepalive_timeout,  # type: ignore[arg-type]
    )
    with metrics_folder(settings.metrics_dir) as folder:
        worker = _start_worker(conninfo) if args.with_worker else None
        try:
            return run_servers(
                config,
                sock,
                workers=args.workers,
                grace=settings.shutdown_grace,
                metrics=folder,
                stop=stop,
            )
        finally:
            if worker is not None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()


def _cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    _print(effective_settings(settings))
    return 0


def _workers(text: str) -> int:
    value = _natural(text)
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"{value} must be between 1 and 256")
    return value


def _natural(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= 10_000_000:
        raise argparse.ArgumentTypeError(f"{value} must be between 0 and 10,000,000")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="partner-gateway", description="Partner Catalog Gateway: operator commands"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    migrate_cmd = commands.add_parser("migrate", help="apply pending database migrations")
    migrate_cmd.add_argument(
        "--check",
        action="store_true",
        help="only list the pending migrations; exit 1 when there are some, 0 when none",
    )
    migrate_cmd.set_defaults(run=_cmd_migrate)

    commands.add_parser("config", help="print the effective settings, secrets masked").set_defaults(
        run=_cmd_config
    )

    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=_workers, default=1, help="server processes (1)")
    serve.add_argument(
        "--demo", action="store_true", help="create demo credentials and products on first start"
    )
    serve.add_argument(
        "--with-worker", action="store_true", help="also run a batch worker beside the server"
    )
    serve.set_defaults(run=_cmd_serve)

    worker = commands.add_parser("worker", help="run dispatched deletion batches")
    worker.add_argument("--concurrency", type=int, default=1, help="batches at once (1)")
    worker.set_defaults(run=_cmd_worker)

    partner = commands.add_parser("partner", help="partners").add_subparsers(
        dest="action", required=True
    )
    p_create = partner.add_parser("create", help="create a partner and its first secret")
    p_create.add_argument("--name", required=True)
    p_create.set_defaults(run=_cmd_partner_create)
    p_rotate = partner.add_parser(
        "rotate-secret", help="add a second active secret and print it (both verify until retire)"
    )
    p_rotate.add_argument("--partner", required=True, help="partner client id")
    p_rotate.set_defaults(run=_cmd_partner_rotate)
    p_retire = partner.add_parser(
        "retire-secret", help="retire the oldest active secret (or --key-id), never the last"
    )
    p_retire.add_argument("--partner", required=True, help="partner client id")
    p_retire.add_argument("--key-id", help="the secret to retire (default: the oldest active)")
    p_retire.set_defaults(run=_cmd_partner_retire)
    p_secrets = partner.add_parser("secrets", help="list a partner's key ids and their times")
    p_secrets.add_argument("--partner", required=True, help="partner client id")
    p_secrets.set_defaults(run=_cmd_partner_secrets)
    p_disable = partner.add_parser("disable", help="refuse every request of a partner (AUTH_004)")
    p_disable.add_argument("--partner", required=True, help="partner client id")
    p_disable.set_defaults(run=lambda settings, args: _set_active(settings, args.partner, False))
    p_enable = partner.add_parser("enable", help="accept a disabled partner's requests again")
    p_enable.add_argument("--partner", required=True, help="partner client id")
    p_enable.set_defaults(run=lambda settings, args: _set_active(settings, args.partner, True))

    shop = commands.add_parser("store", help="stores").add_subparsers(dest="action", required=True)
    s_create = shop.add_parser("create", help="create a store")
    s_create.add_argument("--name", required=True)
    s_create.set_defaults(run=_cmd_store_create)

    token = commands.add_parser("token", help="store tokens").add_subparsers(
        dest="action", required=True
    )
    t_issue = token.add_parser("issue", help="issue a token from a store to a partner")
    t_issue.add_argument("--partner", required=True, help="partner client id")
    t_issue.add_argument("--store", required=True, help="store client id")
    t_issue.add_argument(
        "--scopes",
        default=",".join(store.DEFAULT_SCOPES),
        help=f"comma-separated, of {', '.join(KNOWN_SCOPES)} (default: all of them)",
    )
    t_issue.set_defaults(run=_cmd_token_issue)
    t_revoke = token.add_parser(
        "revoke", help="revoke a store token (every process, within the cache bound)"
    )
    t_revoke.add_argument("--token", required=True, help="the token; - reads it from stdin")
    t_revoke.set_defaults(run=_cmd_token_revoke)
    t_list = token.add_parser(
        "list", help="a partner's or a store's tokens: scopes and times, never the token"
    )
    t_list.add_argument("--partner", help="partner client id")
    t_list.add_argument("--store", help="store client id")
    t_list.set_defaults(run=_cmd_token_list)

    key = commands.add_parser("key", help="the server key").add_subparsers(
        dest="action", required=True
    )
    k_generate = key.add_parser("generate", help="print a new GATEWAY_SECRET_KEY value")
    k_generate.set_defaults(run=_cmd_key_generate)
    k_reseal = key.add_parser(
        "reseal", help="seal every stored partner secret anew with the first GATEWAY_SECRET_KEY"
    )
    k_reseal.set_defaults(run=_cmd_key_reseal)

    products = commands.add_parser("products", help="catalog products").add_subparsers(
        dest="action", required=True
    )
    seed = products.add_parser("seed", help="create products with variants")
    seed.add_argument("--store", required=True, help="store client id")
    seed.add_argument("--count", type=_natural, required=True)
    seed.add_argument("--variants", type=_natural, default=2)
    seed.add_argument("--out", help="also write the products to FILE")
    seed.set_defaults(run=_cmd_products_seed)
    add_restore_command(products, _with_pool)

    add_partner_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(os.environ)
        configure_logging(settings.log_format, settings.log_level)
        code: int = args.run(settings, args)
        return code
    except (SettingsError, CommandError, store.UnknownClient, store.StoreError) as exc:
        _fail(str(exc))
        return 2
    except httpx.HTTPError as exc:
        _fail(f"could not reach the gateway: {exc}")
        return 2


def _fail(message: str) -> None:
    flush_logs(1.0)  # the log lines before it first: the error stays the last line
    sys.stderr.write(json.dumps({"error": message}) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
