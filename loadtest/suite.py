"""A run: phases one after another against one deployment, each on its own fresh tiers,
each followed by the invariant check. Shared by ``run`` (one scenario and its ceiling)
and ``bench`` (the standard set). It never starts or stops a server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import NamedTuple, TypeVar

import msgspec
import uvloop

from loadtest import invariants
from loadtest.catalog import AdminApi, Catalog, plan_catalog
from loadtest.client import Connection, ConnectionFailed, Target, encode_request
from loadtest.progress import ProgressLine
from loadtest.runner import LoadGenerator, Phase
from loadtest.scenarios import SCENARIOS, SERVICE, STACK_REFERENCE, Scenario
from loadtest.stats import PhaseStats


class Options(msgspec.Struct, frozen=True, kw_only=True):
    base_url: str  # the service
    reference_url: str | None = None  # the stack reference (bench), for its scenarios
    admin_key: str | None = None
    service_key: str | None = None  # sent as X-Service-Key: the server skips rate limits
    database_url: str | None = None  # for the PostgreSQL side of the invariant check
    processes: int = 2
    timeout: float = 10.0
    seed: int = 1
    seats: int = 100  # the flash tier's seats


FLASH_CHECK = invariants.FLASH_CHECK


class PhaseOutcome(NamedTuple):
    phase: Phase
    stats: PhaseStats
    checks: list[invariants.Check]
    processes: int
    server_cpu: float | None = None  # CPU seconds the phase's server spent during it; None: not read
    redis_cpu: float | None = None  # CPU seconds Redis spent during it (all its clients); None: not read

    def server_cpu_per_request_us(self) -> float | None:
        return self._per_request_us(self.server_cpu)

    def redis_cpu_per_request_us(self) -> float | None:
        return self._per_request_us(self.redis_cpu)

    def _per_request_us(self, seconds: float | None) -> float | None:
        if seconds is None or not self.stats.requests:
            return None
        return seconds / self.stats.requests * 1e6


# Reads a server's CPU seconds so far (ServerUnderTest.cpu_seconds), by server name; under
# REDIS, Redis's (procstat.redis_cpu_meter), read around every phase whichever server it loads.
CpuMeters = Mapping[str, Callable[[], float | None]]
REDIS = "redis"


class SuiteError(RuntimeError):
    """The run could not start or finish; the message says why."""


def ceiling_of(phase: Phase, duration: float | None = None) -> Phase:
    """The trivial endpoint under the same load as ``phase`` (for ``duration``, else as long)."""
    return Phase(
        label="ceiling",
        scenario="health",
        mode=phase.mode,
        connections=phase.connections,
        rate=phase.rate,
        duration=duration or phase.duration,
    )


def url_of(options: Options, scenario: Scenario) -> str:
    """The base URL of the server ``scenario`` speaks to."""
    if scenario.server == SERVICE:
        return options.base_url
    if scenario.server == STACK_REFERENCE and options.reference_url:
        return options.reference_url
    raise SuiteError(f"scenario {scenario.name} needs the {scenario.server} server, which this run has not")


def run_suite(
    options: Options,
    phases: list[Phase],
    display: ProgressLine,
    generator: LoadGenerator | None = None,
    cpu_meters: CpuMeters | None = None,
) -> list[PhaseOutcome]:
    """Run ``phases`` in order; on ``generator`` if given (kept open), else on a new one.
    With ``cpu_meters``, each phase's server CPU is read before and after it."""
    headers = {"X-Service-Key": options.service_key} if options.service_key else {}
    uvloop.run(wait_until_answering(options.base_url, "/health/live", headers, timeout=2.0))
    if generator is None:
        with LoadGenerator(options.processes, progress=display) as own:
            return _run_phases(options, phases, display, own, headers, cpu_meters or {})
    return _run_phases(options, phases, display, generator, headers, cpu_meters or {})


