"""A signing ``httpx.Auth`` for partners who call the gateway from Python."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator

import httpx

import signing

__all__ = ["PartnerAuth"]


def _wall_clock_ms() -> int:
    # Its own clock, not the server's envelope module: importing this module loads no server.
    return time.time_ns() // 1_000_000


class PartnerAuth(httpx.Auth):
    """Signs each request exactly as it goes on the wire: raw path, raw query, raw body bytes.

    Each request (a retry included) gets a fresh ``x-timestamp`` and so a fresh signature.
    """

    requires_request_body = True

    def __init__(
        self,
        *,
        partner_client_id: str,
        partner_secret: str,
        store_client_id: str,
        store_token: str,
        clock: Callable[[], int] = _wall_clock_ms,
    ) -> None:
        self._partner = partner_client_id
        self._secret = partner_secret.encode("utf-8")
        self._store = store_client_id
        self._token = store_token
        self._clock = clock

    def __repr__(self) -> str:
        return f"PartnerAuth(partner_client_id={self._partner!r}, store_client_id={self._store!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        timestamp = str(self._clock())
        path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
        signature = signing.sign_request(
            self._secret,
            method=request.method,
            path=path,
            query=request.url.query.decode("ascii"),
            partner_client_id=self._partner,
            store_client_id=self._store,
            store_token=self._token,
            timestamp=timestamp,
            body=request.content,
        )
        request.headers[signing.HEADER_PARTNER_CLIENT_ID] = self._partner
        request.headers[signing.HEADER_STORE_CLIENT_ID] = self._store
        request.headers[signing.HEADER_STORE_TOKEN] = self._token
        request.headers[signing.HEADER_TIMESTAMP] = timestamp
        request.headers[signing.HEADER_SIGNATURE] = signature
        yield request
