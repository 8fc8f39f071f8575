"""Command line: ``python -m loadtest run|bench|compare``.

Parses arguments, builds the phases, prints the table and writes the JSON. The exit
status is 1 when an invariant check failed (or, with --strict, a target), 2 on bad usage
or when the run could not be made.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys

from loadtest import report, targets
from loadtest.catalog import SetupError
from loadtest.progress import ProgressLine
from loadtest.runner import Phase, RunError
from loadtest.scenarios import SCENARIOS, SERVICE
from loadtest.server import PROJECT_ROOT
from loadtest.suite import Options, PhaseOutcome, SuiteError, ceiling_of, run_suite

DEFAULT_PROCESSES = min(2, os.cpu_count() or 1)
FLASH_BOUND = 120.0  # seconds a flash sale may take by default


def _positive(kind: type) -> object:
    def parse(text: str) -> object:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text}")
        return value

    return parse


def _common(
    parser: argparse.ArgumentParser, *, buyers: int, seats: int, buyers_are: str = "flash sale: buyers"
) -> None:
    parser.add_argument(
        "--processes",
        type=_positive(int),
        default=DEFAULT_PROCESSES,
        help=f"generator processes, each with its own event loop and connections (default {DEFAULT_PROCESSES})",
    )
    parser.add_argument(
        "--connections",
        type=_positive(int),
        default=64,
        help="connections in all (closed loop: the concurrency; default 64)",
    )
    parser.add_argument(
        "--rate", type=_positive(float), default=1000.0, help="open loop: requests/s offered in all (default 1000)"
    )
    parser.add_argument("--seats", type=_positive(int), default=seats, help=f"flash sale: seats (default {seats:,})")
    parser.add_argument("--buyers", type=_positive(int), default=buyers, help=f"{buyers_are} (default {buyers:,})")
    parser.add_argument(
        "--timeout", type=_positive(float), default=10.0, help="seconds to wait for one answer (default 10)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed, too")
    parser.add_argument(
        "--progress",
        choices=("auto", "on", "off"),
        default="auto",
        help="the status line on stderr (auto: only on a terminal)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest",
        description="ticket-cart's load tool: many virtual buyers on the HTTP API, a ceiling measured"
        " beside them, and an invariant check afterwards. See docs/performance.md.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="load a running deployment with one scenario and its ceiling")
    run.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000")
    run.add_argument("--admin-key", help="X-Admin-Key, to create the run's tiers and read inventory")
    run.add_argument("--service-key", help="sent as X-Service-Key so the server skips its rate limits")
    run.add_argument("--database-url", help="PostgreSQL, for the database side of the invariant check")
    run.add_argument(
        "--scenario",
        choices=[name for name, s in SCENARIOS.items() if s.server == SERVICE],
        default="mix",
        help="health is the ceiling alone (to compare the tool with wrk)",
    )
    run.add_argument(
        "--mode",
        choices=("closed", "open"),
        default="closed",
        help="closed: --connections as fast as they go; open: --rate, timed from when due",
    )
    run.add_argument(
        "--duration",
        type=_positive(float),
        help="seconds per phase (default 10); a flash sale ends when its buyers are done,"
        f" and this only bounds it (default {FLASH_BOUND:g})",
    )
    run.add_argument("--no-ceiling", action="store_true", help="skip the GET /health/live phase")
    run.add_argument("--seed", type=int, default=1, help="the buyers' random choices (default 1)")
    _common(run, buyers=2000, seats=100, buyers_are="flash sale: buyers; checkout-hot: buyers and seats")

    bench = commands.add_parser("bench", help="start the service here and run the standard phases")
    bench.add_argument("--duration", type=_positive(float), default=5.0, help="seconds per phase (default 5)")
    bench.add_argument("--workers", type=_positive(int), default=2, help="uvicorn workers of each server (default 2)")
    bench.add_argument(
        "--rounds",
        type=_positive(int),
        default=2,
        help="times the stack-reference phases (ref-ping, ceiling, ref-eval, add) run, alternating;"
        " each side is judged by its best round (default 2)",
    )
    bench.add_argument(
        "--only",
        metavar="LABELS",
        help="comma-separated phase labels to run, e.g. ref-eval,add (labels: ref-ping, ceiling, ref-eval,"
        " add, read, mix, checkout, checkout-spread, checkout-hot, flash)",
    )
    _common(bench, buyers=10_000, seats=1_000, buyers_are="flash sale: buyers; checkout-hot: buyers and seats")

    compare = commands.add_parser("compare", help="compare two JSON result files")
    compare.add_argument("old")
    compare.add_argument("new")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "compare":
        with open(args.old) as old, open(args.new) as new:
            print(report.compare(json.load(old), json.load(new)))
        return 0
    display = ProgressLine(enabled={"on": True, "off": False}.get(args.progress))
    command = "python -m loadtest " + shlex.join(sys.argv[1:] if argv is None else argv)
    revision = None
    try:
        if args.command == "run":
            outcomes, base_url, title = _run(args, display)
        else:
            revision = report.source_revision(str(PROJECT_ROOT))
            outcomes, base_url, title = _bench(args, display, revision)
    except (SuiteError, SetupError, RunError) as exc:
        display.clear()
        print(f"loadtest: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        display.clear()
        print("loadtest: interrupted", file=sys.stderr)
        return 130
    print(report.render(outcomes, title=title))
    json_path = args.json
    if json_path is None and args.command == "bench":
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        json_path = os.path.join("bench-results", f"bench-{stamp}.json")
    if json_path:
        report.write_document(
            json_path, report.to_document(outcomes, base_url=base_url, command=command, revision=revision)
        )
        print(f"\nresults written to {json_path}")
    failed = not report.all_passed(outcomes)
    if args.strict and any(c.status == "fail" for c in targets.evaluate(outcomes)):
        failed = True
    return 1 if failed else 0


def _title(what: str, args: argparse.Namespace) -> str:
    machine = report.machine_facts()
    return (
        f"ticket-cart load test: {what}; {args.processes} generator processes;"
        f" {machine['nproc']} CPUs ({machine['cpu_model']})"
    )


def _run(args: argparse.Namespace, display: ProgressLine) -> tuple[list[PhaseOutcome], str, str]:
    scenario = SCENARIOS[args.scenario]
    duration = args.duration or (FLASH_BOUND if scenario.finite else 10.0)
    phase = Phase(
        label=args.scenario,
        scenario=args.scenario,
        mode=args.mode,
        connections=args.connections,
        rate=args.rate,
        duration=duration,
        buyers=args.buyers if scenario.finite else None,
        # one hot tier: as many seats as buyers, so every buyer checks out
        seats=args.buyers if args.scenario == "checkout-hot" else None,
    )
    ceiling = ceiling_of(phase, duration=args.duration or 10.0)
    phases = [phase] if args.no_ceiling or args.scenario == "health" else [ceiling, phase]
    options = Options(
        base_url=args.base_url,
        admin_key=args.admin_key,
        service_key=args.service_key,
        database_url=args.database_url,
        processes=args.processes,
        timeout=args.timeout,
        seed=args.seed,
        seats=args.seats,
    )
    return run_suite(options, phases, display), args.base_url, _title(f"{args.base_url}", args)


def _bench(
    args: argparse.Namespace, display: ProgressLine, revision: dict[str, object] | None
) -> tuple[list[PhaseOutcome], str, str]:
    from loadtest.bench import run_bench, standard_phases

    phases = standard_phases(
        duration=args.duration,
        connections=args.connections,
        rate=args.rate,
        buyers=args.buyers,
        rounds=args.rounds,
    )
    if args.only:
        wanted = {label.strip() for label in args.only.split(",")}
        phases = [p for p in phases if p.label in wanted]
        if not phases:
            raise SuiteError(f"--only {args.only}: no such phase")
    outcomes, base_url = run_bench(
        phases,
        processes=args.processes,
        workers=args.workers,
        seats=args.seats,
        display=display,
    )
    what = (
        f"bench, service.app {report.describe_revision(revision)} and the stack reference on this machine"
        f" ({args.workers} uvicorn workers each)"
    )
    return outcomes, base_url, _title(what, args)
