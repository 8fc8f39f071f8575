"""Fixtures of the order-event tests: the app in process and the services it runs on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from service.redis.client import create_redis
from service.wiring import Services, build_services
from tests.api import api_client


@pytest_asyncio.fixture(loop_scope="session")
async def client(settings, clean_state):
    """The app in process, on the test servers, from nothing."""
    async with api_client(settings) as api:
        yield api


@pytest_asyncio.fixture(loop_scope="session")
async def services(settings, db_pool, clean_state) -> AsyncIterator[Services]:
    redis = create_redis(settings)
    built = build_services(settings, redis, db_pool)
    await built.scripts.load()
    yield built
    await redis.aclose()
