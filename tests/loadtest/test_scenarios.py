"""Each scenario once, at tiny scale, against the stand-in and against the real app.

These prove the tool drives every flow and judges the result; they never assert speed.
"""

from __future__ import annotations

import pytest

from loadtest.catalog import plan_catalog
from loadtest.invariants import FLASH_CHECK
from loadtest.progress import ProgressLine
from loadtest.runner import LoadGenerator, Phase
from loadtest.scenarios import SCENARIOS
from loadtest.server import ServerUnderTest
from loadtest.suite import Options, ceiling_of, run_suite
from loadtest.targets import unexpected_error_share
from tests.conftest import TEST_SECRETS
from tests.loadtest.conftest import SERVICE_KEY, STANDIN_ADMIN_KEY

TINY = {"connections": 4, "duration": 0.5}
FLASH = {"connections": 4, "duration": 30.0}  # a bound only: a flash sale ends when its buyers are done


@pytest.fixture(params=["standin", "real_app"])
def target(request: pytest.FixtureRequest) -> Options:
    server: ServerUnderTest = request.getfixturevalue(request.param)
    if request.param == "standin":
        return Options(base_url=server.url, admin_key=STANDIN_ADMIN_KEY, processes=1, seats=10)
    return Options(
        base_url=server.url,
        admin_key=TEST_SECRETS["ADMIN_API_KEY"],
        service_key=SERVICE_KEY,
        database_url=server.env["DATABASE_URL"],
        processes=1,
        seats=10,
    )


def _run(generator: LoadGenerator, options: Options, *phases: Phase):
    return run_suite(options, list(phases), ProgressLine(enabled=False), generator)


@pytest.mark.parametrize("scenario", ["flash", "mix", "read", "add", "checkout"])
def test_each_scenario_runs_and_its_invariants_hold(generator, target, scenario) -> None:
    finite = SCENARIOS[scenario].finite
    phase = Phase(label=scenario, scenario=scenario, buyers=30 if finite else None, **(FLASH if finite else TINY))
    [outcome] = _run(generator, target, phase)

    assert outcome.stats.requests > 0
    assert unexpected_error_share(outcome) == 0, outcome.stats.errors_by_code()
    failed = [c for c in outcome.checks if c.status == "fail"]
    assert not failed, failed
    assert {c.name for c in outcome.checks} >= {"sold + held <= total (Redis)", "no cart with two orders"}


def test_flash_sale_sells_exactly_the_seats_to_the_first_buyers(generator, target) -> None:
    [outcome] = _run(generator, target, Phase(label="flash", scenario="flash", buyers=40, **FLASH))

    assert outcome.stats.buyers_finished == 40
    assert outcome.stats.tally.orders == target.seats
    assert outcome.stats.ops["add"].errors["sold-out"] == 40 - target.seats
    assert [c.status for c in outcome.checks if c.name.startswith("flash")] == ["pass"]


def test_checkout_spread_is_the_checkout_flow_over_256_tiers_of_16_events() -> None:
    spread, checkout = SCENARIOS["checkout-spread"], SCENARIOS["checkout"]
    catalog = plan_catalog(spread.catalog_kind, seats=10)

    assert spread.flow is checkout.flow
    assert len({t.id for t in catalog.tiers}) == 256
    assert len({t.event_id for t in catalog.tiers}) == 16


def test_a_hot_tier_with_a_seat_per_buyer_sells_every_seat(generator, target) -> None:
    phase = Phase(label="checkout-hot", scenario="checkout-hot", buyers=30, seats=30, **FLASH)
    [outcome] = _run(generator, target, phase)

    assert outcome.stats.tally.orders == 30
    assert outcome.stats.ops["checkout"].ok == 30
    assert outcome.stats.errors_by_code() == {}
    assert [c.status for c in outcome.checks if c.name.startswith("flash")] == ["pass"]


def test_open_loop_offers_the_rate_and_the_ceiling_runs_beside_it(generator, target) -> None:
    phase = Phase(label="read", scenario="read", mode="open", rate=200, connections=4, duration=0.5)
    ceiling, read = _run(generator, target, ceiling_of(phase), phase)

    assert ceiling.phase.scenario == "health" and ceiling.phase.rate == 200
    assert set(ceiling.stats.ops) == {"live"}
    # 200/s for 0.5 s: the arrivals are counted, not the answers' pace.
    assert 90 <= ceiling.stats.requests <= 101
    assert 90 <= read.stats.requests <= 101
    assert read.stats.schedule_lag.count == read.stats.requests


def test_a_flash_sale_cut_short_by_its_bound_gets_no_verdict(generator, standin) -> None:
    options = Options(base_url=standin.url, admin_key=STANDIN_ADMIN_KEY, processes=1, seats=10)
    phase = Phase(label="flash", scenario="flash", buyers=1_000_000, connections=4, duration=0.3)
    [outcome] = _run(generator, options, phase)

    [verdict] = [c for c in outcome.checks if c.name == FLASH_CHECK]
    assert verdict.status == "skip" and "did not finish within 0.3 s" in verdict.detail
