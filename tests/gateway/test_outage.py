"""A database outage under load, with real processes: `serve --workers 2` on a PostgreSQL server
of the test's own, which the test stops and starts again."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from gateway.client import PartnerAuth
from gateway.jobs import migrate
from tests.live import Server, serving
from tests.own_postgres import OwnPostgres, own_postgres
from tests.support import DELETIONS, Tenant, assert_error, make_tenant, run_with_pool

pytestmark = pytest.mark.slow

SYS_001_HINT = (
    "The database cannot be reached; nothing was changed. Retry after Retry-After seconds"
)
STALLED_HINT = (
    "The database did not answer in time; nothing was changed. Retry after Retry-After seconds"
)


@dataclass
class Sent:
    ids: list[str]
    response: httpx.Response | None
    seconds: float
    started: float
    error: str = ""


class Load:
    """Threads that each send one signed deletion after another, each of products of its own."""

    def __init__(self, server: Server, tenant: Tenant, threads: int = 4) -> None:
        self._server, self._tenant = server, tenant
        self._ids = iter(tenant.ids)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.sent: list[Sent] = []
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _next_ids(self) -> list[str]:
        with self._lock:
            return list(itertools.islice(self._ids, 2))

    def _run(self) -> None:
        auth = PartnerAuth(
            partner_client_id=self._tenant.partner_client_id,
            partner_secret=self._tenant.secret,
            store_client_id=self._tenant.store_client_id,
            store_token=self._tenant.token,
        )
        # A hang would show as a timeout here, and fail the test.
        with httpx.Client(base_url=self._server.url, auth=auth, timeout=10) as client:
            while not self._stop.is_set():
                ids = self._next_ids()
                assert ids, "the test ran out of products"
                started = time.monotonic()
                try:
                    response: httpx.Response | None = client.post(DELETIONS, json={"ids": ids})
                    error = ""
                except httpx.HTTPError as exc:
                    response, error = None, repr(exc)
                sent = Sent(ids, response, time.monotonic() - started, started, error)
                with self._lock:
                    self.sent.append(sent)
                time.sleep(0.01)

    def count(self, status: int, after: float = 0.0) -> int:
        with self._lock:
            return sum(
                1
                for s in self.sent
                if s.response is not None
                and s.response.status_code == status
                and s.started >= after
            )


def _wait_for(check: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


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
            Load(server, tenant) as load,
        ):
            _wait_for(lambda: load.count(200) >= 20, "deletions before the outage")

            pg.stop()
            stopped = time.monotonic()
            ready = httpx.get(server.url + "/readyz", timeout=10)
            _wait_for(lambda: load.count(503, after=stopped) >= 20, "SYS_001 during the outage")
            ready_again_too_soon = httpx.get(server.url + "/readyz", timeout=10)

            pg.start()
            started = time.monotonic()
            _wait_for(lambda: load.count(200, after=started) >= 20, "deletions after the outage")
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
