from __future__ import annotations

import pytest_asyncio

from tests.api import api_client


@pytest_asyncio.fixture(loop_scope="session")
async def api(settings, clean_state):
    """The app in process on the test servers, from nothing."""
    async with api_client(settings) as client:
        yield client
