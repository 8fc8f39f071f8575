"""Fixtures of the hardening tests: the app in process with chosen settings, and short ways
to make tiers and read what Redis holds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import msgspec
import pytest_asyncio
from litestar.testing import AsyncTestClient

from tests.api import api_client
from tests.conftest import TEST_KEY_PREFIX

PROBLEM = "application/problem+json"


@pytest_asyncio.fixture(loop_scope="session")
async def api_with(settings, clean_state) -> AsyncIterator[Callable[..., AbstractAsyncContextManager[AsyncTestClient]]]:
    """``async with api_with(rate_limit_per_minute=5, ...) as api``: the app in process on the
    test servers, from nothing, with those settings changed."""

    def start(**changes) -> AbstractAsyncContextManager[AsyncTestClient]:
        return api_client(msgspec.structs.replace(settings, **changes))

    yield start


async def keys_matching(redis, suffix_glob: str) -> list[bytes]:
    """This run's keys matching ``<prefix><suffix_glob>``."""
    return [key async for key in redis.scan_iter(match=f"{TEST_KEY_PREFIX}{suffix_glob}", count=1000)]


def is_problem(response, status: int, code: str) -> bool:
    return (
        response.status_code == status
        and response.headers["content-type"].startswith(PROBLEM)
        and response.json()["code"] == code
    )
