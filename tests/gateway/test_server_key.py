"""The server key, as real `partner-gateway` processes see it: several keys while rotating, a
re-seal, a secret sealed under a key nobody has, and no key at all beside DATABASE_URL."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

import catalog_store
from gateway.keys import MISSING_KEY
from gateway.settings import Settings
from tests.live import cli, partner_client, serving
from tests.support import (
    DELETIONS,
    Tenant,
    assert_error,
    body_of,
    gateway_app,
    make_tenant,
    run_with_pool,
)

pytestmark = pytest.mark.slow

#: The key the tests' own tenants are sealed with (tests/support.py puts it in the environment).
TEST_KEY = os.environ["GATEWAY_SECRET_KEY"]


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def refused(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout
    assert result.stdout == ""
    message: str = json.loads(result.stderr.strip().splitlines()[-1])["error"]
    return message


def _seal_under(database_url: str, key: str, tenant: Tenant) -> None:
    """Seal the tenant's secret anew under ``key``, as a host with another key would have."""
    box = catalog_store.SecretBox(catalog_store.parse_key(key))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE partner_secrets SET sealed = %s WHERE partner_id = %s AND key_id = 'k1'",
            (
                box.seal(tenant.secret.encode(), partner_id=tenant.partner_id, key_id="k1"),
                tenant.partner_id,
            ),
        )


def _delete_one(client: httpx.Client, tenant: Tenant, index: int) -> httpx.Response:
    return client.post(
        DELETIONS,
        content=body_of({"ids": [tenant.ids[index]]}),
        headers={"content-type": "application/json"},
    )


def test_a_new_key_in_front_then_reseal_then_the_old_key_dropped(
    database_url: str, tmp_path: Path
) -> None:
    """Rotation of the server key: with "new,old" every secret opens and new ones are sealed
    with the new key; `key reseal` moves the rest; then the new key alone serves everyone."""
    old = run_with_pool(database_url, lambda pool: make_tenant(pool, products=2, name="old"))
    new_key = catalog_store.generate_key()
    both = f"{new_key},{TEST_KEY}"
    created = ok_json(
        cli(database_url, "partner", "create", "--name", "New", GATEWAY_SECRET_KEY=both)
    )
    assert ok_json(cli(database_url, "key", "reseal", GATEWAY_SECRET_KEY=both)) == {"resealed": 2}
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT partner_id, key_id, sealed FROM partner_secrets").fetchall()
    only_new = catalog_store.SecretBox(catalog_store.parse_key(new_key))
    opened = {only_new.open(bytes(s), partner_id=p, key_id=k).decode() for p, k, s in rows}
    assert opened == {old.secret, created["secret"]}

    with serving(database_url, tmp_path, GATEWAY_SECRET_KEY=new_key) as server:
        ready = httpx.get(server.url + "/readyz", timeout=10)
        with partner_client(server, old) as client:
            deleted = _delete_one(client, old, 0)
    assert ready.status_code == 200, ready.text
    assert ready.json()["data"] == {"status": "ok", "unreadableSecrets": 0}
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["data"]["summary"] == {"total": 1, "succeeded": 1, "failed": 0}


