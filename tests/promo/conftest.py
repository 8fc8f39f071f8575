from __future__ import annotations

import msgspec
import pytest_asyncio

from tests.api import api_client

# Generous, so tests that try many codes are not refused; the limit has its own tests.
ATTEMPTS_PER_MINUTE = 1000


@pytest_asyncio.fixture(loop_scope="session")
async def api(settings, clean_state):
    async with api_client(msgspec.structs.replace(settings, promo_attempts_per_minute=ATTEMPTS_PER_MINUTE)) as client:
        yield client
