"""The request target of a signed route: its canonical path only, and only the query
parameters that the route defines."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl

from starlette.requests import Request

from .errors import ApiError

__all__ = ["query_problems", "require_canonical_path"]

_NAME_CHARS = 200


def require_canonical_path(request: Request) -> None:
    """``ROUTE_001`` unless the path was sent exactly as the route writes it.

    The router matches the decoded path, so ``…/%64eletions``, ``…/products%2Fdeletions`` or
    ``…/deletions%0a`` would reach the route too. A proxy's rules see the raw path: a signed
    route answers only the one spelling that such rules can match, with nothing
    percent-encoded in it.
    """
    raw: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    raw = raw.split(b"?", 1)[0]
    if b"%" in raw or raw != request.scope["path"].encode("utf-8", "replace"):
        shown = raw.decode("latin-1")[:_NAME_CHARS]
        raise ApiError("ROUTE_001", context={"path": shown})


def query_problems(
    request: Request, *, allowed: tuple[str, ...], body_fields: Iterable[str] = ()
) -> dict[str, str]:
    """What is wrong with the query, by parameter name: a parameter the route does not
    define, or one given twice. Empty when the query is fine."""
    raw = request.scope.get("query_string", b"").decode("latin-1")
    in_body = set(body_fields)
    takes = "it takes " + " and ".join(allowed) if allowed else "it takes none"
    problems: dict[str, str] = {}
    seen: set[str] = set()
    for name, _ in parse_qsl(raw, keep_blank_values=True):
        shown = name[:_NAME_CHARS]
        if name in allowed:
            if name in seen:
                problems[shown] = "is given more than once in the query; send it once"
            seen.add(name)
        elif name in in_body:
            problems[shown] = f"{name} belongs in the JSON body, not in the query"
        else:
            problems[shown] = f"is not a query parameter of this route; {takes}"
    return problems
