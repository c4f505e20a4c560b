"""Settings, read once from the environment, validated, frozen; secrets masked in their repr.

The class ``Settings`` is the one table of settings: each field is declared once, with its
type, its variable, its default, how its text is read (bounds included) and its help. The
loader, ``ENVIRONMENT``, what ``config`` prints and the README's check all read that table, so
a new setting is one line here and one row in the README.

Long because: the table itself, one entry per setting, each with its help text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from .setting_readers import (
    Choice,
    Folder,
    Number,
    Reader,
    Secret,
    SecretText,
    ServerKeys,
    SettingsError,
    Text,
    Whole,
    WritableFolder,
)

__all__ = [
    "ENVIRONMENT",
    "SETTINGS",
    "Secret",
    "Setting",
    "Settings",
    "SettingsError",
    "effective_settings",
    "load_settings",
]


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of the table: a field of Settings and the variable it is read from."""

    name: str
    variable: str
    default: Any
    reader: Reader
    help: str
    #: (another field, a factor): this one must be at least the factor times that one.
    at_least: tuple[str, int] | None

    def shown_default(self) -> str | None:
        """The default as the docs write it (``1`` for 1.0), None when unset."""
        if self.default is None:
            return None
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)

    def describe(self) -> str:
        """Its help, with its default unless it has none (the help says what unset means)."""
        shown = self.shown_default()
        return self.help if shown is None else f"{self.help} ({shown})"


def _setting(
    variable: str,
    default: Any,
    reader: Reader,
    help: str,
    *,
    at_least: tuple[str, int] | None = None,
) -> Any:
    row = {"variable": variable, "reader": reader, "help": help, "at_least": at_least}
    return field(default=default, metadata=row)


