"""The timestamp window: pure arithmetic on milliseconds, the clock passed in."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WINDOW_MS", "TimestampCheck", "check_timestamp"]

#: How far a request's timestamp may be from the server's clock, either way.
WINDOW_MS = 300_000

# A millisecond timestamp of today has 13 digits; one of 9 to 11 digits within the window once
# multiplied by 1,000 was almost surely sent in seconds.
_SECONDS_DIGITS = range(9, 12)


@dataclass(frozen=True, slots=True)
class TimestampCheck:
    """The outcome of comparing a request's timestamp with the server's clock."""

    provided_ms: int
    now_ms: int
    within_window: bool
    looks_like_seconds: bool

    @property
    def age_seconds(self) -> int:
        """Whole seconds since the timestamp, truncated towards zero; negative if in the future."""
        age_ms = self.now_ms - self.provided_ms
        return age_ms // 1000 if age_ms >= 0 else -((-age_ms) // 1000)


def check_timestamp(timestamp: str, *, now_ms: int, window_ms: int = WINDOW_MS) -> TimestampCheck:
    """Compare a decimal millisecond timestamp with ``now_ms``.

    ``timestamp`` must already be known to be decimal digits (``string_to_sign`` refuses others).
    """
    provided = int(timestamp)
    within = abs(now_ms - provided) <= window_ms
    seconds = (
        not within
        and len(timestamp) in _SECONDS_DIGITS
        and abs(now_ms - provided * 1000) <= window_ms
    )
    return TimestampCheck(provided, now_ms, within, seconds)
