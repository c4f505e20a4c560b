"""`make bench`: the gateway under signed wrk load, beside a bare floor and the database alone.

    .venv/bin/python -m bench.run              (or `make bench`; docs/performance.md)
    .venv/bin/python -m bench.run --profile    (or `make bench-profile`: py-spy on the gateway)

Starts the embedded PostgreSQL (or uses DATABASE_URL) in a fresh database, a gateway
(`partner-gateway serve`), the floor (bench/floor.py) and, for the dispatched batch, a worker,
all as real processes on 127.0.0.1. Every scenario runs against the gateway, the floor and the
database alone, on a catalog brought back to its size (and vacuumed) before each run. Prints
one table and writes bench/results.json. The variables of docs/performance.md scale it down.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

import catalog_store
from bench.floor import FLOOR_PATH
from bench.load import (
    DELETIONS,
    Catalog,
    Credentials,
    RunResult,
    create_tenant,
    run_database_alone,
    run_wrk,
    write_floor_requests,
    write_signed_requests,
)
from bench.profile import profile_gateway
from tests.live import BIN, clean_env, free_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"


def _env_number(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


DURATION = _env_number("BENCH_DURATION", 5)
CONNECTIONS = int(_env_number("BENCH_CONNECTIONS", 32))
BATCH_CONNECTIONS = int(_env_number("BENCH_BATCH_CONNECTIONS", 8))
CATALOG = int(_env_number("BENCH_CATALOG", 1_000_000))
SMALL_CATALOG = int(_env_number("BENCH_SMALL_CATALOG", 10_000))
DISPATCH_ENTRIES = int(_env_number("BENCH_DISPATCH_ENTRIES", 100_000))
MAX_ENTRIES = int(_env_number("BENCH_MAX_ENTRIES", 100_000))
ROUNDS = max(1, int(_env_number("BENCH_ROUNDS", 3)))
PROFILE_ENTRIES = int(_env_number("BENCH_PROFILE_ENTRIES", 1))
#: The gateway's rate limits during the bench: on, above its load. The bench's one partner sends
#: a few thousand requests per second at most, against 100,000/s here; it dispatches one batch
#: at a time, against the default of 4 open at once.
RATE_LIMIT_REQUESTS, RATE_LIMIT_WINDOW, RATE_LIMIT_BATCHES = 1_000_000, 10, 4


def _machine(url: str) -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.partition(":")[2].strip()
            break
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    # wrk -v prints its version and exits 1.
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()
    return {
        "cores": os.cpu_count(),
        "memoryGiB": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "cpu": model,
        "loadAverageAtStart": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "postgresql": row[0] if row else "",
        "wrk": wrk[0].split(" Copyright")[0] if wrk else "",
    }


def _rss_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants: with `--workers N`, `serve` supervises N uvicorn processes
    (gateway/serving.py), so the gateway's memory is the whole tree's (with 1, `serve` alone)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # The command name, in parentheses, may hold spaces: the fields follow it.
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    tree = [pid]
    for member in tree:
        tree += [child for child, parent in parents.items() if parent == member]
    return tree


def tree_memory_kib(pid: int) -> dict[str, Any]:
    """Resident memory of a process tree: its sum now, the sum of peaks, and each process's."""
    each = {member: _rss_kib(member) for member in process_tree(pid)}
    return {
        "VmRSS": sum(m["VmRSS"] for m in each.values()),
        "VmHWM": sum(m["VmHWM"] for m in each.values()),
        "processes": {str(k): v["VmRSS"] for k, v in each.items()},
    }


@contextmanager
def fresh_database() -> Iterator[str]:
    server = os.environ.get("DATABASE_URL") or catalog_store.embedded_conninfo(ROOT / ".data")
    name = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield psycopg.conninfo.make_conninfo(server, dbname=name)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


