"""Resident memory of the gateway and a worker around one 100,000-entry dispatched batch.

    .venv/bin/python bench/batch_memory.py        (or `make bench`)

Starts the embedded PostgreSQL (or uses DATABASE_URL) in a fresh database, a gateway and a
worker as real processes, seeds 100,000 products, sends one signed 100,000-entry deletion,
waits for the batch to succeed, and reads each process's resident memory (VmRSS) and its peak
(VmHWM) from /proc before and after, summed with its child processes'. Writes
bench/results-batch-memory.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import create_tenant  # noqa: E402
from bench.run import fresh_database, tree_memory_kib  # noqa: E402
from tests.live import BIN, clean_env, free_port  # noqa: E402

DELETIONS = "/api/v1/partner/stores/products/deletions"
ENTRIES = 100_000


def _tree_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM summed over a process and its descendants: with `--workers N`, `serve`
    supervises the uvicorn processes that hold the app (gateway/serving.py)."""
    memory = tree_memory_kib(pid)
    return {"VmRSS": memory["VmRSS"], "VmHWM": memory["VmHWM"]}


def main() -> None:
    with fresh_database() as url:
        _measure(url)


def _measure(url: str) -> None:
    """Seed, start a gateway and a worker, dispatch one batch and read the memory, in the
    database at ``url``; writes bench/results-batch-memory.json."""
    folder = Path(tempfile.mkdtemp())
    processes: list[subprocess.Popen[bytes]] = []
    try:
        creds, ids = asyncio.run(create_tenant(url, "bench", products=ENTRIES))
        port = free_port()
        env = clean_env(url, GATEWAY_DATA_DIR=str(folder), GATEWAY_LOG_LEVEL="warning")
        gateway = subprocess.Popen(
            [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(folder / "gateway.log").open("w"),
        )
        worker = subprocess.Popen(
            [str(BIN), "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(folder / "worker.log").open("w"),
        )
        processes += [gateway, worker]
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        time.sleep(2)  # let both settle (pools opened, worker listening)
        auth = creds.partner_auth()
        with httpx.Client(base_url=base, auth=auth, timeout=120) as client:
            client.get("/healthz")
            before = {"gateway": _tree_kib(gateway.pid), "worker": _tree_kib(worker.pid)}
            body = json.dumps({"ids": ids}, separators=(",", ":")).encode()
            started = time.monotonic()
            accepted = client.post(
                DELETIONS, content=body, headers={"content-type": "application/json"}
            )
            accepted_after = time.monotonic() - started
            assert accepted.status_code == 202, accepted.text
            batch_id = accepted.json()["data"]["batchId"]
            peak_during = {"gateway": 0, "worker": 0}
            while True:
                for label, process in (("gateway", gateway), ("worker", worker)):
                    peak_during[label] = max(peak_during[label], _tree_kib(process.pid)["VmRSS"])
                status = client.get(f"{DELETIONS}/{batch_id}?limit=1").json()["data"]
                if status["status"] in ("succeeded", "completed"):
                    break
                time.sleep(0.2)
            finished_after = time.monotonic() - started
            after = {"gateway": _tree_kib(gateway.pid), "worker": _tree_kib(worker.pid)}
        result = {
            "machine": {
                "cores": os.cpu_count(),
                "memory_gib": round(
                    os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1
                ),
                "python": platform.python_version(),
            },
            "entries": ENTRIES,
            "body_bytes": len(body),
            "summary": status["summary"],
            "seconds_to_202": round(accepted_after, 3),
            "seconds_to_finished": round(finished_after, 3),
            "entries_per_second": round(ENTRIES / finished_after),
            "rss_kib": {
                label: {
                    "baseline": before[label]["VmRSS"],
                    "peak": max(after[label]["VmHWM"], peak_during[label]),
                    "after": after[label]["VmRSS"],
                    "peak_over_baseline": max(after[label]["VmHWM"], peak_during[label])
                    - before[label]["VmRSS"],
                }
                for label in ("gateway", "worker")
            },
        }
        out = ROOT / "bench" / "results-batch-memory.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