def test_a_secret_sealed_under_an_unknown_key_blocks_nothing_else(
    database_url: str, tmp_path: Path
) -> None:
    """One partner's secret opens with no key: every command about others runs, `serve` starts
    and serves the others, /readyz and /metrics say so, and `rotate-secret` gives that partner a
    working secret."""
    fine = run_with_pool(database_url, lambda pool: make_tenant(pool, products=2, name="fine"))
    lost = run_with_pool(database_url, lambda pool: make_tenant(pool, products=2, name="lost"))
    _seal_under(database_url, catalog_store.generate_key(), lost)  # the newest secret of all

    assert ok_json(cli(database_url, "migrate"))["applied"] == []
    other = ok_json(cli(database_url, "partner", "create", "--name", "Other"))
    assert ok_json(cli(database_url, "partner", "disable", "--partner", other["partnerClientId"]))
    assert ok_json(cli(database_url, "key", "reseal")) == {
        "resealed": 2,
        "unreadable": [{"partnerClientId": lost.partner_client_id, "keyId": "k1"}],
    }

    with serving(database_url, tmp_path, GATEWAY_AUTH_CACHE_SECONDS="0") as server:
        ready = httpx.get(server.url + "/readyz", timeout=10)
        metrics = httpx.get(server.url + "/metrics", timeout=10).text
        with partner_client(server, fine) as client:
            served = _delete_one(client, fine, 0)
        with partner_client(server, lost) as client:
            unopened = _delete_one(client, lost, 0)
        rotated = ok_json(
            cli(database_url, "partner", "rotate-secret", "--partner", lost.partner_client_id)
        )
        renewed = dataclasses.replace(lost, secret=rotated["secret"])
        with partner_client(server, renewed) as client:
            after = _delete_one(client, renewed, 1)

    assert ready.status_code == 200, ready.text
    assert ready.json()["message"] == "Ready"
    assert ready.json()["data"] == {"status": "degraded", "unreadableSecrets": 1}
    assert "\ngateway_partner_secrets_unreadable 1.0\n" in metrics
    assert served.status_code == 200, served.text
    assert_error(
        unopened,
        503,
        "SYS_001",
        "Service temporarily unavailable",
        hint="The gateway cannot read its credentials; nothing was changed."
        " Retry after Retry-After seconds, or tell the gateway operator",
        context={"outcome": "unchanged"},
    )
    assert rotated["keyId"] == "k2" and rotated["retiredKeyIds"] == ["k1"]
    assert after.status_code == 200, after.text
    assert after.json()["data"]["summary"] == {"total": 1, "succeeded": 1, "failed": 0}
    log = next(tmp_path.glob("serve-*.log")).read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    reported = next(
        line
        for line in lines
        if line["event"] == "stored partner secrets do not open with the server key"
    )
    assert reported["secrets"] == [f"{lost.partner_client_id}/k1"] and reported["unreadable"] == 1
    assert lost.secret not in log and TEST_KEY not in log


@pytest.mark.anyio
async def test_a_key_that_opens_no_stored_secret_is_not_ready(
    database_url: str, tenant: Tenant
) -> None:
    """A gateway given another key than the database's (a second host that made its own) can
    authenticate nobody: /readyz answers 503, so a load balancer sends it no partner."""
    wrong = catalog_store.SecretBox(catalog_store.parse_key(catalog_store.generate_key()))
    settings = Settings(pool_min=1, pool_max=2, retry_after_seconds=7)
    async with gateway_app(database_url, settings=settings, secret_box=wrong) as (_, client):
        ready = await client.get("/readyz")
        metrics = (await client.get("/metrics")).text
    assert ready.headers["retry-after"] == "7"
    assert_error(
        ready,
        503,
        "SYS_001",
        "Service temporarily unavailable",
        hint="The server key of this gateway opens none of the stored partner secrets: give it"
        " the GATEWAY_SECRET_KEY of the other gateways (see the operations guide, The server"
        " key)",
        context={"outcome": "unchanged", "storedSecrets": 1, "unreadableSecrets": 1},
    )
    assert "\ngateway_partner_secrets_unreadable 1.0\n" in metrics


def test_with_database_url_and_no_key_the_commands_that_need_it_refuse(
    database_url: str, tmp_path: Path
) -> None:
    """No key file is made beside a DATABASE_URL: `serve`, `partner create` and `key reseal`
    refuse, naming the variable and `key generate`; a command that needs no key runs."""
    data = tmp_path / "data"
    no_key = {"GATEWAY_SECRET_KEY": "", "GATEWAY_DATA_DIR": str(data)}
    assert ok_json(cli(database_url, "migrate", **no_key))["applied"] == []
    for args in (
        ["serve", "--port", "1"],
        ["partner", "create", "--name", "x"],
        ["key", "reseal"],
    ):
        assert refused(cli(database_url, *args, **no_key)) == MISSING_KEY, args
    assert not data.exists()
