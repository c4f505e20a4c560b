"""Request bodies decoded by typed msgspec decoders, every failure said in our own words.

The happy path is one typed decode. Only when it fails is the body read again, as a map of raw
values, and each field checked with its own typed decoder: that names the field structurally
and the reason is a sentence of ours. A library's message text is never read, so an upgrade of
the library cannot change what a partner is told.
"""

from __future__ import annotations

import json
import typing
from typing import Any, Generic, TypeVar

import msgspec
from msgspec import inspect

from .errors import InvalidField

__all__ = ["BodyDecoder", "InvalidField"]

T = TypeVar("T", bound=msgspec.Struct)

#: The reason given for a field sent twice in one JSON object.
REPEATED = "is given more than once in the JSON object; send each field once"
_MALFORMED = (msgspec.DecodeError, UnicodeDecodeError)
_TOO_DEEP = "nests arrays or objects too deeply; send one flat JSON object"


def _strip(info: inspect.Type) -> inspect.Type:
    while isinstance(info, inspect.Metadata):
        info = info.type
    return info


def _plain(tp: Any) -> Any:
    """``Annotated[X, ...]`` → ``X``."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _kind(raw: bytes) -> str:
    """What a JSON value is, from its first character: the grammar, not a parser's message."""
    first = raw.lstrip(b" \t\r\n")[:1]
    return {
        b"{": "an object",
        b"[": "an array",
        b'"': "a string",
        b"t": "a boolean",
        b"f": "a boolean",
        b"n": "null",
    }.get(first, "a number")


