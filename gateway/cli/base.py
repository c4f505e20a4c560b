"""What every command group shares: the user's error, JSON out, the failure line, number flags."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from ..logs import flush_logs

__all__ = ["CommandError", "fail", "iso", "natural", "print_json"]


class CommandError(Exception):
    """A failure the user can fix; printed as ``{"error": ...}`` with exit status 2."""


def print_json(value: Any, *, ensure_ascii: bool = True) -> None:
    """One JSON line on stdout. The partner commands print what the gateway answered as it came
    (``ensure_ascii=False``); the operator commands escape non-ASCII, as they always have."""
    sys.stdout.write(json.dumps(value, ensure_ascii=ensure_ascii) + "\n")


def fail(message: str) -> None:
    """``{"error": message}`` on stderr, after the log lines already written (it stays last)."""
    flush_logs(1.0)
    sys.stderr.write(json.dumps({"error": message}) + "\n")


def iso(moment: datetime | None) -> str | None:
    """A stored time as the commands print it: UTC, milliseconds."""
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="milliseconds")


def natural(text: str) -> int:
    """An argparse type: a whole number from 0 to 10,000,000."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= 10_000_000:
        raise argparse.ArgumentTypeError(f"{value} must be between 0 and 10,000,000")
    return value
