"""The server key that seals partner secrets: from GATEWAY_SECRET_KEY, or, for the embedded
database only, made once on disk."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import catalog_store

from .settings import Settings, SettingsError

__all__ = ["KEY_FILE", "MISSING_KEY", "load_secret_box", "server_key_text"]

KEY_FILE = "secret.key"

#: Why a command that needs the key refuses with DATABASE_URL set and no GATEWAY_SECRET_KEY: a
#: key file made on each host would seal each host's partners with another key.
MISSING_KEY = (
    "GATEWAY_SECRET_KEY is not set: with DATABASE_URL, every gateway and command sharing the"
    " database needs the same server key. Run partner-gateway key generate once, and set its"
    " secretKey as GATEWAY_SECRET_KEY on every host"
)


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: of two processes starting at once, one writes and the other reads its key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(catalog_store.generate_key() + "\n")


def _read(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SettingsError(f"{path} is readable by others (mode {mode:04o}): run chmod 600 {path}")
    text = ""
    for _ in range(50):  # a key file being written by another process right now
        text = path.read_text("ascii").strip()
        if text:
            break
        time.sleep(0.01)
    try:
        catalog_store.parse_keys(text)
    except ValueError as exc:
        raise SettingsError(f"{path} {exc}: it must hold base64 of 32 bytes") from None
    return text


def server_key_text(settings: Settings) -> str:
    """The server keys as ``GATEWAY_SECRET_KEY`` holds them: that variable when set; else, for
    the embedded database, ``<data dir>/secret.key``, created on first use with mode 0600.

    With ``DATABASE_URL`` set and no ``GATEWAY_SECRET_KEY`` it raises :class:`SettingsError`
    (:data:`MISSING_KEY`): every process sharing a database must use the same key.
    """
    if settings.secret_key is not None:
        return settings.secret_key.reveal()
    if settings.database_url is not None:
        raise SettingsError(MISSING_KEY)
    path = settings.data_dir / KEY_FILE
    if not path.exists():
        _create(path)
    return _read(path)


def load_secret_box(settings: Settings) -> catalog_store.SecretBox:
    """The box of the server keys of :func:`server_key_text`: it seals with the first key and
    opens with any."""
    return catalog_store.SecretBox(*catalog_store.parse_keys(server_key_text(settings)))
