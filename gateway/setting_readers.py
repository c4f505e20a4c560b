"""How a setting's text becomes a value: each reader checks it, raises SettingsError naming the
variable, and states its bounds for the docs ("" when it has none). ``Secret`` hides a value."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog_store import parse_keys

__all__ = [
    "Choice",
    "Folder",
    "Number",
    "Reader",
    "Secret",
    "SecretText",
    "ServerKeys",
    "SettingsError",
    "Text",
    "Whole",
    "WritableFolder",
]


class SettingsError(ValueError):
    """A variable of the environment is not acceptable; the message names it."""


class Secret:
    """A string that never shows itself in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class Text:
    bounds = ""

    def read(self, variable: str, raw: str) -> Any:
        return raw


@dataclass(frozen=True, slots=True)
class Folder(Text):
    def read(self, variable: str, raw: str) -> Any:
        return Path(raw)


@dataclass(frozen=True, slots=True)
class Whole:
    low: int
    high: int

    @property
    def bounds(self) -> str:
        return f"{self.low}–{self.high}"

    def read(self, variable: str, raw: str) -> Any:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{variable}={raw!r} is not a whole number") from None
        if not self.low <= value <= self.high:
            raise SettingsError(f"{variable}={value} must be between {self.low} and {self.high}")
        return value


@dataclass(frozen=True, slots=True)
class Number:
    low: float
    high: float

    @property
    def bounds(self) -> str:
        return f"{self.low:g}–{self.high:g}"

    def read(self, variable: str, raw: str) -> Any:
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{variable}={raw!r} is not a number") from None
        if not self.low <= value <= self.high:
            raise SettingsError(f"{variable}={value} must be between {self.low} and {self.high}")
        return value


@dataclass(frozen=True, slots=True)
class Choice:
    """One of a few words; ``fold_case`` takes any case (and words its refusal as a list)."""

    words: tuple[str, ...]
    fold_case: bool = False
    bounds = ""

    def read(self, variable: str, raw: str) -> Any:
        value = raw.lower() if self.fold_case else raw
        if value in self.words:
            return value
        if self.fold_case:
            raise SettingsError(f"{variable}={value!r} must be one of {', '.join(self.words)}")
        *first, last = self.words
        raise SettingsError(f"{variable}={value!r} must be {', '.join(first)} or {last}")


@dataclass(frozen=True, slots=True)
class SecretText(Text):
    def read(self, variable: str, raw: str) -> Any:
        return Secret(raw)


@dataclass(frozen=True, slots=True)
class ServerKeys(Text):
    def read(self, variable: str, raw: str) -> Any:
        try:
            parse_keys(raw)
        except ValueError as exc:
            # The reason only: never the value itself.
            raise SettingsError(
                f"{variable} {exc}: give base64 of 32 random bytes, or several"
                " comma-separated, newest first (partner-gateway key generate prints one)"
            ) from None
        return Secret(raw)


@dataclass(frozen=True, slots=True)
class WritableFolder(Text):
    def read(self, variable: str, raw: str) -> Any:
        path = Path(raw)
        if path.exists() and not path.is_dir():
            raise SettingsError(f"{variable}={raw!r} is not a folder")
        if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
            raise SettingsError(f"{variable}={raw!r} is not writable")
        return path


Reader = Text | Whole | Number | Choice
