"""The `partner-gateway` command line (README, docs/operations.md): every command prints JSON.

Each command group registers its own sub-commands (``migrate``, ``serve``, ``partners``,
``stores``, ``keys``, ``products``, ``calls``) and imports what it runs only when it runs, so a
command loads no more of the gateway than it needs (``serve``'s supervisor not the app, the
partner's ``call`` and ``sign`` no database).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..logs import configure_logging
from ..settings import SettingsError, load_settings
from . import calls, keys, migrate, partners, products, serve, stores
from .base import CommandError, fail
from .database import pending_refusal
from .stores import KNOWN_SCOPES

__all__ = ["KNOWN_SCOPES", "CommandError", "main", "pending_refusal"]

_GROUPS = (migrate, serve, partners, stores, keys, products, calls)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="partner-gateway", description="Partner Catalog Gateway: operator commands"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for group in _GROUPS:
        group.register(commands)
    return parser


def _user_error(exc: Exception) -> str | None:
    """The message of a failure the user can act on, or None for a bug (left to raise).

    The store's and the HTTP client's errors are looked up only when their package is loaded:
    a command that never imported it cannot have raised its error.
    """
    if isinstance(exc, SettingsError | CommandError):
        return str(exc)
    catalog_store = sys.modules.get("catalog_store")
    if catalog_store is not None and isinstance(exc, catalog_store.StoreError):
        return str(exc)
    httpx = sys.modules.get("httpx")
    if httpx is not None and isinstance(exc, httpx.HTTPError):
        return f"could not reach the gateway: {exc}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(os.environ)
        configure_logging(settings.log_format, settings.log_level)
        code: int = args.run(settings, args)
        return code
    except Exception as exc:
        message = _user_error(exc)
        if message is None:
            raise
        fail(message)
        return 2
