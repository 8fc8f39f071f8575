"""The performance budget of docs/design.md, judged against the phases a run measured.

A target is judged only where the run measured what it speaks of; it is never inferred
from another load. A phase with more than 1 % unexpected errors fails any target it feeds.
"""

from __future__ import annotations

from typing import NamedTuple

from loadtest.invariants import FLASH_CHECK, Check
from loadtest.scenarios import SCENARIOS
from loadtest.suite import PhaseOutcome

CART_OPS = frozenset({"add", "update", "remove", "view", "availability", "promo", "empty"})
CART_SCENARIOS = frozenset({"add", "mix", "read"})
CART_P99_MS = 5.0
CART_RATE = 1000.0
CHECKOUT_P99_MS = 50.0
CHECKOUT_RATE = 200.0
MAX_ERROR_SHARE = 0.01


class Pairing(NamedTuple):
    """A closed-loop phase judged against another one of the same run, at the same connections.

    Each side is its best round (highest rate of its operation; that round's p99 too): on a
    shared machine, others' load only ever slows a phase down.
    """

    label: str
    op: str
    reference: str  # the label of the phase it is a share of
    reference_op: str
    title: str  # what the target says, without its numbers
    min_share: float  # its rate at least this share of the reference's
    max_p99_times: float | None = None  # its p99 at most this multiple of the reference's
    max_p99_ms: float | None = None  # its p99 under this many milliseconds


ADD_OF_EVAL = Pairing(
    "add", "add", "ref-eval", "eval", "add-to-cart vs the stack reference's EVALSHA route", 0.9, max_p99_times=1.5
)
LIVE_OF_PING = Pairing("ceiling", "live", "ref-ping", "ping", "/health/live vs the stack reference's bare route", 0.9)
HOT_OF_SPREAD = Pairing(
    "checkout-hot",
    "checkout",
    "checkout-spread",
    "checkout",
    "one hot tier's checkouts vs checkouts spread over many tiers",
    0.8,
    max_p99_ms=100.0,
)
PAIRINGS = (ADD_OF_EVAL, LIVE_OF_PING, HOT_OF_SPREAD)


class Figures(NamedTuple):
    rps: float
    p99_ms: float


class Ratio(NamedTuple):
    """A pairing as this run measured it."""

    pairing: Pairing
    measured: PhaseOutcome
    reference: PhaseOutcome
    share: float  # measured rate / reference rate
    p99_times: float  # measured p99 / reference p99


def unexpected_error_share(outcome: PhaseOutcome) -> float:
    expected = SCENARIOS[outcome.phase.scenario].expected_codes
    errors = sum(n for code, n in outcome.stats.errors_by_code().items() if code not in expected)
    return errors / max(outcome.stats.requests, 1)


def matching_ceiling(outcome: PhaseOutcome, outcomes: list[PhaseOutcome]) -> PhaseOutcome | None:
    """The ceiling phase measured under the same load as ``outcome``, of its round if any."""
    found = []
    for other in outcomes:
        p, q = other.phase, outcome.phase
        if p.scenario != "health" or p.mode != q.mode:
            continue
        if (p.mode == "closed" and p.connections == q.connections) or (p.mode == "open" and p.rate == q.rate):
            found.append(other)
    same_round = [o for o in found if o.phase.round == outcome.phase.round]
    return (same_round or found or [None])[0]


def figures(outcome: PhaseOutcome, op: str) -> Figures:
    return Figures(outcome.stats.throughput(op), _p99_ms(outcome, op))


def best_round(
    outcomes: list[PhaseOutcome], label: str, op: str, connections: int | None = None
) -> PhaseOutcome | None:
    """Of the closed-loop phases labelled ``label`` (at ``connections``), the one whose ``op``
    went fastest."""
    rounds = [
        o
        for o in outcomes
        if o.phase.label == label
        and o.phase.mode == "closed"
        and (connections is None or o.phase.connections == connections)
        and o.stats.ops.get(op) is not None
        and o.stats.ops[op].latency.count
    ]
    return max(rounds, key=lambda o: o.stats.throughput(op), default=None)


