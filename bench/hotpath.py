"""`make bench-hotpath`: the 1-entry hot path alone, in a few minutes, with what it costs in CPU.

    .venv/bin/python -m bench.hotpath                      (this checkout)
    BENCH_HOTPATH_SOURCES=/old/tree:/new/tree .venv/bin/python -m bench.hotpath
    BENCH_HOTPATH_SOURCES=:,GATEWAY_LOG_LEVEL=warning .venv/bin/python -m bench.hotpath

Starts one fresh database, the floor and one gateway per source tree (each `serve` run from
that tree's packages, first on ``PYTHONPATH``, so two versions of the code are measured on the
same database, catalog and machine minutes; ``,VARIABLE=value`` after a tree sets a variable
of that gateway's environment), then sends 1-entry deletes to each in turn,
``BENCH_ROUNDS`` times. For every run it reads the gateway's own CPU time from
``/proc/<pid>/stat``: the **CPU microseconds per request** of the serving process is steadier
than its requests per second, which the database and the machine's other load move too. It is
what a change of the hot path buys. `make bench` stays the judge of the targets.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from bench.floor import FLOOR_PATH
from bench.load import DELETIONS, Catalog, run_wrk, write_floor_requests, write_signed_requests
from bench.run import CATALOG, CONNECTIONS, DURATION, ROUNDS, Stack, _batches, bench_stack
from tests.live import BIN, free_port

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def postgres_cpu_seconds() -> float:
    """CPU time of every PostgreSQL process on the machine (the bench's server is the one
    working): what the database spends on the requests, beside the gateway's own."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    total += cpu_seconds(int(entry.name))
            except OSError:
                continue
    return total


def _start_gateway(stack: Stack, source: str, label: str) -> tuple[int, str]:
    """``source``: a checkout to run (empty: this one), then any ``,VARIABLE=value``."""
    port = free_port()
    env = dict(stack.env)
    tree, *settings = source.split(",")
    for setting in settings:
        name, _, value = setting.partition("=")
        env[name] = value
    if tree:
        env["PYTHONPATH"] = tree
    process = stack._start(  # noqa: SLF001 - the bench's own helper
        label, [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(port)], env
    )
    url = f"http://127.0.0.1:{port}"
    stack._wait_ready(url, "/readyz")  # noqa: SLF001
    return process.pid, url


@dataclass
class Target:
    name: str
    pid: int
    url: str
    path: str
    rates: list[float] = field(default_factory=list)
    p99s: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    database_cpu_us: list[float] = field(default_factory=list)

    def clear(self) -> None:
        for figures in (self.rates, self.p99s, self.cpu_us, self.database_cpu_us):
            figures.clear()


def _run(stack: Stack, catalog: Catalog, target: Target) -> None:
    """One run on fresh ids; the target's rate, p99 and CPU per request (its own, and the
    database's) appended to its lists."""
    catalog.top_up(CATALOG)
    batches = _batches(catalog, 1, CATALOG)
    requests = stack.folder / "requests.txt"
    if target.path == FLOOR_PATH:
        write_floor_requests(requests, FLOOR_PATH, batches)
        expect = ""
    else:
        write_signed_requests(requests, stack.creds, batches)
        expect = '"failed":0}'
    own, database = cpu_seconds(target.pid), postgres_cpu_seconds()
    result = run_wrk(
        target.url + target.path,
        requests,
        target=target.name,
        entries=1,
        connections=CONNECTIONS,
        duration=DURATION,
        expect=expect,
    )
    count = max(result.requests, 1)
    target.rates.append(result.requests_per_second)
    target.p99s.append(result.p99_ms)
    target.cpu_us.append((cpu_seconds(target.pid) - own) / count * 1e6)
    target.database_cpu_us.append((postgres_cpu_seconds() - database) / count * 1e6)
    requests.unlink(missing_ok=True)


def main() -> None:
    sources = os.environ.get("BENCH_HOTPATH_SOURCES", "").split(":")
    with bench_stack("bench-hotpath-") as (stack, catalog):
        targets = []
        for n, source in enumerate(sources):
            pid, gateway_url = _start_gateway(stack, source, f"gateway-{n}")
            targets.append(Target(f"gateway {source or '.'}", pid, gateway_url, DELETIONS))
        stack.start_floor()
        targets.append(Target("floor", stack.processes[-1].pid, stack.floor_url, FLOOR_PATH))
        for target in targets:  # warm-up: pools filled, statements prepared
            _run(stack, catalog, target)
            target.clear()
        for _ in range(ROUNDS):
            for target in targets:
                _run(stack, catalog, target)
                print(
                    f"  {target.name:<36} {target.rates[-1]:8.1f} req/s"
                    f"  p99 {target.p99s[-1]:7.2f} ms  CPU/request: own"
                    f" {target.cpu_us[-1]:6.1f} µs,"
                    f" database {target.database_cpu_us[-1]:6.1f} µs",
                    flush=True,
                )
        floor = statistics.median(targets[-1].rates)
        print(f"\nmedian of {ROUNDS} rounds")
        for target in targets:
            rate = statistics.median(target.rates)
            print(
                f"  {target.name:<36} {rate:8.1f} req/s  {rate / floor:5.2f} of the floor"
                f"  (rounds {min(target.rates):.0f}-{max(target.rates):.0f})"
                f"  p99 {statistics.median(target.p99s):6.2f} ms"
                f"  CPU/request: own {statistics.median(target.cpu_us):6.1f} µs,"
                f" database {statistics.median(target.database_cpu_us):6.1f} µs"
            )


if __name__ == "__main__":
    main()
