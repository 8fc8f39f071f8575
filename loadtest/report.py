"""The results: a plain-text table for people, a JSON document for comparing runs.

Everything here reads finished ``PhaseOutcome``s; nothing measures or decides a verdict
(targets.py and invariants.py do).
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from typing import Any

import msgspec

from loadtest import targets
from loadtest.invariants import Check, passed
from loadtest.runner import Phase
from loadtest.scenarios import SCENARIOS, SERVICE
from loadtest.stats import PhaseStats
from loadtest.suite import PhaseOutcome

FORMAT_VERSION = 2  # 2: phases have a round, the document has the ratios
OP_ORDER = ("live", "add", "update", "remove", "view", "availability", "promo", "empty", "checkout")
GENERATOR_BUSY = 0.85  # a generator process busier than this may have capped the load

_COLUMNS = (
    "phase",
    "load",
    "operation",
    "requests",
    "req/s",
    "of ref",
    "of ceil",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "p99/ref",
    "p99/ceil",
    "max ms",
    "srv us/req",
    "redis us/req",
    "not ok",
)


def machine_facts() -> dict[str, object]:
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def source_revision(root: str) -> dict[str, object] | None:
    """The commit the served code is at, and whether service/ or lua/ differ from it
    (a bench measures the working tree, others' unfinished changes included)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, timeout=10, check=True)
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        changed = git("status", "--porcelain", "--", "service", "lua")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "uncommitted_changes": bool(changed)}


def describe_revision(revision: dict[str, object] | None) -> str:
    if revision is None:
        return "at an unknown commit"
    suffix = " with uncommitted changes in service/ or lua/" if revision["uncommitted_changes"] else ""
    return f"at {revision['commit']}{suffix}"


def load_of(phase: Phase) -> str:
    return f"open {phase.rate:,.0f}/s" if phase.mode == "open" else f"closed {phase.connections}c"


def _ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def _op_names(stats: PhaseStats) -> list[str]:
    known = [op for op in OP_ORDER if op in stats.ops]
    return known + sorted(op for op in stats.ops if op not in OP_ORDER)


def table_rows(outcomes: list[PhaseOutcome]) -> list[tuple[str, ...]]:
    rows = []
    for outcome in outcomes:
        phase, stats = outcome.phase, outcome.stats
        # The stack reference's rows are not shares of the service's own ceiling.
        own = phase.scenario != "health" and SCENARIOS[phase.scenario].server == SERVICE
        ceiling = targets.matching_ceiling(outcome, outcomes) if own else None
        ceiling_rate = ceiling.stats.throughput() if ceiling else 0.0
        ceiling_p99 = (
            ceiling.stats.ops["live"].latency.percentile(99) if ceiling and "live" in ceiling.stats.ops else 0.0
        )
        paired = targets.reference_of(outcome, outcomes)
        names = _op_names(stats)
        rows_of_phase = names + (["(all)"] if len(names) > 1 else [])
        cpu, redis_cpu = outcome.server_cpu_per_request_us(), outcome.redis_cpu_per_request_us()
        for i, name in enumerate(rows_of_phase):
            if name == "(all)":
                latency = PhaseStats()
                for op in stats.ops.values():
                    latency.op("all").merge(op)
                op = latency.ops["all"]
                rate = stats.throughput()
            else:
                op = stats.ops[name]
                rate = stats.throughput(name)
            hist = op.latency
            share = f"{rate / ceiling_rate:.0%}" if ceiling_rate and phase.mode == "closed" else "-"
            p99_ratio = f"{hist.percentile(99) / ceiling_p99:.1f}x" if ceiling_p99 and hist.count else "-"
            of_ref = p99_of_ref = "-"
            if paired is not None and name == paired[0].op and hist.count:
                reference = targets.figures(paired[1], paired[0].reference_op)
                mine = targets.figures(outcome, name)
                of_ref = f"{mine.rps / reference.rps:.2f}" if reference.rps else "-"
                p99_of_ref = f"{mine.p99_ms / reference.p99_ms:.2f}x" if reference.p99_ms else "-"
            rows.append(
                (
                    phase.name if i == 0 else "",
                    load_of(phase) if i == 0 else "",
                    name,
                    f"{op.requests:,}",
                    f"{rate:,.0f}",
                    of_ref,
                    share,
                    *(_ms(hist.percentile(p)) if hist.count else "-" for p in (50, 90, 99)),
                    p99_of_ref,
                    p99_ratio,
                    _ms(hist.max_us) if hist.count else "-",
                    # the whole phase's figure: on its one row, or its (all) row
                    f"{cpu:,.0f}" if cpu is not None and i == len(rows_of_phase) - 1 else "-",
                    f"{redis_cpu:,.0f}" if redis_cpu is not None and i == len(rows_of_phase) - 1 else "-",
                    f"{op.requests - op.ok:,}",
                )
            )
    return rows


def format_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(_COLUMNS)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(_COLUMNS), line(tuple("-" * w for w in widths)), *(line(r) for r in rows)])


