"""GET /metrics: requests, latency, authentication failures, clock skew, entries, batches and
the queue, the pool; in one process, and summed over the processes of `serve --workers 2`."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

import catalog_store
from gateway.client import PartnerAuth
from gateway.metrics import observe_clock_skew, render_metrics, sample_pool
from gateway.settings import Settings
from tests.live import serving
from tests.support import (
    DELETIONS,
    NOW_MS,
    Tenant,
    body_of,
    delete,
    gateway_client,
    make_tenant,
    run_with_pool,
    signed_headers,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _get(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def _scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return _samples(response.text)


@pytest.mark.anyio
async def test_a_deletion_is_counted_by_route_status_and_entries(
    database_url: str, tenant: Tenant
) -> None:
    async with gateway_client(database_url) as client:
        before = await _scrape(client)
        response = await delete(client, tenant, {"ids": [*tenant.ids[:2], tenant.ids[0]]})
        assert response.status_code == 200
        after = await _scrape(client)
    route = {"route": DELETIONS, "method": "POST"}
    ok = {**route, "status": "200", "code": ""}
    assert (
        _get(after, "gateway_requests_total", **ok) - _get(before, "gateway_requests_total", **ok)
        == 1
    )
    for outcome, count in (("deleted", 2), ("failed", 1)):
        labels = {"mode": "sync", "outcome": outcome}
        delta = _get(after, "gateway_entries_total", **labels) - _get(
            before, "gateway_entries_total", **labels
        )
        assert delta == count, outcome
    timed = "gateway_request_duration_seconds_count"
    assert _get(after, timed, **route) - _get(before, timed, **route) == 1
    assert _get(after, "gateway_db_pool_size") >= 1
    assert _get(after, "gateway_database_up") == 1


@pytest.mark.anyio
async def test_authentication_failures_by_reason_and_the_clock_skew(
    database_url: str, tenant: Tenant
) -> None:
    """A bad signature and a timestamp 400 s behind are counted by reason; the skew histogram
    sees only the request whose signature verified, 2 s ahead, and neither refused one."""
    body = body_of({"ids": tenant.ids[:1]})
    async with gateway_client(database_url) as client:
        before = await _scrape(client)
        bad = await client.post(
            DELETIONS, content=body, headers=signed_headers(tenant, body=body, secret="nope")
        )
        late = await client.post(
            DELETIONS,
            content=body,
            headers=signed_headers(tenant, body=body, timestamp=NOW_MS - 400_000),
        )
        good = await client.post(
            DELETIONS,
            content=body,
            headers=signed_headers(tenant, body=body, timestamp=NOW_MS + 2_000),
        )
        unknown = await client.get("/no/such/path/42")
        after = await _scrape(client)
    assert (bad.status_code, late.status_code, good.status_code) == (401, 401, 200)
    assert unknown.status_code == 404

    def delta(name: str, **labels: str) -> float:
        return _get(after, name, **labels) - _get(before, name, **labels)

    assert delta("gateway_auth_failures_total", reason="bad_signature") == 1
    assert delta("gateway_auth_failures_total", reason="timestamp_out_of_window") == 1
    assert delta("gateway_auth_failures_total", reason="replayed") == 0
    refused = {"route": DELETIONS, "method": "POST", "status": "401"}
    assert delta("gateway_requests_total", **refused, code="AUTH_002") == 1
    assert delta("gateway_requests_total", **refused, code="AUTH_003") == 1
    # Unknown paths share one label, so a scan cannot blow up the number of series.
    assert delta("gateway_requests_total", route="unmatched", method="GET", status="404",
                 code="ROUTE_001") == 1  # fmt: skip
    skew = "gateway_partner_clock_skew_seconds_bucket"
    assert delta(skew, le="1.0") == 0
    assert delta(skew, le="2.0") == 1  # the good one: 2 s ahead
    assert delta("gateway_partner_clock_skew_seconds_count") == 1


@pytest.mark.anyio
async def test_unauthenticated_timestamps_never_reach_the_clock_skew(
    database_url: str, tenant: Tenant
) -> None:
    """An unknown partner's absurd timestamps (19 nines, 0) and its in-window one move nothing
    in the skew histogram; an authenticated value is clamped to the buckets' range."""
    stranger = Tenant(0, "9" * 22, "psk_nobody", 0, tenant.store_client_id, tenant.token)
    async with gateway_client(database_url) as client:
        before = await _scrape(client)
        for timestamp in ("9" * 19, "0", str(NOW_MS)):
            response = await client.post(
                DELETIONS, content=b"{}", headers=signed_headers(stranger, timestamp=timestamp)
            )
            assert response.status_code == 401
        after = await _scrape(client)
    skew = "gateway_partner_clock_skew_seconds"
    assert _get(after, skew + "_count") == _get(before, skew + "_count")
    observe_clock_skew(1e16)  # as an authenticated request would, were its clock that far off
    clamped = _samples(render_metrics(None).decode())
    assert _get(clamped, skew + "_bucket", le="600.0") == 1 + _get(
        after, skew + "_bucket", le="600.0"
    )


