"""Check that `make bench`'s wrk script sends every request of its file exactly once.

    .venv/bin/python -m bench.wrk_once          (needs wrk: make bench-tools installs it)

Starts a gateway on a fresh database and sends short files of signed 1-entry deletes (200 to
607 requests) on 32 connections, with 1 and then 2 wrk threads: many connections for few
requests, where a line sent twice (a replay, answered AUTH_006) or never sent shows. Exits 1
unless every run answered every request of its file with a 200, none bad.
"""

from __future__ import annotations

import os
import sys

from bench.load import DELETIONS, run_wrk, write_signed_requests
from bench.run import _batches, bench_stack

_CATALOG = 20_000


def main() -> int:
    failures = []
    with bench_stack("bench-wrk-once-") as (stack, catalog):
        url = stack.start_gateway() + DELETIONS
        path = stack.folder / "requests.txt"
        for threads in ("1", "2"):
            os.environ["BENCH_WRK_THREADS"] = threads
            for n in range(0, 12, 2):
                catalog.top_up(_CATALOG)
                batches = _batches(catalog, 1, _CATALOG)[: 200 + 37 * n]
                write_signed_requests(path, stack.creds, batches)
                result = run_wrk(
                    url, path, target="gateway", entries=1, connections=32, duration=10
                )
                line = (
                    f"{threads} thread(s), {len(batches)} requests: {result.requests} answered 200,"
                    f" {result.bad} bad"
                )
                print(line, flush=True)
                if result.requests != len(batches) or result.bad:
                    failures.append(line)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("every request sent once and answered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
