"""Start and stop one API server (uvicorn in a subprocess) for a benchmark or a test.

It starts only what it is asked to, in a process group of its own, and stops exactly
that group; it never looks for or kills other servers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import uvloop

from loadtest.procstat import group_cpu_seconds
from loadtest.suite import SuiteError, wait_until_answering

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerUnderTest:
    """``with ServerUnderTest("service.app:app", env=...) as server: server.url``"""

    def __init__(
        self,
        app: str,
        *,
        env: Mapping[str, str],
        workers: int = 2,
        app_dir: Path = PROJECT_ROOT,
        ready_path: str = "/health/ready",
        start_timeout: float = 60.0,
    ) -> None:
        self.app = app
        self.env = dict(env)
        self.workers = workers
        self.app_dir = app_dir
        self.ready_path = ready_path
        self.start_timeout = start_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        # SIM115: open for the server's lifetime (its output), closed when the server is done.
        self.log = tempfile.NamedTemporaryFile(prefix="loadtest-server-", suffix=".log", delete=False)  # noqa: SIM115

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            self.app,
            "--app-dir",
            str(self.app_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
            "--no-proxy-headers",
        ]

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.app_dir,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            uvloop.run(self._ready())
        except BaseException:
            self.stop()
            raise

    async def _ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise SuiteError(f"the server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                await wait_until_answering(self.url, self.ready_path, {}, timeout=1.0)
                return
            except SuiteError as exc:
                if time.monotonic() > deadline:
                    raise SuiteError(f"{exc}; server log:\n{self.log_tail()}") from None

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)  # our own group: the supervisor and its workers
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def cpu_seconds(self) -> float | None:
        """CPU seconds its processes (supervisor and workers: its process group) have spent."""
        if self.process is None:
            return None
        return group_cpu_seconds(self.process.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> ServerUnderTest:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)
