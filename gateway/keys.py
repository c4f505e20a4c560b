"""The server key that seals partner secrets: from GATEWAY_SECRET_KEY, or made once on disk."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import catalog_store as store

from .settings import Settings, SettingsError

__all__ = ["KEY_FILE", "load_secret_box"]

KEY_FILE = "secret.key"


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: of two processes starting at once, one writes and the other reads its key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(store.generate_key() + "\n")


def _read(path: Path) -> bytes:
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
        return store.parse_key(text)
    except ValueError as exc:
        raise SettingsError(f"{path} {exc}: it must hold base64 of 32 bytes") from None


def load_secret_box(settings: Settings) -> store.SecretBox:
    """``GATEWAY_SECRET_KEY`` when set; else ``<data dir>/secret.key``, created on first use
    with mode 0600. Every process sharing a database must use the same key."""
    if settings.secret_key is not None:
        return store.SecretBox(store.parse_key(settings.secret_key.reveal()))
    path = settings.data_dir / KEY_FILE
    if not path.exists():
        _create(path)
    return store.SecretBox(_read(path))
