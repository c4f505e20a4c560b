"""PostgreSQL store of credentials, catalogs, replay records and audit; no HTTP in here."""

from .credentials import (
    DEFAULT_SCOPES,
    AuthRecord,
    IssuedToken,
    NewPartner,
    NewStore,
    create_partner,
    create_store,
    hash_token,
    issue_token,
    lookup_auth,
)
from .deletions import (
    DeletedProduct,
    DeletionOutcome,
    DeletionPlan,
    EntryFailure,
    Nonce,
    Problem,
    accept_nonce,
    delete_products,
    nonce_seen,
    plan_deletion,
    purge_expired_nonces,
)
from .embedded import embedded_conninfo
from .errors import MigrationError, Replayed, StoreError, StoreUnavailable, UnknownClient
from .migrate import MigrationReport, apply_migrations, available_migrations
from .pool import Pool, connection, create_pool
from .products import ProductRef, count_products, seed_products

__all__ = [
    "DEFAULT_SCOPES",
    "AuthRecord",
    "DeletedProduct",
    "DeletionOutcome",
    "DeletionPlan",
    "EntryFailure",
    "IssuedToken",
    "MigrationError",
    "MigrationReport",
    "NewPartner",
    "NewStore",
    "Nonce",
    "Pool",
    "Problem",
    "ProductRef",
    "Replayed",
    "StoreError",
    "StoreUnavailable",
    "UnknownClient",
    "accept_nonce",
    "apply_migrations",
    "available_migrations",
    "connection",
    "count_products",
    "create_partner",
    "create_pool",
    "create_store",
    "delete_products",
    "embedded_conninfo",
    "hash_token",
    "issue_token",
    "lookup_auth",
    "nonce_seen",
    "plan_deletion",
    "purge_expired_nonces",
    "seed_products",
]
