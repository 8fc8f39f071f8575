"""The PostgreSQL fault proxy (tests/pg_fault_proxy.py) against the real test database."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.pg_fault_proxy import CommitDetector, PgFaultProxy, Upstream, split_messages, url_via

CONNECTION_LOST = (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError, OSError)


@pytest.fixture
async def probe(db_pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:
    """A table of these tests' own in the test database, dropped after each test."""
    await db_pool.execute("CREATE TABLE IF NOT EXISTS proxy_probe (id uuid PRIMARY KEY)")
    yield db_pool
    await db_pool.execute("DROP TABLE IF EXISTS proxy_probe")


async def connect(proxy: PgFaultProxy) -> asyncpg.Connection:
    assert proxy.database_url is not None
    return await asyncpg.connect(proxy.database_url)  # sslmode "prefer": asks for SSL first


async def committed(pool: asyncpg.Pool, row: uuid.UUID) -> bool:
    return await pool.fetchval("SELECT count(*) FROM proxy_probe WHERE id = $1", row) == 1


async def insert_and_commit(conn: asyncpg.Connection, row: uuid.UUID) -> None:
    transaction = conn.transaction()
    await transaction.start()
    await conn.execute("INSERT INTO proxy_probe VALUES ($1)", row)
    await transaction.commit()  # COMMIT; as a simple query


async def test_pass_mode_forwards_queries_and_commits(pg_fault_proxy, probe):
    conn = await connect(pg_fault_proxy)
    try:
        assert await conn.fetchval("SELECT 1") == 1
        big = "x" * 3_000_000  # many reads either way
        assert await conn.fetchval("SELECT length($1::text)", big) == len(big)
        assert await conn.fetchval("SELECT $1::text", big) == big
        row = uuid.uuid4()
        await insert_and_commit(conn, row)
        assert await committed(probe, row)
    finally:
        await conn.close()
    assert pg_fault_proxy.commits_seen == 1 and pg_fault_proxy.mode == "pass"
    # asyncpg asked for SSL first; the proxy said no, and the client went on in plaintext
    assert pg_fault_proxy.encryption_refused >= 1 and pg_fault_proxy.connections_accepted == 1


async def test_delayed_answer_times_out_but_the_row_is_committed(pg_fault_proxy, probe):
    conn = await connect(pg_fault_proxy)
    row = uuid.uuid4()
    try:
        pg_fault_proxy.delay_commit_answer(2)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1):
                await insert_and_commit(conn, row)
        assert pg_fault_proxy.commits_delayed == 1
        assert await committed(probe, row)
    finally:
        conn.terminate()


async def test_dropped_answer_breaks_the_connection_but_the_row_is_committed(pg_fault_proxy, probe):
    conn = await connect(pg_fault_proxy)
    row = uuid.uuid4()
    try:
        pg_fault_proxy.drop_commit_answer()
        with pytest.raises(CONNECTION_LOST):
            await insert_and_commit(conn, row)
        assert pg_fault_proxy.commits_dropped == 1
        assert await committed(probe, row)
    finally:
        conn.terminate()


async def test_cut_before_commit_loses_the_transaction(pg_fault_proxy, probe):
    conn = await connect(pg_fault_proxy)
    row = uuid.uuid4()
    try:
        pg_fault_proxy.cut_before_commit()
        with pytest.raises(CONNECTION_LOST):
            await insert_and_commit(conn, row)
        assert pg_fault_proxy.commits_cut == 1
        assert not await committed(probe, row)
    finally:
        conn.terminate()


async def test_commit_of_the_extended_protocol_is_recognised(pg_fault_proxy, probe):
    conn = await connect(pg_fault_proxy)
    row = uuid.uuid4()
    try:
        await conn.execute("BEGIN")
        await conn.execute("INSERT INTO proxy_probe VALUES ($1)", row)
        pg_fault_proxy.cut_before_commit()
        with pytest.raises(CONNECTION_LOST):
            await conn.fetch("COMMIT")  # Parse, then Bind and Execute
        assert pg_fault_proxy.commits_cut == 1
        assert not await committed(probe, row)
    finally:
        conn.terminate()


