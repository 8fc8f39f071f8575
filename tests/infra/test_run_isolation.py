"""Test runs share servers side by side: a run clears the names (database, keys) of runs
that died, and never those of a run still alive."""

import asyncpg

from tests.conftest import _RUN_LOCK_SPACE, DATABASE_PREFIX, KEY_PREFIX_ROOT, _clear_dead_runs


async def test_a_dead_runs_names_are_cleared_and_a_live_runs_are_kept(servers, redis):
    admin = await asyncpg.connect(servers.database_url_for("postgres"))
    live_run = await asyncpg.connect(servers.database_url_for("postgres"))
    try:
        await live_run.execute("SELECT pg_advisory_lock($1, hashtext($2))", _RUN_LOCK_SPACE, DATABASE_PREFIX + "livez")
        for run in ("deadz", "livez"):
            await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE_PREFIX}{run}_scratch"')
            await admin.execute(f'CREATE DATABASE "{DATABASE_PREFIX}{run}_scratch"')
            await redis.set(f"{KEY_PREFIX_ROOT}{run}:k", b"v")

        await _clear_dead_runs(admin, redis)

        databases = {r["datname"] for r in await admin.fetch("SELECT datname FROM pg_database")}
        assert f"{DATABASE_PREFIX}deadz_scratch" not in databases
        assert f"{DATABASE_PREFIX}livez_scratch" in databases
        assert await redis.exists(f"{KEY_PREFIX_ROOT}deadz:k") == 0
        assert await redis.exists(f"{KEY_PREFIX_ROOT}livez:k") == 1
    finally:
        await live_run.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE_PREFIX}livez_scratch"')
        await redis.delete(f"{KEY_PREFIX_ROOT}livez:k")
        await admin.close()
