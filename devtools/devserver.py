"""``make run`` / ``make worker`` / ``make migrate``: the service on one machine, servers included.

Resolves Redis and PostgreSQL (:mod:`devtools.embedded`), creates, migrates and seeds the
database, fills in the development secrets (:mod:`devtools.dev_secrets`), then runs the
API (uvicorn) and the arq worker as child processes, and on Ctrl-C or SIGTERM stops them,
then the embedded servers. Development only: production runs
uvicorn and arq itself, against servers it names.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import errno
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import asyncpg

from devtools import PROJECT_ROOT
from devtools.dev_secrets import development_secrets
from devtools.embedded import ResolvedServers, resolve_servers
from devtools.embedded_servers import free_port
from service.db.migrate import apply_migrations, ensure_database
from service.settings import Settings, database_url_from_env

DOCS_PATH = "/schema"  # service/http/schema_viewer.py's SCHEMA_PATH, without importing Litestar here

DEFAULT_APP = "service.app:app"
WORKER_SETTINGS = "workers.main.WorkerSettings"
_READY_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0


class DemoTier(NamedTuple):
    id: uuid.UUID
    name: str
    price: int  # VND, the minor unit
    quantity_total: int
    max_per_order: int


# Fixed ids, so the printed curl works on every run and seeding twice changes nothing.
DEMO_EVENT_ID = uuid.UUID("7c000000-0000-4000-8000-0000000e0001")
DEMO_TIERS = (
    DemoTier(uuid.UUID("7c000000-0000-4000-8000-00000000a001"), "General admission", 500_000, 1000, 6),
    DemoTier(uuid.UUID("7c000000-0000-4000-8000-00000000a002"), "VIP", 2_000_000, 50, 4),
)

# A tier already there is left alone: an admin may have changed it since.
_INSERT_DEMO_TIER = """
INSERT INTO ticket_tiers (id, event_id, name, price, currency, quantity_total, max_per_order)
VALUES ($1, $2, $3, $4, 'VND', $5, $6)
ON CONFLICT (id) DO NOTHING
"""


async def seed_demo_event(conn: asyncpg.Connection) -> int:
    """Insert the demo tiers that are missing; return how many were inserted."""
    inserted = 0
    for tier in DEMO_TIERS:
        status = await conn.execute(
            _INSERT_DEMO_TIER, tier.id, DEMO_EVENT_ID, tier.name, tier.price, tier.quantity_total, tier.max_per_order
        )
        inserted += int(status.rsplit(" ", 1)[-1])  # "INSERT 0 <rows>"
    return inserted


async def prepare_database(database_url: str, *, seed: bool) -> list[str]:
    """Create the database if needed, migrate it, seed the demo event; return applied versions."""
    await ensure_database(database_url)
    applied = await apply_migrations(database_url)
    if seed:
        conn = await asyncpg.connect(database_url)
        try:
            await seed_demo_event(conn)
        finally:
            await conn.close()
    return applied


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_arguments(argv)
    if args.command == "run" and importlib.util.find_spec(args.app.partition(":")[0]) is None:
        print(f"devserver: cannot import {args.app!r} (is service/app.py there yet?)", file=sys.stderr)
        return 2
    wants_worker = args.command == "worker" or (args.command == "run" and not args.no_worker)
    has_worker = (PROJECT_ROOT / "workers" / "main.py").exists()
    if args.command == "worker" and not has_worker:
        print("devserver: workers/main.py does not exist yet", file=sys.stderr)
        return 2

    # SIGTERM and SIGHUP stop us as Ctrl-C does, so the cleanup below always runs.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)
    servers: ResolvedServers | None = None
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        servers = resolve_servers(os.environ, redis=args.command != "migrate")
        env = {**os.environ, **servers.environ()}
        settings = None
        # The migration needs the database and nothing else: no secret, no other setting.
        if args.command != "migrate":
            env.update(development_secrets(env))  # those the environment lacks
            settings = Settings.from_env(env)
        database_url = database_url_from_env(env) if settings is None else settings.database_url
        if args.command == "run":
            assert settings is not None  # read above for every command but migrate
            _refuse_taken_port(settings.host, settings.port)  # at once, before anything slow
        applied = asyncio.run(prepare_database(database_url, seed=args.command == "run"))
        print(
            f"database {database_url} ({servers.database_origin}): "
            f"migrations applied: {', '.join(applied) or 'none (up to date)'}",
            flush=True,
        )
        if settings is None:
            return 0
        if args.command == "run":
            children["api"] = _spawn(_api_command(args.app, settings), env)
            _wait_until_listening(settings.host, settings.port, children["api"])
        metrics_note = ""
        if wants_worker and has_worker:
            worker_env, metrics_note = _worker_environment(env, settings)
            children["worker"] = _spawn([sys.executable, "-m", "arq", WORKER_SETTINGS], worker_env)
        _print_banner(args.command, settings, servers, children, metrics_note)
        return _supervise(children)
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C must not cut the cleanup short and leave servers behind.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        _stop_children(children)
        if servers is not None:
            servers.stop()


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.devserver", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=("run", "worker", "migrate"),
        help="run: API and worker (default); worker: the worker only; "
        "migrate: create and migrate the database, then exit",
    )
    parser.add_argument("--app", default=DEFAULT_APP, help="the ASGI app (module:attribute)")
    parser.add_argument("--no-worker", action="store_true", help="run the API without the worker")
    return parser.parse_args(argv)


def _api_command(app: str, settings: Settings) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--log-level",
        settings.log_level.lower(),
        "--no-proxy-headers",
    ]


def _spawn(argv: list[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    # Own session: the terminal's Ctrl-C reaches only us, and we stop the children in order.
    # PLW1509: the preexec function calls prctl and getppid alone, no lock a thread could hold.
    return subprocess.Popen(
        argv,
        env=dict(env),
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_exit_with_parent(os.getpid()),  # noqa: PLW1509
    )


def _exit_with_parent(parent: int) -> Callable[[], None] | None:
    """On Linux, a child of ours gets SIGTERM if we die, even by kill -9: no orphan keeps the port."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # we died before prctl took effect
            os._exit(1)

    return preexec


