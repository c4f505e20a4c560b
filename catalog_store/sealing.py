"""Partner secrets at rest: AES-256-GCM under the server key, each bound to its own row."""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import SecretUnreadable

__all__ = ["KEY_BYTES", "SecretBox", "generate_key", "parse_key"]

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


def _context(partner_id: int, key_id: str) -> bytes:
    # Authenticated data: a sealed secret copied onto another partner's row does not open.
    return f"partner-secret:{partner_id}:{key_id}".encode()


class SecretBox:
    """Seals and opens partner secrets with one server key; its repr never shows the key."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"the server key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def seal(self, secret: bytes, *, partner_id: int, key_id: str) -> bytes:
        """Version byte, a random 96-bit nonce, then the ciphertext and its 128-bit tag."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret, _context(partner_id, key_id))
        return _VERSION + nonce + sealed

    def open(self, sealed: bytes, *, partner_id: int, key_id: str) -> bytes:
        """The secret; :class:`SecretUnreadable` for another key, another row or damaged bytes."""
        if len(sealed) < 1 + _NONCE_BYTES + 16 or sealed[:1] != _VERSION:
            raise SecretUnreadable(partner_id, key_id)
        nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, _context(partner_id, key_id))
        except InvalidTag:
            raise SecretUnreadable(partner_id, key_id) from None