LogFormat = Literal["json", "console", "auto"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Every setting, read by ``load_settings``; each field is one row of the table."""

    database_url: Secret | None = _setting(
        "DATABASE_URL",
        None,
        SecretText(),
        "PostgreSQL conninfo or URL; unset: embedded PostgreSQL under GATEWAY_DATA_DIR",
    )
    data_dir: Path = _setting(
        "GATEWAY_DATA_DIR",
        Path(".data"),
        Folder(),
        "folder of the embedded PostgreSQL and the demo credentials",
    )
    host: str = _setting("GATEWAY_HOST", "127.0.0.1", Text(), "address serve listens on")
    port: int = _setting("GATEWAY_PORT", 8000, Whole(0, 65535), "port serve listens on")
    log_format: LogFormat = _setting(
        "GATEWAY_LOG_FORMAT",
        "auto",
        Choice(("json", "console", "auto")),
        "json, console, or auto: console on a terminal, else json",
    )
    log_level: str = _setting(
        "GATEWAY_LOG_LEVEL",
        "info",
        Choice(("debug", "info", "warning", "error"), fold_case=True),
        "debug, info, warning or error",
    )
    pool_min: int = _setting(
        "GATEWAY_DB_POOL_MIN", 2, Whole(0, 1000), "database connections kept open per process"
    )
    pool_max: int = _setting(
        "GATEWAY_DB_POOL_MAX",
        10,
        Whole(1, 1000),
        "most database connections per process",
        at_least=("pool_min", 1),
    )
    db_timeout: float = _setting(
        "GATEWAY_DB_TIMEOUT",
        1.0,
        Number(0.1, 60.0),
        "seconds to wait for a database connection before SYS_001",
    )
    db_deadline: float = _setting(
        "GATEWAY_DB_DEADLINE",
        1.5,
        Number(0.1, 60.0),
        "seconds each database round of a request may take, waiting for a connection"
        " included, before it is cut and answered SYS_001: sync deletions and dry runs,"
        " batch status, /readyz, /metrics",
    )
    db_deadline_dispatch: float = _setting(
        "GATEWAY_DB_DEADLINE_DISPATCH",
        30.0,
        Number(1.0, 600.0),
        "the same for storing a dispatched batch (its COPY)",
    )
    worker_db_deadline: float = _setting(
        "GATEWAY_WORKER_DB_DEADLINE",
        60.0,
        Number(1.0, 3600.0),
        "seconds a worker's chunk transaction may take before it is cut and the batch retried"
        " from the first entry not done",
    )
    retry_after_seconds: int = _setting(
        "GATEWAY_RETRY_AFTER", 5, Whole(1, 3600), "seconds sent in Retry-After with SYS_001"
    )
    nonce_purge_interval: float = _setting(
        "GATEWAY_NONCE_PURGE_INTERVAL",
        60.0,
        Number(0.05, 86400.0),
        "seconds between purges of expired replay records",
    )
    worker_heartbeat: float = _setting(
        "GATEWAY_WORKER_HEARTBEAT",
        5.0,
        Number(0.1, 3600.0),
        "seconds between a worker's heartbeats",
    )
    # A live worker must never look stalled between two of its heartbeats.
    worker_stalled_after: float = _setting(
        "GATEWAY_WORKER_STALLED_AFTER",
        30.0,
        Number(0.5, 86400.0),
        "seconds without heartbeat before a batch job is retried",
        at_least=("worker_heartbeat", 2),
    )
    worker_upkeep_interval: float = _setting(
        "GATEWAY_WORKER_UPKEEP_INTERVAL",
        10.0,
        Number(0.05, 86400.0),
        "seconds between stalled-job retries and purges",
    )
    batch_retention_days: int = _setting(
        "GATEWAY_BATCH_RETENTION_DAYS",
        7,
        Whole(1, 3650),
        "days a finished batch's results are kept",
    )
    batch_chunk_size: int = _setting(
        "GATEWAY_BATCH_CHUNK_SIZE",
        1000,
        Whole(1, 1000),
        "entries per chunk transaction of a batch, 1 to 1,000",
    )
    shutdown_grace: float = _setting(
        "GATEWAY_SHUTDOWN_GRACE",
        30.0,
        Number(0.0, 3600.0),
        "seconds serve lets in-flight requests finish on SIGTERM",
    )
    metrics_dir: Path | None = _setting(
        "PROMETHEUS_MULTIPROC_DIR",
        None,
        WritableFolder(),
        "folder of the metrics files of serve's processes (unset: a temp dir)",
    )
    archive_retention_days: int = _setting(
        "GATEWAY_ARCHIVE_RETENTION_DAYS",
        30,
        Whole(1, 3650),
        "days a deleted product stays restorable",
    )
    secret_key: Secret | None = _setting(
        "GATEWAY_SECRET_KEY",
        None,
        ServerKeys(),
        "base64 of 32 bytes: the AES-256-GCM key sealing partner secrets; several"
        " comma-separated, newest first, while rotating (unset: with the embedded database,"
        " GATEWAY_DATA_DIR/secret.key, made once with mode 0600; with DATABASE_URL, commands"
        " that need it refuse)",
    )
    auth_cache_seconds: float = _setting(
        "GATEWAY_AUTH_CACHE_SECONDS",
        2.0,
        Number(0.0, 10.0),
        "seconds a process keeps a credentials lookup; the bound on how late a revocation,"
        " disable or retirement takes effect; 0 disables",
    )
    rate_limit_requests: int = _setting(
        "GATEWAY_RATE_LIMIT_REQUESTS",
        1000,
        Whole(0, 1_000_000),
        "accepted requests per partner at once, and per window after that, all processes"
        " together; 0 disables",
    )
    rate_limit_window: int = _setting(
        "GATEWAY_RATE_LIMIT_WINDOW",
        10,
        Whole(1, 3600),
        "seconds of the request limit's window: one request comes back every window / limit"
        " seconds",
    )
    rate_limit_batches: int = _setting(
        "GATEWAY_RATE_LIMIT_BATCHES",
        4,
        Whole(0, 10_000),
        "pending or processing dispatched batches per partner; 0 disables",
    )
    max_header_bytes: int = _setting(
        "GATEWAY_MAX_HEADER_BYTES",
        8192,
        Whole(1024, 65536),
        "longest value of any one header on the partner API, in bytes",
    )
    max_url_bytes: int = _setting(
        "GATEWAY_MAX_URL_BYTES",
        8192,
        Whole(1024, 65536),
        "longest request target (path and query) in bytes; longer is REQ_001",
    )
    # One header value longer than the whole block could never arrive.
    max_header_block_bytes: int = _setting(
        "GATEWAY_MAX_HEADER_BLOCK_BYTES",
        32768,
        Whole(4096, 1048576),
        "most bytes of a request line and all its header fields together, and of a chunked"
        " body's trailer; more is REQ_002",
        at_least=("max_header_bytes", 1),
    )
    header_timeout: float = _setting(
        "GATEWAY_HEADER_TIMEOUT",
        10.0,
        Number(0.1, 3600.0),
        "seconds from a request's first byte to the end of its headers; slower is REQ_003 and"
        " the connection is closed",
    )
    body_timeout: float = _setting(
        "GATEWAY_BODY_TIMEOUT",
        60.0,
        Number(0.1, 3600.0),
        "seconds from the end of a signed request's headers to the end of its body; slower is"
        " REQ_003 and the connection is closed",
    )
    keepalive_timeout: float = _setting(
        "GATEWAY_KEEPALIVE_TIMEOUT",
        5.0,
        Number(0.1, 3600.0),
        "seconds an open connection may wait for its next request before it is closed",
    )
    migration_lock_timeout: float = _setting(
        "GATEWAY_MIGRATION_LOCK_TIMEOUT",
        0.5,
        Number(0.01, 60.0),
        "seconds one migration may wait for a table lock before it gives way to partner"
        " traffic and is retried",
    )
    migration_retry_for: float = _setting(
        "GATEWAY_MIGRATION_RETRY_FOR",
        600.0,
        Number(0.0, 86400.0),
        "seconds migrate keeps retrying a migration that cannot get its locks before it fails",
    )


#: The table, by field name, in the order of the fields.
SETTINGS = {
    spec.name: Setting(name=spec.name, default=spec.default, **spec.metadata)
    for spec in fields(Settings)
}
#: Every variable read, with its meaning; the README lists the same.
ENVIRONMENT = {row.variable: row.describe() for row in SETTINGS.values()}


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read and check every setting; raise :class:`SettingsError` naming the first bad one."""
    values: dict[str, Any] = {}
    for row in SETTINGS.values():
        raw = env.get(row.variable)
        values[row.name] = row.default if not raw else row.reader.read(row.variable, raw)
    for row in SETTINGS.values():
        if row.at_least is None:
            continue
        other_name, factor = row.at_least
        value, other = values[row.name], values[other_name]
        if value < factor * other:
            twice = " twice" if factor == 2 else ""
            raise SettingsError(
                f"{row.variable}={value} must be at least{twice}"
                f" {SETTINGS[other_name].variable}={other}"
            )
    return Settings(**values)


_MASK = "**********"
# A field of one of these names holds a secret even if someone forgot to wrap it in Secret.
_SECRET_WORDS = ("secret", "password", "token", "key", "credential")


def effective_settings(settings: Settings) -> dict[str, Any]:
    """Every setting of the table as JSON values, secrets masked: what ``config`` prints."""
    shown: dict[str, Any] = {}
    for name in SETTINGS:
        value = getattr(settings, name)
        secret_name = any(word in name for word in _SECRET_WORDS)
        if value is not None and (isinstance(value, Secret) or secret_name):
            shown[name] = _MASK
        else:
            shown[name] = _plain(value)
    return shown


def _plain(value: object) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return str(value)
