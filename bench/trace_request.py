"""Trace one signed 1-entry delete through the app: the project's function calls, as data.

    .venv/bin/python -m bench.trace_request [--json FILE] [--warm]

In a fresh database of the embedded PostgreSQL (or ``DATABASE_URL``'s server) it makes one
partner, store, token and a few products (the tests' own helpers), builds the app in-process
with its lifespan, and sends ONE signed delete of one product through the ASGI app (httpx's
ASGITransport; no sockets). While that request runs, ``sys.setprofile`` sees every Python
function call. How they are counted:

- a *project call* is a new frame of a function whose file is in ``signing/``,
  ``catalog_store/`` or ``gateway/`` (a coroutine or generator counts once, when its frame
  starts, not at each resume; comprehensions and lambdas are not counted: they are not calls
  a reader follows);
- its *caller* is the nearest project frame below it on the stack (library frames in between,
  such as starlette's router, are looked through); a call with no project frame below it is an
  *entry* call (the app's outermost middleware);
- a call is *cross-module* when the caller's module (file) is not the callee's; the
  *direct* cross-module count takes as caller only the frame right below (a call from a
  library frame is then not counted), for comparison;
- only calls made on behalf of the request are counted: the background tasks started by the
  lifespan (nonce purge, pool sampler, key use) are left out, by a context variable set in
  the request's task and inherited by the tasks it starts.

``--warm`` sends one untraced request first (another product), so that the traced one meets
warm caches (the partner's credentials); without it the traced request is the first one.
Prints the counts and the list of cross-module edges; ``--json`` writes them too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import catalog_store
from bench.run import fresh_database
from gateway.jobs import migrate
from tests.support import DELETIONS, body_of, gateway_client, make_tenant, signed_headers

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("signing", "catalog_store", "gateway")
_PREFIXES = tuple(str(ROOT / p) + os.sep for p in PACKAGES)
_IN_REQUEST: contextvars.ContextVar[bool] = contextvars.ContextVar("in_request", default=False)


def _module(frame: FrameType) -> str | None:
    """``gateway/app.py`` for a frame of the project's packages, else None."""
    filename = frame.f_code.co_filename
    if filename.startswith(_PREFIXES):
        return os.path.relpath(filename, ROOT)
    return None


@dataclass
class Trace:
    """What the profile hook saw: calls per callee, and caller → callee module edges."""

    calls: int = 0
    entries: int = 0
    functions: Counter[str] = field(default_factory=Counter)
    edges: Counter[tuple[str, str]] = field(default_factory=Counter)
    direct_cross: int = 0
    _seen: set[int] = field(default_factory=set)
    _frames: list[FrameType] = field(default_factory=list)

    def hook(self, frame: FrameType, event: str, arg: object) -> None:
        if event != "call" or not _IN_REQUEST.get():
            return
        callee = _module(frame)
        name = frame.f_code.co_name
        if callee is None or name.startswith("<"):
            return
        if id(frame) in self._seen:  # a coroutine or generator resumed, not called
            return
        self._seen.add(id(frame))
        self._frames.append(frame)  # keep it alive, so that its id is not reused
        self.calls += 1
        self.functions[f"{callee}:{frame.f_code.co_qualname}"] += 1
        direct = _module(frame.f_back) if frame.f_back is not None else None
        if direct is not None and direct != callee:
            self.direct_cross += 1
        caller = self._caller(frame.f_back)
        if caller is None:
            self.entries += 1
        elif caller != callee:
            self.edges[(caller, callee)] += 1

    @staticmethod
    def _caller(frame: FrameType | None) -> str | None:
        while frame is not None:
            module = _module(frame)
            if module is not None:
                return module
            frame = frame.f_back
        return None

    def report(self) -> dict[str, Any]:
        return {
            "project_calls": self.calls,
            "cross_module_calls": sum(self.edges.values()),
            "entry_calls": self.entries,
            "direct_cross_module_calls": self.direct_cross,
            "distinct_functions": len(self.functions),
            "modules_touched": sorted({f.partition(":")[0] for f in self.functions}),
            "cross_module_edges": [
                {"caller": a, "callee": b, "calls": n} for (a, b), n in sorted(self.edges.items())
            ],
            "functions": dict(sorted(self.functions.items())),
        }


async def trace(url: str, *, warm: bool) -> dict[str, Any]:
    await migrate(url)
    pool = catalog_store.create_pool(url, min_size=1, max_size=1)
    await pool.open(wait=True)
    try:
        tenant = await make_tenant(pool, products=3, name="trace")
    finally:
        await pool.close()
    recorder = Trace()
    async with gateway_client(url) as client:
        if warm:
            body = body_of({"ids": [tenant.ids[1]]})
            warm_up = await client.post(
                DELETIONS, content=body, headers=signed_headers(tenant, body=body)
            )
            assert warm_up.status_code == 200, warm_up.text
        body = body_of({"ids": [tenant.ids[0]]})
        headers = signed_headers(tenant, body=body)
        token = _IN_REQUEST.set(True)
        sys.setprofile(recorder.hook)
        try:
            response = await client.post(DELETIONS, content=body, headers=headers)
        finally:
            sys.setprofile(None)
            _IN_REQUEST.reset(token)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["summary"]["succeeded"] == 1, response.text
    return {"warm": warm, "status": response.status_code, **recorder.report()}


def _print(result: dict[str, Any]) -> None:
    print(
        f"one signed 1-entry delete ({'warm' if result['warm'] else 'cold'} caches):"
        f" {result['project_calls']} project calls, {result['cross_module_calls']} cross-module"
        f" ({result['direct_cross_module_calls']} direct;"
        f" {result['entry_calls']} entry calls from outside the project),"
        f" {result['distinct_functions']} distinct functions in"
        f" {len(result['modules_touched'])} modules"
    )
    print("cross-module edges (caller -> callee: calls):")
    for edge in result["cross_module_edges"]:
        print(f"  {edge['caller']} -> {edge['callee']}: {edge['calls']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    parser.add_argument("--warm", action="store_true", help="send one untraced request first")
    args = parser.parse_args()
    with fresh_database() as url:
        result = asyncio.run(trace(url, warm=args.warm))
    _print(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
