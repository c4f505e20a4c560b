"""`make bench-profile`: where the gateway's time goes under load, sampled by py-spy.

py-spy attaches to the running `serve` process (which serves itself with one process, and
through its children with `--workers N`; no change to the code under test) and samples it
while wrk sends deletions. The collapsed stacks are summed here into the functions that hold
the CPU themselves (self) and those under which it is spent (total). Idle time, in the event
loop's wait for the network, is not sampled.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.load import RunResult

TOP = 25
# The total list shows the project's own functions: where in our code the time is spent.
_OURS = ("gateway/", "catalog_store/", "signing/")
_ENTRY_POINTS = ("cli/", "serving.py", "partner-gateway")


def _short(frame: str) -> str:
    """``name (path/to/module.py:12)`` → ``name (module.py:12)``, paths cut to the package."""
    name, _, where = frame.partition(" (")
    for marker in ("site-packages/", "/work/", "/lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
    parts = where.rstrip(")").split("/")
    return f"{name} ({'/'.join(parts[-2:])})"


def summarise(collapsed: str) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """Samples in all, the top functions by self samples, and the project's top functions by
    total (inclusive) samples."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            if any(m in frame for m in _OURS) and not any(e in frame for e in _ENTRY_POINTS):
                total[frame] += count
    return samples, own.most_common(TOP), total.most_common(TOP)


def profile_gateway(pid: int, load: Callable[[], RunResult], *, duration: float, out: Path) -> None:
    """Sample ``pid`` with py-spy while ``load`` runs; print and write the summary to ``out``."""
    raw = out.with_suffix(".collapsed")
    spy = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(duration)),
            "--rate",
            "250",
            "--function",
            "--subprocesses",  # with --workers N, `serve` runs the app in child processes
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(raw),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    result = load()
    _, err = spy.communicate(timeout=duration + 60)
    if spy.returncode != 0:
        raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')}")
    samples, own, total = summarise(raw.read_text())
    lines = [
        f"{result.entries_per_request}-entry deletes: {result.requests_per_second:.1f} req/s,"
        f" p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms; {samples} samples (not idle)",
        "",
        f"{'self %':>7}  function",
        *(f"{100 * n / samples:>6.1f}%  {name}" for name, n in own),
        "",
        f"{'total %':>7}  function of gateway/, catalog_store/, signing/",
        *(f"{100 * n / samples:>6.1f}%  {name}" for name, n in total),
    ]
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    print(text)
    print(f"written: {out} (collapsed stacks: {raw})")