def ratio_of(pairing: Pairing, outcomes: list[PhaseOutcome]) -> Ratio | None:
    """The pairing's figures from this run's best rounds; None when a side is missing."""
    measured = best_round(outcomes, pairing.label, pairing.op)
    if measured is None:
        return None
    reference = best_round(outcomes, pairing.reference, pairing.reference_op, measured.phase.connections)
    if reference is None:
        return None
    mine, theirs = figures(measured, pairing.op), figures(reference, pairing.reference_op)
    return Ratio(pairing, measured, reference, _share(mine.rps, theirs.rps), _share(mine.p99_ms, theirs.p99_ms))


def ratios(outcomes: list[PhaseOutcome]) -> list[Ratio]:
    return [r for r in (ratio_of(p, outcomes) for p in PAIRINGS) if r is not None]


def reference_of(outcome: PhaseOutcome, outcomes: list[PhaseOutcome]) -> tuple[Pairing, PhaseOutcome] | None:
    """The pairing ``outcome``'s phase is judged by, and the best round of its reference."""
    phase = outcome.phase
    for pairing in PAIRINGS:
        if pairing.label == phase.label and phase.mode == "closed":
            reference = best_round(outcomes, pairing.reference, pairing.reference_op, phase.connections)
            if reference is not None:
                return pairing, reference
    return None


def _share(mine: float, theirs: float) -> float:
    return mine / theirs if theirs > 0 else 0.0


def pairing_verdict(pairing: Pairing, measured: Figures, reference: Figures) -> tuple[bool, str]:
    """Whether ``measured`` meets ``pairing``'s target against ``reference``, and why.

    Bounds are inclusive where the budget says "at least" / "no worse than" and strict
    where it says "under".
    """
    share = _share(measured.rps, reference.rps)
    p99_times = _share(measured.p99_ms, reference.p99_ms)
    ok = share >= pairing.min_share
    detail = f"{share:.3f} ({measured.rps:,.0f} of {reference.rps:,.0f} req/s)"
    if pairing.max_p99_times is not None:
        ok = ok and p99_times <= pairing.max_p99_times
        detail += f"; p99 {p99_times:.2f}x ({measured.p99_ms:.2f} of {reference.p99_ms:.2f} ms)"
    if pairing.max_p99_ms is not None:
        ok = ok and measured.p99_ms < pairing.max_p99_ms
        detail += f"; p99 {measured.p99_ms:.2f} ms"
    return ok, detail


def pairing_target(pairing: Pairing, connections: int) -> str:
    """The target's line in the report: ``... >= 0.9 of ..., p99 <= 1.5x its (64 connections)``."""
    bounds = [f"rate >= {pairing.min_share:g}x"]
    if pairing.max_p99_times is not None:
        bounds.append(f"p99 <= {pairing.max_p99_times:g}x")
    if pairing.max_p99_ms is not None:
        bounds.append(f"p99 < {pairing.max_p99_ms:g} ms")
    return f"{pairing.title}: {', '.join(bounds)} ({connections} connections, same run)"


def _p99_ms(outcome: PhaseOutcome, op: str) -> float:
    return outcome.stats.ops[op].latency.percentile(99) / 1000


def _judge(name: str, ok: bool, detail: str, *outcomes: PhaseOutcome) -> Check:
    for outcome in outcomes:
        share = unexpected_error_share(outcome)
        if share > MAX_ERROR_SHARE:
            return Check(name, "fail", f"{detail}; but {share:.1%} of {outcome.phase.name}'s requests failed")
    return Check(name, "pass" if ok else "fail", detail)


def _judge_ratio(ratio: Ratio) -> Check:
    pairing = ratio.pairing
    measured = figures(ratio.measured, pairing.op)
    reference = figures(ratio.reference, pairing.reference_op)
    ok, detail = pairing_verdict(pairing, measured, reference)
    detail += f"; from {ratio.measured.phase.name} and {ratio.reference.phase.name}"
    name = pairing_target(pairing, ratio.measured.phase.connections)
    return _judge(name, ok, detail, ratio.measured, ratio.reference)


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
                        f"cart operations p99 < {CART_P99_MS:g} ms at {phase.rate:,.0f} req/s ({phase.name})",
                        p99 < CART_P99_MS,
                        f"worst: {worst} p99 {p99:.2f} ms",
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
                results.append(
                    Check(f"flash sale sells exactly the seats there are ({phase.name})", check.status, check.detail)
                )
    results.extend(_judge_ratio(ratio) for ratio in ratios(outcomes))
    return results
