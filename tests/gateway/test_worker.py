"""Dispatched batches with real processes: a gateway, workers, a SIGKILL in the middle."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import catalog_store
from tests.live import BIN, Server, clean_env, partner_client, serving
from tests.support import DELETIONS, Tenant, make_tenant, run_with_pool

FAST = {
    "GATEWAY_BATCH_CHUNK_SIZE": "10",
    "GATEWAY_WORKER_HEARTBEAT": "0.2",
    "GATEWAY_WORKER_STALLED_AFTER": "1",
    "GATEWAY_WORKER_UPKEEP_INTERVAL": "0.2",
}


@pytest.fixture
def gateway(database_url: str, tmp_path: Path) -> Iterator[Server]:
    # The workers' settings too: /metrics counts a worker alive by GATEWAY_WORKER_STALLED_AFTER.
    with serving(database_url, tmp_path, **FAST) as server:
        yield server


def _metrics(server: Server) -> dict[str, float]:
    """The unlabelled samples and the batch entries of the gateway's /metrics."""
    response = httpx.get(server.url + "/metrics", timeout=10)
    assert response.status_code == 200
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if not sample.labels:
                found[sample.name] = sample.value
            elif sample.labels.get("mode") == "batch":
                found[f"{sample.name}:{sample.labels['outcome']}"] = sample.value
    return found


