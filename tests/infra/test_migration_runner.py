"""The migration runner applies every numbered file once, in order, even when two runs race."""

import asyncio

import asyncpg

from service.db.migrate import apply_migrations, ensure_database, migration_files


async def test_first_run_applies_all_in_order_and_second_run_none(scratch_database):
    url = await scratch_database("migrations")
    await ensure_database(url)
    await ensure_database(url)  # an existing database is fine

    assert await apply_migrations(url) == [path.stem for path in migration_files()]
    assert await apply_migrations(url) == []

    conn = await asyncpg.connect(url)
    try:
        recorded = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")]
    finally:
        await conn.close()
    assert recorded == [path.stem for path in migration_files()]


async def test_concurrent_runs_apply_each_migration_once(scratch_database):
    url = await scratch_database("migrations_race")
    await ensure_database(url)
    first, second = await asyncio.gather(apply_migrations(url), apply_migrations(url))
    assert sorted(first + second) == [path.stem for path in migration_files()]
    assert not (first and second)  # the advisory lock let one run do everything
