"""Upgrades without a stall: `migrate --check`, `serve` and `worker` refusing a schema that is
behind, the embedded database migrating by itself, and a migration applied under load while
the old gateways serve and a long read transaction holds its table."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import catalog_store
from gateway.cli.base import CommandError
from gateway.cli.database import pending_refusal, prepare
from gateway.jobs import migrate, migrations
from gateway.settings import Secret, Settings, load_settings
from tests.live import cli, free_port, partner_client, serving
from tests.support import DELETIONS, body_of, make_tenant, run_with_pool

pytestmark = pytest.mark.slow


@pytest.fixture
def empty_database(server_conninfo: str) -> Iterator[str]:
    name = f"gateway_upgrade_{secrets.token_hex(4)}"
    with psycopg.connect(server_conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield psycopg.conninfo.make_conninfo(server_conninfo, dbname=name)
    with psycopg.connect(server_conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_migrate_check_lists_pending_and_serve_and_worker_refuse_until_migrated(
    empty_database: str,
) -> None:
    every = [m.name for m in migrations()]
    assert "0004_security" in every
    check = cli(empty_database, "migrate", "--check")
    assert (check.returncode, json.loads(check.stdout)) == (1, {"pending": every})
    for args in (["serve", "--port", str(free_port())], ["worker"]):
        refused = cli(empty_database, *args)
        assert refused.returncode == 2 and refused.stdout == "", (args, refused.stdout)
        assert json.loads(refused.stderr.strip().splitlines()[-1]) == {
            "error": pending_refusal(every)
        }
    assert "run partner-gateway migrate first" in pending_refusal(every)
    with psycopg.connect(empty_database) as conn:  # neither of them touched the schema
        assert conn.execute("SELECT to_regclass('partners')").fetchone() == (None,)
    applied = cli(empty_database, "migrate")
    assert json.loads(applied.stdout) == {"applied": every, "alreadyApplied": []}
    check = cli(empty_database, "migrate", "--check")
    assert (check.returncode, json.loads(check.stdout)) == (0, {"pending": []})


def test_the_embedded_database_is_migrated_by_any_command_a_database_url_only_by_migrate(
    empty_database: str,
) -> None:
    """The decision `prepare` makes for every command but `migrate`: with no DATABASE_URL (the
    embedded demo) it migrates; with one it refuses, naming `migrate`."""
    every = [m.name for m in migrations()]
    with pytest.raises(CommandError) as caught:
        asyncio.run(prepare(Settings(database_url=Secret(empty_database)), empty_database))
    assert str(caught.value) == pending_refusal(every)
    report = asyncio.run(prepare(Settings(), empty_database))
    assert report.applied == every


def test_a_migration_under_load_never_stalls_partner_traffic(
    database_url: str, tmp_path: Path
) -> None:
    """A next-release `ALTER TABLE all_products ADD COLUMN` while gateways serve deletions and
    a 3 s read transaction holds it (through the view `products`): the migration gives way
    every 0.2 s (GATEWAY_MIGRATION_LOCK_TIMEOUT) and is retried until it gets its lock, so every
    request is answered 200, none waits much longer than that, and traffic flows all along."""
    tenant = run_with_pool(database_url, lambda pool: make_tenant(pool, products=1500, variants=0))
    ids = list(tenant.ids)
    added = catalog_store.Migration(
        "9900_test_products_note", "ALTER TABLE all_products ADD COLUMN note text"
    )
    settings = load_settings({"GATEWAY_MIGRATION_LOCK_TIMEOUT": "0.2"})
    answers: list[tuple[float, float, int]] = []  # (sent at, seconds, status)
    stop = threading.Event()

    def send() -> None:
        with partner_client(server, tenant, timeout=30) as client:
            while not stop.is_set():
                product = ids.pop() if ids else str(uuid.uuid4())
                sent = time.monotonic()
                response = client.post(DELETIONS, content=body_of({"ids": [product]}))
                answers.append((sent, time.monotonic() - sent, response.status_code))

    try:
        with serving(
            database_url, tmp_path, "--workers", "2", GATEWAY_RATE_LIMIT_REQUESTS="0"
        ) as server:
            senders = [threading.Thread(target=send) for _ in range(4)]
            for thread in senders:
                thread.start()
            try:
                time.sleep(0.5)
                with psycopg.connect(database_url) as reader:
                    reader.execute("SELECT count(*) FROM products")  # holds it until commit
                    held_from = time.monotonic()
                    release = threading.Timer(3.0, reader.commit)
                    release.start()
                    report = asyncio.run(migrate(database_url, settings, extra=[added]))
                    migrated_at = time.monotonic()
                    release.join()
                time.sleep(0.5)
            finally:
                stop.set()
                for thread in senders:
                    thread.join()
        with psycopg.connect(database_url) as conn:
            column = conn.execute(
                "SELECT count(*) FROM information_schema.columns"
                " WHERE table_name = 'all_products' AND column_name = 'note'"
            ).fetchone()
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE all_products DROP COLUMN IF EXISTS note")
            conn.execute("DELETE FROM schema_migrations WHERE name = %s", (added.name,))

    assert {status for _, _, status in answers} == {200}
    slowest = max(seconds for _, seconds, _ in answers)
    while_held = [a for a in answers if held_from + 0.3 <= a[0] <= held_from + 2.7]
    after = [a for a in answers if a[0] > migrated_at]
    assert slowest < 1.0, f"slowest answer took {slowest:.2f} s"
    assert len(while_held) >= 20 and len(after) >= 1, (len(while_held), len(after))
    assert report.applied == [added.name] and report.lock_retries >= 2
    assert migrated_at - held_from >= 3.0 and column == (1,)
