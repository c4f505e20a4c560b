"""Which PostgreSQL the gateway's processes use: ``DATABASE_URL``, else the embedded one."""

from __future__ import annotations

import catalog_store

from .settings import Settings

__all__ = ["resolve_conninfo"]


def resolve_conninfo(settings: Settings) -> str:
    """``DATABASE_URL`` when set, else the embedded PostgreSQL under the data folder."""
    if settings.database_url is not None:
        return settings.database_url.reveal()
    return catalog_store.embedded_conninfo(settings.data_dir)
