"""The first step of every signed route: who sent the request, and its body; and what a request
refused after that step costs (its signature is spent)."""

from __future__ import annotations

from starlette.requests import Request

import catalog_store

from .auth import AuthContext, authenticate
from .body import read_capped_body
from .context import request_context
from .errors import ApiError

__all__ = ["authenticated", "spent"]


def _raw_target(request: Request) -> tuple[str, str]:
    """The path and query exactly as sent (some servers put the query in raw_path too)."""
    raw_path: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    path = raw_path.split(b"?", 1)[0]
    query: bytes = request.scope.get("query_string", b"")
    return path.decode("utf-8", "replace"), query.decode("utf-8", "replace")


async def authenticated(request: Request, *, scope: str) -> tuple[AuthContext, bytes]:
    """Who sent the request, and its body, read only once checks 1 to 3 have passed."""
    path, query = _raw_target(request)
    context = request_context(request)
    settings = request.app.state.settings
    auth, body = await authenticate(
        request.app.state.credentials,
        method=request.method,
        path=path,
        query=query,
        headers=request.scope["headers"],
        read_body=lambda: read_capped_body(request, timeout=settings.body_timeout),
        now_ms=context.now_ms(),
        scope=scope,
        max_header_bytes=settings.max_header_bytes,
    )
    context.authenticated(
        partner=auth.partner_client_id, store=auth.store_client_id, key_id=auth.key_id
    )
    request.app.state.key_use.note(auth.partner_id, auth.key_id)
    return auth, body


async def spent(pool: catalog_store.Pool, auth: AuthContext, error: ApiError) -> ApiError:
    """A request refused after its signature verified is spent all the same: sent again, it is
    AUTH_006. Its replay record does not count toward the rate limit. Replay (step 6) comes
    before the body and the query: a replayed request is AUTH_006 whatever else is wrong."""
    try:
        await catalog_store.spend_nonce(pool, auth.nonce)
    except catalog_store.Replayed:
        return ApiError("AUTH_006")
    return error
