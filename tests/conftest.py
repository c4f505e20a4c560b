"""Shared fixtures: one real PostgreSQL database per test session, emptied before each test."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, settings

import catalog_store
from gateway.jobs import migrate
from tests.support import Tenant, make_tenant

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

ROOT = Path(__file__).resolve().parent.parent
_TABLES = (
    "all_product_variants, all_products, store_tokens, partner_secrets, stores, partners,"
    " replay_nonces, deletion_audit, deletion_batch_entries, deletion_batch_chunks,"
    " deletion_batches,"
    " procrastinate_jobs, procrastinate_events, procrastinate_periodic_defers,"
    " idempotency_keys, batch_work_totals, rate_allowances"
)


@pytest.fixture(scope="session")
def server_conninfo() -> str:
    """The PostgreSQL server: ``TEST_DATABASE_URL``, else the embedded one under ``.data/``."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        return given
    return catalog_store.embedded_conninfo(ROOT / ".data")


def _with_dbname(conninfo: str, dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(conninfo, dbname=dbname)


@pytest.fixture(scope="session")
def database_url(server_conninfo: str) -> Iterator[str]:
    """A database of this session's own, migrated, dropped at the end."""
    name = f"gateway_test_{secrets.token_hex(4)}"
    with psycopg.connect(server_conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_dbname(server_conninfo, name)
    import asyncio

    asyncio.run(migrate(url, contract=True))
    yield url
    with psycopg.connect(server_conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def _empty_tables(request: pytest.FixtureRequest) -> None:
    if "database_url" not in request.fixturenames:
        return
    url: str = request.getfixturevalue("database_url")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[catalog_store.Pool]:
    p = catalog_store.create_pool(database_url, min_size=1, max_size=4)
    await p.open(wait=True)
    yield p
    await p.close()


@pytest.fixture
async def tenant(pool: catalog_store.Pool) -> Tenant:
    return await make_tenant(pool, products=20)
