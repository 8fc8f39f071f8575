"""Runs phases across several generator processes and merges what they measured.

The worker processes are started once (spawn) and kept for every phase of a run; each
runs its own event loop (uvloop) with its own connections. The parent only splits the
work, shows progress and merges results: it sends no requests during a phase.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import time
from multiprocessing.connection import Connection as Pipe, wait

import msgspec

from loadtest.catalog import Catalog
from loadtest.engine import DRAIN_SECONDS, Share, ShareSpec
from loadtest.progress import ProgressLine
from loadtest.stats import PhaseStats

# After every process has connected: time for the "go" to reach them all.
_START_MARGIN = 0.05


class Phase(msgspec.Struct, frozen=True, kw_only=True):
    """One measured stretch of load: a scenario, a mode and its size."""

    label: str  # "ceiling", or the scenario's name
    scenario: str
    mode: str = "closed"
    connections: int = 64
    rate: float = 1000.0  # requests/s offered, open loop only
    duration: float = 10.0
    buyers: int | None = None
    seats: int | None = None  # flash sale: its tier's seats; None: the run's --seats
    round: int = 0  # bench: which of the repeated rounds (1, 2, ...); 0: not repeated

    @property
    def name(self) -> str:
        """The label, with its round when repeated: ``add #2``."""
        return f"{self.label} #{self.round}" if self.round else self.label


class RunError(RuntimeError):
    """A generator process failed; the message carries its error."""


def split(total: int, parts: int) -> list[int]:
    q, r = divmod(total, parts)
    return [q + (1 if i < r else 0) for i in range(parts)]


def _worker_main(pipe: Pipe, progress: object) -> None:
    """A generator process: for each spec, connect, say so, wait for the start, load."""
    import uvloop

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    pipe.send(("ready", None))
    while True:
        spec = pipe.recv()
        if spec is None:
            return
        loop = uvloop.new_event_loop()
        try:
            share = Share(spec, progress)  # type: ignore[arg-type]
            loop.run_until_complete(share.connect())
            pipe.send(("connected", None))
            start_at = pipe.recv()
            if start_at is None:  # the run was abandoned while we waited
                return
            stats = loop.run_until_complete(share.run(start_at))
            pipe.send(("ok", stats.to_dict()))
        except Exception as exc:  # reported to the parent, which fails the run
            pipe.send(("error", f"{type(exc).__name__}: {exc}"))
        finally:
            loop.close()


class LoadGenerator:
    """A pool of generator processes; use as a context manager."""

    def __init__(self, processes: int, *, progress: ProgressLine | None = None) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        context = multiprocessing.get_context("spawn")
        self.display = progress or ProgressLine()
        self.counters = context.RawArray("q", processes * 2)  # done, failed per process
        self.pipes: list[Pipe] = []
        self.processes = []
        for _ in range(processes):
            parent_end, child_end = context.Pipe()
            process = context.Process(target=_worker_main, args=(child_end, self.counters), daemon=True)
            process.start()
            child_end.close()
            self.pipes.append(parent_end)
            self.processes.append(process)
        for pipe in self.pipes:  # imports done: the first phase starts on time
            self._expect(pipe, "ready", timeout=60)

    def _expect(self, pipe: Pipe, status: str, timeout: float) -> None:
        if not pipe.poll(timeout):
            raise RunError(f"a generator process did not get {status} within {timeout:g} s")
        try:
            got, payload = pipe.recv()
        except EOFError:
            raise RunError("a generator process died") from None
        if got != status:
            raise RunError(str(payload))

    def __enter__(self) -> LoadGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        self.pipes.clear()
        self.processes.clear()

    def run(
        self,
        phase: Phase,
        *,
        base_url: str,
        catalog: Catalog,
        headers: dict[str, str],
        timeout: float = 10.0,
        seed: int = 0,
    ) -> PhaseStats:
        used = max(1, min(len(self.pipes), phase.connections))
        connections = split(phase.connections, used)
        buyers = split(phase.buyers, used) if phase.buyers is not None else [None] * used
        for i in range(len(self.counters)):
            self.counters[i] = 0
        for worker in range(used):
            spec = ShareSpec(
                base_url=base_url,
                scenario=phase.scenario,
                mode=phase.mode,
                connections=connections[worker],
                rate=phase.rate / used,
                duration=phase.duration,
                buyers=buyers[worker],
                catalog=catalog,
                headers=headers,
                timeout=timeout,
                seed=seed * 1000 + worker,
                worker=worker,
                first_arrival=worker / phase.rate if phase.rate > 0 else 0.0,
            )
            self.pipes[worker].send(spec)
        self.display.show(f"{phase.name}: connecting {phase.connections} connections")
        for pipe in self.pipes[:used]:
            self._expect(pipe, "connected", timeout=timeout + 30)
        start_at = time.monotonic() + _START_MARGIN
        for pipe in self.pipes[:used]:
            pipe.send(start_at)
        return self._collect(phase, self.pipes[:used], start_at, timeout)

    def _collect(self, phase: Phase, pipes: list[Pipe], start_at: float, timeout: float) -> PhaseStats:
        merged = PhaseStats()
        errors: list[str] = []
        waiting = list(pipes)
        give_up = start_at + phase.duration + DRAIN_SECONDS + 2 * timeout + 30
        while waiting:
            if time.monotonic() > give_up:
                for process in self.processes:
                    process.terminate()
                raise RunError(f"{phase.name}: generator processes did not finish in time")
            for pipe in wait(waiting, timeout=0.2):
                waiting.remove(pipe)  # type: ignore[arg-type]
                try:
                    status, payload = pipe.recv()  # type: ignore[union-attr]
                except EOFError:
                    status, payload = "error", "a generator process died"
                if status == "ok":
                    merged.merge(PhaseStats.from_dict(payload))
                else:
                    errors.append(payload)
            self._show(phase, start_at)
        self.display.clear()
        if errors:
            raise RunError(f"{phase.name}: " + "; ".join(sorted(set(errors))))
        return merged

    def _show(self, phase: Phase, start_at: float) -> None:
        elapsed = max(time.monotonic() - start_at, 0.0)
        done = sum(self.counters[0::2])
        failed = sum(self.counters[1::2])
        load = f"{phase.rate:,.0f} req/s offered" if phase.mode == "open" else f"{phase.connections} conns"
        self.display.show(
            f"{phase.name} [{phase.mode}, {load}] {min(elapsed, phase.duration):4.1f}/{phase.duration:g} s"
            f"  {done:,} requests  {done / max(elapsed, 1e-9):,.0f}/s  {failed:,} not ok"
        )
