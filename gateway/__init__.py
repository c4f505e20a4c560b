"""The Starlette gateway, its `partner-gateway` command line and its signed HTTP client.

The re-exported names load on first use: a partner importing ``gateway.client`` gets the
signing client without the server (Starlette's app, psycopg, procrastinate, prometheus).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .settings import Settings, load_settings

__all__ = ["Settings", "create_app", "load_settings"]

_HOMES = {"create_app": ".app", "Settings": ".settings", "load_settings": ".settings"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home, __name__), name)