class Stack:
    """The processes under test, each on its own free loopback port, stopped at the end."""

    def __init__(self, url: str, folder: Path, creds: Credentials) -> None:
        self.url, self.folder, self.creds = url, folder, creds
        self.processes: list[subprocess.Popen[bytes]] = []
        # The rate limits are on, as a deployment runs them, so that the figures include their
        # cost; the request rate at a value far above this load (its default, 1,000 per 10 s
        # per partner, would refuse most of it). Everything else is as `serve` starts.
        self.env = clean_env(
            url,
            GATEWAY_DATA_DIR=str(folder / "data"),
            GATEWAY_RATE_LIMIT_REQUESTS=str(RATE_LIMIT_REQUESTS),
            GATEWAY_RATE_LIMIT_WINDOW=str(RATE_LIMIT_WINDOW),
            GATEWAY_RATE_LIMIT_BATCHES=str(RATE_LIMIT_BATCHES),
        )

    def _start(
        self, label: str, command: list[str], env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / f"{label}.log").open("wb"),
        )
        self.processes.append(process)
        return process

    def _wait_ready(self, base: str, probe: str, method: str = "GET") -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.request(method, base + probe, timeout=2)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                    raise RuntimeError(f"{base} did not start; logs in {self.folder}") from None
                time.sleep(0.1)

    def start_gateway(self) -> str:
        port = free_port()
        self.gateway = self._start(
            "gateway",
            [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(port)],
            self.env,
        )
        self.gateway_url = f"http://127.0.0.1:{port}"
        self._wait_ready(self.gateway_url, "/readyz")
        return self.gateway_url

    def start_floor(self) -> str:
        port = free_port()
        env = {
            **self.env,
            "BENCH_FLOOR_DATABASE_URL": self.url,
            "BENCH_FLOOR_STORE_ID": str(self.creds.store_id),
        }
        self._start(
            "floor",
            [sys.executable, str(ROOT / "bench" / "floor.py"), "--port", str(port)],
            env,
        )
        self.floor_url = f"http://127.0.0.1:{port}"
        self._wait_ready(self.floor_url, FLOOR_PATH)
        return self.floor_url

    def start_worker(self) -> None:
        self._start("worker", [str(BIN), "worker"], self.env)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def bench_stack(prefix: str) -> Iterator[tuple[Stack, Catalog]]:
    """A fresh database with the bench's partner, store and token, its catalog, and a Stack to
    start processes in; everything stopped, dropped and removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    with fresh_database() as url:
        creds, _ = asyncio.run(create_tenant(url, "bench"))
        stack = Stack(url, folder, creds)
        catalog = Catalog(url, creds.store_id)
        try:
            yield stack, catalog
        finally:
            catalog.close()
            stack.stop()
    shutil.rmtree(folder, ignore_errors=True)


def _batches(catalog: Catalog, entries: int, size: int) -> list[list[str]]:
    """As many requests as one run may use: capped by BENCH_MAX_ENTRIES and by half the
    catalog, so the catalog never shrinks below half its size during a run."""
    count = max(1, min(MAX_ENTRIES, size // 2) // entries)
    ids = catalog.sample(count * entries)
    return [ids[i : i + entries] for i in range(0, len(ids), entries)]


def _run_once(
    stack: Stack, catalog: Catalog, target: str, size: int, entries: int, connections: int
) -> RunResult:
    """One run of one target, on fresh ids of a catalog brought back to ``size``."""
    folder = stack.folder
    catalog.top_up(size)
    batches = _batches(catalog, entries, size)
    try:
        if target == "gateway":
            write_signed_requests(folder / "requests.txt", stack.creds, batches)
            return run_wrk(
                stack.gateway_url + DELETIONS,
                folder / "requests.txt",
                target=target,
                entries=entries,
                connections=connections,
                duration=DURATION,
                expect='"failed":0}',
            )
        if target == "floor":
            write_floor_requests(folder / "requests.txt", FLOOR_PATH, batches)
            return run_wrk(
                stack.floor_url + FLOOR_PATH,
                folder / "requests.txt",
                target=target,
                entries=entries,
                connections=connections,
                duration=DURATION,
            )
        return run_database_alone(stack.url, stack.creds.store_id, batches, duration=DURATION)
    finally:
        (folder / "requests.txt").unlink(missing_ok=True)


TARGETS = ("gateway", "floor", "database")


def _measure(
    stack: Stack, catalog: Catalog, size: int, entries: int, connections: int
) -> list[RunResult]:
    """One scenario on each target, BENCH_ROUNDS times in turn (gateway, floor, database,
    gateway, ...), so that a burst of noise from elsewhere on the machine hits every target
    alike; each target keeps its run of median rate, with the median p50 and median p99 of
    its rounds (a p99 of one run is at the mercy of one burst)."""
    rounds: dict[str, list[RunResult]] = {target: [] for target in TARGETS}
    for _ in range(ROUNDS):
        for target in TARGETS:
            result = _run_once(stack, catalog, target, size, entries, connections)
            print(
                f"  {target:<9} {result.requests_per_second:>9.1f} req/s"
                f" {result.entries_per_second:>10.1f} entries/s"
                f"  p50 {result.p50_ms:>8.2f} ms  p99 {result.p99_ms:>8.2f} ms",
                flush=True,
            )
            rounds[target].append(result)
    kept = []
    for target in TARGETS:
        ordered = sorted(rounds[target], key=lambda r: r.requests_per_second)
        median = ordered[len(ordered) // 2]
        median.round_rates = [round(r.entries_per_second, 1) for r in rounds[target]]
        median.round_p99s = [round(r.p99_ms, 2) for r in rounds[target]]
        median.p50_ms = statistics.median(r.p50_ms for r in rounds[target])
        median.p99_ms = statistics.median(r.p99_ms for r in rounds[target])
        kept.append(median)
    return kept


def _warm_up(stack: Stack, catalog: Catalog, size: int) -> None:
    """A short unmeasured run on both servers: pools filled, statements prepared."""
    catalog.top_up(size)
    batches = [[i] for i in catalog.sample(min(size // 4, 2000))]
    requests = stack.folder / "warm-up.txt"
    write_signed_requests(requests, stack.creds, batches[: len(batches) // 2])
    run_wrk(
        stack.gateway_url + DELETIONS,
        requests,
        target="gateway",
        entries=1,
        connections=CONNECTIONS,
        duration=2,
    )
    write_floor_requests(requests, FLOOR_PATH, batches[len(batches) // 2 :])
    run_wrk(
        stack.floor_url + FLOOR_PATH,
        requests,
        target="floor",
        entries=1,
        connections=CONNECTIONS,
        duration=2,
    )
    requests.unlink()


def _dispatched(stack: Stack, catalog: Catalog) -> dict[str, Any]:
    """One dispatched batch: seconds from its 202 to `succeeded`, seen by polling its status."""
    catalog.top_up(CATALOG)
    ids = catalog.sample(DISPATCH_ENTRIES)
    auth = stack.creds.partner_auth()
    body = json.dumps({"ids": ids, "dispatch": True}, separators=(",", ":")).encode()
    with httpx.Client(base_url=stack.gateway_url, auth=auth, timeout=120) as client:
        started = time.monotonic()
        accepted = client.post(
            DELETIONS, content=body, headers={"content-type": "application/json"}
        )
        if accepted.status_code != 202:
            raise RuntimeError(f"dispatch answered {accepted.status_code}: {accepted.text[:500]}")
        at_202 = time.monotonic()
        batch_id = accepted.json()["data"]["batchId"]
        while True:
            status = client.get(f"{DELETIONS}/{batch_id}?limit=1").json()["data"]
            if status["status"] in ("succeeded", "completed"):
                break
            time.sleep(0.05)
        finished = time.monotonic()
    seconds = finished - at_202
    return {
        "entries": DISPATCH_ENTRIES,
        "status": status["status"],
        "summary": status["summary"],
        "secondsTo202": round(at_202 - started, 3),
        "secondsFrom202ToFinished": round(seconds, 3),
        "entriesPerSecond": round(DISPATCH_ENTRIES / seconds, 1),
    }


def _ratio(value: float, floor: float) -> float | None:
    return round(value / floor, 3) if floor else None


def _report(
    machine: dict[str, Any],
    scenarios: list[dict[str, Any]],
    dispatched: dict[str, Any],
    memory: dict[str, Any],
) -> dict[str, Any]:
    rows = []
    for scenario in scenarios:
        floor = next(r for r in scenario["runs"] if r.target == "floor")
        for run in scenario["runs"]:
            rows.append(
                {
                    "scenario": scenario["name"],
                    "catalog": scenario["catalog"],
                    **run.as_json(),
                    "rateToFloor": _ratio(run.entries_per_second, floor.entries_per_second),
                    "p99ToFloor": _ratio(run.p99_ms, floor.p99_ms),
                }
            )

    def row(name: str, target: str) -> dict[str, Any]:
        return next(r for r in rows if r["scenario"] == name and r["target"] == target)

    one = row("1-entry deletes", "gateway")
    big = row("1,000-entry batches", "gateway")
    db_big = row("1,000-entry batches", "database")
    dispatched["toDatabaseAlone"] = _ratio(
        dispatched["entriesPerSecond"], db_big["entriesPerSecond"]
    )
    small = row("1-entry deletes, small catalog", "gateway")
    worst_p99 = max(
        (r for r in rows if r["target"] == "gateway"), key=lambda r: r["p99ToFloor"] or 0
    )
    targets = [
        _target("1-entry deletes: requests/s to the floor", one["rateToFloor"], ">=", 0.80),
        _target("1,000-entry batches: entries/s to the floor", big["rateToFloor"], ">=", 0.90),
        _target(
            f"p99 to the floor's (worst: {worst_p99['scenario']})",
            worst_p99["p99ToFloor"],
            "<=",
            2.0,
        ),
        _target(
            "dispatched batch: entries/s to the database alone (1,000-entry deletes)",
            dispatched["toDatabaseAlone"],
            ">=",
            0.70,
        ),
        # The target is in SI megabytes (issue 15): KiB x 1,024 / 10^6.
        _target(
            "gateway resident memory after the run (MB)", memory["VmRSS"] * 1024 / 1e6, "<", 150
        ),
    ]
    return {
        "machine": machine,
        "settings": {
            "durationSeconds": DURATION,
            "connections": CONNECTIONS,
            "batchConnections": BATCH_CONNECTIONS,
            "catalog": CATALOG,
            "smallCatalog": SMALL_CATALOG,
            "maxEntriesPerRun": MAX_ENTRIES,
            "rounds": ROUNDS,
            "rateLimitRequests": RATE_LIMIT_REQUESTS,
            "rateLimitWindowSeconds": RATE_LIMIT_WINDOW,
            "rateLimitBatches": RATE_LIMIT_BATCHES,
        },
        "runs": rows,
        "catalogFlatness": {
            "gatewayRequestsPerSecondLargeToSmall": _ratio(
                one["requestsPerSecond"], small["requestsPerSecond"]
            ),
            "floorRequestsPerSecondLargeToSmall": _ratio(
                row("1-entry deletes", "floor")["requestsPerSecond"],
                row("1-entry deletes, small catalog", "floor")["requestsPerSecond"],
            ),
        },
        "dispatched": dispatched,
        "gatewayMemoryKiB": {
            "afterRun": memory["VmRSS"],
            "peak": memory["VmHWM"],
            "eachProcessAfterRun": memory["processes"],
        },
        "targets": targets,
    }


def _target(what: str, value: float | None, op: str, bound: float) -> dict[str, Any]:
    met = value is not None and (
        value >= bound if op == ">=" else value <= bound if op == "<=" else value < bound
    )
    shown = None if value is None else round(value, 3)
    return {"what": what, "value": shown, "target": f"{op} {bound}", "met": met}


def _print_table(report: dict[str, Any]) -> None:
    head = (
        f"{'scenario':<31} {'catalog':>9} {'target':<9} {'req/s':>9} {'entries/s':>10}"
        f" {'p50 ms':>8} {'p99 ms':>8} {'rate/floor':>10} {'p99/floor':>9}"
    )
    print("\n" + head + "\n" + "-" * len(head))
    for r in report["runs"]:
        print(
            f"{r['scenario']:<31} {r['catalog']:>9,} {r['target']:<9}"
            f" {r['requestsPerSecond']:>9.1f} {r['entriesPerSecond']:>10.1f}"
            f" {r['p50Ms']:>8.2f} {r['p99Ms']:>8.2f}"
            f" {r['rateToFloor'] or 0:>10.3f} {r['p99ToFloor'] or 0:>9.3f}"
        )
    d = report["dispatched"]
    print(
        f"{'dispatched ' + format(d['entries'], ',') + ' entries':<31} {CATALOG:>9,} gateway  "
        f" {'':>9} {d['entriesPerSecond']:>10.1f}"
        f"  {d['secondsFrom202ToFinished']:.2f} s from 202 to {d['status']};"
        f" {d['toDatabaseAlone']} of the database alone"
    )
    m = report["machine"]
    print(
        f"\nmachine: {m['cores']} cores, {m['memoryGiB']} GiB, {m['cpu']};"
        f" load at start {m['loadAverageAtStart']}; PostgreSQL {m['postgresql']}"
    )
    print(
        f"gateway memory after the run: {report['gatewayMemoryKiB']['afterRun'] / 1024:.1f} MiB"
        f" (sum of peaks {report['gatewayMemoryKiB']['peak'] / 1024:.1f} MiB), `serve` and its"
        f" {len(report['gatewayMemoryKiB']['eachProcessAfterRun']) - 1} child processes"
    )
    print("\ntargets:")
    for t in report["targets"]:
        print(f"  [{'met' if t['met'] else 'MISSED'}] {t['what']}: {t['value']} ({t['target']})")


def markdown(report: dict[str, Any]) -> str:
    """The table of bench/results.json in Markdown, as docs/performance.md shows it."""
    lines = [
        "| scenario | catalog | target | requests/s | entries/s | p50 ms | p99 ms"
        " | rate / floor | p99 / floor |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["runs"]:
        lines.append(
            f"| {r['scenario']} | {r['catalog']:,} | {r['target']} | {r['requestsPerSecond']:,.0f}"
            f" | {r['entriesPerSecond']:,.0f} | {r['p50Ms']:.1f} | {r['p99Ms']:.1f}"
            f" | {r['rateToFloor']:.2f} | {r['p99ToFloor']:.2f} |"
        )
    d = report["dispatched"]
    lines.append(
        f"| dispatched batch of {d['entries']:,} | {report['settings']['catalog']:,} | gateway"
        f" + worker | | {d['entriesPerSecond']:,.0f} | | | {d['toDatabaseAlone']:.2f} of the"
        f" database alone (1,000-entry deletes) | |"
    )
    m = report["machine"]
    lines += [
        "",
        f"Machine: {m['cores']} cores, {m['memoryGiB']} GiB, {m['cpu']}; load average at start"
        f" {m['loadAverageAtStart']}; Python {m['python']}, PostgreSQL {m['postgresql']},"
        f" {m['wrk']}. The dispatched batch took {d['secondsFrom202ToFinished']} s from its 202"
        f" to `{d['status']}`. Gateway resident memory after the run:"
        f" {report['gatewayMemoryKiB']['afterRun'] / 1024:.0f} MiB.",
        "",
        "| target | value | wanted | met |",
        "|---|---:|---|---|",
        *(
            f"| {t['what']} | {t['value']} | {t['target']} | {'yes' if t['met'] else '**no**'} |"
            for t in report["targets"]
        ),
    ]
    return "\n".join(lines)


def bench() -> None:
    with bench_stack("bench-") as (stack, catalog):
        machine = _machine(stack.url)
        stack.start_gateway()
        stack.start_floor()
        scenarios: list[dict[str, Any]] = []
        plan = [
            ("1-entry deletes, small catalog", SMALL_CATALOG, 1, CONNECTIONS),
            ("1-entry deletes", CATALOG, 1, CONNECTIONS),
            ("10-entry batches", CATALOG, 10, BATCH_CONNECTIONS),
            ("100-entry batches", CATALOG, 100, BATCH_CONNECTIONS),
            ("1,000-entry batches", CATALOG, 1000, BATCH_CONNECTIONS),
        ]
        for name, size, entries, connections in plan:
            print(f"{name} ({size:,} products, {connections} connections):", flush=True)
            if not scenarios:
                _warm_up(stack, catalog, size)
            runs = _measure(stack, catalog, size, entries, connections)
            scenarios.append({"name": name, "catalog": size, "runs": runs})
        print(f"dispatched batch of {DISPATCH_ENTRIES:,} entries:", flush=True)
        stack.start_worker()
        time.sleep(2)  # the worker opens its pool and listens
        dispatched = _dispatched(stack, catalog)
        memory = tree_memory_kib(stack.gateway.pid)
    report = _report(machine, scenarios, dispatched, memory)
    _print_table(report)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {RESULTS.relative_to(ROOT)}")


def profile() -> None:
    with bench_stack("bench-profile-") as (stack, catalog):
        stack.start_gateway()
        catalog.top_up(CATALOG)
        batches = _batches(catalog, PROFILE_ENTRIES, CATALOG)
        requests = stack.folder / "requests.txt"
        write_signed_requests(requests, stack.creds, batches)
        profile_gateway(
            stack.gateway.pid,
            lambda: run_wrk(
                stack.gateway_url + DELETIONS,
                requests,
                target="gateway",
                entries=PROFILE_ENTRIES,
                connections=CONNECTIONS if PROFILE_ENTRIES == 1 else BATCH_CONNECTIONS,
                duration=DURATION,
                expect='"failed":0}',
            ),
            duration=DURATION,
            out=ROOT / "bench" / "profile.txt",
        )


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="profile 1-entry deletes")
    parser.add_argument(
        "--markdown", action="store_true", help="print bench/results.json as a Markdown table"
    )
    args = parser.parse_args()
    # Stopped by SIGTERM (or SIGINT in the background): still stop the processes started and
    # drop the bench database, in the finally blocks.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    if args.markdown:
        print(markdown(json.loads(RESULTS.read_text())))
    elif args.profile:
        profile()
    else:
        bench()


if __name__ == "__main__":
    main()
