"""The ratio targets of issue #18 as plain numbers (pass and fail at their bounds), which
rounds they are taken from, and the report printing them. Nothing here is timed."""

from __future__ import annotations

import pytest

from loadtest import report, targets
from loadtest.bench import stack_phases
from loadtest.runner import Phase
from loadtest.stats import PhaseStats
from loadtest.suite import PhaseOutcome
from loadtest.targets import ADD_OF_EVAL, HOT_OF_SPREAD, LIVE_OF_PING, Figures, pairing_verdict

# (pairing, measured, reference, passes)
BOUNDS = [
    # add-to-cart: rate >= 0.9 of the EVALSHA route, p99 <= 1.5x its
    (ADD_OF_EVAL, Figures(900.0, 15.0), Figures(1000.0, 10.0), True),
    (ADD_OF_EVAL, Figures(899.9, 10.0), Figures(1000.0, 10.0), False),
    (ADD_OF_EVAL, Figures(1000.0, 15.01), Figures(1000.0, 10.0), False),
    (ADD_OF_EVAL, Figures(1200.0, 1.0), Figures(1000.0, 10.0), True),
    # /health/live: rate >= 0.9 of the bare route; its p99 is not judged
    (LIVE_OF_PING, Figures(9000.0, 99.0), Figures(10000.0, 1.0), True),
    (LIVE_OF_PING, Figures(8999.0, 1.0), Figures(10000.0, 1.0), False),
    # one hot tier: rate >= 0.8 of spread checkouts, p99 under 100 ms
    (HOT_OF_SPREAD, Figures(800.0, 99.99), Figures(1000.0, 10.0), True),
    (HOT_OF_SPREAD, Figures(799.0, 10.0), Figures(1000.0, 10.0), False),
    (HOT_OF_SPREAD, Figures(1000.0, 100.0), Figures(1000.0, 10.0), False),
    # no reference measured: nothing to be a share of
    (ADD_OF_EVAL, Figures(1000.0, 1.0), Figures(0.0, 0.0), False),
]


@pytest.mark.parametrize(("pairing", "measured", "reference", "passes"), BOUNDS)
def test_ratio_verdicts_at_their_bounds(
    pairing: targets.Pairing, measured: Figures, reference: Figures, passes: bool
) -> None:
    ok, detail = pairing_verdict(pairing, measured, reference)
    assert ok is passes, detail


def outcome(
    label: str,
    scenario: str,
    op: str,
    rps: int,
    p99_ms: float,
    round_: int = 0,
    cpu_us: float | None = None,
    redis_us: float | None = None,
) -> PhaseOutcome:
    """A closed-loop phase of 64 connections, 1 s long, whose ``op`` ran at ``rps``, every
    answer at ``p99_ms``, its server spending ``cpu_us`` per request and Redis ``redis_us``."""
    stats = PhaseStats()
    counts = stats.op(op)
    for _ in range(int(rps)):
        counts.latency.record(p99_ms / 1000)
    counts.ok = int(rps)
    stats.elapsed = 1.0
    phase = Phase(label=label, scenario=scenario, mode="closed", connections=64, duration=1.0, round=round_)
    return PhaseOutcome(
        phase,
        stats,
        [],
        2,
        None if cpu_us is None else cpu_us * rps / 1e6,
        None if redis_us is None else redis_us * rps / 1e6,
    )


def stack_run() -> list[PhaseOutcome]:
    return [
        outcome("ref-ping", "ping", "ping", 20000, 4.0, 1, cpu_us=30),
        outcome("ceiling", "health", "live", 18000, 5.0, 1, cpu_us=50),
        outcome("ref-eval", "eval", "eval", 10000, 10.0, 1, cpu_us=60, redis_us=4),
        outcome("add", "add", "add", 8000, 12.0, 1),
        outcome("ref-ping", "ping", "ping", 16000, 6.0, 2),
        outcome("ceiling", "health", "live", 15000, 6.0, 2),
        outcome("ref-eval", "eval", "eval", 9000, 11.0, 2),
        outcome("add", "add", "add", 9000, 14.0, 2, cpu_us=100, redis_us=30),
        outcome("checkout-spread", "checkout-spread", "checkout", 1000, 50.0),
        outcome("checkout-hot", "checkout-hot", "checkout", 850, 90.0),
    ]


def test_bench_alternates_the_stack_pairs_round_by_round() -> None:
    names = [p.name for p in stack_phases(duration=1.0, connections=64, rounds=2)]
    assert names == [
        "ref-ping #1",
        "ceiling #1",
        "ref-eval #1",
        "add #1",
        "ref-ping #2",
        "ceiling #2",
        "ref-eval #2",
        "add #2",
    ]


def test_each_side_is_its_best_round() -> None:
    ratios = {r.pairing: r for r in targets.ratios(stack_run())}

    add = ratios[ADD_OF_EVAL]
    assert (add.measured.phase.name, add.reference.phase.name) == ("add #2", "ref-eval #1")
    assert add.share == pytest.approx(0.9)
    live = ratios[LIVE_OF_PING]
    assert (live.measured.phase.name, live.reference.phase.name) == ("ceiling #1", "ref-ping #1")
    assert live.share == pytest.approx(0.9)
    assert ratios[HOT_OF_SPREAD].share == pytest.approx(0.85)


