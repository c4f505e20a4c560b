"""Migrations: ordered files, applied once, safe when several processes start together."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator

import psycopg
import pytest

import catalog_store


@pytest.fixture
def empty_database(server_conninfo: str) -> Iterator[str]:
    name = f"gateway_migrate_{secrets.token_hex(4)}"
    with psycopg.connect(server_conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield psycopg.conninfo.make_conninfo(server_conninfo, dbname=name)
    with psycopg.connect(server_conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_migration_files_are_ordered_by_name() -> None:
    names = [m.name for m in catalog_store.available_migrations()]
    assert names == sorted(names)
    assert names[0] == "0001_initial"


def test_concurrent_migrations_apply_each_file_exactly_once(empty_database: str) -> None:
    """Four processes' worth of migrate at once: the advisory lock lets one do the work."""

    async def four_at_once() -> list[catalog_store.MigrationReport]:
        return list(
            await asyncio.gather(
                *(catalog_store.apply_migrations(empty_database) for _ in range(4))
            )
        )

    reports = asyncio.run(four_at_once())
    every = [m.name for m in catalog_store.available_migrations()]
    assert sorted(r.applied for r in reports) == [[], [], [], every]
    again = asyncio.run(catalog_store.apply_migrations(empty_database))
    assert (again.applied, again.already_applied) == ([], every)


def test_a_failing_migration_names_itself_and_rolls_back_whole(
    empty_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each migration is its own transaction: the failing one leaves nothing, the ones before
    it stay applied and recorded, and the next run starts at the failing one."""
    broken = [
        catalog_store.available_migrations()[0],
        catalog_store.migrate.Migration("0002_broken", "CREATE TABLE half_done (x int); SELEC 1"),
    ]
    monkeypatch.setattr(catalog_store.migrate, "available_migrations", lambda: broken)
    with pytest.raises(catalog_store.MigrationError) as caught:
        asyncio.run(catalog_store.apply_migrations(empty_database))
    assert caught.value.name == "0002_broken"
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)
        assert conn.execute("SELECT to_regclass('partners')").fetchone() == ("partners",)
        assert conn.execute("SELECT name FROM schema_migrations").fetchall() == [("0001_initial",)]
    assert asyncio.run(catalog_store.pending_migrations(empty_database)) == ["0002_broken"]


def test_pending_migrations_of_a_fresh_database_are_all_of_them(empty_database: str) -> None:
    every = [m.name for m in catalog_store.available_migrations()]
    assert asyncio.run(catalog_store.pending_migrations(empty_database)) == every
    asyncio.run(catalog_store.apply_migrations(empty_database))
    assert asyncio.run(catalog_store.pending_migrations(empty_database)) == []


def test_a_migration_gives_way_to_a_held_lock_and_is_retried_until_it_gets_it(
    empty_database: str,
) -> None:
    """A transaction holds the table for 1.2 s: the migration waits 0.1 s at most each try,
    so nothing queues behind it for longer; it is applied once the lock is free. With no time
    left to retry, it fails and names itself, leaving nothing behind."""
    asyncio.run(catalog_store.apply_migrations(empty_database))
    add = catalog_store.migrate.Migration("9001_add", "ALTER TABLE stores ADD COLUMN note text")
    retries: list[tuple[str, int]] = []
    with psycopg.connect(empty_database) as holder:
        holder.execute("SELECT count(*) FROM stores")  # ACCESS SHARE until the commit
        with pytest.raises(catalog_store.MigrationError) as caught:
            asyncio.run(
                catalog_store.apply_migrations(
                    empty_database, migrations=[add], lock_timeout=0.1, retry_for=0.2
                )
            )
        assert caught.value.name == "9001_add" and "could not get its locks" in str(caught.value)

        async def apply_while_held() -> catalog_store.MigrationReport:
            release = asyncio.get_running_loop().call_later(1.2, holder.commit)
            try:
                return await catalog_store.apply_migrations(
                    empty_database,
                    migrations=[add],
                    lock_timeout=0.1,
                    retry_for=30,
                    on_retry=lambda name, tries, wait: retries.append((name, tries)),
                )
            finally:
                release.cancel()

        started = time.monotonic()
        report = asyncio.run(apply_while_held())
        elapsed = time.monotonic() - started
    assert report.applied == ["9001_add"] and report.lock_retries == len(retries) >= 2
    assert retries[:2] == [("9001_add", 1), ("9001_add", 2)]
    assert 1.2 <= elapsed < 5
    with psycopg.connect(empty_database) as conn:
        assert conn.execute(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_name = 'stores' AND column_name = 'note'"
        ).fetchone() == (1,)


def test_catalog_tables_are_keyed_by_store(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_get_constraintdef(k.oid) FROM pg_constraint k"
            " JOIN pg_class c ON c.oid = k.conrelid WHERE k.contype = 'p'"
            " AND c.relname IN ('all_products', 'all_product_variants') ORDER BY 1"
        ).fetchall()
    assert rows == [
        ("all_product_variants", "PRIMARY KEY (store_id, id)"),
        ("all_products", "PRIMARY KEY (store_id, id)"),
    ]
