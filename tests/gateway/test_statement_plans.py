"""The gateway's own pool asks PostgreSQL to plan each prepared statement once: a 1-entry
deletion's statement, planned anew for every request, cost the server more than running it
(docs/performance.md). Seen from the server, on the connection that served the requests."""

from __future__ import annotations

import pytest

import catalog_store
from gateway.settings import Settings
from tests.support import Tenant, delete, gateway_app

pytestmark = pytest.mark.anyio


async def test_the_deletion_statement_is_planned_once_for_every_request(
    database_url: str, tenant: Tenant
) -> None:
    # One connection: every request, and the look-up below, go through it.
    settings = Settings(pool_min=1, pool_max=1)
    async with gateway_app(database_url, settings=settings) as (app, client):
        for product in tenant.ids[:10]:
            response = await delete(client, tenant, {"ids": [product]})
            assert response.json()["data"]["summary"]["succeeded"] == 1
        async with catalog_store.connection(app.state.pool) as conn:
            cur = await conn.execute(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE '%%INSERT INTO replay_nonces%%'"
            )
            plans = await cur.fetchall()
    # The statement was prepared (ten runs) and planned once, for any values.
    assert len(plans) == 1
    generic_plans, custom_plans = plans[0]
    assert custom_plans == 0
    assert generic_plans >= 1
