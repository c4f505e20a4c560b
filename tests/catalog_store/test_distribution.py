"""The schema stays distributable by store_id (catalog_store/distribution.py): read from the
migrated database's catalog (pg_constraint, pg_index), not from the migration files."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path

import psycopg
import pytest

import catalog_store
from catalog_store.distribution import DISTRIBUTED_BY_STORE, DISTRIBUTION_COLUMN, REFERENCE_TABLES

ROOT = Path(__file__).resolve().parents[2]

# Every unique index (primary keys and unique constraints included, partial ones too), as
# (table, index name, column names; NULL for an expression column).
_UNIQUE_INDEXES = """
SELECT t.relname, i.relname,
       array(SELECT a.attname FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(num, pos)
               LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.num
              ORDER BY k.pos)::text[]
  FROM pg_index x
  JOIN pg_class t ON t.oid = x.indrelid
  JOIN pg_class i ON i.oid = x.indexrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
 WHERE n.nspname = current_schema() AND x.indisunique
"""
# Every foreign key and exclusion constraint, as (table, name, kind, its columns, referenced
# table, referenced columns), the column lists in the key's order.
_CONSTRAINTS = """
SELECT t.relname, k.conname, k.contype::text,
       array(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY AS c(num, pos)
               JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = c.num
              ORDER BY c.pos)::text[],
       r.relname,
       array(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY AS c(num, pos)
               JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = c.num
              ORDER BY c.pos)::text[]
  FROM pg_constraint k
  JOIN pg_class t ON t.oid = k.conrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
  LEFT JOIN pg_class r ON r.oid = k.confrelid
 WHERE n.nspname = current_schema() AND k.contype IN ('f', 'x')
"""
_TABLES_WITH_COLUMN = """
SELECT t.relname FROM pg_attribute a
  JOIN pg_class t ON t.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
 WHERE n.nspname = current_schema() AND t.relkind IN ('r', 'p')
   AND a.attname = %s AND NOT a.attisdropped
"""


def breaches(
    conn: psycopg.Connection,
    distributed: Iterable[str] = DISTRIBUTED_BY_STORE,
    reference: Iterable[str] = REFERENCE_TABLES,
) -> list[str]:
    """Every way the database's schema breaks the distribution rules, one sentence each."""
    distributed, reference = set(distributed), set(reference)
    col = DISTRIBUTION_COLUMN
    found: list[str] = []
    with_column = {name for (name,) in conn.execute(_TABLES_WITH_COLUMN, (col,)).fetchall()}
    for table in sorted(with_column - distributed - reference):
        found.append(f"{table} has {col} but is neither distributed nor a reference table")
    for table in sorted(distributed - with_column):
        found.append(f"{table} is listed as distributed but has no {col} column")
    for table, index, columns in sorted(conn.execute(_UNIQUE_INDEXES).fetchall()):
        if table in distributed and col not in columns:
            found.append(
                f"{table}: unique index {index} ({', '.join(map(str, columns))}) lacks {col}"
            )
    for table, name, kind, columns, target, target_columns in sorted(
        conn.execute(_CONSTRAINTS).fetchall()
    ):
        if kind == "x":
            if table in distributed and col not in columns:
                found.append(f"{table}: exclusion constraint {name} lacks {col}")
            continue
        if table in distributed:
            if target in reference:
                continue
            if target not in distributed:
                found.append(f"{table}: foreign key {name} points to {target}, not distributed")
            elif (col, col) not in zip(columns, target_columns, strict=True):
                found.append(f"{table}: foreign key {name} does not match {col} to {col}")
        elif target in distributed:
            found.append(f"{table}: foreign key {name} points to distributed {target}")
    return found


