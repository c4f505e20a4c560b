"""The credentials a request needs, looked up once and kept for a short, bounded time."""

from __future__ import annotations

import time
from collections.abc import Callable

import catalog_store

from .auth import Decoys, make_decoy_keys

__all__ = ["KEY_USE_INTERVAL", "CredentialCache", "KeyUse"]

_Key = tuple[str, str, bytes]

#: Seconds between two writes of a process's key uses: ``partner secrets`` shows a secret's
#: last use to within about this, and a request never waits for that write.
KEY_USE_INTERVAL = 60.0


class CredentialCache:
    """Partner, secrets, store and token of one (partner, store, token) triple, per process.

    An entry is used for at most ``ttl`` seconds after it was read, so a token revoked, a
    partner disabled or a secret retired in the database is refused by every process at most
    ``ttl`` seconds later. ``ttl`` 0 reads the database on every request. Unknown triples are
    kept too (a flood of made-up ids costs one read per triple and ``ttl``), and the table
    holds at most ``max_entries``, so made-up ids cannot grow it without bound. Entries are
    keyed by the token's SHA-256, never by the token.
    """

    def __init__(
        self,
        pool: catalog_store.Pool,
        box: catalog_store.SecretBox,
        *,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
        decoys: Decoys | None = None,
    ) -> None:
        #: Keys nobody holds, that top up a partner's secrets: the app factory's, else drawn now.
        self.decoys = make_decoy_keys() if decoys is None else decoys
        self._pool = pool
        self._box = box
        self._ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[_Key, tuple[float, catalog_store.AuthRecord]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def lookup(
        self, *, partner_client_id: str, store_client_id: str, store_token: str
    ) -> catalog_store.AuthRecord:
        key = (partner_client_id, store_client_id, catalog_store.hash_token(store_token))
        now = self._clock()
        if self._ttl > 0:
            hit = self._entries.get(key)
            if hit is not None and now - hit[0] < self._ttl:
                return hit[1]
        record = await catalog_store.lookup_auth_by_hash(
            self._pool,
            partner_client_id=partner_client_id,
            store_client_id=store_client_id,
            token_hash=key[2],
            box=self._box,
        )
        if self._ttl > 0:
            self._remember(key, now, record)
        return record

    def _remember(self, key: _Key, now: float, record: catalog_store.AuthRecord) -> None:
        if len(self._entries) >= self._max_entries:
            self._entries = {k: v for k, v in self._entries.items() if now - v[0] < self._ttl}
            if len(self._entries) >= self._max_entries:
                # Still full of live entries: drop the older half (dicts keep insertion order).
                keep = list(self._entries.items())[self._max_entries // 2 :]
                self._entries = dict(keep)
        self._entries.pop(key, None)
        self._entries[key] = (now, record)


class KeyUse:
    """The secrets (partner id, key id) that verified requests since the last write; written
    in one statement every :data:`KEY_USE_INTERVAL` seconds, never one write per request."""

    def __init__(self) -> None:
        self._used: set[tuple[int, str]] = set()

    def note(self, partner_id: int, key_id: str) -> None:
        self._used.add((partner_id, key_id))

    async def write(self, pool: catalog_store.Pool) -> None:
        """Write the uses noted so far; kept for the next write if the database is away."""
        used, self._used = self._used, set()
        try:
            await catalog_store.note_secrets_used(pool, sorted(used))
        except catalog_store.StoreUnavailable:
            self._used |= used