def test_a_pairing_without_its_reference_is_not_judged() -> None:
    run = [o for o in stack_run() if o.phase.label != "ref-eval"]
    assert ADD_OF_EVAL not in {r.pairing for r in targets.ratios(run)}
    assert not [c for c in targets.evaluate(run) if c.name.startswith(ADD_OF_EVAL.title)]


def test_the_report_prints_the_ratios_and_their_verdicts() -> None:
    run = stack_run()
    printed = report.render(run, title="t")
    rows = {(row[0] or None, row[2]): row for row in report.table_rows(run)}
    of_ref = report._COLUMNS.index("of ref")
    p99_of_ref = report._COLUMNS.index("p99/ref")

    assert rows[("add #2", "add")][of_ref] == "0.90"
    assert rows[("add #1", "add")][of_ref] == "0.80"  # every round against the best reference round
    assert rows[("ceiling #1", "live")][of_ref] == "0.90"
    assert rows[("checkout-hot", "checkout")][of_ref] == "0.85"
    assert rows[("ref-eval #1", "eval")][of_ref] == "-"
    assert rows[("ref-eval #1", "eval")][report._COLUMNS.index("of ceil")] == "-"  # not the service's
    assert rows[("add #1", "add")][report._COLUMNS.index("of ceil")] == "44%"  # of ceiling #1
    assert rows[("add #2", "add")][p99_of_ref].endswith("x")
    assert "add (add #2) / eval (ref-eval #1): rate 0.90" in printed
    assert "live (ceiling #1) / ping (ref-ping #1): rate 0.90" in printed
    assert "server CPU 50 / 30 us per request (+20 us)" in printed
    assert rows[("ceiling #1", "live")][report._COLUMNS.index("srv us/req")] == "50"
    assert rows[("add #1", "add")][report._COLUMNS.index("srv us/req")] == "-"  # not read
    assert rows[("add #2", "add")][report._COLUMNS.index("redis us/req")] == "30"
    assert rows[("add #1", "add")][report._COLUMNS.index("redis us/req")] == "-"
    assert "server CPU 100 / 60 us per request (+40 us), Redis CPU 30 / 4 us (+26 us)" in printed
    assert "checkout (checkout-hot) / checkout (checkout-spread): rate 0.85" in printed
    assert f"PASS  {ADD_OF_EVAL.title}: rate >= 0.9x, p99 <= 1.5x (64 connections, same run)" in printed
    assert f"PASS  {HOT_OF_SPREAD.title}: rate >= 0.8x, p99 < 100 ms" in printed


def test_the_json_document_holds_the_ratios() -> None:
    document = report.to_document(stack_run(), base_url="http://x", command="bench")

    by_target = {r["target"]: r for r in document["ratios"]}
    add = by_target[ADD_OF_EVAL.title]
    assert add["share"] == pytest.approx(0.9) and add["min_share"] == 0.9 and add["max_p99_times"] == 1.5
    assert add["measured"]["phase"] == "add #2" and add["reference"]["phase"] == "ref-eval #1"
    assert by_target[LIVE_OF_PING.title]["share"] == pytest.approx(0.9)
    assert by_target[LIVE_OF_PING.title]["measured"]["server_cpu_us_per_request"] == pytest.approx(50)
    assert document["phases"][0]["server_cpu_us_per_request"] == pytest.approx(30)
    assert add["measured"]["redis_cpu_us_per_request"] == pytest.approx(30)
    assert add["reference"]["redis_cpu_us_per_request"] == pytest.approx(4)
    assert document["phases"][7]["redis_cpu_us_per_request"] == pytest.approx(30)  # add #2
    assert document["phases"][0]["redis_cpu_s"] is None  # not read
    assert by_target[HOT_OF_SPREAD.title]["max_p99_ms"] == 100.0
    assert [p["server"] for p in document["phases"][:2]] == ["stack-reference", "service"]
    assert {t["status"] for t in document["targets"]} == {"pass"}


def test_compare_puts_cpu_per_request_and_ratios_side_by_side() -> None:
    document = report.to_document(stack_run(), base_url="http://x", command="bench")
    table = report.compare(document, document)

    assert "ceiling #1       closed 64c             50         50     +0%" in table
    assert f"{ADD_OF_EVAL.title}: rate 0.90 -> 0.90, p99 1.40x -> 1.40x" in table


def test_compare_reads_documents_without_cpu_or_ratios() -> None:
    document = report.to_document(stack_run(), base_url="http://x", command="bench")
    older = {**document, "ratios": [], "phases": [{**p, "server_cpu_us_per_request": None} for p in document["phases"]]}

    table = report.compare(older, document)
    assert "server CPU" not in table and "ratios" not in table and "add #2" in table
