"""The dev server: seeds the demo event once, migrates on `migrate`, and on `run` serves the
app with the resolved servers in its environment, then stops cleanly on SIGTERM."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request

import asyncpg
import pytest

from devtools import PROJECT_ROOT
from devtools.devserver import DEMO_EVENT_ID, DEMO_TIERS, _wait_until_listening, prepare_database, seed_demo_event
from devtools.embedded_servers import free_port
from service.http.schema_viewer import SCHEMA_PATH
from tests.conftest import TEST_KEY_PREFIX

# These tests are coroutines for their fixtures alone (scratch_database): nothing else runs
# on their event loop, so the blocking calls marked `noqa: ASYNC210/ASYNC221` hold up nothing.


@pytest.mark.usefixtures("clean_state")
async def test_seeding_twice_inserts_the_demo_tiers_once_and_keeps_admin_changes(db_pool):
    async with db_pool.acquire() as conn:
        assert await seed_demo_event(conn) == len(DEMO_TIERS)
        await conn.execute("UPDATE ticket_tiers SET price = 1 WHERE id = $1", DEMO_TIERS[0].id)

        assert await seed_demo_event(conn) == 0

        rows = await conn.fetch("SELECT id, price, currency FROM ticket_tiers WHERE event_id = $1", DEMO_EVENT_ID)
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
    return subprocess.Popen(
        [sys.executable, "-m", "devtools.devserver", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_banner(process: subprocess.Popen[str]) -> list[str]:
    """The lines `run` prints up to its banner's last (the curl)."""
    banner: list[str] = []
    while not banner or not banner[-1].startswith("  curl"):
        line = process.stdout.readline()
        assert line, f"devserver exited early: {process.wait()} {process.stderr.read()}"
        banner.append(line.rstrip("\n"))
    return banner


async def test_migrate_command_migrates_the_given_database_and_exits(scratch_database):
    url = await scratch_database("devserver_migrate")
    process = _devserver("migrate", env={"DATABASE_URL": url})
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "0001_ticket_tiers" in out


async def test_run_serves_the_app_with_the_servers_and_stops_on_sigterm(servers, scratch_database):
    url = await scratch_database("devserver_run")
    port = free_port()
    process = _devserver(
        "run",
        "--app",
        "tests.infra.standin_app:app",
        "--no-worker",
        env={"REDIS_URL": servers.redis_url, "DATABASE_URL": url, "PORT": str(port)},
    )
    try:
        banner = _read_banner(process)
        text = "\n".join(banner)
        assert f"http://127.0.0.1:{port}" in text
        assert f"API docs: http://127.0.0.1:{port}{SCHEMA_PATH} " in text
        assert f"shop:     http://127.0.0.1:{port}/events/{DEMO_EVENT_ID} " in text
        assert "admin key (X-Admin-Key): " in text
        assert f'"tier_id":"{DEMO_TIERS[0].id}"' in banner[-1]

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:  # noqa: ASYNC210
            assert json.load(answer) == {"REDIS_URL": servers.redis_url, "DATABASE_URL": url}
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=30)
    assert returncode == 0, process.stderr.read()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest.mark.parametrize(
    "command",
    [["-m", "service.db.migrate"], ["-m", "devtools.devserver", "migrate"]],
    ids=["migrate-module", "make-migrate"],
)
async def test_the_migration_needs_the_database_url_and_nothing_else(scratch_database, command):
    url = await scratch_database(f"migrate_alone_{len(command)}")
    # Production settings would refuse to start without the secrets: the migration never reads them.
    environment = {"PATH": os.environ["PATH"], "APP_ENV": "production", "DATABASE_URL": url}
    done = subprocess.run(  # noqa: ASYNC221
        [sys.executable, *command],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "0001_ticket_tiers" in done.stdout


def _listening(host: str = "127.0.0.1") -> socket.socket:
    """A socket of this test listening on a free port: another process's server."""
    taken = socket.socket()
    taken.bind((host, 0))
    taken.listen()
    return taken


async def test_a_second_run_on_a_port_in_use_says_so_and_stops(servers, scratch_database):
    url = await scratch_database("devserver_port_taken")
    with _listening() as taken:
        port = taken.getsockname()[1]
        process = _devserver(
            "run",
            "--app",
            "tests.infra.standin_app:app",
            "--no-worker",
            env={"REDIS_URL": servers.redis_url, "DATABASE_URL": url, "PORT": str(port)},
        )
        out, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert f"127.0.0.1:{port} is taken" in err
    assert "running at" not in out


def test_the_readiness_check_never_takes_another_process_for_the_api():
    """The API's port was free at the check, and another server took it before the API
    bound it: the check must not report the other server as ours."""
    with _listening() as taken:
        port = taken.getsockname()[1]
        # The stand-in API fails to start once the check has reached the other server.
        api = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stdin.read(); sys.exit(3)"], stdin=subprocess.PIPE
        )

        def other_server() -> None:
            connection, _ = taken.accept()
            connection.close()
            api.stdin.close()

        answering = threading.Thread(target=other_server, daemon=True)
        answering.start()
        with pytest.raises(SystemExit, match=r"exited with 3 while starting [(]the port is taken[)]"):
            _wait_until_listening("127.0.0.1", port, api)
        answering.join()


async def test_a_second_run_puts_the_workers_metrics_on_a_free_port_and_says_which(servers, scratch_database):
    url = await scratch_database("devserver_metrics_taken")
    with _listening("0.0.0.0") as taken:
        metrics_port = taken.getsockname()[1]
        process = _devserver(
            "run",
            "--app",
            "tests.infra.standin_app:app",
            env={
                "REDIS_URL": servers.redis_url,
                "DATABASE_URL": url,
                "PORT": str(free_port()),
                "WORKER_METRICS_PORT": str(metrics_port),
                "KEY_PREFIX": f"{TEST_KEY_PREFIX}devserver:",
            },
        )
        try:
            banner = _read_banner(process)
            (worker,) = [line for line in banner if line.startswith("worker:")]
            said = re.search(r"metrics on http://127.0.0.1:(\d+)/metrics [(](\d+) is taken", worker)
            assert said and int(said[2]) == metrics_port and int(said[1]) != metrics_port, worker
            for line in process.stdout:  # the worker's own start line says the same port
                if '"msg": "worker started"' in line:
                    assert json.loads(line)["metrics_port"] == int(said[1])
                    break
            with urllib.request.urlopen(f"http://127.0.0.1:{said[1]}/metrics", timeout=5) as answer:  # noqa: ASYNC210
                assert b"tc_worker_job" in answer.read()
            assert process.poll() is None  # the whole instance runs
        finally:
            process.send_signal(signal.SIGTERM)
            returncode = process.wait(timeout=30)
    assert returncode == 0, process.stderr.read()
