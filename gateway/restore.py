"""`partner-gateway products restore`: put archived products back, with a per-item report."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import catalog_store as store

from .partner_cli import CommandError
from .settings import Settings

__all__ = ["add_restore_command"]

WithPool = Callable[[Settings, Callable[[store.Pool], Awaitable[Any]]], Coroutine[Any, Any, Any]]


def _uuid(flag: str, text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise CommandError(f"{flag} {text!r} is not a UUID") from None


def _item(item: store.RestoreItem) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": item.id,
        "externalId": item.external_id,
        "variants": item.variants,
        "requestId": str(item.request_id) if item.request_id else None,
        "batchId": str(item.batch_id) if item.batch_id else None,
        "status": "restored" if item.refusal is None else "refused",
    }
    if item.refusal is not None:
        out["reason"] = item.refusal.value
    return out


def _selector(args: argparse.Namespace) -> dict[str, Any]:
    chosen = [f for f in ("request_id", "batch_id", "store") if getattr(args, f)]
    if len(chosen) != 1:
        raise CommandError("give exactly one of --request-id, --batch-id, or --store with --ids")
    if args.ids and not args.store:
        raise CommandError("--ids needs --store")
    if args.request_id:
        return {"request_id": _uuid("--request-id", args.request_id)}
    if args.batch_id:
        return {"batch_id": _uuid("--batch-id", args.batch_id)}
    if not args.ids:
        raise CommandError("--store needs --ids: the product ids to restore")
    return {"store_client_id": args.store, "ids": [_uuid("--ids", v) for v in args.ids]}


def add_restore_command(products: Any, with_pool: WithPool) -> None:
    """Add ``restore`` to the ``products`` sub-commands."""

    def run(settings: Settings, args: argparse.Namespace) -> int:
        selector = _selector(args)
        items: list[store.RestoreItem] = asyncio.run(
            with_pool(settings, lambda pool: store.restore_products(pool, **selector))
        )
        report = [_item(item) for item in items]
        restored = sum(1 for item in items if item.refusal is None)
        sys.stdout.write(
            json.dumps({"restored": restored, "refused": len(items) - restored, "items": report})
            + "\n"
        )
        return 0 if items and restored == len(items) else 1

    restore = products.add_parser(
        "restore", help="put archived (deleted) products back, with their variants"
    )
    restore.add_argument("--request-id", help="every product that this request deleted")
    restore.add_argument("--batch-id", help="every product that this dispatched batch deleted")
    restore.add_argument("--store", help="store client id, with --ids")
    restore.add_argument("--ids", nargs="+", default=[], metavar="ID", help="product ids")
    restore.set_defaults(run=run)
