"""`partner-gateway config`: the effective settings, every field of Settings, secrets masked."""

from __future__ import annotations

import json
from dataclasses import fields

from gateway.settings import Settings
from tests.live import cli


def test_config_prints_every_setting_with_the_database_password_masked() -> None:
    url = "postgresql://gw:hunter2@db.internal:5432/catalog"
    done = cli(url, "config", GATEWAY_PORT="9100", GATEWAY_SHUTDOWN_GRACE="12")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert list(shown) == [spec.name for spec in fields(Settings)]
    assert shown["database_url"] == "**********"
    assert shown["port"] == 9100 and shown["shutdown_grace"] == 12.0
    assert shown["log_format"] == "json"  # what the tests' environment sets
    assert "hunter2" not in done.stdout + done.stderr


def test_config_names_a_bad_variable_and_exits_2() -> None:
    done = cli("postgresql://db/x", "config", GATEWAY_SHUTDOWN_GRACE="soon")
    assert done.returncode == 2
    assert done.stdout == ""
    assert json.loads(done.stderr) == {"error": "GATEWAY_SHUTDOWN_GRACE='soon' is not a number"}