def _bounds(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"{low:,} to {high:,}"
    if high is not None:
        return f"at most {high:,}"
    return f"at least {low:,}" if low is not None else ""


def _noun(info: inspect.Type, *, plural: bool) -> str:
    info = _strip(info)
    if isinstance(info, inspect.BoolType):
        return "booleans" if plural else "true or false"
    if isinstance(info, inspect.StrType):
        bounds = _bounds(info.min_length, info.max_length)
        noun = "strings" if plural else "a string"
        return f"{noun} of {bounds} characters" if bounds else noun
    if isinstance(info, inspect.IntType):
        return "whole numbers" if plural else "a whole number"
    if isinstance(info, inspect.ListType):
        return "arrays" if plural else f"an array of {_noun(info.item_type, plural=True)}"
    return "values of the documented type" if plural else "a value of the documented type"


def _describe(info: inspect.Type) -> str:
    """A wire type in words: ``an array of strings``, ``true or false``..."""
    return _noun(info, plural=False)


class _Field:
    """One field of a wire type: its typed decoder and, for an array, its items'."""

    def __init__(self, name: str, annotation: Any, info: inspect.Type) -> None:
        self.name = name
        self.info = _strip(info)
        self.decoder = msgspec.json.Decoder(annotation)
        self.items: msgspec.json.Decoder[Any] | None = None
        if isinstance(self.info, inspect.ListType):
            (item,) = typing.get_args(_plain(annotation))
            self.items = msgspec.json.Decoder(item)


class BodyDecoder(Generic[T]):
    """Decode a JSON body into ``type_``; raise :class:`InvalidField` naming what is wrong.

    A field given twice (``{"ids": [...], "ids": [...]}``) is refused too: JSON parsers
    disagree on which one wins, so such a body means different things to different readers.
    The fields looked for are the type's own, so a field added later is covered.
    """

    def __init__(self, type_: type[T], *, example: str) -> None:
        self.type = type_
        self.example = example
        self._decoder = msgspec.json.Decoder(type_)
        info = inspect.type_info(type_)
        assert isinstance(info, inspect.StructType)
        hints = typing.get_type_hints(type_, include_extras=True)
        self._fields = {
            f.encode_name: _Field(f.encode_name, hints[f.name], f.type) for f in info.fields
        }
        self._required = [f.encode_name for f in info.fields if f.required]
        self._quoted = [b'"' + name.encode() + b'"' for name in self._fields]
        self._raw_map = msgspec.json.Decoder(dict[str, msgspec.Raw])
        self._raw_list = msgspec.json.Decoder(list[msgspec.Raw])
        self._text = msgspec.json.Decoder(str)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(self._fields)

    def decode(self, body: bytes) -> T:
        try:
            value = self._decoder.decode(body)
        except (*_MALFORMED, RecursionError):
            raise self._diagnose(body) from None
        # msgspec keeps the last of repeated keys without a word. The body is now known to be
        # one object of this type, shallow, so the exact check with the standard parser is
        # safe; it runs only when a field's name occurs twice, or may hide behind a \u escape.
        if b"\\u" in body or any(body.count(key) > 1 for key in self._quoted):
            self._refuse_repeated_keys(body)
        return value

    def _diagnose(self, body: bytes) -> InvalidField:
        """Why the typed decode failed, found by decoding again, field by field."""
        if not body.strip(b" \t\r\n"):
            return InvalidField("body", f"is empty: send a JSON object such as {self.example}")
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return InvalidField("body", "is not valid JSON: JSON text must be encoded in UTF-8")
        try:
            raw = self._raw_map.decode(body)
        except RecursionError:
            return InvalidField("body", _TOO_DEEP)
        except msgspec.ValidationError:
            return InvalidField(
                "body", f"must be a JSON object such as {self.example}; got {_kind(body)}"
            )
        except _MALFORMED:
            return InvalidField("body", "is not valid JSON")
        for name, value in raw.items():
            field = self._fields.get(name)
            if field is None:
                expected = ", ".join(self._fields)
                return InvalidField(name, f"is not a field of this request; expected {expected}")
            reason = self._check(field, bytes(value))
            if reason is not None:
                return InvalidField(name, reason)
        for name in self._required:
            if name not in raw:
                return InvalidField(name, "is required")
        try:
            self._refuse_repeated_keys(body)
        except InvalidField as exc:
            return exc
        except (RecursionError, ValueError):  # msgspec read it, so in principle unreachable
            return InvalidField("body", _TOO_DEEP)
        return InvalidField("body", "is not a valid body for this request")

    def _check(self, field: _Field, raw: bytes) -> str | None:
        """None when the value decodes as the field's type, else what is wrong with it."""
        try:
            field.decoder.decode(raw)
        except _MALFORMED:
            pass
        else:
            return None
        info = field.info
        wanted = _describe(info)
        if isinstance(info, inspect.ListType) and field.items is not None:
            if _kind(raw) != "an array":
                return f"must be {wanted}; got {_kind(raw)}"
            items = self._raw_list.decode(raw)
            if info.max_length is not None and len(items) > info.max_length:
                return f"must have at most {info.max_length:,} entries; got {len(items):,}"
            if info.min_length is not None and len(items) < info.min_length:
                return f"must have at least {info.min_length:,} entries; got {len(items):,}"
            for index, item in enumerate(items):
                problem = self._item_problem(field.items, _strip(info.item_type), bytes(item))
                if problem is not None:
                    return f"must be {wanted}; {field.name}[{index}] {problem}"
            return f"must be {wanted}"
        if _kind(raw) != _KINDS.get(type(info), _kind(raw)):
            return f"must be {wanted}; got {_kind(raw)}"
        return f"must be {wanted}"

    def _item_problem(
        self, decoder: msgspec.json.Decoder[Any], info: inspect.Type, raw: bytes
    ) -> str | None:
        try:
            decoder.decode(raw)
        except _MALFORMED:
            pass
        else:
            return None
        kind = _kind(raw)
        if kind != _KINDS.get(type(info), kind):
            return f"is {kind}"
        if isinstance(info, inspect.StrType):
            length = len(self._text.decode(raw))
            return "is empty" if length == 0 else f"has {length:,} characters"
        return "is out of range"

    @staticmethod
    def _refuse_repeated_keys(body: bytes) -> None:
        # Only the keys matter: numbers are left as text (an integer of thousands of digits
        # would be refused by int()), and a value is never built.
        json.loads(
            body,
            object_pairs_hook=_refuse_repeated_pairs,
            parse_int=_ignore,
            parse_float=_ignore,
            parse_constant=_ignore,
        )


_KINDS: dict[type[Any], str] = {
    inspect.StrType: "a string",
    inspect.BoolType: "a boolean",
    inspect.IntType: "a number",
    inspect.FloatType: "a number",
    inspect.ListType: "an array",
}


def _ignore(text: str) -> None:
    return None


def _refuse_repeated_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise InvalidField(key, REPEATED)
        seen.add(key)
    return dict(pairs)
