"""Partner secrets at rest: AES-256-GCM under the server key, each bound to its own row.

The server key may be several keys, newest first: a secret opens with any of them and is sealed
with the first, so a new key can be put in front of the old one and the stored secrets re-sealed
before the old key is dropped.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import SecretUnreadable

__all__ = ["KEY_BYTES", "SecretBox", "generate_key", "parse_key", "parse_keys"]

KEY_BYTES = 32
_VERSION = b"\x01"
_NONCE_BYTES = 12


def generate_key() -> str:
    """A new server key, as the text ``GATEWAY_SECRET_KEY`` holds: 32 random bytes, base64url."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def parse_key(text: str) -> bytes:
    """The 32 key bytes of a base64 (standard or URL-safe, padding optional) text; ValueError."""
    cleaned = text.strip()
    try:
        standard = cleaned.replace("-", "+").replace("_", "/").rstrip("=")
        raw = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not base64") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"must decode to {KEY_BYTES} bytes, not {len(raw)}")
    return raw


def parse_keys(text: str) -> list[bytes]:
    """The keys of a comma-separated list, newest first; ValueError naming the bad one by its
    place (``key 2 of 3 ...``), never by its value."""
    parts = [part for part in (p.strip() for p in text.split(",")) if part]
    if not parts:
        raise ValueError("holds no key")
    keys = []
    for place, part in enumerate(parts, 1):
        try:
            keys.append(parse_key(part))
        except ValueError as exc:
            if len(parts) == 1:
                raise
            raise ValueError(f"key {place} of {len(parts)} {exc}") from None
    return keys


def _context(partner_id: int, key_id: str) -> bytes:
    # Authenticated data: a sealed secret copied onto another partner's row does not open.
    return f"partner-secret:{partner_id}:{key_id}".encode()


class SecretBox:
    """Seals partner secrets with the first server key and opens them with any of the keys
    (newest first); its repr never shows a key."""

    __slots__ = ("_aeads",)

    def __init__(self, key: bytes, *older: bytes) -> None:
        for one in (key, *older):
            if len(one) != KEY_BYTES:
                raise ValueError(f"the server key must be {KEY_BYTES} bytes")
        self._aeads = tuple(AESGCM(one) for one in (key, *older))

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    @property
    def key_count(self) -> int:
        return len(self._aeads)

    def seal(self, secret: bytes, *, partner_id: int, key_id: str) -> bytes:
        """Version byte, a random 96-bit nonce, then the ciphertext and its 128-bit tag."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aeads[0].encrypt(nonce, secret, _context(partner_id, key_id))
        return _VERSION + nonce + sealed

    def open(self, sealed: bytes, *, partner_id: int, key_id: str) -> bytes:
        """The secret, opened with the first key that can; :class:`SecretUnreadable` when none
        can (another key, another row or damaged bytes)."""
        if len(sealed) < 1 + _NONCE_BYTES + 16 or sealed[:1] != _VERSION:
            raise SecretUnreadable(partner_id, key_id)
        nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        context = _context(partner_id, key_id)
        for aead in self._aeads:
            try:
                return aead.decrypt(nonce, body, context)
            except InvalidTag:
                continue
        raise SecretUnreadable(partner_id, key_id)
