"""How a store token is shown to a developer: in AUTH_002's details and by `partner-gateway sign`.

Its own module, with no import of the server, so the partner's `sign` command loads none of it.
"""

from __future__ import annotations

__all__ = ["mask_token", "masked_string_to_sign"]


def mask_token(token: str) -> str:
    """Keep the first four characters, so a developer can tell tokens apart; star the rest."""
    keep = 4 if len(token) > 8 else 0
    return token[:keep] + "*" * (len(token) - keep)


def masked_string_to_sign(message: str, token: str) -> str:
    """The string to sign as a developer may see it: line 6, the store token, masked."""
    lines = message.split("\n")
    lines[5] = mask_token(token)
    return "\n".join(lines)