async def test_refused_connections_fail_until_turned_off(pg_fault_proxy):
    pg_fault_proxy.refuse_connections(True)
    with pytest.raises(CONNECTION_LOST):
        await connect(pg_fault_proxy)
    assert pg_fault_proxy.connections_refused >= 1 and pg_fault_proxy.connections_accepted == 0
    pg_fault_proxy.refuse_connections(False)
    conn = await connect(pg_fault_proxy)
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()


async def test_one_shot_fault_reverts_to_pass(pg_fault_proxy, probe):
    pg_fault_proxy.cut_before_commit(times=1)
    first, second = uuid.uuid4(), uuid.uuid4()
    conn = await connect(pg_fault_proxy)
    try:
        with pytest.raises(CONNECTION_LOST):
            await insert_and_commit(conn, first)
    finally:
        conn.terminate()
    assert pg_fault_proxy.mode == "pass"
    conn = await connect(pg_fault_proxy)
    try:
        await insert_and_commit(conn, second)
    finally:
        await conn.close()
    assert not await committed(probe, first) and await committed(probe, second)
    assert (pg_fault_proxy.commits_seen, pg_fault_proxy.commits_cut) == (2, 1)


async def test_cut_all_ends_live_connections_and_waiting_sees_commits(pg_fault_proxy, probe):
    conn = await connect(pg_fault_proxy)
    try:
        pg_fault_proxy.delay_commit_answer(3)
        commit = asyncio.create_task(insert_and_commit(conn, row := uuid.uuid4()))
        assert await asyncio.to_thread(pg_fault_proxy.wait_for_commits, 1, 2)
        assert pg_fault_proxy.commit_seen.is_set()
        async with asyncio.timeout(2):  # the COMMIT is forwarded, not yet done
            while not await committed(probe, row):  # noqa: ASYNC110 (a poll of PostgreSQL: no event to wait on)
                await asyncio.sleep(0.01)
        pg_fault_proxy.cut_all()  # the held answer is never delivered
        with pytest.raises(CONNECTION_LOST):
            await asyncio.wait_for(commit, 2)
    finally:
        conn.terminate()


def test_urls_and_upstreams():
    proxy = PgFaultProxy(Upstream("127.0.0.1"))
    proxy.port = 4321
    assert (
        url_via(proxy, "postgresql://postgres@/db?host=/tmp/pg%20x&port=5433&sslmode=prefer")
        == "postgresql://postgres@127.0.0.1:4321/db?sslmode=prefer"
    )
    assert proxy.url_via("postgresql://u:p@127.0.0.1:5432/db") == "postgresql://u:p@127.0.0.1:4321/db"
    assert Upstream.from_url("postgresql://postgres@/db?host=/tmp/pg%20x&port=5433") == Upstream("/tmp/pg x", 5433)
    assert Upstream.from_url("postgresql://postgres@/db?host=/tmp/s") == Upstream("/tmp/s", 5432)
    assert Upstream.from_url("postgresql://postgres@db.example:6543/db") == Upstream("db.example", 6543)


def message(kind: bytes, *fields: bytes) -> bytes:
    body = b"".join(fields)
    return kind + (len(body) + 4).to_bytes(4, "big") + body


def test_messages_split_across_reads_and_commit_detection():
    commit, sync = message(b"Q", b" commit ;\n\0"), message(b"S")
    stream = commit + sync
    for cut in range(len(stream)):  # the first read ends anywhere
        messages, used = split_messages(stream[:cut])
        rest, _ = split_messages(stream[used:])
        assert messages + rest == [commit, sync]
    detector = CommitDetector()
    assert detector.is_commit(commit) and not detector.is_commit(sync)
    assert not detector.is_commit(message(b"Q", b"COMMIT PREPARED 'x'\0"))
    assert not detector.is_commit(message(b"P", b"s\0COMMIT\0\0\0"))  # Parse: prepared only
    assert not detector.is_commit(message(b"B", b"p\0s\0\0\0\0\0\0\0"))
    assert detector.is_commit(message(b"E", b"p\0\0\0\0\0"))  # Execute: now it runs
    assert not detector.is_commit(message(b"P", b"s\0SELECT 1\0\0\0")) and not detector.is_commit(
        message(b"B", b"p\0s\0\0\0\0\0\0\0")
    )
    assert not detector.is_commit(message(b"E", b"p\0\0\0\0\0"))  # p is a SELECT now