def test_every_distributed_table_keeps_store_id_in_its_keys(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        assert breaches(conn) == []


def test_the_operations_guide_distributes_the_same_tables() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text("utf-8")
    distributed = re.findall(r"create_distributed_table\('(\w+)', 'store_id'", guide)
    reference = re.findall(r"create_reference_table\('(\w+)'\)", guide)
    assert sorted(distributed) == sorted(DISTRIBUTED_BY_STORE)
    assert sorted(reference) == sorted(REFERENCE_TABLES)


def test_each_rule_is_caught(database_url: str) -> None:
    """The checker itself: a throwaway schema breaking each rule once, rolled back."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "CREATE TABLE stray (store_id bigint);"
            " CREATE TABLE d_parent (store_id bigint NOT NULL, id int NOT NULL,"
            "  code text UNIQUE, PRIMARY KEY (store_id, id), UNIQUE (id));"
            " CREATE TABLE d_child (store_id bigint NOT NULL, parent int, other bigint,"
            "  FOREIGN KEY (store_id, parent) REFERENCES d_parent (store_id, id),"
            "  CONSTRAINT crossed FOREIGN KEY (other, parent) REFERENCES d_parent (store_id, id),"
            "  CONSTRAINT to_reference FOREIGN KEY (store_id) REFERENCES stores (id));"
            " CREATE TABLE plain (id bigint PRIMARY KEY, parent int);"
            " ALTER TABLE d_child ADD CONSTRAINT to_local FOREIGN KEY (other)"
            "  REFERENCES plain (id);"
            " ALTER TABLE plain ADD CONSTRAINT into_shards FOREIGN KEY (parent)"
            "  REFERENCES d_parent (id);"
            " CREATE TABLE d_nokey (id int);"
            " CREATE UNIQUE INDEX d_parent_upper ON d_parent (upper(code), store_id);"
        )
        try:
            found = breaches(
                conn,
                distributed=(*DISTRIBUTED_BY_STORE, "d_parent", "d_child", "d_nokey"),
            )
        finally:
            conn.rollback()
    assert found == [
        "stray has store_id but is neither distributed nor a reference table",
        "d_nokey is listed as distributed but has no store_id column",
        "d_parent: unique index d_parent_code_key (code) lacks store_id",
        "d_parent: unique index d_parent_id_key (id) lacks store_id",
        "d_child: foreign key crossed does not match store_id to store_id",
        "d_child: foreign key to_local points to plain, not distributed",
        "plain: foreign key into_shards points to distributed d_parent",
    ]


@pytest.fixture
def before_audit_key(server_conninfo: str) -> Iterator[str]:
    """A database at the schema before 0008, holding audit rows of two stores."""
    name = f"gateway_distribution_{secrets.token_hex(4)}"
    with psycopg.connect(server_conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(server_conninfo, dbname=name)
    earlier = [m for m in catalog_store.available_migrations() if m.name < "0008"]
    asyncio.run(catalog_store.apply_migrations(url, migrations=earlier))
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO deletion_audit"
            " (request_id, partner_id, store_id, total, succeeded, failed, deleted_ids)"
            " SELECT gen_random_uuid(), 1, s, 2, 1, 1, ARRAY[gen_random_uuid()]"
            " FROM generate_series(1, 50) AS g, (VALUES (7), (8)) AS v(s)"
        )
    yield url
    with psycopg.connect(server_conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _audit_state(url: str) -> tuple[object, ...]:
    with psycopg.connect(url) as conn:
        return (
            conn.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = 'deletion_audit'::regclass AND contype IN ('p', 'u')"
            ).fetchall(),
            conn.execute(
                "SELECT indexrelid::regclass::text FROM pg_index"
                " WHERE indrelid = 'deletion_audit'::regclass ORDER BY 1"
            ).fetchall(),
            conn.execute(
                "SELECT store_id, count(DISTINCT request_id) FROM deletion_audit"
                " GROUP BY 1 ORDER BY 1"
            ).fetchall(),
        )


@pytest.mark.parametrize("prebuilt", ["none", "valid", "invalid"])
def test_the_audit_key_migration_keeps_every_row(before_audit_key: str, prebuilt: str) -> None:
    """0008 on a database written by the previous schema: the same rows under the new key,
    whether the operator built the index beforehand (CONCURRENTLY, as documented), or not, or
    a concurrent build of it failed and left it invalid."""
    build = "CREATE UNIQUE INDEX CONCURRENTLY deletion_audit_store_request ON deletion_audit"
    with psycopg.connect(before_audit_key, autocommit=True) as conn:
        if prebuilt == "valid":
            conn.execute(build + " (store_id, request_id)")
        elif prebuilt == "invalid":
            # A concurrent build that fails leaves its index behind, marked invalid.
            with pytest.raises(psycopg.errors.UniqueViolation):
                conn.execute(build + " (store_id)")
            assert conn.execute(
                "SELECT indisvalid FROM pg_index"
                " WHERE indexrelid = 'deletion_audit_store_request'::regclass"
            ).fetchone() == (False,)
    report = asyncio.run(catalog_store.apply_migrations(before_audit_key))
    assert report.applied == [
        m.name for m in catalog_store.available_migrations() if m.name >= "0008"
    ]
    assert _audit_state(before_audit_key) == (
        [("deletion_audit_pkey", "PRIMARY KEY (store_id, request_id)")],
        [("deletion_audit_pkey",), ("deletion_audit_store",)],
        [(7, 50), (8, 50)],
    )
