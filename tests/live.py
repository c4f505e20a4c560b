"""Real `partner-gateway` processes for the tests: the CLI, and `serve` on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from gateway.client import PartnerAuth
from tests.support import Tenant

BIN = Path(sys.executable).parent / "partner-gateway"
ROOT = Path(__file__).resolve().parent.parent


def clean_env(database_url: str, **extra: str) -> dict[str, str]:
    """The test's environment, pointed at the test database, without stray credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARTNER_", "STORE_"))}
    env.update(DATABASE_URL=database_url, GATEWAY_LOG_FORMAT="json", **extra)
    return env


def cli(database_url: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *args],
        env=clean_env(database_url, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, process: subprocess.Popen[str], url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log


@contextmanager
def serving(database_url: str, folder: Path, *extra: str, **env: str) -> Iterator[Server]:
    """`partner-gateway serve` on 127.0.0.1 and a free port, until the block ends; ``env`` adds
    variables to its environment."""
    port = free_port()
    log = folder / f"serve-{port}.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(port), *extra],
            env=clean_env(database_url, GATEWAY_DATA_DIR=str(folder / "data"), **env),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start: " + log.read_text()
                time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def partner_client(server: Server, tenant: Tenant, *, timeout: float = 60) -> httpx.Client:
    """An httpx client of the tenant's partner against a live server, signing every request."""
    auth = PartnerAuth(
        partner_client_id=tenant.partner_client_id,
        partner_secret=tenant.secret,
        store_client_id=tenant.store_client_id,
        store_token=tenant.token,
    )
    return httpx.Client(base_url=server.url, auth=auth, timeout=timeout)