@pytest.fixture
def workers(database_url: str, tmp_path: Path) -> Iterator[Any]:
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        log = (tmp_path / f"worker-{len(started)}.log").open("w")
        process = subprocess.Popen(
            [str(BIN), "worker"], env=clean_env(database_url, **FAST), stdout=log, stderr=log
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _tenant(database_url: str, products: int) -> Tenant:
    return run_with_pool(database_url, lambda p: make_tenant(p, products=products, name="batch"))


def _status(client: httpx.Client, batch_id: str, query: str = "") -> dict[str, Any]:
    response = client.get(f"{DELETIONS}/{batch_id}" + (f"?{query}" if query else ""))
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _wait(client: httpx.Client, batch_id: str, done: Any, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        data = _status(client, batch_id)
        if done(data):
            return data
        assert time.monotonic() < deadline, data
        time.sleep(0.02)


def _all_results(client: httpx.Client, batch_id: str) -> tuple[list[str], list[Any]]:
    deleted: list[str] = []
    errors: list[Any] = []
    query = "limit=1000"
    while True:
        page = _status(client, batch_id, query)
        deleted += [item["id"] for item in page["successItems"]]
        errors += page["errors"]
        if page["nextCursor"] is None:
            return deleted, errors
        query = f"limit=1000&cursor={page['nextCursor']}"


def _remaining(database_url: str, tenant: Tenant) -> tuple[int, int]:
    return run_with_pool(
        database_url, lambda p: catalog_store.count_products(p, store_id=tenant.store_id)
    )


def test_a_worker_killed_mid_batch_is_finished_by_another_exactly(
    database_url: str, gateway: Server, workers: Any
) -> None:
    """SIGKILL in the middle; the gateway's /metrics shows no worker alive and the job's
    heartbeat stale; a second worker takes the stalled job over; the summary is exact, the
    products gone are exactly those reported deleted, and /metrics counts both standalone
    workers' chunks and entries."""
    tenant = _tenant(database_url, 3000)
    with partner_client(gateway, tenant, timeout=30) as client:
        accepted = client.post(
            DELETIONS,
            json={
                "ids": tenant.ids[:2990] + ["nope"] * 2,
                "externalIds": tenant.external_ids[2990:] + ["gone"],
            },
        )
        assert accepted.status_code == 202, accepted.text
        batch_id = accepted.json()["data"]["batchId"]
        first = workers()
        seen = _wait(client, batch_id, lambda d: d["progress"]["processed"] > 0)
        working = _metrics(gateway)
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = time.monotonic()
        assert seen["progress"]["processed"] < seen["progress"]["total"] == 3003
        stalled = _status(client, batch_id)
        assert stalled["status"] == "processing"
        # No worker runs upkeep now; the gateway's /metrics shows the job's worker is gone.
        while (dead := _metrics(gateway))["gateway_workers_alive"] != 0 or dead[
            "gateway_batch_oldest_heartbeat_seconds"
        ] <= 1:
            assert time.monotonic() - killed_at < 10, dead
            time.sleep(0.1)
        workers()
        final = _wait(client, batch_id, lambda d: d["status"] in ("succeeded", "completed"))
        deleted, errors = _all_results(client, batch_id)
        done = _metrics(gateway)
    assert working["gateway_workers_alive"] == 1
    assert working["gateway_batch_jobs_running"] == 1
    assert working["gateway_batch_oldest_heartbeat_seconds"] < 1  # beats every 0.2 s
    assert dead["gateway_batch_jobs_running"] == 1  # looks running; its heartbeat says not
    # Both standalone workers' work, counted once: 301 chunks of at most 10 entries, the
    # chunk the SIGKILL cut short not among them.
    assert done["gateway_batch_chunks_total"] == 301
    assert done["gateway_entries_total:deleted"] == 3000
    assert done["gateway_entries_total:failed"] == 3
    assert done["gateway_workers_alive"] == 1
    assert done["gateway_batch_oldest_heartbeat_seconds"] == 0
    assert final["status"] == "completed"
    assert final["progress"] == {"processed": 3003, "total": 3003}
    assert final["summary"] == {"total": 3003, "succeeded": 3000, "failed": 3}
    assert sorted(deleted) == sorted(tenant.ids) and len(deleted) == len(set(deleted))
    assert [(e["code"], e.get("id") or e.get("externalId")) for e in errors] == [
        ("PRD_017", "nope"),
        ("PRD_017", "nope"),
        ("PRD_015", "gone"),
    ]
    assert _remaining(database_url, tenant) == (0, 0)


def test_two_workers_and_several_batches_never_process_an_entry_twice(
    database_url: str, gateway: Server, workers: Any
) -> None:
    tenant = _tenant(database_url, 1500)
    with partner_client(gateway, tenant, timeout=30) as client:
        batch_ids = [
            client.post(
                DELETIONS, json={"ids": tenant.ids[start : start + 900], "dispatch": True}
            ).json()["data"]["batchId"]
            for start in (0, 300, 600)
        ]
        workers()
        workers()
        finals = [
            _wait(client, b, lambda d: d["status"] in ("succeeded", "completed")) for b in batch_ids
        ]
        results = [_all_results(client, b) for b in batch_ids]
    deleted = [product for ids, _ in results for product in ids]
    assert sorted(deleted) == sorted(tenant.ids[:1500])  # each product reported deleted once
    for final, (ids, errors) in zip(finals, results, strict=True):
        summary = final["summary"]
        assert summary["total"] == 900 == summary["succeeded"] + summary["failed"]
        assert (len(ids), len(errors)) == (summary["succeeded"], summary["failed"])
        assert {e["code"] for e in errors} <= {"PRD_014"}
    assert _remaining(database_url, tenant) == (0, 0)


def test_a_newcomer_dispatches_from_a_seed_file_and_watches_it_finish(
    database_url: str, gateway: Server, workers: Any, tmp_path: Path
) -> None:
    """`products seed --out`, `call --ids-file` (202), then `call --batch` until it is done."""
    import json

    from tests.live import cli

    tenant = _tenant(database_url, 0)
    seeded = tmp_path / "products.jsonl"
    made = cli(
        database_url,
        "products",
        "seed",
        "--store",
        tenant.store_client_id,
        "--count",
        "2500",
        "--out",
        str(seeded),
    )
    assert made.returncode == 0, made.stderr
    credentials = {
        "GATEWAY_URL": gateway.url,
        "PARTNER_CLIENT_ID": tenant.partner_client_id,
        "PARTNER_SECRET": tenant.secret,
        "STORE_CLIENT_ID": tenant.store_client_id,
        "STORE_TOKEN": tenant.token,
    }
    sent = cli(database_url, "call", "--ids-file", str(seeded), **credentials)
    reply = json.loads(sent.stdout)
    assert sent.returncode == 0 and reply["status"] == 202, sent.stdout + sent.stderr
    batch_id = reply["body"]["data"]["batchId"]
    workers()
    deadline = time.monotonic() + 90
    while True:
        watched = json.loads(cli(database_url, "call", "--batch", batch_id, **credentials).stdout)
        if watched["body"]["data"]["status"] == "succeeded":
            break
        assert time.monotonic() < deadline, watched
        time.sleep(0.2)
    assert watched["body"]["data"]["summary"] == {"total": 2500, "succeeded": 2500, "failed": 0}
    assert _remaining(database_url, tenant) == (0, 0)
