"""Each script test runs twice: on fakeredis (with Lua) and on the real test Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import fakeredis
import pytest_asyncio

from service.keys import Keys
from service.redis.scripts import Scripts, TierFields
from tests.conftest import TEST_KEY_PREFIX, delete_keys

PREFIX = TEST_KEY_PREFIX + "lua:"


@pytest_asyncio.fixture(params=["fakeredis", "redis"], loop_scope="session")
async def scripts(request, servers) -> AsyncIterator[Scripts]:
    if request.param == "fakeredis":
        client = fakeredis.FakeAsyncRedis()
    else:
        from redis.asyncio import Redis

        client = Redis.from_url(servers.redis_url)
        await delete_keys(client, PREFIX)
    s = Scripts(client, Keys(PREFIX))
    await s.load()
    yield s
    if request.param == "redis":
        await delete_keys(client, PREFIX)
    await client.aclose()


def tier(tier_id: str = "t1", **overrides) -> TierFields:
    fields = dict(
        tier_id=tier_id,
        version=1,
        total=10,
        max_per_order=4,
        price=500_000,
        currency="VND",
        name="General",
        sales_start_ms=0,
        sales_end_ms=0,
        active=True,
        sold=0,
        sold_version=0,
    )
    fields.update(overrides)
    return TierFields(**fields)
