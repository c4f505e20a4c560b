"""Errors raised by the signing library.

SigningError
 └── MalformedInput   a value that cannot be part of a string to sign
"""

from __future__ import annotations

__all__ = ["MalformedInput", "SigningError"]


class SigningError(ValueError):
    """Base class of every error raised by :mod:`signing`."""


class MalformedInput(SigningError):
    """A value would make two different requests share one string to sign.

    ``field`` names the offending input (``"x-timestamp"``, ``"method"``, ...) and
    ``reason`` says what is wrong with it, in words a partner developer can act on.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
