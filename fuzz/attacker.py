"""The test suite's attacker state machine, driving a real ``serve``: partners sign, the attacker
replays, truncates, re-encodes, swaps and flips; only untouched requests may delete anything.
Its failing step sequences are kept in the hypothesis database of the corpus, and tried first
on the next run."""

from __future__ import annotations

import itertools
import traceback
from pathlib import Path

import httpx
from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.stateful import run_state_machine_as_test

from tests.gateway.test_attacker import attack_machine
from tests.support import DELETIONS, Tenant

from .findings import Finding
from .session import Session

__all__ = ["Attacker"]


class OutOfBudget(BaseException):
    """The campaign's time or cases are spent: stop the machine where it is (not a failure)."""


class _Live:
    """The machine's driver against the target; the last request is kept for the report."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.client = httpx.Client(base_url=session.target.url, timeout=60)
        self.names = itertools.count(1)
        self.last = Finding("answer", "attacker", "state machine", "")
        self.last_status = 0
        self.last_held = True

    def make_tenant(self, name: str) -> Tenant:
        return self.session.target.new_tenant(f"attacker {name} {next(self.names)}")

    def send(self, headers: dict[str, str], body: bytes) -> httpx.Response:
        if not self.session.budget.left():
            raise OutOfBudget
        raw = [(k.encode(), v.encode("latin-1")) for k, v in headers.items()]
        response = self.client.post(DELETIONS, content=body, headers=raw)
        self.session.budget.spend()
        self.session.tick("attacker")
        self.last = Finding(
            "answer",
            "attacker",
            "state machine",
            "",
            method="POST",
            url=str(response.request.url),
            headers=list(headers.items()),
            body=body,
        )
        self.last_status = response.status_code
        self.last_held = self.session.judge(
            self.last,
            DELETIONS,
            response.status_code,
            {name.lower(): value for name, value in response.headers.items()},
            response.content,
            response.elapsed.total_seconds(),
        )
        return response

    def present(self, store_id: int) -> set[str]:
        return self.session.target.product_ids(store_id)

    def stamp(self) -> int:
        return self.session.stamp()


def _invariant_of(exc: Exception, last_status: int) -> str:
    rules = {frame.name for frame in traceback.extract_tb(exc.__traceback__)}
    if "only_the_partners_deliveries_deleted_anything" in rules:
        return "unsigned-deletion"
    if 200 <= last_status < 300:
        return "replay" if "replay" in rules else "unsigned-deletion"
    return "500" if last_status == 500 else "answer"


class Attacker:
    """Rounds of the machine until the budget is spent or it fails once (then it is reported
    and kept in the corpus: the next round would only fail the same way)."""

    def __init__(self, session: Session, corpus: Path, *, shrink: bool, derandomize: bool) -> None:
        self.session = session
        self.database = (
            None if derandomize else DirectoryBasedExampleDatabase(str(corpus / "hypothesis"))
        )
        self.phases = [Phase.explicit, Phase.reuse, Phase.generate] + (
            [Phase.shrink] if shrink else []
        )
        self.derandomize = derandomize
        self.driver = _Live(session)
        self.failed = False

    def round(self, examples: int, steps: int) -> None:
        if self.failed:
            return
        try:
            run_state_machine_as_test(
                attack_machine(self.driver),
                settings=settings(
                    max_examples=examples,
                    stateful_step_count=steps,
                    deadline=None,
                    database=self.database,
                    derandomize=self.derandomize,
                    phases=self.phases,
                    suppress_health_check=list(HealthCheck),
                    report_multiple_bugs=False,
                    print_blob=False,
                ),
            )
        except OutOfBudget:
            pass
        except Exception as exc:  # an assertion of the machine, or an answer it cannot read
            self.failed = True
            if self.driver.last_held:  # else the answer was reported already, as it came
                text = str(exc).strip()
                message = f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
                invariant = _invariant_of(exc, self.driver.last_status)
                self.session.report(self.driver.last, invariant, message[:300])
        self.session.progress("attacker", f"a round of up to {examples} step sequences")
