"""Which partner secret verified a request: its key id in the request's log line (never the
secret), and `partner secrets` showing each key's last use, written without a write per
request, so an operator sees when a rotation's old secret is no longer used."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest
import structlog

import catalog_store
from tests.live import cli
from tests.support import TEST_BOX, Tenant, delete, gateway_client

pytestmark = pytest.mark.anyio


async def test_the_key_id_is_logged_and_partner_secrets_shows_when_each_key_was_last_used(
    database_url: str, pool: catalog_store.Pool, tenant: Tenant
) -> None:
    rotated = await catalog_store.rotate_secret(
        pool, partner_client_id=tenant.partner_client_id, box=TEST_BOX
    )
    with structlog.testing.capture_logs() as logs:
        async with gateway_client(database_url) as client:
            answer = await delete(
                client, dataclasses.replace(tenant, secret=rotated.secret), {"ids": tenant.ids[:1]}
            )
            while_serving = await catalog_store.list_secrets(
                pool, partner_client_id=tenant.partner_client_id
            )
    listed = cli(database_url, "partner", "secrets", "--partner", tenant.partner_client_id)
    assert answer.status_code == 200
    requests = [entry for entry in logs if entry.get("event") == "request"]
    assert [entry["key_id"] for entry in requests] == ["k2"]
    assert rotated.secret not in repr(logs) and tenant.secret not in repr(logs)
    # Not written by the request itself: by the process, at most once a minute (here at its
    # stop, the last minute's uses).
    assert [info.last_used_at for info in while_serving] == [None, None]
    assert listed.returncode == 0, listed.stderr
    secrets = {s["keyId"]: s for s in json.loads(listed.stdout)["secrets"]}
    assert secrets["k1"]["lastUsedAt"] is None  # the old secret: not used since the rotation
    last_used = datetime.fromisoformat(secrets["k2"]["lastUsedAt"])
    assert timedelta(0) <= datetime.now(UTC) - last_used < timedelta(minutes=1)
