"""One asyncpg pool per process, created in the app's (or worker's) lifespan."""

from __future__ import annotations

import asyncpg

from service.settings import Settings


async def create_pool(settings: Settings) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        settings.database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        timeout=settings.database_timeout_seconds,
        command_timeout=settings.database_timeout_seconds,
        # Statements are few and hot; keep them prepared per connection.
        statement_cache_size=256,
    )
