"""The per-entry plan of a deletion: pure, checked with properties."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

import catalog_store

_products = st.lists(
    st.tuples(st.uuids(), st.text(min_size=1, max_size=8)),
    max_size=8,
    unique_by=(lambda p: p[0], lambda p: p[1]),
)


@given(
    products=_products,
    data=st.data(),
)
def test_every_entry_is_reported_once_and_each_product_at_most_once(
    products: list[tuple[uuid.UUID, str]], data: st.DataObject
) -> None:
    id_pool = (
        [str(p[0]) for p in products]
        + [str(p[0]).upper() for p in products]
        + ["junk", str(uuid.uuid4())]
    )
    ext_pool = [p[1] for p in products] + ["missing"]
    ids = data.draw(st.lists(st.sampled_from(id_pool), max_size=10))
    external_ids = data.draw(st.lists(st.sampled_from(ext_pool), max_size=10))
    plan = catalog_store.plan_deletion(ids, external_ids)
    # What the database would delete: every product named by a target id or external id.
    rows = [
        catalog_store.DeletedProduct(str(pid), ext)
        for pid, ext in products
        if str(pid) in plan.target_ids or ext in plan.target_external_ids
    ]
    outcome = plan.resolve(rows)
    assert outcome.total == len(ids) + len(external_ids)
    assert len(outcome.deleted) + len(outcome.failures) == outcome.total
    assert sorted(r.id for r in outcome.deleted) == sorted(r.id for r in rows)
    rows_of_failures = [(f.kind, f.row_index) for f in outcome.failures]
    assert rows_of_failures == sorted(
        rows_of_failures, key=lambda r: (r[0] is not catalog_store.EntryKind.ID, r[1])
    )


def test_only_canonical_uuids_in_any_case_are_ids() -> None:
    value = uuid.uuid4()
    plan = catalog_store.plan_deletion(
        [str(value).upper(), str(value), value.hex, f"urn:uuid:{value}", f"{value}\n"], []
    )
    assert plan.target_ids == [str(value)]  # PostgreSQL's text of it: lower case
    assert plan.id_failures == {
        1: catalog_store.Problem.REPEATED,
        2: catalog_store.Problem.INVALID_ID,
        3: catalog_store.Problem.INVALID_ID,
        4: catalog_store.Problem.INVALID_ID,
    }
