"""A real uvicorn server in a subprocess, for tests that need real HTTP concurrency or
that kill the API process midway."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from devtools import PROJECT_ROOT
from service.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(settings: Settings, **overrides: str) -> dict[str, str]:
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "REDIS_CLUSTER": "1" if settings.redis_cluster else "0",
        "ARQ_REDIS_URL": settings.arq_redis_url or "",
        "DATABASE_URL": settings.database_url,
        "KEY_PREFIX": settings.key_prefix,
        "ADMIN_API_KEY": settings.admin_api_key,
        "CART_TOKEN_SECRET": ",".join(settings.cart_token_secrets),
        "JWT_SECRET": settings.jwt_secret,
        "RESERVATION_TTL_SECONDS": str(settings.reservation_ttl_seconds),
        "RATE_LIMIT_PER_MINUTE": str(settings.rate_limit_per_minute),
        "RATE_LIMIT_BURST": str(settings.rate_limit_burst),
        "RATE_LIMIT_ADDRESS_PER_MINUTE": str(settings.rate_limit_address_per_minute),
        "RATE_LIMIT_ADDRESS_BURST": str(settings.rate_limit_address_burst),
        "APP_ENV": "development",
        "LOG_LEVEL": "WARNING",
    }
    env.update(overrides)
    return env


class LiveServer:
    def __init__(self, process: subprocess.Popen, base_url: str, log_path: str) -> None:
        self.process = process
        self.base_url = base_url
        self.log_path = log_path

    def log(self) -> str:
        """What the server wrote to stderr so far (tracebacks of any 5xx)."""
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def kill(self) -> None:
        """SIGKILL: the process dies midway, as in a crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


@contextmanager
def live_server(settings: Settings, workers: int = 1, **env: str) -> Iterator[LiveServer]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "service.app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
        "--no-proxy-headers",
    ]
    # SIM115: the server's output for its whole life, closed in the finally below.
    log = tempfile.NamedTemporaryFile(prefix="tc-live-server-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=server_env(settings, **env), stdout=log, stderr=log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {process.returncode}: {Path(log.name).read_text()[-3000:]}")
            try:
                if httpx.get(f"{base_url}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not become ready in 30 s")
            time.sleep(0.1)
        yield LiveServer(process, base_url, log.name)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
        os.unlink(log.name)
