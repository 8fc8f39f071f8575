"""Fixtures of the HTTP edge tests: the app in process, with chosen settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import msgspec
import pytest_asyncio
from litestar.testing import AsyncTestClient

from service.app import create_app


@pytest_asyncio.fixture(loop_scope="session")
async def api_with(settings, clean_state) -> AsyncIterator[Callable[..., AbstractAsyncContextManager[AsyncTestClient]]]:
    """``async with api_with(fast_lane=False, cors_allow_origins=(...,)) as api``: the app in
    process on the test servers, from nothing, with those settings changed."""

    @asynccontextmanager
    async def start(*, fast_lane: bool = True, **changes) -> AsyncIterator[AsyncTestClient]:
        app = create_app(msgspec.structs.replace(settings, **changes), fast_lane=fast_lane)
        async with AsyncTestClient(app=app) as client:
            yield client

    yield start
