"""The performance budget of docs/design.md, judged against the phases a run measured.

A target is judged only where the run measured what it speaks of; it is never inferred
from another load. A phase with more than 1 % unexpected errors fails any target it feeds.
"""

from __future__ import annotations

from loadtest.invariants import FLASH_CHECK, Check
from loadtest.scenarios import SCENARIOS
from loadtest.suite import PhaseOutcome

CART_OPS = frozenset({"add", "update", "remove", "view", "availability", "promo", "empty"})
CART_SCENARIOS = frozenset({"add", "mix", "read"})
CART_P99_MS = 5.0
CART_RATE = 1000.0
ADD_SHARE_OF_CEILING = 0.60
ADD_P99_TIMES_CEILING = 2.0
CHECKOUT_P99_MS = 50.0
CHECKOUT_RATE = 200.0
MAX_ERROR_SHARE = 0.01


def unexpected_error_share(outcome: PhaseOutcome) -> float:
    expected = SCENARIOS[outcome.phase.scenario].expected_codes
    errors = sum(n for code, n in outcome.stats.errors_by_code().items() if code not in expected)
    return errors / max(outcome.stats.requests, 1)


def matching_ceiling(outcome: PhaseOutcome, outcomes: list[PhaseOutcome]) -> PhaseOutcome | None:
    """The ceiling phase measured under the same load as ``outcome``."""
    for other in outcomes:
        p, q = other.phase, outcome.phase
        if p.scenario != "health" or p.mode != q.mode:
            continue
        if (p.mode == "closed" and p.connections == q.connections) or (p.mode == "open" and p.rate == q.rate):
            return other
    return None


def _p99_ms(outcome: PhaseOutcome, op: str) -> float:
    return outcome.stats.ops[op].latency.percentile(99) / 1000


def _judge(name: str, ok: bool, detail: str, outcome: PhaseOutcome) -> Check:
    share = unexpected_error_share(outcome)
    if share > MAX_ERROR_SHARE:
        return Check(name, "fail", f"{detail}; but {share:.1%} of requests failed")
    return Check(name, "pass" if ok else "fail", detail)


def evaluate(outcomes: list[PhaseOutcome]) -> list[Check]:
    results = []
    for outcome in outcomes:
        phase, stats = outcome.phase, outcome.stats
        if phase.mode == "open" and phase.rate >= CART_RATE and phase.scenario in CART_SCENARIOS:
            cart = [op for op in stats.ops if op in CART_OPS and stats.ops[op].latency.count]
            if cart:
                worst = max(cart, key=lambda op: _p99_ms(outcome, op))
                p99 = _p99_ms(outcome, worst)
                results.append(
                    _judge(
                        f"cart operations p99 < {CART_P99_MS:g} ms at {phase.rate:,.0f} req/s ({phase.label})",
                        p99 < CART_P99_MS,
                        f"worst: {worst} p99 {p99:.2f} ms",
                        outcome,
                    )
                )
        if phase.mode == "closed" and phase.scenario == "add":
            ceiling = matching_ceiling(outcome, outcomes)
            if ceiling is not None and ceiling.stats.requests:
                share = stats.throughput("add") / max(ceiling.stats.throughput(), 1e-9)
                ratio = _p99_ms(outcome, "add") / max(_p99_ms(ceiling, "live"), 1e-9)
                results.append(
                    _judge(
                        f"add-to-cart >= {ADD_SHARE_OF_CEILING:.0%} of the ceiling, p99 <= "
                        f"{ADD_P99_TIMES_CEILING:g}x its ({phase.connections} connections)",
                        share >= ADD_SHARE_OF_CEILING and ratio <= ADD_P99_TIMES_CEILING,
                        f"{share:.0%} of {ceiling.stats.throughput():,.0f} req/s; p99 {ratio:.1f}x",
                        outcome,
                    )
                )
        if phase.mode == "open" and phase.scenario == "checkout" and "checkout" in stats.ops:
            offered = phase.rate / 2  # every buyer adds once, then checks out
            p99 = _p99_ms(outcome, "checkout")
            results.append(
                _judge(
                    f"checkout p99 < {CHECKOUT_P99_MS:g} ms at {CHECKOUT_RATE:g} checkouts/s",
                    p99 < CHECKOUT_P99_MS and offered >= CHECKOUT_RATE,
                    f"p99 {p99:.2f} ms at {offered:,.0f} checkouts/s offered",
                    outcome,
                )
            )
        for check in outcome.checks:
            if check.name == FLASH_CHECK:
                results.append(Check("flash sale sells exactly the seats there are", check.status, check.detail))
    return results
