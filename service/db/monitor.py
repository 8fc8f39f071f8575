"""PostgreSQL's state as this process sees it, for ``/health/ready``'s body and the
``tc_postgres_up`` gauge: reported, never a reason to stop serving carts.

Carts need only Redis; PostgreSQL serves checkouts, orders, admin changes and a tier's
first load, which answer 503 ``unavailable`` while it is down. So the pool
(``service.db.pool``) opens no connection at start-up, a process starts without
PostgreSQL, and the pool connects again on its next acquire once PostgreSQL answers.

Readiness must not wait for a pool connection: under a queue of checkouts on a hot tier's
row lock every one is taken for seconds. So the monitor asks on a connection of its own,
opened for one ``SELECT 1`` and closed, in a background task: every ``PROBE_SECONDS``, and
every ``PROBE_SECONDS_WHILE_DOWN`` while PostgreSQL does not answer, so that its return
shows soon. When PostgreSQL answers and the pool holds fewer than ``DB_POOL_MIN``
connections (none at start-up, none left after an outage, or closed after five idle
minutes), it opens the missing ones, so the first checkouts need not connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from service.metrics import POSTGRES_UP
from service.settings import Settings

PROBE_SECONDS = 10.0
PROBE_SECONDS_WHILE_DOWN = 2.0
UNKNOWN = "unknown"  # no probe has finished yet
OK = "ok"

log = logging.getLogger("ticket_cart.postgres")


class PostgresMonitor:
    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self._dsn = settings.database_url
        self._timeout = settings.database_timeout_seconds
        self._pool = pool
        self._pool_min = settings.db_pool_min
        self._task: asyncio.Task[None] | None = None
        self.state = UNKNOWN  # OK, UNKNOWN or "unreachable: <exception type>"

    @property
    def up(self) -> bool:
        return self.state == OK

    def start(self) -> None:
        """Probe now, then on and on, in the running loop's background."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="postgres-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            if await self.probe():
                await self._fill_pool()
            await asyncio.sleep(PROBE_SECONDS if self.up else PROBE_SECONDS_WHILE_DOWN)

    async def probe(self) -> bool:
        """One ``SELECT 1`` on a connection of its own; records and returns whether it answered."""
        try:
            conn = await asyncpg.connect(self._dsn, timeout=self._timeout)
            try:
                await conn.fetchval("SELECT 1", timeout=self._timeout)
            finally:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=self._timeout)
        except Exception as exc:  # whatever it is, checkouts cannot reach PostgreSQL either
            self._record(f"unreachable: {type(exc).__name__}", exc)
        else:
            self._record(OK)
        return self.up

    def _record(self, state: str, exc: Exception | None = None) -> None:
        if state != self.state:
            if state == OK:
                log.info("PostgreSQL answers%s", "" if self.state == UNKNOWN else " again")
            else:
                log.warning(
                    "PostgreSQL unreachable (%r): what needs it fails (checkouts answer 503) "
                    "until it answers; carts need only Redis",
                    exc,
                )
        self.state = state
        POSTGRES_UP.set(1 if state == OK else 0)

    async def _fill_pool(self) -> None:
        """Open pool connections up to ``DB_POOL_MIN`` (acquired together, then released)."""
        missing = self._pool_min - self._pool.get_size()
        if missing <= 0:
            return

        async def open_one() -> None:
            async with self._pool.acquire(timeout=self._timeout):
                pass

        # A failure here is a checkout's to meet and the next probe's to report.
        await asyncio.gather(*(open_one() for _ in range(missing)), return_exceptions=True)
