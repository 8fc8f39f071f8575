"""Servers and a generator pool for the load tool's tests.

The stand-in API always; the real ``service.app`` in a uvicorn subprocess on the test
servers (root conftest), on this run's database and under this run's key prefix plus
``load:``, deleted afterwards.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.embedded import ResolvedServers
from loadtest.bench import delete_keys
from loadtest.progress import ProgressLine
from loadtest.runner import LoadGenerator
from loadtest.server import ServerUnderTest
from tests.conftest import TEST_KEY_PREFIX, TEST_SECRETS

STANDIN_ADMIN_KEY = "standin-admin-key"
REAL_KEY_PREFIX = f"{TEST_KEY_PREFIX}load:"
SERVICE_KEY = "test-service-key"


@pytest.fixture(scope="session")
def generator() -> Iterator[LoadGenerator]:
    """One generator process for all tests (spawning one costs a few hundred ms)."""
    with LoadGenerator(1, progress=ProgressLine(enabled=False)) as pool:
        yield pool


@pytest.fixture(scope="session")
def standin() -> Iterator[ServerUnderTest]:
    env = {**os.environ, "ADMIN_API_KEY": STANDIN_ADMIN_KEY}
    with ServerUnderTest("standin_app:app", env=env, workers=1, app_dir=Path(__file__).parent) as server:
        yield server


@pytest.fixture(scope="session")
def real_app(servers: ResolvedServers, database_url: str) -> Iterator[ServerUnderTest]:
    """``service.app:app`` as ``make bench`` runs it, with one worker."""
    assert servers.redis_url is not None
    env = {
        **os.environ,
        **TEST_SECRETS,
        "REDIS_URL": servers.redis_url,
        "DATABASE_URL": database_url,
        "KEY_PREFIX": REAL_KEY_PREFIX,
        "TRUSTED_SERVICE_KEY": SERVICE_KEY,
        "RATE_LIMIT_PER_MINUTE": "0",
        "LOG_LEVEL": "WARNING",
    }
    with ServerUnderTest("service.app:app", env=env, workers=1) as server:
        yield server
    asyncio.run(delete_keys(servers.redis_url, REAL_KEY_PREFIX))
