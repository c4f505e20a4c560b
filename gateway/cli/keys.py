"""`partner-gateway key generate|reseal`: the server key that seals partner secrets."""

from __future__ import annotations

import argparse
from typing import Any

import catalog_store

from ..keys import load_secret_box
from ..settings import Settings
from .base import print_json
from .database import run_with_pool

__all__ = ["register"]


def _cmd_generate(settings: Settings, args: argparse.Namespace) -> int:
    print_json({"secretKey": catalog_store.generate_key()})
    return 0


def _cmd_reseal(settings: Settings, args: argparse.Namespace) -> int:
    box = load_secret_box(settings)
    report = run_with_pool(settings, lambda p: catalog_store.reseal_secrets(p, box=box))
    shown: dict[str, Any] = {"resealed": report.resealed}
    if report.unreadable:
        shown["unreadable"] = [
            {"partnerClientId": partner, "keyId": key_id} for partner, key_id in report.unreadable
        ]
    print_json(shown)
    return 0


def register(commands: Any) -> None:
    """Add ``key`` and its actions to the top-level commands."""
    key = commands.add_parser("key", help="the server key").add_subparsers(
        dest="action", required=True
    )
    key.add_parser("generate", help="print a new GATEWAY_SECRET_KEY value").set_defaults(
        run=_cmd_generate
    )
    key.add_parser(
        "reseal", help="seal every stored partner secret anew with the first GATEWAY_SECRET_KEY"
    ).set_defaults(run=_cmd_reseal)
