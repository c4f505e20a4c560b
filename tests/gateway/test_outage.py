"""A database outage under load, with real processes: `serve --workers 2` on a PostgreSQL server
of the test's own, which the test stops and starts again."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from gateway.jobs import migrate
from tests.live import serving
from tests.load import DeletionLoad, wait_for
from tests.own_postgres import OwnPostgres, own_postgres
from tests.support import Tenant, assert_error, make_tenant, run_with_pool

pytestmark = pytest.mark.slow

SYS_001_HINT = (
    "The database cannot be reached; nothing was changed. Retry after Retry-After seconds"
)
STALLED_HINT = (
    "The database did not answer in time; nothing was changed. Retry after Retry-After seconds"
)


def _state(pg: OwnPostgres, tenant: Tenant) -> tuple[set[str], set[str]]:
    """The products still there, and the request ids of the audit rows."""
    with psycopg.connect(pg.conninfo) as conn:
        left = conn.execute(
            "SELECT id::text FROM products WHERE store_id = %s", (tenant.store_id,)
        ).fetchall()
        audited = conn.execute("SELECT request_id::text FROM deletion_audit").fetchall()
    return {row[0] for row in left}, {row[0] for row in audited}


def test_a_database_outage_answers_sys_001_quickly_and_service_resumes_by_itself(
    tmp_path: Path,
) -> None:
    """Stop PostgreSQL under load: SYS_001 503 with Retry-After within 2 s, /readyz 503, nothing
    half-done; start it again: the same gateway processes serve again, without a restart."""
    with own_postgres() as pg:
        asyncio.run(migrate(pg.conninfo))
        tenant = run_with_pool(
            pg.conninfo, lambda p: make_tenant(p, products=6000, variants=0, name="outage")
        )
        with (
            serving(pg.conninfo, tmp_path, "--workers", "2", GATEWAY_RETRY_AFTER="3") as server,
            DeletionLoad(server, tenant, tenant.ids, timeout=10) as load,
        ):
            wait_for(lambda: load.count(200) >= 20, "deletions before the outage")

            pg.stop()
            stopped = time.monotonic()
            ready = httpx.get(server.url + "/readyz", timeout=10)
            wait_for(lambda: load.count(503, after=stopped) >= 20, "SYS_001 during the outage")
            ready_again_too_soon = httpx.get(server.url + "/readyz", timeout=10)

            pg.start()
            started = time.monotonic()
            wait_for(lambda: load.count(200, after=started) >= 20, "deletions after the outage")
            ready_after = httpx.get(server.url + "/readyz", timeout=10)
            assert server.process.poll() is None  # the very same serve, never restarted

        sent = list(load.sent)
        left, audited = _state(pg, tenant)

    for response in (ready, ready_again_too_soon):
        assert_error(response, 503, "SYS_001", "Service temporarily unavailable", hint=SYS_001_HINT)
        assert response.headers["retry-after"] == "3"
    assert ready_after.status_code == 200 and ready_after.json()["message"] == "Ready"

    assert [s.error for s in sent if s.response is None] == []  # no hang, no dropped answer
    outage_answers = 0
    for s in sent:
        assert s.response is not None
        request_id = s.response.headers["x-request-id"]
        if s.response.status_code == 200:
            # Done whole: both products gone, and the audit row of this very request.
            assert s.response.json()["data"]["summary"] == {
                "total": 2,
                "succeeded": 2,
                "failed": 0,
            }
            assert not set(s.ids) & left
            assert request_id in audited
            continue
        got = assert_error(
            s.response,
            503,
            "SYS_001",
            "Service temporarily unavailable",
            context={"outcome": "unchanged"},
        )
        # Refused by a stopping server, or (a slow machine) cut at the deadline while the
        # server was going down: both say nothing was changed, in their own words.
        assert got["error"]["details"]["hint"] in {SYS_001_HINT, STALLED_HINT}
        assert s.response.headers["retry-after"] == "3"
        # Not done at all: both products still there, and no audit row.
        assert set(s.ids) <= left, s.ids
        assert request_id not in audited
        assert s.seconds < 2.0, s.seconds
        outage_answers += 1
    assert outage_answers >= 20


def test_own_postgres_is_not_the_shared_one(server_conninfo: str) -> None:
    """The outage test stops a server of its own: its address is not the shared server's."""
    with own_postgres() as pg:
        assert pg.conninfo != server_conninfo
        with psycopg.connect(pg.conninfo) as conn:
            mine = conn.execute("SHOW data_directory").fetchone()
        with psycopg.connect(server_conninfo) as conn:
            shared = conn.execute("SHOW data_directory").fetchone()
        assert mine is not None and shared is not None and mine != shared
        assert str(pg.data) in str(mine[0])
