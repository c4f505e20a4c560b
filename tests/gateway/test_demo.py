"""`serve --demo`'s credentials: made once, kept in demo.json, made anew when they are gone."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

import catalog_store
from gateway.demo import DEMO_PRODUCTS, ensure_demo
from tests.support import TEST_BOX

pytestmark = pytest.mark.anyio


async def test_the_demo_is_made_once_then_reused_with_the_same_sample_products(
    pool: catalog_store.Pool, tmp_path: Path
) -> None:
    first = await ensure_demo(pool, tmp_path, box=TEST_BOX)
    assert first.created is True and len(first.sampleIds) == 2
    assert stat.S_IMODE((tmp_path / "demo.json").stat().st_mode) == 0o600
    products = await catalog_store.first_products(
        pool, store_client_id=first.storeClientId, limit=DEMO_PRODUCTS + 1
    )
    assert len(products) == DEMO_PRODUCTS
    assert first.sampleIds == tuple(str(ref.id) for ref in products[:2])
    again = await ensure_demo(pool, tmp_path, box=TEST_BOX)
    assert (again.partnerClientId, again.storeClientId, again.storeToken) == (
        first.partnerClientId,
        first.storeClientId,
        first.storeToken,
    )
    assert (again.sampleIds, again.created) == (first.sampleIds, False)


async def test_a_demo_json_naming_a_store_that_is_gone_is_replaced(
    pool: catalog_store.Pool, tmp_path: Path
) -> None:
    first = await ensure_demo(pool, tmp_path, box=TEST_BOX)
    saved = json.loads((tmp_path / "demo.json").read_text("utf-8"))
    (tmp_path / "demo.json").write_text(json.dumps({**saved, "storeClientId": "0" * 21}))
    fresh = await ensure_demo(pool, tmp_path, box=TEST_BOX)
    assert fresh.created is True
    assert fresh.storeClientId not in (first.storeClientId, "0" * 21)
    assert json.loads((tmp_path / "demo.json").read_text("utf-8"))["storeClientId"] == (
        fresh.storeClientId
    )
