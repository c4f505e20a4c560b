"""Settings come from the environment, are checked at start, and never show a secret."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from gateway.settings import (
    ENVIRONMENT,
    Secret,
    Settings,
    SettingsError,
    effective_settings,
    load_settings,
)


def test_defaults_serve_on_loopback_with_the_embedded_database() -> None:
    assert load_settings({}) == Settings()
    assert Settings().host == "127.0.0.1" and Settings().port == 8000
    assert Settings().database_url is None and Settings().data_dir == Path(".data")


def test_every_variable_is_read() -> None:
    env = {
        "DATABASE_URL": "postgresql://u:pw@db/x",
        "GATEWAY_DATA_DIR": "/srv/gw",
        "GATEWAY_HOST": "0.0.0.0",
        "GATEWAY_PORT": "9000",
        "GATEWAY_LOG_FORMAT": "json",
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_DB_POOL_MIN": "1",
        "GATEWAY_DB_POOL_MAX": "3",
        "GATEWAY_DB_TIMEOUT": "0.5",
        "GATEWAY_DB_DEADLINE": "2.5",
        "GATEWAY_DB_DEADLINE_DISPATCH": "90",
        "GATEWAY_WORKER_DB_DEADLINE": "120",
        "GATEWAY_RETRY_AFTER": "9",
        "GATEWAY_NONCE_PURGE_INTERVAL": "30",
        "GATEWAY_WORKER_HEARTBEAT": "1",
        "GATEWAY_WORKER_STALLED_AFTER": "4",
        "GATEWAY_WORKER_UPKEEP_INTERVAL": "2",
        "GATEWAY_BATCH_RETENTION_DAYS": "3",
        "GATEWAY_BATCH_CHUNK_SIZE": "50",
        "GATEWAY_SHUTDOWN_GRACE": "4.5",
        "PROMETHEUS_MULTIPROC_DIR": "/run/gw-metrics",
        "GATEWAY_ARCHIVE_RETENTION_DAYS": "90",
        "GATEWAY_SECRET_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "GATEWAY_AUTH_CACHE_SECONDS": "0.5",
        "GATEWAY_RATE_LIMIT_REQUESTS": "20",
        "GATEWAY_RATE_LIMIT_WINDOW": "5",
        "GATEWAY_RATE_LIMIT_BATCHES": "1",
        "GATEWAY_MAX_HEADER_BYTES": "4096",
        "GATEWAY_MAX_URL_BYTES": "2048",
        "GATEWAY_MAX_HEADER_BLOCK_BYTES": "16384",
        "GATEWAY_HEADER_TIMEOUT": "3",
        "GATEWAY_BODY_TIMEOUT": "20",
        "GATEWAY_KEEPALIVE_TIMEOUT": "2.5",
        "GATEWAY_MIGRATION_LOCK_TIMEOUT": "0.2",
        "GATEWAY_MIGRATION_RETRY_FOR": "60",
    }
    assert set(env) == set(ENVIRONMENT)
    assert load_settings(env) == Settings(
        database_url=Secret("postgresql://u:pw@db/x"),
        data_dir=Path("/srv/gw"),
        host="0.0.0.0",
        port=9000,
        log_format="json",
        log_level="warning",
        pool_min=1,
        pool_max=3,
        db_timeout=0.5,
        db_deadline=2.5,
        db_deadline_dispatch=90.0,
        worker_db_deadline=120.0,
        retry_after_seconds=9,
        nonce_purge_interval=30.0,
        worker_heartbeat=1.0,
        worker_stalled_after=4.0,
        worker_upkeep_interval=2.0,
        batch_retention_days=3,
        batch_chunk_size=50,
        shutdown_grace=4.5,
        metrics_dir=Path("/run/gw-metrics"),
        archive_retention_days=90,
        secret_key=Secret("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
        auth_cache_seconds=0.5,
        rate_limit_requests=20,
        rate_limit_window=5,
        rate_limit_batches=1,
        max_header_bytes=4096,
        max_url_bytes=2048,
        max_header_block_bytes=16384,
        header_timeout=3.0,
        body_timeout=20.0,
        keepalive_timeout=2.5,
        migration_lock_timeout=0.2,
        migration_retry_for=60.0,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEWAY_PORT": "http"}, "GATEWAY_PORT='http' is not a whole number"),
        ({"GATEWAY_PORT": "70000"}, "GATEWAY_PORT=70000 must be between 0 and 65535"),
        ({"GATEWAY_DB_TIMEOUT": "soon"}, "GATEWAY_DB_TIMEOUT='soon' is not a number"),
        ({"GATEWAY_DB_DEADLINE": "0"}, "GATEWAY_DB_DEADLINE=0.0 must be between 0.1 and 60.0"),
        (
            {"GATEWAY_DB_DEADLINE_DISPATCH": "0.5"},
            "GATEWAY_DB_DEADLINE_DISPATCH=0.5 must be between 1.0 and 600.0",
        ),
        (
            {"GATEWAY_WORKER_DB_DEADLINE": "7200"},
            "GATEWAY_WORKER_DB_DEADLINE=7200.0 must be between 1.0 and 3600.0",
        ),
        ({"GATEWAY_LOG_FORMAT": "xml"}, "GATEWAY_LOG_FORMAT='xml' must be json, console or auto"),
        ({"GATEWAY_LOG_LEVEL": "loud"}, "GATEWAY_LOG_LEVEL='loud' must be one of"),
        (
            {"GATEWAY_ARCHIVE_RETENTION_DAYS": "0"},
            "GATEWAY_ARCHIVE_RETENTION_DAYS=0 must be between 1 and 3650",
        ),
        (
            {"GATEWAY_DB_POOL_MIN": "5", "GATEWAY_DB_POOL_MAX": "2"},
            "GATEWAY_DB_POOL_MAX=2 must be at least GATEWAY_DB_POOL_MIN=5",
        ),
        (
            {"GATEWAY_WORKER_HEARTBEAT": "5", "GATEWAY_WORKER_STALLED_AFTER": "6"},
            "GATEWAY_WORKER_STALLED_AFTER=6.0 must be at least twice GATEWAY_WORKER_HEARTBEAT=5.0",
        ),
        (
            {"GATEWAY_SECRET_KEY": "c2hvcnQ="},
            "GATEWAY_SECRET_KEY must decode to 32 bytes, not 5: give base64 of 32 random bytes",
        ),
        (
            {"GATEWAY_SECRET_KEY": "not base64 at all!"},
            "GATEWAY_SECRET_KEY is not base64: give base64 of 32 random bytes",
        ),
        (
            {"GATEWAY_SECRET_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,c2hvcnQ="},
            "GATEWAY_SECRET_KEY key 2 of 2 must decode to 32 bytes, not 5: give base64 of 32"
            " random bytes, or several comma-separated, newest first",
        ),
        (
            {"GATEWAY_MIGRATION_LOCK_TIMEOUT": "0"},
            "GATEWAY_MIGRATION_LOCK_TIMEOUT=0.0 must be between 0.01 and 60.0",
        ),
        (
            {"GATEWAY_AUTH_CACHE_SECONDS": "-1"},
            "GATEWAY_AUTH_CACHE_SECONDS=-1.0 must be between 0.0 and 10.0",
        ),
        (
            {"GATEWAY_AUTH_CACHE_SECONDS": "30"},
            "GATEWAY_AUTH_CACHE_SECONDS=30.0 must be between 0.0 and 10.0",
        ),
        (
            {"GATEWAY_RATE_LIMIT_WINDOW": "0"},
            "GATEWAY_RATE_LIMIT_WINDOW=0 must be between 1 and 3600",
        ),
        (
            {"GATEWAY_MAX_HEADER_BYTES": "16384", "GATEWAY_MAX_HEADER_BLOCK_BYTES": "8192"},
            "GATEWAY_MAX_HEADER_BLOCK_BYTES=8192 must be at least GATEWAY_MAX_HEADER_BYTES=16384",
        ),
        (
            {"GATEWAY_BODY_TIMEOUT": "0"},
            "GATEWAY_BODY_TIMEOUT=0.0 must be between 0.1 and 3600.0",
        ),
    ],
)
def test_a_bad_variable_is_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match="^" + message.replace("(", r"\(")):
        load_settings(env)


def test_the_database_url_never_shows_in_a_repr() -> None:
    settings = load_settings({"DATABASE_URL": "postgresql://u:hunter2@db/x"})
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.database_url)
    assert settings.database_url is not None
    assert settings.database_url.reveal() == "postgresql://u:hunter2@db/x"


def test_a_bad_grace_period_or_metrics_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^GATEWAY_SHUTDOWN_GRACE=-1.0 must be between 0"):
        load_settings({"GATEWAY_SHUTDOWN_GRACE": "-1"})
    a_file = tmp_path / "metrics"
    a_file.write_text("not a folder")
    with pytest.raises(SettingsError, match=r"^PROMETHEUS_MULTIPROC_DIR='.*metrics' is not a"):
        load_settings({"PROMETHEUS_MULTIPROC_DIR": str(a_file)})


def test_effective_settings_show_every_field_and_mask_secrets() -> None:
    settings = load_settings(
        {"DATABASE_URL": "postgresql://u:hunter2@db/x", "GATEWAY_DATA_DIR": "/srv/gw"}
    )
    shown = effective_settings(settings)
    assert list(shown) == [spec.name for spec in fields(Settings)]
    assert shown["database_url"] == "**********"
    assert shown["data_dir"] == "/srv/gw" and shown["port"] == 8000
    assert shown["metrics_dir"] is None and shown["db_timeout"] == 1.0
    assert "hunter2" not in json.dumps(shown)
    # Every value is plain JSON, whatever its type in Settings.
    assert json.loads(json.dumps(shown)) == shown


def test_the_secret_key_never_shows_in_a_repr_or_an_error() -> None:
    key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    settings = load_settings({"GATEWAY_SECRET_KEY": key})
    assert key not in repr(settings) and settings.secret_key is not None
    assert settings.secret_key.reveal() == key
    with pytest.raises(SettingsError) as caught:
        load_settings({"GATEWAY_SECRET_KEY": key[:-4]})
    assert key[:-4] not in str(caught.value)
    assert effective_settings(settings)["secret_key"] == "**********"
