"""Paging of the batch route's results: ``limit``, and the ``cursor`` that the route hands out."""

from __future__ import annotations

import base64
import re
from typing import Annotated

import msgspec
from starlette.requests import Request

from .errors import ApiError
from .target import query_problems

__all__ = ["CURSOR_PATTERN", "DEFAULT_PAGE", "MAX_OFFSET", "MAX_PAGE", "encode_cursor", "page"]

DEFAULT_PAGE = 100
MAX_PAGE = 1_000
MAX_OFFSET = 10**9


class _Cursor(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a page cursor holds: the offset of the next entry."""

    o: Annotated[int, msgspec.Meta(ge=0, le=MAX_OFFSET)]


_CURSOR = msgspec.json.Decoder(_Cursor)
# base64url of {"o":1000000000}, unpadded, is 24 characters
CURSOR_PATTERN = "^[A-Za-z0-9_-]{1,32}$"
_CURSOR_TEXT = re.compile(CURSOR_PATTERN)
_BAD_CURSOR = "must be a nextCursor value returned by this endpoint"


def encode_cursor(offset: int) -> str:
    """``{"o": offset}`` as unpadded base64url: URL-safe as it is, so it is signed as sent."""
    raw = msgspec.json.encode(_Cursor(o=offset))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _cursor_offset(text: str) -> int | None:
    """The offset of a cursor this route made, or None: bounded before it is decoded, decoded
    by a typed decoder, and only in the one spelling that ``encode_cursor`` writes."""
    if not _CURSOR_TEXT.fullmatch(text):
        return None
    try:
        offset = _CURSOR.decode(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))).o
    except ValueError:  # binascii.Error and msgspec.DecodeError are ValueErrors
        return None
    return offset if encode_cursor(offset) == text else None


def page(request: Request) -> tuple[int, int]:
    """``limit`` (1-1,000, default 100) and the offset in ``cursor``; VAL_001 naming the bad
    ones, and any other query parameter."""
    params = request.query_params
    errors = query_problems(request, allowed=("limit", "cursor"))
    limit = DEFAULT_PAGE
    raw_limit = params.get("limit")
    if raw_limit is not None and "limit" not in errors:
        digits = raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 7
        if digits and 1 <= int(raw_limit) <= MAX_PAGE:
            limit = int(raw_limit)
        else:
            errors["limit"] = f"must be a whole number from 1 to {MAX_PAGE:,}"
    offset = 0
    raw_cursor = params.get("cursor")
    if raw_cursor is not None and "cursor" not in errors:
        decoded = _cursor_offset(raw_cursor)
        if decoded is None:
            errors["cursor"] = _BAD_CURSOR
        else:
            offset = decoded
    if errors:
        raise ApiError("VAL_001", context={"validationErrors": errors})
    return limit, offset
