"""`partner-gateway serve`, `worker` and `config`: the long-running processes and their settings.

The server (uvicorn, the supervisor in ``gateway.serving``, prometheus), the job engine and the
demo are imported inside the commands that run them, so no other command loads them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import catalog_store

from ..database import resolve_conninfo
from ..keys import load_secret_box, server_key_text
from ..settings import Settings, effective_settings
from .base import fail, natural, print_json
from .database import open_pool, prepare, with_pool

if TYPE_CHECKING:
    import uvicorn

__all__ = ["register"]


def _cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    print_json(effective_settings(settings))
    return 0


def _cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from ..jobs import QUEUE, run_worker

    conninfo = resolve_conninfo(settings)
    asyncio.run(prepare(settings, conninfo))
    print_json({"worker": "running", "queue": QUEUE, "concurrency": args.concurrency})
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


async def _log_unreadable_secrets(conninfo: str, box: catalog_store.SecretBox) -> None:
    """Log the stored secrets that no key opens now, before any probe asks (they block
    nothing: /readyz and /metrics report them too)."""
    from ..key_health import SecretHealth

    pool = await open_pool(conninfo)
    try:
        await SecretHealth(pool, box).check()
    finally:
        await pool.close()


def _cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from ..serving import stop_signals

    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    conninfo = resolve_conninfo(settings)
    key = server_key_text(settings)  # no key, no serving: before the database is touched
    report = asyncio.run(prepare(settings, conninfo))
    asyncio.run(
        _log_unreadable_secrets(conninfo, catalog_store.SecretBox(*catalog_store.parse_keys(key)))
    )
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
    report: catalog_store.MigrationReport,
    host: str,
    port: int,
    stop: threading.Event,
) -> int:
    """Bind, say so, then serve until stopped (gateway/serving.py), a worker beside if asked."""
    from ..serving import CANNOT_BIND, bind_socket, metrics_folder, run_servers

    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        return CANNOT_BIND
    _announce(settings, args, report, f"http://{host}:{port}")
    config = _uvicorn_config(settings, host, port, args.workers)
    with metrics_folder(settings.metrics_dir) as folder, _worker_beside(conninfo, args.with_worker):
        return run_servers(
            config,
            sock,
            workers=args.workers,
            grace=settings.shutdown_grace,
            metrics=folder,
            stop=stop,
        )


def _announce(
    settings: Settings, args: argparse.Namespace, report: catalog_store.MigrationReport, url: str
) -> None:
    """The demo's welcome, or the one ``serving`` line, once the address is bound."""
    if args.demo:
        from ..demo import ensure_demo, print_welcome

        data_dir = settings.data_dir
        box = load_secret_box(settings)
        demo = asyncio.run(with_pool(settings, lambda p: ensure_demo(p, data_dir, box=box)))
        print_welcome(demo, url)
    else:
        print_json({"serving": url, "migrationsApplied": report.applied})
        sys.stdout.flush()


def _uvicorn_config(settings: Settings, host: str, port: int, workers: int) -> uvicorn.Config:
    import uvicorn

    return uvicorn.Config(
        "gateway.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
        log_config=None,  # uvicorn's lines go through the gateway's logging (gateway/logs.py)
        server_header=False,
        timeout_graceful_shutdown=settings.shutdown_grace,  # type: ignore[arg-type]
        # Always uvicorn's httptools protocol, with the gateway's caps and deadlines.
        http="gateway.http_protocol:GatewayHttpProtocol",
        timeout_keep_alive=settings.keepalive_timeout,  # type: ignore[arg-type]
        # With --workers N, uvicorn's supervisor kills a process that does not answer its
        # health check in time: ample, so that one still importing the app on a busy machine
        # is not taken for hung.
        timeout_worker_healthcheck=30,
    )


@contextlib.contextmanager
def _worker_beside(conninfo: str, wanted: bool) -> Iterator[None]:
    """`--with-worker`: a batch worker for as long as the block runs, then SIGTERM, then a
    kill if it has not exited after 30 s."""
    worker = _start_worker(conninfo) if wanted else None
    try:
        yield
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()


def _workers(text: str) -> int:
    value = natural(text)
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"{value} must be between 1 and 256")
    return value


def register(commands: Any) -> None:
    """Add ``config``, ``serve`` and ``worker`` to the top-level commands."""
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
