"""Settings, read once from the environment, validated, frozen; secrets masked in their repr."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from catalog_store import parse_keys

__all__ = [
    "ENVIRONMENT",
    "Secret",
    "Settings",
    "SettingsError",
    "effective_settings",
    "load_settings",
]


class SettingsError(ValueError):
    """A variable of the environment is not acceptable; the message names it."""


class Secret:
    """A string that never shows itself in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


LogFormat = Literal["json", "console", "auto"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    database_url: Secret | None = None
    data_dir: Path = Path(".data")
    host: str = "127.0.0.1"
    port: int = 8000
    log_format: LogFormat = "auto"
    log_level: str = "info"
    pool_min: int = 2
    pool_max: int = 10
    db_timeout: float = 1.0
    db_deadline: float = 1.5
    db_deadline_dispatch: float = 30.0
    worker_db_deadline: float = 60.0
    retry_after_seconds: int = 5
    nonce_purge_interval: float = 60.0
    worker_heartbeat: float = 5.0
    worker_stalled_after: float = 30.0
    worker_upkeep_interval: float = 10.0
    batch_retention_days: int = 7
    batch_chunk_size: int = 1000
    shutdown_grace: float = 30.0
    metrics_dir: Path | None = None
    archive_retention_days: int = 30
    secret_key: Secret | None = None
    auth_cache_seconds: float = 2.0
    rate_limit_requests: int = 1000
    rate_limit_window: int = 10
    rate_limit_batches: int = 4
    max_header_bytes: int = 8192
    max_url_bytes: int = 8192
    max_header_block_bytes: int = 32768
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    keepalive_timeout: float = 5.0
    migration_lock_timeout: float = 0.5
    migration_retry_for: float = 600.0


#: Every variable read, with its meaning; the README lists the same.
ENVIRONMENT = {
    "DATABASE_URL": "PostgreSQL conninfo or URL; unset: embedded PostgreSQL under GATEWAY_DATA_DIR",
    "GATEWAY_DATA_DIR": "folder of the embedded PostgreSQL and the demo credentials (.data)",
    "GATEWAY_HOST": "address serve listens on (127.0.0.1)",
    "GATEWAY_PORT": "port serve listens on (8000)",
    "GATEWAY_LOG_FORMAT": "json, console, or auto: console on a terminal, else json (auto)",
    "GATEWAY_LOG_LEVEL": "debug, info, warning or error (info)",
    "GATEWAY_DB_POOL_MIN": "database connections kept open per process (2)",
    "GATEWAY_DB_POOL_MAX": "most database connections per process (10)",
    "GATEWAY_DB_TIMEOUT": "seconds to wait for a database connection before SYS_001 (1)",
    "GATEWAY_DB_DEADLINE": "seconds each database round of a request may take, waiting for a"
    " connection included, before it is cut and answered SYS_001: sync deletions and dry runs,"
    " batch status, /readyz, /metrics (1.5)",
    "GATEWAY_DB_DEADLINE_DISPATCH": "the same for storing a dispatched batch (its COPY) (30)",
    "GATEWAY_WORKER_DB_DEADLINE": "seconds a worker's chunk transaction may take before it is"
    " cut and the batch retried from the first entry not done (60)",
    "GATEWAY_RETRY_AFTER": "seconds sent in Retry-After with SYS_001 (5)",
    "GATEWAY_NONCE_PURGE_INTERVAL": "seconds between purges of expired replay records (60)",
    "GATEWAY_WORKER_HEARTBEAT": "seconds between a worker's heartbeats (5)",
    "GATEWAY_WORKER_STALLED_AFTER": "seconds without heartbeat before a batch job is retried (30)",
    "GATEWAY_WORKER_UPKEEP_INTERVAL": "seconds between stalled-job retries and purges (10)",
    "GATEWAY_BATCH_RETENTION_DAYS": "days a finished batch's results are kept (7)",
    "GATEWAY_BATCH_CHUNK_SIZE": "entries per chunk transaction of a batch, 1 to 1,000 (1000)",
    "GATEWAY_SHUTDOWN_GRACE": "seconds serve lets in-flight requests finish on SIGTERM (30)",
    "PROMETHEUS_MULTIPROC_DIR": "folder of the metrics files of serve's processes (a temp dir)",
    "GATEWAY_ARCHIVE_RETENTION_DAYS": "days a deleted product stays restorable (30)",
    "GATEWAY_SECRET_KEY": "base64 of 32 bytes: the AES-256-GCM key sealing partner secrets;"
    " several comma-separated, newest first, while rotating (unset: with the embedded"
    " database, GATEWAY_DATA_DIR/secret.key, made once with mode 0600; with DATABASE_URL,"
    " commands that need it refuse)",
    "GATEWAY_AUTH_CACHE_SECONDS": "seconds a process keeps a credentials lookup; the bound on"
    " how late a revocation, disable or retirement takes effect; 0 disables (2)",
    "GATEWAY_RATE_LIMIT_REQUESTS": "accepted requests per partner at once, and per window after"
    " that, all processes together; 0 disables (1000)",
    "GATEWAY_RATE_LIMIT_WINDOW": "seconds of the request limit's window: one request comes back"
    " every window / limit seconds (10)",
    "GATEWAY_RATE_LIMIT_BATCHES": "pending or processing dispatched batches per partner;"
    " 0 disables (4)",
    "GATEWAY_MAX_HEADER_BYTES": "longest value of any one header on the partner API, in bytes"
    " (8192)",
    "GATEWAY_MAX_URL_BYTES": "longest request target (path and query) in bytes; longer is"
    " REQ_001 (8192)",
    "GATEWAY_MAX_HEADER_BLOCK_BYTES": "most bytes of a request line and all its header fields"
    " together, and of a chunked body's trailer; more is REQ_002 (32768)",
    "GATEWAY_HEADER_TIMEOUT": "seconds from a request's first byte to the end of its headers;"
    " slower is REQ_003 and the connection is closed (10)",
    "GATEWAY_BODY_TIMEOUT": "seconds from the end of a signed request's headers to the end of"
    " its body; slower is REQ_003 and the connection is closed (60)",
    "GATEWAY_KEEPALIVE_TIMEOUT": "seconds an open connection may wait for its next request"
    " before it is closed (5)",
    "GATEWAY_MIGRATION_LOCK_TIMEOUT": "seconds one migration may wait for a table lock before it"
    " gives way to partner traffic and is retried (0.5)",
    "GATEWAY_MIGRATION_RETRY_FOR": "seconds migrate keeps retrying a migration that cannot get"
    " its locks before it fails (600)",
}

_LEVELS = ("debug", "info", "warning", "error")


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} must be between {low} and {high}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} must be between {low} and {high}")
    return value


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read and check every setting; raise :class:`SettingsError` naming the first bad one."""
    log_format = env.get("GATEWAY_LOG_FORMAT", "auto") or "auto"
    if log_format not in ("json", "console", "auto"):
        raise SettingsError(f"GATEWAY_LOG_FORMAT={log_format!r} must be json, console or auto")
    log_level = (env.get("GATEWAY_LOG_LEVEL", "info") or "info").lower()
    if log_level not in _LEVELS:
        raise SettingsError(f"GATEWAY_LOG_LEVEL={log_level!r} must be one of {', '.join(_LEVELS)}")
    pool_min = _int(env, "GATEWAY_DB_POOL_MIN", 2, low=0, high=1000)
    pool_max = _int(env, "GATEWAY_DB_POOL_MAX", 10, low=1, high=1000)
    if pool_max < max(pool_min, 1):
        raise SettingsError(
            f"GATEWAY_DB_POOL_MAX={pool_max} must be at least GATEWAY_DB_POOL_MIN={pool_min}"
        )
    heartbeat = _float(env, "GATEWAY_WORKER_HEARTBEAT", 5.0, low=0.1, high=3600.0)
    stalled_after = _float(env, "GATEWAY_WORKER_STALLED_AFTER", 30.0, low=0.5, high=86400.0)
    if stalled_after < 2 * heartbeat:
        # A live worker must never look stalled between two of its heartbeats.
        raise SettingsError(
            f"GATEWAY_WORKER_STALLED_AFTER={stalled_after} must be at least twice"
            f" GATEWAY_WORKER_HEARTBEAT={heartbeat}"
        )
    max_header_bytes = _int(env, "GATEWAY_MAX_HEADER_BYTES", 8192, low=1024, high=65536)
    header_block = _int(env, "GATEWAY_MAX_HEADER_BLOCK_BYTES", 32768, low=4096, high=1048576)
    if header_block < max_header_bytes:
        # One header value longer than the whole block could never arrive.
        raise SettingsError(
            f"GATEWAY_MAX_HEADER_BLOCK_BYTES={header_block} must be at least"
            f" GATEWAY_MAX_HEADER_BYTES={max_header_bytes}"
        )
    url = env.get("DATABASE_URL") or None
    key = env.get("GATEWAY_SECRET_KEY") or None
    if key is not None:
        try:
            parse_keys(key)
        except ValueError as exc:
            # The reason only: never the value itself.
            raise SettingsError(
                f"GATEWAY_SECRET_KEY {exc}: give base64 of 32 random bytes, or several"
                " comma-separated, newest first (partner-gateway key generate prints one)"
            ) from None
    return Settings(
        database_url=Secret(url) if url else None,
        data_dir=Path(env.get("GATEWAY_DATA_DIR") or ".data"),
        host=env.get("GATEWAY_HOST") or "127.0.0.1",
        port=_int(env, "GATEWAY_PORT", 8000, low=0, high=65535),
        log_format=log_format,  # type: ignore[arg-type]  # checked just above
        log_level=log_level,
        pool_min=pool_min,
        pool_max=pool_max,
        db_timeout=_float(env, "GATEWAY_DB_TIMEOUT", 1.0, low=0.1, high=60.0),
        db_deadline=_float(env, "GATEWAY_DB_DEADLINE", 1.5, low=0.1, high=60.0),
        db_deadline_dispatch=_float(env, "GATEWAY_DB_DEADLINE_DISPATCH", 30.0, low=1.0, high=600.0),
        worker_db_deadline=_float(env, "GATEWAY_WORKER_DB_DEADLINE", 60.0, low=1.0, high=3600.0),
        retry_after_seconds=_int(env, "GATEWAY_RETRY_AFTER", 5, low=1, high=3600),
        nonce_purge_interval=_float(
            env, "GATEWAY_NONCE_PURGE_INTERVAL", 60.0, low=0.05, high=86400.0
        ),
        worker_heartbeat=heartbeat,
        worker_stalled_after=stalled_after,
        worker_upkeep_interval=_float(
            env, "GATEWAY_WORKER_UPKEEP_INTERVAL", 10.0, low=0.05, high=86400.0
        ),
        batch_retention_days=_int(env, "GATEWAY_BATCH_RETENTION_DAYS", 7, low=1, high=3650),
        batch_chunk_size=_int(env, "GATEWAY_BATCH_CHUNK_SIZE", 1000, low=1, high=1000),
        shutdown_grace=_float(env, "GATEWAY_SHUTDOWN_GRACE", 30.0, low=0.0, high=3600.0),
        metrics_dir=_metrics_dir(env),
        archive_retention_days=_int(env, "GATEWAY_ARCHIVE_RETENTION_DAYS", 30, low=1, high=3650),
        secret_key=Secret(key) if key else None,
        auth_cache_seconds=_float(env, "GATEWAY_AUTH_CACHE_SECONDS", 2.0, low=0.0, high=10.0),
        rate_limit_requests=_int(env, "GATEWAY_RATE_LIMIT_REQUESTS", 1000, low=0, high=1_000_000),
        rate_limit_window=_int(env, "GATEWAY_RATE_LIMIT_WINDOW", 10, low=1, high=3600),
        rate_limit_batches=_int(env, "GATEWAY_RATE_LIMIT_BATCHES", 4, low=0, high=10_000),
        max_header_bytes=max_header_bytes,
        max_url_bytes=_int(env, "GATEWAY_MAX_URL_BYTES", 8192, low=1024, high=65536),
        max_header_block_bytes=header_block,
        header_timeout=_float(env, "GATEWAY_HEADER_TIMEOUT", 10.0, low=0.1, high=3600.0),
        body_timeout=_float(env, "GATEWAY_BODY_TIMEOUT", 60.0, low=0.1, high=3600.0),
        keepalive_timeout=_float(env, "GATEWAY_KEEPALIVE_TIMEOUT", 5.0, low=0.1, high=3600.0),
        migration_lock_timeout=_float(
            env, "GATEWAY_MIGRATION_LOCK_TIMEOUT", 0.5, low=0.01, high=60.0
        ),
        migration_retry_for=_float(
            env, "GATEWAY_MIGRATION_RETRY_FOR", 600.0, low=0.0, high=86400.0
        ),
    )


def _metrics_dir(env: Mapping[str, str]) -> Path | None:
    raw = env.get("PROMETHEUS_MULTIPROC_DIR") or None
    if raw is None:
        return None
    path = Path(raw)
    if path.exists() and not path.is_dir():
        raise SettingsError(f"PROMETHEUS_MULTIPROC_DIR={raw!r} is not a folder")
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise SettingsError(f"PROMETHEUS_MULTIPROC_DIR={raw!r} is not writable")
    return path


_MASK = "**********"
# A field of one of these names holds a secret even if someone forgot to wrap it in Secret.
_SECRET_WORDS = ("secret", "password", "token", "key", "credential")


def effective_settings(settings: Settings) -> dict[str, Any]:
    """Every field of ``settings`` as JSON values, secrets masked: what ``config`` prints.

    It walks the dataclass's fields, so a setting added later is printed without more code.
    """
    shown: dict[str, Any] = {}
    for spec in fields(settings):
        value = getattr(settings, spec.name)
        secret_name = any(word in spec.name for word in _SECRET_WORDS)
        if value is not None and (isinstance(value, Secret) or secret_name):
            shown[spec.name] = _MASK
        else:
            shown[spec.name] = _plain(value)
    return shown


def _plain(value: object) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return str(value)
