"""The floor of `make bench`: the least an HTTP deletion can cost on this stack.

A bench-only Starlette app, never part of the product: one route that runs one
``DELETE … WHERE id = ANY(…) RETURNING`` on catalog_store's pool (sized by the same
``GATEWAY_DB_POOL_*`` settings as the gateway's) and returns the rows, with no authentication,
no envelope, no logging. Served by uvicorn with the gateway's own server options:

    BENCH_FLOOR_DATABASE_URL=... BENCH_FLOOR_STORE_ID=1 \\
        .venv/bin/python bench/floor.py --host 127.0.0.1 --port 8001
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import catalog_store  # noqa: E402
from gateway.settings import load_settings  # noqa: E402

FLOOR_PATH = "/floor/deletions"
FLOOR_DELETE = (
    "DELETE FROM products WHERE store_id = %s AND id = ANY(%s::uuid[]) RETURNING id, external_id"
)


class _Body(msgspec.Struct):
    ids: list[str]


_decode = msgspec.json.Decoder(_Body).decode
_encode = msgspec.json.Encoder().encode


def create_floor_app() -> Starlette:
    """The floor app; its database and store come from ``BENCH_FLOOR_*`` variables."""
    settings = load_settings(os.environ)
    store_id = int(os.environ["BENCH_FLOOR_STORE_ID"])
    pool = catalog_store.create_pool(
        os.environ["BENCH_FLOOR_DATABASE_URL"],
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        timeout=settings.db_timeout,
        generic_plans=True,  # as the gateway's own pool (gateway/app.py)
    )

    async def delete(request: Request) -> Response:
        ids = _decode(await request.body()).ids
        async with catalog_store.connection(pool) as conn:
            cur = await conn.execute(FLOOR_DELETE, (store_id, ids))
            rows = await cur.fetchall()
        return Response(_encode([[str(r[0]), r[1]] for r in rows]), media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await pool.open(wait=True)
        try:
            yield
        finally:
            await pool.close()

    return Starlette(routes=[Route(FLOOR_PATH, delete, methods=["POST"])], lifespan=lifespan)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The options of `partner-gateway serve` (gateway/cli/serve.py), so only the app differs.
    uvicorn.run(
        create_floor_app,
        factory=True,
        host=args.host,
        port=args.port,
        access_log=False,
        log_level="warning",
        server_header=False,
    )


if __name__ == "__main__":
    main()
