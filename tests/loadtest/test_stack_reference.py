"""The stack reference (loadtest/stack_reference.py) against the test Redis: both routes
answer, the EVALSHA goes through the service's auto-pipelining client, and the bench's
reference phases reach it while the service's phases reach the service."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from litestar.testing import AsyncTestClient

from devtools.embedded import ResolvedServers
from loadtest import targets
from loadtest.bench import STACK_REFERENCE_APP, stack_phases
from loadtest.procstat import redis_cpu_meter
from loadtest.progress import ProgressLine
from loadtest.runner import LoadGenerator
from loadtest.scenarios import SERVICE, STACK_REFERENCE
from loadtest.server import ServerUnderTest
from loadtest.stack_reference import create_app
from loadtest.suite import REDIS, Options, SuiteError, run_suite
from service.redis.autopipeline import AutoPipelined
from service.settings import Settings
from tests.conftest import TEST_SECRETS
from tests.loadtest.conftest import SERVICE_KEY


def reference_env(servers: ResolvedServers) -> dict[str, str]:
    assert servers.redis_url is not None
    return {**os.environ, **TEST_SECRETS, "REDIS_URL": servers.redis_url, "LOG_LEVEL": "WARNING"}


@pytest.fixture(scope="session")
def stack_reference(servers: ResolvedServers) -> Iterator[ServerUnderTest]:
    """Served as make bench serves it (one worker here)."""
    with ServerUnderTest(STACK_REFERENCE_APP, env=reference_env(servers), workers=1, ready_path="/ping") as server:
        yield server


async def test_both_routes_answer_through_the_services_auto_pipelined_client(servers: ResolvedServers) -> None:
    app = create_app(Settings.from_env(reference_env(servers)))
    async with AsyncTestClient(app) as client:
        ping = await client.get("/ping")
        evaluated = await client.post("/eval", json={"tier_id": "x", "quantity": 1})
        assert isinstance(app.state.scripts, AutoPipelined)
        assert (await client.get("/schema")).status_code == 404  # no OpenAPI
    assert (ping.status_code, ping.json()) == (200, {"status": "ok"})
    assert (evaluated.status_code, evaluated.json()) == (200, {"result": 1})
    assert app.middleware == []


def test_reference_phases_reach_the_reference_and_service_phases_the_service(
    generator: LoadGenerator, stack_reference: ServerUnderTest, real_app: ServerUnderTest, servers: ResolvedServers
) -> None:
    phases = stack_phases(duration=0.2, connections=2, rounds=1)
    options = Options(
        base_url=real_app.url,
        reference_url=stack_reference.url,
        admin_key=TEST_SECRETS["ADMIN_API_KEY"],
        service_key=SERVICE_KEY,
        processes=1,
    )
    meters = {
        SERVICE: real_app.cpu_seconds,
        STACK_REFERENCE: stack_reference.cpu_seconds,
        REDIS: redis_cpu_meter(servers.redis_url),
    }
    outcomes = run_suite(options, phases, ProgressLine(enabled=False), generator, cpu_meters=meters)

    assert [o.phase.name for o in outcomes] == ["ref-ping", "ceiling", "ref-eval", "add"]
    for outcome in outcomes:
        [(op, stats)] = outcome.stats.ops.items()
        assert stats.ok > 0 and stats.ok == stats.requests, (outcome.phase.name, op, stats.errors)
    # each phase's server CPU is read from its own server's process group
    assert all(o.server_cpu is not None and o.server_cpu >= 0 for o in outcomes)
    assert sum(o.server_cpu for o in outcomes if o.phase.label.startswith("ref-")) > 0
    assert sum(o.server_cpu for o in outcomes if not o.phase.label.startswith("ref-")) > 0
    # and Redis's, around every phase (the eval and add phases run scripts there)
    assert all(o.redis_cpu is not None and o.redis_cpu >= 0 for o in outcomes)
    assert sum(o.redis_cpu for o in outcomes if o.phase.label in ("ref-eval", "add")) > 0
    judged = {r.pairing for r in targets.ratios(outcomes)}
    assert judged == {targets.ADD_OF_EVAL, targets.LIVE_OF_PING}


def test_a_reference_phase_without_the_reference_server_is_refused(
    generator: LoadGenerator, real_app: ServerUnderTest
) -> None:
    options = Options(base_url=real_app.url, processes=1)
    with pytest.raises(SuiteError, match="stack-reference"):
        run_suite(
            options, stack_phases(duration=0.3, connections=1, rounds=1)[:1], ProgressLine(enabled=False), generator
        )
