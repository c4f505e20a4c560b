"""Which table goes where when the schema is spread over a Citus cluster (docs/operations.md,
"Outgrowing one database server: Citus"). Declared once, here; tests/catalog_store/
test_distribution.py reads the migrated database's catalog and fails when the schema breaks it.

A table distributed by ``store_id`` keeps ``store_id`` in its primary key, in every unique
constraint or unique index, and in every foreign key to another distributed table (on both
sides, so the referenced row is in the same store, hence on the same node). Its foreign keys may
also point to a reference table. A table with a ``store_id`` column that is in neither list is a
mistake to fix: decide where it goes and add it to one of them.
"""

from __future__ import annotations

__all__ = ["DISTRIBUTION_COLUMN", "DISTRIBUTED_BY_STORE", "REFERENCE_TABLES"]

DISTRIBUTION_COLUMN = "store_id"

#: Distributed by ``store_id``, all co-located with ``all_products``: a request or a chunk
#: touches the rows of one store only, so its transaction stays on one node. (``products`` and
#: ``product_variants`` are views of their live rows.)
DISTRIBUTED_BY_STORE: tuple[str, ...] = (
    "all_products",
    "all_product_variants",
    "deletion_audit",
    "deletion_batches",
    "deletion_batch_entries",
    "deletion_batch_chunks",
    "idempotency_keys",
)

#: Small, read on every request, joined with any store: copied to every node.
REFERENCE_TABLES: tuple[str, ...] = ("partners", "partner_secrets", "stores", "store_tokens")
