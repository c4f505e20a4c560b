"""The gateway under attack: a real ``serve`` started for the run on a database of its own, or a
URL with a partner's credentials."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

import catalog_store
from gateway.jobs import migrate
from tests.live import serving
from tests.support import Tenant, make_tenant, run_with_pool

from .contract import server_errors

__all__ = ["Target", "given_target", "local_target"]

ROOT = Path(__file__).resolve().parent.parent
# The started serve's own deadlines, short so a campaign does not wait long on a slow client.
# A gateway that does not know these settings ignores them (then its own bounds are found).
LOCAL_TIMEOUTS = {
    "GATEWAY_HEADER_TIMEOUT": "1",
    "GATEWAY_BODY_TIMEOUT": "1",
    "GATEWAY_KEEPALIVE_TIMEOUT": "2",
}


@dataclass
class Target:
    url: str
    tenants: list[Tenant]  # the first signs; two or more with a database: the attacker runs
    database_url: str | None = None  # the gateway's database: deletions are checked there
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    keepalive_timeout: float = 5.0
    log: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urllib.parse.urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    def server_errors(self) -> float:
        """The 500s the gateway counted so far (all its processes)."""
        try:
            return server_errors(httpx.get(self.url + "/metrics", timeout=10).text)
        except httpx.HTTPError:
            return 0.0

    def product_ids(self, store_id: int) -> set[str]:
        assert self.database_url is not None
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                "SELECT id::text FROM products WHERE store_id = %s", (store_id,)
            ).fetchall()
        return {row[0] for row in rows}

    def new_tenant(self, name: str, products: int = 6) -> Tenant:
        assert self.database_url is not None
        return run_with_pool(
            self.database_url,
            lambda pool: make_tenant(pool, products=products, variants=1, name=name),
        )


def _server_conninfo() -> str:
    given = os.environ.get("FUZZ_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    return given or catalog_store.embedded_conninfo(ROOT / ".data")


@contextlib.contextmanager
def local_target(folder: Path) -> Iterator[Target]:
    """A database of the run's own (migrated, two tenants with products), ``serve`` on it on a
    free loopback port; both gone when the block ends."""
    server = _server_conninfo()
    name = f"gateway_fuzz_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(server, dbname=name)
    try:
        asyncio.run(migrate(url))
        target = Target("", [], url, 1.0, 1.0, 2.0)
        target.tenants = [target.new_tenant("a", 20), target.new_tenant("b", 20)]
        env = {"GATEWAY_RATE_LIMIT_REQUESTS": "0", "GATEWAY_RATE_LIMIT_BATCHES": "0"}
        with serving(url, folder, **env, **LOCAL_TIMEOUTS) as live:
            target.url, target.log = live.url, live.log
            yield target
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def given_target(
    url: str,
    *,
    partner_client_id: str,
    partner_secret: str,
    store_client_id: str,
    store_token: str,
    database_url: str | None,
    header_timeout: float,
    body_timeout: float,
    keepalive_timeout: float,
) -> Target:
    """A gateway already running; with its ``database_url`` (and its ``GATEWAY_SECRET_KEY`` in
    the environment) the attacker makes tenants of its own there and checks deletions."""
    tenant = Tenant(0, partner_client_id, partner_secret, 0, store_client_id, store_token)
    target = Target(
        url.rstrip("/"), [tenant], database_url, header_timeout, body_timeout, keepalive_timeout
    )
    return target
