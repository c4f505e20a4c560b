"""`partner-gateway partner ...`: create partners, rotate and retire their secrets, disable them."""

from __future__ import annotations

import argparse
from typing import Any

import catalog_store

from ..keys import load_secret_box
from ..settings import Settings
from .base import iso, print_json
from .database import run_with_pool

__all__ = ["register"]


def _cmd_create(settings: Settings, args: argparse.Namespace) -> int:
    box = load_secret_box(settings)
    partner = run_with_pool(settings, lambda p: catalog_store.create_partner(p, args.name, box=box))
    print_json({"partnerClientId": partner.client_id, "secret": partner.secret})
    return 0


def _cmd_rotate(settings: Settings, args: argparse.Namespace) -> int:
    box = load_secret_box(settings)
    new = run_with_pool(
        settings, lambda p: catalog_store.rotate_secret(p, partner_client_id=args.partner, box=box)
    )
    shown: dict[str, Any] = {
        "partnerClientId": new.partner_client_id,
        "keyId": new.key_id,
        "secret": new.secret,
        "createdAt": iso(new.created_at),
    }
    if new.retired_unreadable:
        shown["retiredKeyIds"] = list(new.retired_unreadable)
    print_json(shown)
    return 0


def _cmd_retire(settings: Settings, args: argparse.Namespace) -> int:
    retired = run_with_pool(
        settings,
        lambda p: catalog_store.retire_secret(
            p, partner_client_id=args.partner, key_id=args.key_id
        ),
    )
    print_json(
        {
            "partnerClientId": retired.partner_client_id,
            "retiredKeyId": retired.key_id,
            "activeKeyIds": list(retired.active_key_ids),
        }
    )
    return 0


def _cmd_secrets(settings: Settings, args: argparse.Namespace) -> int:
    infos = run_with_pool(
        settings, lambda p: catalog_store.list_secrets(p, partner_client_id=args.partner)
    )
    secrets = [
        {
            "keyId": info.key_id,
            "createdAt": iso(info.created_at),
            "retiredAt": iso(info.retired_at),
            "lastUsedAt": iso(info.last_used_at),
        }
        for info in infos
    ]
    print_json({"partnerClientId": args.partner, "secrets": secrets})
    return 0


def _set_active(settings: Settings, partner: str, active: bool) -> int:
    run_with_pool(
        settings,
        lambda p: catalog_store.set_partner_active(p, partner_client_id=partner, active=active),
    )
    print_json({"partnerClientId": partner, "active": active})
    return 0


def register(commands: Any) -> None:
    """Add ``partner`` and its actions to the top-level commands."""
    partner = commands.add_parser("partner", help="partners").add_subparsers(
        dest="action", required=True
    )
    create = partner.add_parser("create", help="create a partner and its first secret")
    create.add_argument("--name", required=True)
    create.set_defaults(run=_cmd_create)
    rotate = partner.add_parser(
        "rotate-secret", help="add a second active secret and print it (both verify until retire)"
    )
    rotate.add_argument("--partner", required=True, help="partner client id")
    rotate.set_defaults(run=_cmd_rotate)
    retire = partner.add_parser(
        "retire-secret", help="retire the oldest active secret (or --key-id), never the last"
    )
    retire.add_argument("--partner", required=True, help="partner client id")
    retire.add_argument("--key-id", help="the secret to retire (default: the oldest active)")
    retire.set_defaults(run=_cmd_retire)
    secrets = partner.add_parser("secrets", help="list a partner's key ids and their times")
    secrets.add_argument("--partner", required=True, help="partner client id")
    secrets.set_defaults(run=_cmd_secrets)
    disable = partner.add_parser("disable", help="refuse every request of a partner (AUTH_004)")
    disable.add_argument("--partner", required=True, help="partner client id")
    disable.set_defaults(run=lambda settings, args: _set_active(settings, args.partner, False))
    enable = partner.add_parser("enable", help="accept a disabled partner's requests again")
    enable.add_argument("--partner", required=True, help="partner client id")
    enable.set_defaults(run=lambda settings, args: _set_active(settings, args.partner, True))
