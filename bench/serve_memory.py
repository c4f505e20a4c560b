"""Resident memory of the `serve` tree after a load run, measured as `make bench` measures it.

    .venv/bin/python bench/serve_memory.py [--bin PATH] [--seconds S] [-- SERVE_ARGS...]

A short stand-in for the memory line of `make bench` (docs/performance.md), cheap enough for a
shared machine: a fresh database on the embedded PostgreSQL (or DATABASE_URL's server), one
`partner-gateway serve` (``--bin`` picks the executable, to measure another checkout), then
32 connections of signed 1-entry deletes and 8 of 1,000-entry deletions for ``--seconds``
each, and the sum of VmRSS over `serve` and its descendants (bench/run.py's
``tree_memory_kib``), with the sum of their PSS beside it. No batch worker runs: the target
leaves it out. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import create_tenant  # noqa: E402
from bench.run import fresh_database, process_tree, tree_memory_kib  # noqa: E402
from gateway.client import PartnerAuth  # noqa: E402
from tests.live import BIN, clean_env, free_port  # noqa: E402

DELETIONS = "/api/v1/partner/stores/products/deletions"
PRODUCTS = 200_000


async def _load(base: str, auth: PartnerAuth, ids: list[str], seconds: float) -> dict[str, int]:
    """1-entry deletes on 32 connections, then 1,000-entry ones on 8, ``seconds`` each."""
    answered: dict[str, int] = {}
    left = itertools.cycle(ids)  # ids already deleted are answered PRD_014: still a request

    async def sender(client: httpx.AsyncClient, entries: int, until: float) -> None:
        while time.monotonic() < until:
            batch = [next(left) for _ in range(entries)]
            response = await client.post(DELETIONS, json={"ids": batch})
            key = f"{entries}:{response.status_code}"
            answered[key] = answered.get(key, 0) + 1

    for entries, connections in ((1, 32), (1000, 8)):
        limits = httpx.Limits(max_connections=connections)
        async with httpx.AsyncClient(base_url=base, auth=auth, limits=limits, timeout=60) as client:
            until = time.monotonic() + seconds
            await asyncio.gather(*(sender(client, entries, until) for _ in range(connections)))
    return answered


def _pss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=str(BIN), help="the partner-gateway to measure")
    parser.add_argument("--seconds", type=float, default=10.0, help="of each load phase (10)")
    parser.add_argument("serve_args", nargs="*", help="more arguments for serve")
    args = parser.parse_args()
    with fresh_database() as url:
        _measure(url, args)


def _measure(url: str, args: argparse.Namespace) -> None:
    """Seed, serve, load and read the memory, in the database at ``url``."""
    folder = Path(tempfile.mkdtemp(prefix="serve-memory-"))
    gateway: subprocess.Popen[bytes] | None = None
    try:
        creds, ids = asyncio.run(create_tenant(url, "memory", products=PRODUCTS))
        auth = creds.partner_auth()
        port = free_port()
        env = clean_env(
            url,
            GATEWAY_DATA_DIR=str(folder),
            GATEWAY_LOG_LEVEL="warning",
            GATEWAY_RATE_LIMIT_REQUESTS="0",
        )
        gateway = subprocess.Popen(
            [args.bin, "serve", "--host", "127.0.0.1", "--port", str(port), *args.serve_args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(folder / "gateway.log").open("w"),
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start: {folder / 'gateway.log'}")
            time.sleep(0.1)
        answered = asyncio.run(_load(base, auth, ids, args.seconds))
        time.sleep(1)
        memory = tree_memory_kib(gateway.pid)
        pss = sum(_pss_kib(pid) for pid in process_tree(gateway.pid))
        result: dict[str, Any] = {
            "bin": args.bin,
            "serveArgs": args.serve_args,
            "answered": answered,
            "processes": len(memory["processes"]),
            "eachProcessRssKiB": memory["processes"],
            "rssKiB": memory["VmRSS"],
            "rssMiB": round(memory["VmRSS"] / 1024, 1),
            "rssMB": round(memory["VmRSS"] * 1024 / 1e6, 1),
            "pssMB": round(pss * 1024 / 1e6, 1),
            "peakSumMB": round(memory["VmHWM"] * 1024 / 1e6, 1),
        }
        print(json.dumps(result, indent=2))
    finally:
        if gateway is not None:
            gateway.send_signal(signal.SIGTERM)
            try:
                gateway.wait(timeout=60)
            except subprocess.TimeoutExpired:
                gateway.kill()


if __name__ == "__main__":
    main()
