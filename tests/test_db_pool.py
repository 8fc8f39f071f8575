"""service/db/pool.py on the test PostgreSQL: DB_STATEMENT_CACHE_SIZE decides whether a
connection keeps its statements prepared (0 behind PgBouncer in transaction mode, where the
next transaction may run on another server connection: docs/operations.md)."""

from __future__ import annotations

import msgspec
import pytest

from service.db.pool import create_pool
from service.settings import Settings, SettingsError
from tests.conftest import TEST_SECRETS

PREPARED = "SELECT count(*) FROM pg_prepared_statements"


async def _prepared_after_two_queries(settings: Settings) -> int:
    pool = await create_pool(settings)
    try:
        async with pool.acquire() as conn:
            for _ in range(2):
                assert await conn.fetchval("SELECT $1::int + 1", 41) == 42
            return await conn.fetchval(PREPARED)
    finally:
        await pool.close()


async def test_statements_stay_prepared_by_default(settings):
    assert settings.db_statement_cache_size == 256
    assert await _prepared_after_two_queries(settings) >= 1


async def test_a_cache_size_of_zero_leaves_no_statement_prepared_on_the_server(settings):
    """What a transaction-mode pooler needs: nothing named outlives the statement."""
    assert await _prepared_after_two_queries(msgspec.structs.replace(settings, db_statement_cache_size=0)) == 0


def test_the_setting_is_read_and_bounded():
    read = Settings.from_env({"APP_ENV": "development", "DB_STATEMENT_CACHE_SIZE": "0", **TEST_SECRETS})
    assert read.db_statement_cache_size == 0
    with pytest.raises(SettingsError, match="DB_STATEMENT_CACHE_SIZE"):
        Settings.from_env({"APP_ENV": "development", "DB_STATEMENT_CACHE_SIZE": "-1", **TEST_SECRETS})