@pytest.mark.anyio
async def test_dispatched_batches_by_status_and_the_queue_depth(
    database_url: str, tenant: Tenant
) -> None:
    async with gateway_client(database_url) as client:
        empty = await _scrape(client)
        response = await delete(client, tenant, {"ids": tenant.ids[:3], "dispatch": True})
        assert response.status_code == 202
        queued = await _scrape(client)
    assert _get(empty, "gateway_batches", status="pending") == 0
    assert _get(empty, "gateway_batch_queue_depth") == 0
    assert _get(queued, "gateway_batches", status="pending") == 1
    assert _get(queued, "gateway_batches", status="succeeded") == 0
    assert _get(queued, "gateway_batch_queue_depth") == 1
    assert _get(queued, "gateway_batch_jobs_running") == 0
    assert _get(queued, "gateway_batch_oldest_unfinished_seconds") >= 0


@pytest.mark.anyio
async def test_metrics_answer_while_the_database_is_down(tenant: Tenant) -> None:
    """The scrape still answers, with gateway_database_up 0, and SYS_001s are counted."""
    from tests.gateway.test_routes import UNREACHABLE

    settings = Settings(pool_min=0, pool_max=2, db_timeout=0.3)
    body = body_of({"ids": tenant.ids[:1]})
    async with gateway_client(UNREACHABLE, settings=settings) as client:
        before = await _scrape(client)
        failed = await client.post(
            DELETIONS, content=body, headers=signed_headers(tenant, body=body)
        )
        after = await _scrape(client)
    assert failed.status_code == 503
    assert _get(after, "gateway_database_up") == 0
    assert ("gateway_batches", frozenset({("status", "pending")})) not in after
    assert _get(after, "gateway_db_errors_total") - _get(before, "gateway_db_errors_total") == 1
    assert _get(after, "gateway_db_pool_errors_total", kind="request") > _get(
        before, "gateway_db_pool_errors_total", kind="request"
    )


@pytest.mark.slow
def test_every_process_of_serve_is_counted_whichever_answers_the_scrape(
    database_url: str, tmp_path: Path
) -> None:
    """With `serve --workers 2`, each scrape shows the sum over both processes."""
    healthz = {"route": "/healthz", "method": "GET", "status": "200", "code": ""}
    with serving(
        database_url, tmp_path, "--workers", "2", GATEWAY_DB_POOL_MIN="3", GATEWAY_DB_POOL_MAX="3"
    ) as server:

        def scrape() -> Samples:
            # A new connection each time: the kernel hands it to either process.
            response = httpx.get(server.url + "/metrics", headers={"connection": "close"})
            assert response.status_code == 200
            return _samples(response.text)

        base = _get(scrape(), "gateway_requests_total", **healthz)
        for _ in range(20):
            httpx.get(server.url + "/healthz", headers={"connection": "close"})
        counts = [_get(scrape(), "gateway_requests_total", **healthz) for _ in range(8)]
        deadline = time.monotonic() + 30
        while (pools := _get(scrape(), "gateway_db_pool_size")) != 6:
            assert time.monotonic() < deadline, pools  # pools fill in the background
            time.sleep(0.2)
    assert counts == [base + 20] * 8
    assert pools == 6  # both processes' pools of 3 connections each


