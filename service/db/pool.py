"""One asyncpg pool per process, created in the app's (or worker's) lifespan.

It opens no connection when created (``min_size=0``), so a process starts while
PostgreSQL is down; an acquire that finds no live connection opens one, so the pool
recovers by itself once PostgreSQL answers. ``service.db.monitor`` keeps ``DB_POOL_MIN``
connections open in the background whenever PostgreSQL answers.
"""

from __future__ import annotations

import asyncpg

from service.settings import Settings


async def create_pool(settings: Settings) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        settings.database_url,
        min_size=0,
        max_size=settings.db_pool_max,
        timeout=settings.database_timeout_seconds,
        command_timeout=settings.database_timeout_seconds,
        # Statements are few and hot; keep them prepared per connection (DB_STATEMENT_CACHE_SIZE,
        # 0 behind PgBouncer in transaction mode: docs/operations.md, "Connection budget").
        statement_cache_size=settings.db_statement_cache_size,
    )
