"""What every part of a campaign shares: the target, the findings, the budget, and how an answer
is judged."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import signing
from gateway.envelope import wall_clock_ms
from tests.support import Tenant

from .contract import envelope_problem
from .findings import Finding, Findings
from .target import Target

__all__ = ["Budget", "Session"]


@dataclass
class Budget:
    """Stop after ``seconds`` or ``cases``, whichever comes first (None: no such bound)."""

    seconds: float | None
    cases: int | None
    start: float = field(default_factory=time.monotonic)
    used: int = 0

    def left(self) -> bool:
        if self.cases is not None and self.used >= self.cases:
            return False
        return self.seconds is None or self.elapsed() < self.seconds

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def spend(self, cases: int = 1) -> None:
        self.used += cases


@dataclass
class Session:
    target: Target
    findings: Findings
    budget: Budget
    slow_seconds: float  # the bound on any one answer
    healthz_seconds: float  # the bound on /healthz while an attack runs
    only: list[str] | None = None  # case names to run, all when None
    skip: set[str] = field(default_factory=set)  # case names not to run
    _last_stamp: int = 0
    _last_tick: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def progress(self, part: str, text: str) -> None:
        self._last_tick = time.monotonic()
        print(
            f"[{self.budget.elapsed():7.1f}s] {part}: {text}; {self.budget.used} cases,"
            f" {len(self.findings.found)} findings",
            flush=True,
        )

    def tick(self, part: str) -> None:
        """Progress every 10 seconds from inside a long round."""
        if time.monotonic() - self._last_tick >= 10:
            self.progress(part, "running")

    def selected(self, case: str) -> bool:
        return case not in self.skip and (self.only is None or case in self.only)

    def stamp(self) -> int:
        """A fresh x-timestamp, never the same twice in a run (so no accidental replay)."""
        with self._lock:
            self._last_stamp = max(self._last_stamp + 1, wall_clock_ms())
            return self._last_stamp

    def signed_headers(
        self, tenant: Tenant, method: str, path: str, query: str, body: bytes
    ) -> list[tuple[str, str]]:
        timestamp = str(self.stamp())
        signature = signing.sign_request(
            tenant.secret,
            method=method,
            path=path,
            query=query,
            partner_client_id=tenant.partner_client_id,
            store_client_id=tenant.store_client_id,
            store_token=tenant.token,
            timestamp=timestamp,
            body=body,
        )
        return [
            ("x-partner-client-id", tenant.partner_client_id),
            ("x-store-client-id", tenant.store_client_id),
            ("x-store-token", tenant.token),
            ("x-timestamp", timestamp),
            ("x-signature", signature),
            ("content-type", "application/json"),
        ]

    def judge(
        self,
        request: Finding,
        path: str,
        status: int | None,
        headers: dict[str, str],
        body: bytes,
        elapsed: float,
        bound: float | None = None,
    ) -> bool:
        """Check one answer against the envelope, no-500 and time invariants; ``request`` is
        the finding to report (its invariant and detail are filled in here). True if it held."""
        held = True
        problem = envelope_problem(path, status, headers, body)
        if problem is not None:
            self._add(request, *problem)
            held = False
        limit = self.slow_seconds if bound is None else bound
        if elapsed > limit:
            what = "answered" if status is not None else "closed"
            self._add(request, "slow", f"{what} after {elapsed:.2f} s; the bound is {limit:.2f} s")
            held = False
        return held

    def _add(self, request: Finding, invariant: str, detail: str) -> None:
        self.findings.add(
            Finding(
                invariant=invariant,
                part=request.part,
                case=request.case,
                detail=detail,
                raw=request.raw,
                method=request.method,
                url=request.url,
                headers=request.headers,
                body=request.body,
                signed=request.signed,
            )
        )

    def report(self, request: Finding, invariant: str, detail: str) -> None:
        self._add(request, invariant, detail)