def _run_phases(
    options: Options,
    phases: list[Phase],
    display: ProgressLine,
    generator: LoadGenerator,
    headers: dict[str, str],
    cpu_meters: CpuMeters,
) -> list[PhaseOutcome]:
    outcomes = []
    processes = len(generator.pipes)
    for number, phase in enumerate(phases):
        scenario = SCENARIOS[phase.scenario]
        catalog = plan_catalog(scenario.catalog_kind, seats=phase.seats or options.seats)
        if catalog.tiers:
            # B023: run at once, within this iteration.
            uvloop.run(_with_admin(options, headers, lambda admin: admin.create_catalog(catalog)))  # noqa: B023
        load = f"{phase.rate:,.0f} req/s offered" if phase.mode == "open" else f"{phase.connections} connections"
        display.note(f"[{number + 1}/{len(phases)}] {phase.name}: {scenario.description}; {phase.mode} loop, {load}")
        meter, redis_meter = cpu_meters.get(scenario.server), cpu_meters.get(REDIS)
        cpu_before = meter() if meter else None
        redis_before = redis_meter() if redis_meter else None
        stats = generator.run(
            phase,
            base_url=url_of(options, scenario),
            catalog=catalog,
            headers=headers,
            timeout=options.timeout,
            seed=options.seed + number,
        )
        cpu_after = meter() if meter else None
        redis_after = redis_meter() if redis_meter else None
        server_cpu = _spent(cpu_before, cpu_after)
        redis_cpu = _spent(redis_before, redis_after)
        checks: list[invariants.Check] = []
        if catalog.tiers:
            checks = uvloop.run(_check(options, headers, catalog, phase, stats))
        outcomes.append(PhaseOutcome(phase, stats, checks, min(processes, phase.connections), server_cpu, redis_cpu))
    return outcomes


def _spent(before: float | None, after: float | None) -> float | None:
    return after - before if after is not None and before is not None else None


T = TypeVar("T")


async def _with_admin(options: Options, headers: dict[str, str], action: Callable[[AdminApi], Awaitable[T]]) -> T:
    if not options.admin_key:
        raise SuiteError("this scenario creates its own tiers: give --admin-key")
    admin = AdminApi(Target(options.base_url), options.admin_key, headers)
    try:
        return await action(admin)
    finally:
        admin.close()


async def _check(
    options: Options, headers: dict[str, str], catalog: Catalog, phase: Phase, stats: PhaseStats
) -> list[invariants.Check]:
    expected = unfinished = None
    if SCENARIOS[phase.scenario].finite and phase.buyers is not None:
        unfinished = phase.buyers - stats.buyers_finished
        if not unfinished:
            expected = min(sum(t.total for t in catalog.tiers), phase.buyers)

    async def observe(admin: AdminApi) -> invariants.Observed:
        return await invariants.observe(
            admin,
            catalog,
            stats.tally,
            database_url=options.database_url,
            flash_expected_sold=expected,
        )

    checks = invariants.check(await _with_admin(options, headers, observe))
    if unfinished:
        # Holds of buyers cut off before their checkout stay unsold: no verdict possible.
        checks.append(
            invariants.Check(
                FLASH_CHECK,
                "skip",
                f"{unfinished:,} of {phase.buyers:,} buyers did not finish within {phase.duration:g} s",
            )
        )
    return checks


# ASYNC109: its own deadline, over several connections, ends in a SuiteError (not a TimeoutError).
async def wait_until_answering(base_url: str, path: str, headers: dict[str, str], timeout: float) -> None:  # noqa: ASYNC109
    """Return once GET ``path`` answers 200; raise SuiteError after ``timeout``."""
    target = Target(base_url)
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        connection = Connection(target, timeout=2.0)
        try:
            answer = await connection.send(encode_request(target, "GET", path, headers, None))
            if answer.status == 200:
                return
            last = f"status {answer.status}"
        except (TimeoutError, ConnectionFailed) as exc:
            last = str(exc)
        finally:
            connection.close()
        await asyncio.sleep(0.2)
    raise SuiteError(f"{base_url}{path} is not answering 200 ({last})")
