"""The security testers' fuzz campaign (``make fuzz``): the attacker state machine, schemathesis,
the hostile inputs and raw-socket cases against a real ``serve``, for a chosen time or number of
cases, each finding reported as a reproducible request with the invariant it broke.

It lives outside ``gateway/`` so the server never imports its test dependencies."""

from .findings import INVARIANTS, Finding, Findings

__all__ = ["INVARIANTS", "Finding", "Findings"]
