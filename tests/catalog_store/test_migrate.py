"""Migrations: ordered files, applied once, safe when several processes start together."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import psycopg
import pytest

import catalog_store as store


@pytest.fixture
def empty_database(server_conninfo: str) -> Iterator[str]:
    name = f"gateway_migrate_{secrets.token_hex(4)}"
    with psycopg.connect(server_conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield psycopg.conninfo.make_conninfo(server_conninfo, dbname=name)
    with psycopg.connect(server_conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_migration_files_are_ordered_by_name() -> None:
    names = [m.name for m in store.available_migrations()]
    assert names == sorted(names)
    assert names[0] == "0001_initial"


def test_concurrent_migrations_apply_each_file_exactly_once(empty_database: str) -> None:
    """Four processes' worth of migrate at once: the advisory lock lets one do the work."""

    async def four_at_once() -> list[store.MigrationReport]:
        return list(
            await asyncio.gather(*(store.apply_migrations(empty_database) for _ in range(4)))
        )

    reports = asyncio.run(four_at_once())
    every = [m.name for m in store.available_migrations()]
    assert sorted(r.applied for r in reports) == [[], [], [], every]
    again = asyncio.run(store.apply_migrations(empty_database))
    assert (again.applied, again.already_applied) == ([], every)


def test_a_failing_migration_names_itself(
    empty_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = [store.available_migrations()[0], store.migrate.Migration("0002_broken", "SELEC 1")]
    monkeypatch.setattr(store.migrate, "available_migrations", lambda: broken)
    with pytest.raises(store.MigrationError) as caught:
        asyncio.run(store.apply_migrations(empty_database))
    assert caught.value.name == "0002_broken"
    # Nothing half-applied: the whole run was one transaction.
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT to_regclass('partners')").fetchone() == (None,)


def test_catalog_tables_are_keyed_by_store(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_get_constraintdef(k.oid) FROM pg_constraint k"
            " JOIN pg_class c ON c.oid = k.conrelid WHERE k.contype = 'p'"
            " AND c.relname IN ('products', 'product_variants') ORDER BY 1"
        ).fetchall()
    assert rows == [
        ("product_variants", "PRIMARY KEY (store_id, id)"),
        ("products", "PRIMARY KEY (store_id, id)"),
    ]
