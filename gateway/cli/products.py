"""`partner-gateway products seed|restore`: make catalog products, and put deleted ones back."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import catalog_store

from ..settings import Settings
from .base import CommandError, natural, print_json
from .database import run_with_pool

__all__ = ["register"]


def _cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    refs = run_with_pool(
        settings,
        lambda p: catalog_store.seed_products(
            p, store_client_id=args.store, count=args.count, variants=args.variants
        ),
    )
    lines = "".join(
        json.dumps({"id": str(ref.id), "externalId": ref.external_id}) + "\n" for ref in refs
    )
    if args.out:
        Path(args.out).write_text(lines, encoding="utf-8")
    sys.stdout.write(lines)
    return 0


def _uuid(flag: str, text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise CommandError(f"{flag} {text!r} is not a UUID") from None


def _selector(args: argparse.Namespace) -> dict[str, Any]:
    """The products to restore: those of one request, of one batch, or ids of one store."""
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


def _item(item: catalog_store.RestoreItem) -> dict[str, Any]:
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


def _cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    """A per-item report; exit 0 only when every product named was restored."""
    selector = _selector(args)
    items: list[catalog_store.RestoreItem] = run_with_pool(
        settings, lambda pool: catalog_store.restore_products(pool, **selector)
    )
    restored = sum(1 for item in items if item.refusal is None)
    print_json(
        {
            "restored": restored,
            "refused": len(items) - restored,
            "items": [_item(item) for item in items],
        }
    )
    return 0 if items and restored == len(items) else 1


def register(commands: Any) -> None:
    """Add ``products`` and its actions to the top-level commands."""
    products = commands.add_parser("products", help="catalog products").add_subparsers(
        dest="action", required=True
    )
    seed = products.add_parser("seed", help="create products with variants")
    seed.add_argument("--store", required=True, help="store client id")
    seed.add_argument("--count", type=natural, required=True)
    seed.add_argument("--variants", type=natural, default=2)
    seed.add_argument("--out", help="also write the products to FILE")
    seed.set_defaults(run=_cmd_seed)

    restore = products.add_parser(
        "restore", help="put archived (deleted) products back, with their variants"
    )
    restore.add_argument("--request-id", help="every product that this request deleted")
    restore.add_argument("--batch-id", help="every product that this dispatched batch deleted")
    restore.add_argument("--store", help="store client id, with --ids")
    restore.add_argument("--ids", nargs="+", default=[], metavar="ID", help="product ids")
    restore.set_defaults(run=_cmd_restore)