def _port_taken(host: str, port: int) -> bool:
    """Whether another socket listens on ``host``:``port`` (tried by binding it, as the
    server will; a socket in TIME_WAIT does not count)."""
    family, _, _, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[
        0
    ]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def _refuse_taken_port(host: str, port: int) -> None:
    """A second ``make run`` on a port in use stops here, saying so: the readiness check
    would otherwise find the first instance's API there and report this one running."""
    if _port_taken(host, port):
        raise SystemExit(
            f"devserver: {host}:{port} is taken (another make run?): run this one on another "
            f"port, e.g. PORT={free_port()} make run"
        )


def _worker_environment(env: Mapping[str, str], settings: Settings) -> tuple[dict[str, str], str]:
    """The worker's environment, and what the banner says of its metrics: on the port of
    the settings, or, when another process (a first make run's worker) holds it, on a
    free one. The worker itself also moves to a free port if this one is taken meanwhile."""
    port = settings.worker_metrics_port
    if not port:
        return dict(env), "metrics off (WORKER_METRICS_PORT=0)"
    if not _port_taken("0.0.0.0", port):
        return dict(env), f"metrics on http://127.0.0.1:{port}/metrics"
    free = free_port()
    return (
        {**env, "WORKER_METRICS_PORT": str(free)},
        f"metrics on http://127.0.0.1:{free}/metrics ({port} is taken: another make run?)",
    )


def _wait_until_listening(host: str, port: int, process: subprocess.Popen[bytes]) -> None:
    """Until ``process`` serves on the port: a connection there must reach it, not another
    process that took the port since the check (Linux: the socket must be the child's)."""
    address = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    deadline = time.monotonic() + _READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            taken = " (the port is taken)" if _port_taken(host, port) else ""
            raise SystemExit(f"devserver: the API exited with {process.returncode} while starting{taken}")
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            if _listens(process.pid, port) is not False:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"devserver: the API did not listen on {address}:{port} in {_READY_TIMEOUT:.0f}s")


def _listens(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` has a socket listening on TCP ``port``; None where /proc
    cannot tell (not Linux)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    inodes = set()
    for fd in fds:
        with contextlib.suppress(OSError):  # closed meanwhile
            inodes.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port and f"socket:[{inode}]" in inodes:
                    return True  # 0A: TCP_LISTEN
    return False


def _supervise(children: Mapping[str, subprocess.Popen[bytes]]) -> int:
    """Wait until a child exits (a crash: its status is ours) or we are told to stop."""
    while True:
        for name, process in children.items():
            if process.poll() is not None:
                print(f"devserver: {name} exited with {process.returncode}; stopping", file=sys.stderr)
                return process.returncode or 1
        time.sleep(0.2)


def _stop_children(children: Mapping[str, subprocess.Popen[bytes]]) -> None:
    running = [p for p in children.values() if p.poll() is None]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + _STOP_TIMEOUT
    for process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _print_banner(
    command: str,
    settings: Settings,
    servers: ResolvedServers,
    children: Mapping[str, subprocess.Popen[bytes]],
    metrics_note: str = "",
) -> None:
    lines = [
        f"redis:    {servers.redis_url} ({servers.redis_origin})",
        f"postgres: {settings.database_url} ({servers.database_origin})",
    ]
    if "worker" in children:
        lines.append(f"worker:   arq {WORKER_SETTINGS} (pid {children['worker'].pid}), {metrics_note}")
    elif command == "run":
        lines.append("worker:   not started (--no-worker)")
    if command == "run":
        base = f"http://{settings.host}:{settings.port}"
        body = f'{{"tier_id":"{DEMO_TIERS[0].id}","quantity":2}}'
        lines = [
            f"ticket-cart is running at {base} (Ctrl-C stops it)",
            f"shop:     {base}/events/{DEMO_EVENT_ID} (the demo event's page; docs/storefront.md)",
            f"API docs: {base}{DOCS_PATH} (Swagger UI; the document: {base}{DOCS_PATH}/openapi.json)",
            *lines,
            f"admin key (X-Admin-Key): {settings.admin_api_key}",
            *_sepay_lines(settings, base),
            "add two demo tickets to a new cart:",
            f"  curl -si -X POST {base}/api/cart/items -H 'content-type: application/json' -d '{body}'",
        ]
    print("\n".join(lines), flush=True)


def _sepay_lines(settings: Settings, base: str) -> list[str]:
    """How to call the SePay route, when SEPAY_AUTH turned it on (docs/payments.md)."""
    if settings.sepay_auth == "apikey":
        return [f"sepay:    POST {base}/api/payments/sepay with Authorization: Apikey {settings.sepay_api_key}"]
    if settings.sepay_auth == "hmac":
        return [
            f"sepay:    POST {base}/api/payments/sepay signed with SEPAY_HMAC_SECRET {settings.sepay_hmac_secret} "
            "(X-SePay-Signature over X-SePay-Timestamp and the body)"
        ]
    return []


if __name__ == "__main__":
    sys.exit(main())