@pytest.mark.slow
def test_the_batch_counters_of_a_with_worker_worker_show_in_the_gateways_metrics(
    database_url: str, tmp_path: Path
) -> None:
    """`serve --with-worker`: the worker writes to serve's metrics folder."""
    tenant = run_with_pool(database_url, lambda p: make_tenant(p, products=25, name="m"))
    auth = PartnerAuth(
        partner_client_id=tenant.partner_client_id,
        partner_secret=tenant.secret,
        store_client_id=tenant.store_client_id,
        store_token=tenant.token,
    )
    with (
        serving(database_url, tmp_path, "--with-worker", GATEWAY_BATCH_CHUNK_SIZE="10") as server,
        httpx.Client(base_url=server.url, auth=auth, timeout=30) as client,
    ):
        sent = client.post(DELETIONS, json={"ids": [*tenant.ids, tenant.ids[0]], "dispatch": True})
        assert sent.status_code == 202, sent.text
        batch_path = f"{DELETIONS}/{sent.json()['data']['batchId']}"
        deadline = time.monotonic() + 60
        while client.get(batch_path).json()["data"]["status"] != "completed":
            assert time.monotonic() < deadline, "the batch did not finish"
            time.sleep(0.1)
        samples = _samples(httpx.get(server.url + "/metrics").text)
    assert _get(samples, "gateway_entries_total", mode="batch", outcome="deleted") == 25
    assert _get(samples, "gateway_entries_total", mode="batch", outcome="failed") == 1
    assert _get(samples, "gateway_batch_chunks_total") == 3
    assert _get(samples, "gateway_batches", status="completed") == 1
    assert _get(samples, "gateway_batch_queue_depth") == 0


@pytest.mark.anyio
async def test_dry_runs_and_idempotent_replays_count_no_entries(
    database_url: str, tenant: Tenant
) -> None:
    """Only entries really deleted are counted: not a dry run's, not a replayed answer's."""
    body = body_of({"ids": tenant.ids[:2]})
    async with gateway_client(database_url) as client:
        before = await _scrape(client)
        dry = await delete(client, tenant, {"ids": tenant.ids[:2], "dryRun": True})
        sent = []
        for n in (1, 2):
            headers = signed_headers(tenant, body=body, timestamp=NOW_MS + n)
            headers["idempotency-key"] = "once"
            sent.append(await client.post(DELETIONS, content=body, headers=headers))
        after = await _scrape(client)
    assert dry.status_code == 200 and dry.json()["meta"]["dryRun"] is True
    assert sent[1].headers["idempotent-replayed"] == "true"
    labels = {"mode": "sync", "outcome": "deleted"}
    delta = _get(after, "gateway_entries_total", **labels)
    assert delta - _get(before, "gateway_entries_total", **labels) == 2


@pytest.mark.anyio
async def test_the_pool_waiting_gauge_counts_only_requests_waiting_now(database_url: str) -> None:
    """gateway_db_pool_waiting: requests that gave up waiting (SYS_001) leave the gauge at
    once, though no connection came back since (a database outage)."""
    pool = catalog_store.create_pool(database_url, min_size=1, max_size=1, timeout=0.2)
    await pool.open(wait=True)
    try:
        async with catalog_store.connection(pool):  # the only connection, held throughout

            async def borrow() -> None:
                with pytest.raises(catalog_store.StoreUnavailable):
                    async with catalog_store.connection(pool):
                        pass

            async with anyio.create_task_group() as group:
                for _ in range(5):
                    group.start_soon(borrow)
                await anyio.sleep(0.1)
                sample_pool(pool)
                while_waiting = REGISTRY.get_sample_value("gateway_db_pool_waiting")
            sample_pool(pool)
            after = REGISTRY.get_sample_value("gateway_db_pool_waiting")
    finally:
        await pool.close()
    assert (while_waiting, after) == (5, 0)


def _writes_environ(tree: ast.AST) -> bool:
    """``os.environ[...] = ...``, ``del os.environ[...]`` or a call of one of its mutators."""
    for node in ast.walk(tree):
        target: ast.expr | None = None
        if isinstance(node, ast.Subscript) and not isinstance(node.ctx, ast.Load):
            target = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in {"pop", "setdefault", "update", "clear", "popitem"}:
                target = node.func.value
        if isinstance(target, ast.Attribute) and target.attr == "environ":
            return True
    return False


def test_only_the_command_line_edges_set_the_environment_prometheus_client_reads() -> None:
    """gateway.metrics edits no environment at import: serve's metrics folder (serving.py) and
    serve's own command set it, before prometheus-client is imported."""
    root = Path(__file__).resolve().parents[2]
    writers = sorted(
        str(path.relative_to(root))
        for package in ("gateway", "catalog_store", "signing")
        for path in (root / package).rglob("*.py")
        if _writes_environ(ast.parse(path.read_text()))
    )
    assert writers == ["gateway/cli/serve.py", "gateway/serving.py"]
