"""The operator's security commands, as real `partner-gateway` processes: rotate and retire a
secret, disable a partner, revoke a token, scopes, the server key, and sealing by migrate."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import psycopg
import pytest

import catalog_store
from tests.live import cli

pytestmark = pytest.mark.slow


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" or "error" not in result.stderr
    return json.loads(result.stdout)


def failed_with(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, result.stdout
    assert result.stdout == ""
    assert json.loads(result.stderr.strip().splitlines()[-1]) == {"error": message}


_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")


def test_rotate_retire_disable_revoke_and_scopes(database_url: str) -> None:
    partner = ok_json(cli(database_url, "partner", "create", "--name", "Acme"))
    pid = partner["partnerClientId"]
    store = ok_json(cli(database_url, "store", "create", "--name", "Shop"))["storeClientId"]
    failed_with(
        cli(database_url, "token", "issue", "--partner", pid, "--store", store, "--scopes", "x:y"),
        "unknown scope x:y; known scopes: products:delete, batches:read",
    )
    token = ok_json(
        cli(
            database_url,
            *("token", "issue", "--partner", pid, "--store", store, "--scopes", "products:delete"),
        )
    )["storeToken"]

    failed_with(
        cli(database_url, "partner", "retire-secret", "--partner", pid),
        f"k1 is the only active secret of partner {pid}: rotate first"
        " (partner rotate-secret), then retire the old one",
    )
    rotated = ok_json(cli(database_url, "partner", "rotate-secret", "--partner", pid))
    assert list(rotated) == ["partnerClientId", "keyId", "secret", "createdAt"]
    assert (rotated["partnerClientId"], rotated["keyId"]) == (pid, "k2")
    assert rotated["secret"].startswith("psk_") and rotated["secret"] != partner["secret"]
    assert _ISO.fullmatch(rotated["createdAt"])
    failed_with(
        cli(database_url, "partner", "rotate-secret", "--partner", pid),
        f"partner {pid} already has 2 active secrets: retire one first (partner retire-secret)",
    )
    listed = ok_json(cli(database_url, "partner", "secrets", "--partner", pid))
    assert [(s["keyId"], s["retiredAt"]) for s in listed["secrets"]] == [("k1", None), ("k2", None)]
    retired = ok_json(cli(database_url, "partner", "retire-secret", "--partner", pid))
    assert retired == {"partnerClientId": pid, "retiredKeyId": "k1", "activeKeyIds": ["k2"]}
    listed = ok_json(cli(database_url, "partner", "secrets", "--partner", pid))
    assert listed["secrets"][0]["keyId"] == "k1" and _ISO.fullmatch(
        listed["secrets"][0]["retiredAt"]
    )
    assert partner["secret"] not in json.dumps(listed) and rotated["secret"] not in json.dumps(
        listed
    )

    assert ok_json(cli(database_url, "partner", "disable", "--partner", pid)) == {
        "partnerClientId": pid,
        "active": False,
    }
    assert ok_json(cli(database_url, "partner", "enable", "--partner", pid)) == {
        "partnerClientId": pid,
        "active": True,
    }
    failed_with(cli(database_url, "partner", "disable", "--partner", "nobody"), "no partner nobody")

    assert ok_json(cli(database_url, "token", "revoke", "--token", token)) == {"revoked": True}
    failed_with(
        cli(database_url, "token", "revoke", "--token", token),
        "no live token with that value (unknown, or already revoked)",
    )
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT revoked_at IS NOT NULL FROM store_tokens WHERE token_hash = %s",
            (catalog_store.hash_token(token),),
        ).fetchone()
    assert row == (True,)


def test_key_generate_prints_a_usable_key(database_url: str) -> None:
    key = ok_json(cli(database_url, "key", "generate"))
    assert list(key) == ["secretKey"] and len(catalog_store.parse_key(key["secretKey"])) == 32


def test_migrate_seals_plain_secrets(database_url: str) -> None:
    """An install from before the sealing keeps working: migrate seals its plain secret. (A key
    that does not open a stored secret blocks no command: tests/gateway/test_server_key.py.)"""
    partner = ok_json(cli(database_url, "partner", "create", "--name", "Old"))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE partner_secrets SET secret = %s, sealed = NULL", (partner["secret"].encode(),)
        )
    ok_json(cli(database_url, "migrate"))
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT secret, sealed IS NOT NULL FROM partner_secrets").fetchall()
    assert rows == [(None, True)]
