"""The auth classes that docs/signing.md gives partners who use httpx or requests: taken from the
page as written and used against a served gateway."""

from __future__ import annotations

import importlib
import re
import uuid
from typing import Any

import pytest

from tests.live import ROOT, Server
from tests.support import DELETIONS, Tenant, make_tenant, run_with_pool

GUIDE = ROOT / "docs" / "signing.md"


def _auth_class(base: str) -> Any:
    """The GatewayAuth class of the guide's block that subclasses ``base``, executed."""
    blocks = re.findall(r"```python\n(.*?)\n```", GUIDE.read_text("utf-8"), flags=re.S)
    [block] = [b for b in blocks if f"class GatewayAuth({base}):" in b]
    namespace: dict[str, Any] = {}
    exec(compile(block, str(GUIDE), "exec"), namespace)
    return namespace["GatewayAuth"]


def _tenant(database_url: str) -> Tenant:
    return run_with_pool(database_url, lambda p: make_tenant(p, products=2, name="auth class"))


def _credentials(tenant: Tenant) -> tuple[str, str, str, str]:
    return tenant.partner_client_id, tenant.secret, tenant.store_client_id, tenant.token


def test_the_httpx_auth_class_signs_a_deletion_its_retry_and_a_query(
    database_url: str, gateway: Server
) -> None:
    import httpx

    tenant = _tenant(database_url)
    auth = _auth_class("httpx.Auth")(*_credentials(tenant))
    key = {"idempotency-key": str(uuid.uuid4())}
    with httpx.Client(base_url=gateway.url, auth=auth, timeout=30) as client:
        first = client.post(DELETIONS, json={"ids": tenant.ids[:1]}, headers=key)
        assert first.status_code == 200, first.text
        assert first.json()["data"]["summary"] == {"total": 1, "succeeded": 1, "failed": 0}
        # Sent again: signed anew (no AUTH_006), the first answer replayed for the same key.
        again = client.post(DELETIONS, json={"ids": tenant.ids[:1]}, headers=key)
        assert again.status_code == 200 and again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        # A query is signed as sent: the batch is unknown, so authentication passed.
        read = client.get(f"{DELETIONS}/{uuid.uuid4()}", params={"limit": "10"})
        assert (read.status_code, read.json()["error"]["code"]) == (404, "BAT_001")


def test_the_requests_auth_class_signs_a_deletion_its_retry_and_a_query(
    database_url: str, gateway: Server
) -> None:
    requests: Any = importlib.import_module("requests")  # installed with schemathesis
    tenant = _tenant(database_url)
    auth = _auth_class("requests.auth.AuthBase")(*_credentials(tenant))
    key = {"idempotency-key": str(uuid.uuid4())}
    url = gateway.url + DELETIONS
    first = requests.post(url, json={"ids": tenant.ids[1:]}, headers=key, auth=auth, timeout=30)
    assert first.status_code == 200, first.text
    assert first.json()["data"]["summary"] == {"total": 1, "succeeded": 1, "failed": 0}
    again = requests.post(url, json={"ids": tenant.ids[1:]}, headers=key, auth=auth, timeout=30)
    assert again.status_code == 200 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    read = requests.get(f"{url}/{uuid.uuid4()}?limit=10", auth=auth, timeout=30)
    assert (read.status_code, read.json()["error"]["code"]) == (404, "BAT_001")
    # A str body would be sent as Latin-1 bytes, not the UTF-8 bytes signed: refused up front.
    with pytest.raises(TypeError, match="as bytes"):
        requests.post(url, data='{"ids":["ü"]}', auth=auth, timeout=30)
