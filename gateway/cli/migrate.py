"""`partner-gateway migrate [--check] [--contract]`: apply (or only list) the pending
migrations; the contract steps only with ``--contract`` (docs/operations.md)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ..database import resolve_conninfo
from ..settings import Settings
from .base import print_json
from .database import migrate_and_seal

__all__ = ["register"]


def _cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    conninfo = resolve_conninfo(settings)
    if args.check:
        from ..jobs import pending

        waiting = asyncio.run(pending(conninfo, contract=args.contract))
        print_json({"pending": waiting})
        return 1 if waiting else 0
    report = asyncio.run(migrate_and_seal(settings, conninfo, contract=args.contract))
    print_json({"applied": report.applied, "alreadyApplied": report.already_applied})
    return 0


def register(commands: Any) -> None:
    """Add ``migrate`` to the top-level commands."""
    migrate_cmd = commands.add_parser("migrate", help="apply pending database migrations")
    migrate_cmd.add_argument(
        "--check",
        action="store_true",
        help="only list the pending migrations; exit 1 when there are some, 0 when none",
    )
    migrate_cmd.add_argument(
        "--contract",
        action="store_true",
        help="also apply the contract steps (what only the previous release used); only once"
        " no serve or worker of the previous release runs (docs/operations.md)",
    )
    migrate_cmd.set_defaults(run=_cmd_migrate)
