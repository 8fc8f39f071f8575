"""Embedded PostgreSQL: a private server answers on its socket URL, keeps its data across a
stop and start, and serves any database through url_for()."""

import asyncpg
import pytest


async def _fetch_value(url: str, query: str, *more: str):
    """The value of ``query``'s first row, after running ``more`` statements before it."""
    conn = await asyncpg.connect(url, timeout=5)
    try:
        for statement in more:
            await conn.execute(statement)
        return await conn.fetchval(query)
    finally:
        await conn.close()


async def test_stop_then_start_keeps_the_data_and_the_url(private_postgres):
    server = private_postgres("restart")
    url = server.url
    await _fetch_value(
        url, "SELECT 1", "DROP TABLE IF EXISTS restart_probe", "CREATE TABLE restart_probe AS SELECT 42 AS answer"
    )

    server.stop()
    with pytest.raises((OSError, asyncpg.PostgresError)):
        await _fetch_value(url, "SELECT 1")

    server.start()
    assert server.url == url
    assert await _fetch_value(url, "SELECT answer FROM restart_probe") == 42


async def test_url_for_names_another_database_on_the_same_server(private_postgres):
    server = private_postgres("databases")
    await _fetch_value(server.url, "SELECT 1", "DROP DATABASE IF EXISTS other_db", "CREATE DATABASE other_db")
    assert await _fetch_value(server.url_for("other_db"), "SELECT current_database()") == "other_db"
    assert await _fetch_value(server.url, "SELECT current_setting('server_version_num')::int") >= 150000
