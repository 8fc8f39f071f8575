"""Counts of one phase: latency histogram and outcomes per operation, mergeable.

Each process fills its own ``PhaseStats``; the parent merges them and reads the numbers.
Nothing here measures time or formats output.
"""

from __future__ import annotations

from collections import Counter

from loadtest.client import Response
from loadtest.histogram import Histogram
from loadtest.scenarios import Tally


def problem_code(answer: Response) -> str:
    """The stable problem ``code`` of an error answer, else ``http-<status>``."""
    body = answer.json()
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        return body["code"]
    return f"http-{answer.status}"


class OpStats:
    __slots__ = ("errors", "latency", "ok")

    def __init__(self) -> None:
        self.latency = Histogram()  # answered requests, success or not
        self.ok = 0
        self.errors: Counter[str] = Counter()

    @property
    def requests(self) -> int:
        return self.ok + sum(self.errors.values())

    def merge(self, other: OpStats) -> None:
        self.latency.merge(other.latency)
        self.ok += other.ok
        self.errors.update(other.errors)

    def to_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "errors": dict(self.errors), "latency": self.latency.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> OpStats:
        op = cls()
        op.ok = int(data["ok"])  # type: ignore[call-overload]
        op.errors.update(data["errors"])  # type: ignore[arg-type]
        op.latency = Histogram.from_dict(data["latency"])  # type: ignore[arg-type]
        return op


class PhaseStats:
    def __init__(self) -> None:
        self.ops: dict[str, OpStats] = {}
        # Open loop: how late the generator itself was in issuing each arrival (its own
        # lag, not the server's; waiting for a free connection is in the latency instead).
        self.schedule_lag = Histogram()
        self.elapsed = 0.0  # seconds from the start to the last answer
        self.generator_cpu: list[float] = []  # CPU share of each generator process
        self.idle_arrivals = 0  # open loop: arrivals no buyer could take
        self.buyers_started = 0
        self.buyers_finished = 0
        self.reconnects = 0
        self.tally = Tally()

    def op(self, name: str) -> OpStats:
        stats = self.ops.get(name)
        if stats is None:
            stats = self.ops[name] = OpStats()
        return stats

    @property
    def requests(self) -> int:
        return sum(op.requests for op in self.ops.values())

    def throughput(self, op: str | None = None) -> float:
        if self.elapsed <= 0:
            return 0.0
        count = self.requests if op is None else self.ops[op].requests
        return count / self.elapsed

    def errors_by_code(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for op in self.ops.values():
            total.update(op.errors)
        return total

    def merge(self, other: PhaseStats) -> None:
        for name, op in other.ops.items():
            self.op(name).merge(op)
        self.schedule_lag.merge(other.schedule_lag)
        self.elapsed = max(self.elapsed, other.elapsed)
        self.generator_cpu.extend(other.generator_cpu)
        self.idle_arrivals += other.idle_arrivals
        self.buyers_started += other.buyers_started
        self.buyers_finished += other.buyers_finished
        self.reconnects += other.reconnects
        self.tally.merge(other.tally)

    def to_dict(self) -> dict[str, object]:
        return {
            "ops": {name: op.to_dict() for name, op in sorted(self.ops.items())},
            "schedule_lag": self.schedule_lag.to_dict(),
            "elapsed": self.elapsed,
            "generator_cpu": self.generator_cpu,
            "idle_arrivals": self.idle_arrivals,
            "buyers_started": self.buyers_started,
            "buyers_finished": self.buyers_finished,
            "reconnects": self.reconnects,
            "tally": self.tally.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> PhaseStats:
        stats = cls()
        stats.ops = {n: OpStats.from_dict(o) for n, o in dict(data["ops"]).items()}  # type: ignore[arg-type]
        stats.schedule_lag = Histogram.from_dict(data["schedule_lag"])  # type: ignore[arg-type]
        stats.elapsed = float(data["elapsed"])  # type: ignore[arg-type]
        stats.generator_cpu = [float(c) for c in data["generator_cpu"]]  # type: ignore[attr-defined]
        for name in ("idle_arrivals", "buyers_started", "buyers_finished", "reconnects"):
            setattr(stats, name, int(data[name]))  # type: ignore[call-overload]
        stats.tally = Tally.from_dict(data["tally"])  # type: ignore[arg-type]
        return stats
