"""Signed deletions from several threads against a live `serve`, recorded one by one: the load
under which the outage and stall tests take the database away."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from tests.live import Server, partner_client
from tests.support import DELETIONS, Tenant


@dataclass
class Sent:
    ids: list[str]
    key: str | None
    response: httpx.Response | None
    started: float
    seconds: float
    error: str = ""

    @property
    def signature(self) -> bytes:
        assert self.response is not None
        return bytes.fromhex(self.response.request.headers["x-signature"])


class DeletionLoad:
    """Threads that each send one signed deletion of two products of their own after another.
    With ``keys``, every other one carries an idempotency key (the transaction path) and the
    rest do not (the one-statement path)."""

    def __init__(
        self,
        server: Server,
        tenant: Tenant,
        ids: list[str],
        *,
        threads: int = 4,
        keys: bool = False,
        timeout: float = 15,
    ) -> None:
        self._server, self._tenant = server, tenant
        self._ids = iter(ids)
        self._numbers = itertools.count()
        self._keys, self._timeout = keys, timeout
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.sent: list[Sent] = []
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def __enter__(self) -> DeletionLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _next(self) -> tuple[list[str], str | None]:
        with self._lock:
            number = next(self._numbers)
            key = f"load-{number}" if self._keys and number % 2 else None
            return list(itertools.islice(self._ids, 2)), key

    def _run(self) -> None:
        # A hang would show as a timeout here, and fail the test.
        with partner_client(self._server, self._tenant, timeout=self._timeout) as client:
            while not self._stop.is_set():
                ids, key = self._next()
                assert ids, "the test ran out of products"
                headers = {"idempotency-key": key} if key else {}
                started = time.monotonic()
                try:
                    response: httpx.Response | None = client.post(
                        DELETIONS, json={"ids": ids}, headers=headers
                    )
                    error = ""
                except httpx.HTTPError as exc:
                    response, error = None, repr(exc)
                sent = Sent(ids, key, response, started, time.monotonic() - started, error)
                with self._lock:
                    self.sent.append(sent)
                time.sleep(0.01)

    def count(self, status: int, after: float = 0.0) -> int:
        with self._lock:
            return sum(
                1
                for s in self.sent
                if s.response is not None
                and s.response.status_code == status
                and s.started >= after
            )


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