def _check_lines(checks: list[Check], indent: str = "  ") -> list[str]:
    return [f"{indent}{c.status.upper():4}  {c.name}" + (f": {c.detail}" if c.detail else "") for c in checks]


def ratio_lines(outcomes: list[PhaseOutcome]) -> list[str]:
    """Each pairing's ratio, from the best round of each side ("of ref" in the table is
    every round's rate against that same best reference round)."""
    lines = []
    for ratio in targets.ratios(outcomes):
        pairing = ratio.pairing
        mine = targets.figures(ratio.measured, pairing.op)
        theirs = targets.figures(ratio.reference, pairing.reference_op)
        line = (
            f"  {pairing.op} ({ratio.measured.phase.name}) / {pairing.reference_op} ({ratio.reference.phase.name}):"
            f" rate {ratio.share:.2f} ({mine.rps:,.0f} / {theirs.rps:,.0f} req/s),"
            f" p99 {ratio.p99_times:.2f}x ({mine.p99_ms:.2f} / {theirs.p99_ms:.2f} ms)"
        )
        my_cpu, their_cpu = ratio.measured.server_cpu_per_request_us(), ratio.reference.server_cpu_per_request_us()
        if my_cpu is not None and their_cpu is not None:
            line += f", server CPU {my_cpu:,.0f} / {their_cpu:,.0f} us per request ({my_cpu - their_cpu:+,.0f} us)"
        my_redis, their_redis = ratio.measured.redis_cpu_per_request_us(), ratio.reference.redis_cpu_per_request_us()
        if my_redis is not None and their_redis is not None:
            line += f", Redis CPU {my_redis:,.0f} / {their_redis:,.0f} us ({my_redis - their_redis:+,.0f} us)"
        lines.append(line)
    return lines


def render(outcomes: list[PhaseOutcome], *, title: str) -> str:
    out = [title, "", format_table(table_rows(outcomes)), ""]
    paired = ratio_lines(outcomes)
    if paired:
        out.append("Ratios (same run, each side its best round; the targets below judge these):")
        out.extend(paired)
        out.append("")
    out.append("Not-ok answers by problem code (expected ones are the scenario working as meant):")
    for outcome in outcomes:
        codes = outcome.stats.errors_by_code()
        expected = SCENARIOS[outcome.phase.scenario].expected_codes
        listed = ", ".join(
            f"{code} {n:,}" + (" (expected)" if code in expected else "") for code, n in codes.most_common()
        )
        out.append(f"  {outcome.phase.name} ({load_of(outcome.phase)}): {listed or 'none'}")
    out.append("")
    out.append("Generator (the load tool itself):")
    for outcome in outcomes:
        out.append(f"  {outcome.phase.name} ({load_of(outcome.phase)}): {generator_line(outcome.stats, outcome.phase)}")
    checked = [o for o in outcomes if o.checks]
    if checked:
        out.append("")
        out.append("Invariants after each phase:")
        for outcome in checked:
            out.append(f"  {outcome.phase.name} ({load_of(outcome.phase)}):")
            out.extend(_check_lines(outcome.checks, "    "))
    judged = targets.evaluate(outcomes)
    if judged:
        out.append("")
        out.append("Targets (docs/design.md, Performance budget):")
        out.extend(_check_lines(judged))
    return "\n".join(out)


def generator_line(stats: PhaseStats, phase: Phase) -> str:
    cpu = ", ".join(f"{c:.0%}" for c in stats.generator_cpu)
    parts = [f"{len(stats.generator_cpu)} processes, CPU {cpu}", f"{stats.elapsed:.1f} s"]
    if phase.mode == "open":
        parts.append(f"schedule lag p99 {_ms(stats.schedule_lag.percentile(99))} ms")
    parts.append(f"buyers {stats.buyers_started:,} started, {stats.buyers_finished:,} finished")
    if stats.idle_arrivals:
        parts.append(f"{stats.idle_arrivals:,} arrivals found no buyer")
    if stats.reconnects:
        parts.append(f"{stats.reconnects:,} reconnects")
    if any(c > GENERATOR_BUSY for c in stats.generator_cpu):
        parts.append("WARNING: a generator process was nearly saturated; throughput may be understated")
    return "; ".join(parts)


def all_passed(outcomes: list[PhaseOutcome]) -> bool:
    return all(passed(o.checks) for o in outcomes)


# --- JSON ------------------------------------------------------------------------------


