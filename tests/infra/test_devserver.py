"""The dev server: seeds the demo event once, migrates on `migrate`, and on `run` serves the
app with the resolved servers in its environment, then stops cleanly on SIGTERM."""

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request

import asyncpg
import pytest

from service.devserver import DEMO_EVENT_ID, DEMO_TIERS, prepare_database, seed_demo_event
from service.embedded_servers import free_port
from service.settings import PROJECT_ROOT


@pytest.mark.usefixtures("clean_state")
async def test_seeding_twice_inserts_the_demo_tiers_once_and_keeps_admin_changes(db_pool):
    async with db_pool.acquire() as conn:
        assert await seed_demo_event(conn) == len(DEMO_TIERS)
        await conn.execute("UPDATE ticket_tiers SET price = 1 WHERE id = $1", DEMO_TIERS[0].id)

        assert await seed_demo_event(conn) == 0

        rows = await conn.fetch("SELECT id, price, currency FROM ticket_tiers WHERE event_id = $1",
                                DEMO_EVENT_ID)
    prices = {row["id"]: row["price"] for row in rows}
    assert prices == {DEMO_TIERS[0].id: 1, DEMO_TIERS[1].id: DEMO_TIERS[1].price}
    assert {row["currency"] for row in rows} == {"VND"}


async def test_prepare_database_creates_migrates_and_seeds_a_new_database(scratch_database):
    url = await scratch_database("devserver_prepare")
    assert await prepare_database(url, seed=True) != []
    assert await prepare_database(url, seed=True) == []
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM ticket_tiers") == len(DEMO_TIERS)
    finally:
        await conn.close()


def _devserver(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "service.devserver", *args], cwd=PROJECT_ROOT,
                            env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def test_migrate_command_migrates_the_given_database_and_exits(scratch_database):
    url = await scratch_database("devserver_migrate")
    process = _devserver("migrate", env={"DATABASE_URL": url})
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "0001_ticket_tiers" in out


async def test_run_serves_the_app_with_the_servers_and_stops_on_sigterm(servers, scratch_database):
    url = await scratch_database("devserver_run")
    port = free_port()
    process = _devserver("run", "--app", "tests.infra.standin_app:app", "--no-worker",
                         env={"REDIS_URL": servers.redis_url, "DATABASE_URL": url, "PORT": str(port)})
    try:
        banner = []
        while not banner or not banner[-1].startswith("  curl"):
            line = process.stdout.readline()
            assert line, f"devserver exited early: {process.wait()} {process.stderr.read()}"
            banner.append(line.rstrip("\n"))
        text = "\n".join(banner)
        assert f"http://127.0.0.1:{port}" in text
        assert "admin key (X-Admin-Key): " in text
        assert f'"tier_id":"{DEMO_TIERS[0].id}"' in banner[-1]

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
            assert json.load(answer) == {"REDIS_URL": servers.redis_url, "DATABASE_URL": url}
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=30)
    assert returncode == 0, process.stderr.read()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
