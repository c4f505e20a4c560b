"""Whether this process's server key opens the stored partner secrets, for /readyz and /metrics.

A secret that opens with no key of ``GATEWAY_SECRET_KEY`` fails only its own partner (answered
``SYS_001``); a key that opens none of them is the wrong key for this database. Both are the
operator's to see, so the check runs at start and then at most once per ``ttl`` seconds, when a
probe or a scrape asks.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

import catalog_store

__all__ = ["CHECK_EVERY_SECONDS", "SecretHealth"]

_log = structlog.get_logger("gateway")

#: A check tries every active secret (one AES-GCM open each): cheap, but not per probe.
CHECK_EVERY_SECONDS = 10.0
#: The log line names at most this many (partner, key id) pairs.
_NAMED = 20


class SecretHealth:
    """The last :class:`~catalog_store.SecretCheck`, read again once it is ``ttl`` seconds old."""

    def __init__(
        self,
        pool: catalog_store.Pool,
        box: catalog_store.SecretBox,
        *,
        ttl: float = CHECK_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool, self._box, self._ttl, self._clock = pool, box, ttl, clock
        self._last: tuple[float, catalog_store.SecretCheck] | None = None

    async def check(self) -> catalog_store.SecretCheck:
        """The check, at most ``ttl`` seconds old; :class:`~catalog_store.StoreUnavailable` when
        the database cannot be read."""
        now = self._clock()
        if self._last is not None and now - self._last[0] < self._ttl:
            return self._last[1]
        result = await catalog_store.check_secrets(self._pool, box=self._box)
        before = self._last[1].unreadable if self._last is not None else ()
        self._last = (now, result)
        if result.unreadable != before:
            self._report(result)
        return result

    @staticmethod
    def _report(result: catalog_store.SecretCheck) -> None:
        if result.unreadable:
            # Client ids and key ids only: never a secret or a key.
            _log.error(
                "stored partner secrets do not open with the server key",
                unreadable=len(result.unreadable),
                stored=result.stored,
                secrets=[f"{partner}/{key_id}" for partner, key_id in result.unreadable[:_NAMED]],
            )
        else:
            _log.info("every stored partner secret opens with the server key", stored=result.stored)
