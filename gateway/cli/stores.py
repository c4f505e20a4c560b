"""`partner-gateway store create` and `token issue|revoke|list`: stores and their tokens."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import catalog_store

from ..settings import Settings
from .base import CommandError, iso, print_json
from .database import run_with_pool

__all__ = ["KNOWN_SCOPES", "register"]

#: The scopes a route can need, as the store lists them; `token issue` refuses any other (a typo
#: would make a dead token).
KNOWN_SCOPES = catalog_store.DEFAULT_SCOPES


def _cmd_store_create(settings: Settings, args: argparse.Namespace) -> int:
    store = run_with_pool(settings, lambda p: catalog_store.create_store(p, args.name))
    print_json({"storeClientId": store.client_id})
    return 0


def _scopes(text: str) -> tuple[str, ...]:
    scopes = tuple(s for s in text.replace(",", " ").split() if s)
    if not scopes:
        raise CommandError("--scopes needs at least one scope, e.g. products:delete")
    unknown = [s for s in scopes if s not in KNOWN_SCOPES]
    if unknown:
        raise CommandError(
            f"unknown scope {', '.join(unknown)}; known scopes: {', '.join(KNOWN_SCOPES)}"
        )
    return scopes


def _cmd_token_issue(settings: Settings, args: argparse.Namespace) -> int:
    scopes = _scopes(args.scopes)
    token = run_with_pool(
        settings,
        lambda p: catalog_store.issue_token(
            p, partner_client_id=args.partner, store_client_id=args.store, scopes=scopes
        ),
    )
    print_json({"storeToken": token.token})
    return 0


def _cmd_token_revoke(settings: Settings, args: argparse.Namespace) -> int:
    token = args.token if args.token != "-" else sys.stdin.readline().strip()
    if not run_with_pool(settings, lambda p: catalog_store.revoke_token(p, token=token)):
        raise CommandError("no live token with that value (unknown, or already revoked)")
    print_json({"revoked": True})
    return 0


def _cmd_token_list(settings: Settings, args: argparse.Namespace) -> int:
    infos = run_with_pool(
        settings,
        lambda p: catalog_store.list_tokens(
            p, partner_client_id=args.partner, store_client_id=args.store
        ),
    )
    tokens = [
        {
            "partnerClientId": info.partner_client_id,
            "storeClientId": info.store_client_id,
            "scopes": list(info.scopes),
            "createdAt": iso(info.created_at),
            "revokedAt": iso(info.revoked_at),
        }
        for info in infos
    ]
    print_json({"tokens": tokens})
    return 0


def register(commands: Any) -> None:
    """Add ``store`` and ``token`` and their actions to the top-level commands."""
    store = commands.add_parser("store", help="stores").add_subparsers(dest="action", required=True)
    create = store.add_parser("create", help="create a store")
    create.add_argument("--name", required=True)
    create.set_defaults(run=_cmd_store_create)

    token = commands.add_parser("token", help="store tokens").add_subparsers(
        dest="action", required=True
    )
    issue = token.add_parser("issue", help="issue a token from a store to a partner")
    issue.add_argument("--partner", required=True, help="partner client id")
    issue.add_argument("--store", required=True, help="store client id")
    issue.add_argument(
        "--scopes",
        default=",".join(catalog_store.DEFAULT_SCOPES),
        help=f"comma-separated, of {', '.join(KNOWN_SCOPES)} (default: all of them)",
    )
    issue.set_defaults(run=_cmd_token_issue)
    revoke = token.add_parser(
        "revoke", help="revoke a store token (every process, within the cache bound)"
    )
    revoke.add_argument("--token", required=True, help="the token; - reads it from stdin")
    revoke.set_defaults(run=_cmd_token_revoke)
    listing = token.add_parser(
        "list", help="a partner's or a store's tokens: scopes and times, never the token"
    )
    listing.add_argument("--partner", help="partner client id")
    listing.add_argument("--store", help="store client id")
    listing.set_defaults(run=_cmd_token_list)