def to_document(
    outcomes: list[PhaseOutcome], *, base_url: str, command: str, revision: dict[str, object] | None = None
) -> dict[str, Any]:
    phases = []
    for outcome in outcomes:
        stats = outcome.stats
        summary = {
            name: {
                "requests": op.requests,
                "ok": op.ok,
                "rps": stats.throughput(name),
                "p50_ms": op.latency.percentile(50) / 1000,
                "p90_ms": op.latency.percentile(90) / 1000,
                "p99_ms": op.latency.percentile(99) / 1000,
                "max_ms": op.latency.max_us / 1000,
            }
            for name, op in stats.ops.items()
        }
        phases.append(
            {
                "phase": msgspec.to_builtins(outcome.phase),
                "server": SCENARIOS[outcome.phase.scenario].server,
                "processes": outcome.processes,
                "summary": summary,
                "rps": stats.throughput(),
                "server_cpu_s": outcome.server_cpu,
                "server_cpu_us_per_request": outcome.server_cpu_per_request_us(),
                "redis_cpu_s": outcome.redis_cpu,
                "redis_cpu_us_per_request": outcome.redis_cpu_per_request_us(),
                "invariants": [c._asdict() for c in outcome.checks],
                "stats": stats.to_dict(),
            }
        )
    return {
        "format": FORMAT_VERSION,
        "tool": "ticket-cart loadtest",
        "command": command,
        "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "base_url": base_url,
        "revision": revision,  # bench: the served code's commit; None: not known (run)
        "machine": machine_facts(),
        "phases": phases,
        "ratios": [ratio_document(r) for r in targets.ratios(outcomes)],
        "targets": [c._asdict() for c in targets.evaluate(outcomes)],
    }


def ratio_document(ratio: targets.Ratio) -> dict[str, Any]:
    pairing = ratio.pairing

    def side(outcome: PhaseOutcome, op: str) -> dict[str, Any]:
        rps, p99_ms = targets.figures(outcome, op)
        return {
            "phase": outcome.phase.name,
            "op": op,
            "rps": rps,
            "p99_ms": p99_ms,
            "server_cpu_us_per_request": outcome.server_cpu_per_request_us(),
            "redis_cpu_us_per_request": outcome.redis_cpu_per_request_us(),
        }

    return {
        "target": pairing.title,
        "measured": side(ratio.measured, pairing.op),
        "reference": side(ratio.reference, pairing.reference_op),
        "share": ratio.share,
        "p99_times": ratio.p99_times,
        "min_share": pairing.min_share,
        "max_p99_times": pairing.max_p99_times,
        "max_p99_ms": pairing.max_p99_ms,
    }


def write_document(path: str, document: dict[str, Any]) -> None:
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, "wb") as out:
        out.write(msgspec.json.format(msgspec.json.encode(document), indent=2))
        out.write(b"\n")


def compare(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Side by side: req/s and p99 per (phase, load, operation) present in both runs; then
    the server's CPU per request per phase and the ratios, where both runs have them."""

    def index(doc: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, float]]:
        rows = {}
        for entry in doc["phases"]:
            phase = msgspec.convert(entry["phase"], Phase)
            for op, s in entry["summary"].items():
                rows[(phase.name, load_of(phase), op)] = s
        return rows

    before, after = index(old), index(new)
    lines = [
        f"{'phase':<16} {'load':<14} {'operation':<13} {'req/s old':>10} {'req/s new':>10} {'change':>7}"
        f" {'p99 old':>8} {'p99 new':>8} {'change':>7}"
    ]
    for key in [k for k in before if k in after]:
        a, b = before[key], after[key]
        lines.append(
            f"{key[0]:<16} {key[1]:<14} {key[2]:<13} {a['rps']:>10,.0f} {b['rps']:>10,.0f}"
            f" {_change(a['rps'], b['rps'])} {a['p99_ms']:>8.2f} {b['p99_ms']:>8.2f}"
            f" {_change(a['p99_ms'], b['p99_ms'])}"
        )
    only = sorted(set(before) ^ set(after))
    if only:
        lines.append(f"({len(only)} rows are in one run only)")
    return "\n".join(lines + _compare_cpu(old, new) + _compare_ratios(old, new))


def _change(a: float, b: float) -> str:
    return f"{(b / a - 1) if a else 0.0:>+7.0%}"


def _compare_cpu(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    def index(doc: dict[str, Any]) -> dict[tuple[str, str], float]:
        cpu = {}
        for entry in doc["phases"]:
            if entry.get("server_cpu_us_per_request") is not None:
                phase = msgspec.convert(entry["phase"], Phase)
                cpu[(phase.name, load_of(phase))] = entry["server_cpu_us_per_request"]
        return cpu

    before, after = index(old), index(new)
    both = [k for k in before if k in after]
    if not both:
        return []
    lines = ["", f"{'server CPU, us per request':<31} {'old':>10} {'new':>10} {'change':>7}"]
    for key in both:
        a, b = before[key], after[key]
        lines.append(f"{key[0]:<16} {key[1]:<14} {a:>10,.0f} {b:>10,.0f} {_change(a, b)}")
    return lines


def _compare_ratios(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    before = {r["target"]: r for r in old.get("ratios", [])}
    after = {r["target"]: r for r in new.get("ratios", [])}
    both = [t for t in before if t in after]
    if not both:
        return []
    lines = ["", "ratios (old -> new):"]
    for target in both:
        a, b = before[target], after[target]
        lines.append(
            f"  {target}: rate {a['share']:.2f} -> {b['share']:.2f}, p99 {a['p99_times']:.2f}x -> {b['p99_times']:.2f}x"
        )
    return lines
