"""One process's share of a phase: its connections, its buyers, closed or open loop.

Closed loop: each connection runs buyers back to back, as fast as answers come, and a
request is timed from when it is written. Open loop: requests are due at a fixed rate
whatever the server does; a request is timed from when it was *due*, so a slow answer
that delays the next one is charged to both (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import MutableSequence

import msgspec

from loadtest.catalog import Catalog
from loadtest.client import Connection, ConnectionFailed, Response, Target, encode_request
from loadtest.scenarios import SCENARIOS, Flow, FlowContext, Scenario
from loadtest.stats import PhaseStats, problem_code

# How long the open loop waits for requests still queued or in flight after the end.
DRAIN_SECONDS = 5.0
# Event-loop timers fire up to a millisecond late (epoll's resolution). Waking that much
# early and sending what is due within it keeps the generator's own lateness out of the
# latencies; a request sent early is timed from when it was sent, never from before.
TIMER_SLACK = 0.001
CONNECT_SPACING = 0.002  # seconds between two connections of one process (see Share.connect)
# Open loop: buyers under way at once, per connection (see Share.open_loop).
BUYERS_PER_CONNECTION = 4
_PROGRESS_EVERY = 0.1


class ShareSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What one process runs; the parent splits a phase into one per process."""

    base_url: str
    scenario: str
    mode: str  # "closed" or "open"
    connections: int
    rate: float  # this process's requests/s (open loop)
    duration: float  # seconds; for a finite scenario, the most it may take
    buyers: int | None  # this process's buyers; None: as many as the time allows
    catalog: Catalog
    headers: dict[str, str]
    timeout: float
    seed: int
    worker: int
    first_arrival: float = 0.0  # open loop: offset so processes' arrivals interleave


class EngineError(RuntimeError):
    """The share could not run at all (e.g. no connection could be made)."""


class Buyer:
    __slots__ = ("call", "flow", "token")

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.token: str | None = None
        self.call = next(flow, None)

    def advance(self, answer: object) -> None:
        try:
            self.call = self.flow.send(answer)
        except StopIteration:
            self.call = None


class Backlog:
    """Requests due and not yet sent; the connection idle most recently takes the next.

    Last in, first out over idle connections keeps as few connections busy as the load
    needs and lets the others idle out cleanly, rather than reusing each one just as the
    server's keep-alive timeout closes it (a slow open loop would then see false errors).
    """

    def __init__(self) -> None:
        self.items: deque[tuple[float, Buyer]] = deque()
        self.idle: list[asyncio.Future[tuple[float, Buyer]]] = []
        self.handed = 0  # given to an idle connection that has not woken up yet

    def put(self, item: tuple[float, Buyer]) -> None:
        while self.idle:
            taker = self.idle.pop()
            if not taker.done():
                taker.set_result(item)
                self.handed += 1
                return
        self.items.append(item)

    async def take(self) -> tuple[float, Buyer]:
        if self.items:
            return self.items.popleft()
        taker: asyncio.Future[tuple[float, Buyer]] = asyncio.get_running_loop().create_future()
        self.idle.append(taker)
        item = await taker
        self.handed -= 1
        return item

    def __len__(self) -> int:
        """Requests due and not yet sent."""
        return len(self.items) + self.handed


class Share:
    def __init__(self, spec: ShareSpec, progress: MutableSequence[int] | None = None) -> None:
        self.spec = spec
        self.scenario: Scenario = SCENARIOS[spec.scenario]
        self.target = Target(spec.base_url)
        self.stats = PhaseStats()
        self.rng = random.Random(spec.seed)
        self.progress = progress
        self.connections: list[Connection] = []
        self.start_at = 0.0  # time.monotonic(): the same clock in every process
        self.deadline = 0.0
        self.last_answer = 0.0
        self.done = 0
        self.failed = 0
        self.in_flight = 0

    # --- buyers ----------------------------------------------------------------------

    def next_buyer(self) -> Buyer | None:
        quota = self.spec.buyers
        if quota is not None and self.stats.buyers_started >= quota:
            return None
        number = self.stats.buyers_started
        self.stats.buyers_started += 1
        ctx = FlowContext(self.rng, self.spec.catalog, self.stats.tally, f"{self.spec.worker}-{number}")
        buyer = Buyer(self.scenario.flow(ctx))
        if buyer.call is None:
            self.stats.buyers_finished += 1
            return None
        return buyer

    def all_buyers_started(self) -> bool:
        quota = self.spec.buyers
        return quota is not None and self.stats.buyers_started >= quota

    # --- one request -----------------------------------------------------------------

    async def execute(self, connection: Connection, buyer: Buyer, timed_from: float) -> Response | None:
        call = buyer.call
        assert call is not None
        headers = self.spec.headers
        if buyer.token is not None or call.headers:
            headers = {**headers, **(call.headers or {})}
            if buyer.token is not None:
                headers["X-Cart-Token"] = buyer.token
        body = msgspec.json.encode(call.body) if call.body is not None else None
        raw = encode_request(self.target, call.method, call.path, headers, body)
        op = self.stats.op(call.op)
        answer = None
        self.in_flight += 1
        try:
            answer = await connection.send(raw, watched=True)
        except ConnectionFailed:
            op.errors["connection-error"] += 1
        except TimeoutError:
            op.errors["timeout"] += 1
        finally:
            self.in_flight -= 1
        now = time.monotonic()
        if answer is None:
            self.failed += 1
        else:
            op.latency.record(now - timed_from)
            self.last_answer = now
            if answer.status < 400:
                op.ok += 1
            else:
                op.errors[problem_code(answer)] += 1
                self.failed += 1
            token = answer.headers.get(b"x-cart-token")
            if token:
                buyer.token = token.decode("latin-1")
        self.done += 1
        buyer.advance(answer)
        if buyer.call is None:
            self.stats.buyers_finished += 1
        return answer

    # --- the two loops ---------------------------------------------------------------

    async def closed_connection(self, connection: Connection) -> None:
        while True:
            buyer = self.next_buyer()
            if buyer is None:
                return
            while buyer.call is not None:
                now = time.monotonic()
                if now >= self.deadline:
                    return
                if await self.execute(connection, buyer, now) is None:
                    await asyncio.sleep(0.01)  # a dead server should not spin the loop

    async def open_loop(self, connections: list[Connection]) -> None:
        """Arrivals at a fixed rate; each is the next step of a buyer that is free.

        At most ``BUYERS_PER_CONNECTION`` buyers per connection are under way: when all are
        waiting for answers, an arrival waits for one (timed from its due time all the
        same), so an overloaded server sees the scenario's mix of steps, not a flood of
        first steps from ever more new buyers.
        """
        spec = self.spec
        pending = Backlog()
        ready: deque[Buyer] = deque()
        waiting: deque[float] = deque()  # due times of arrivals that found no free buyer
        most_buyers = BUYERS_PER_CONNECTION * len(connections)

        def place(due: float) -> bool:
            """Give the arrival due at ``due`` a buyer; False when none can take it now."""
            if ready:
                buyer: Buyer | None = ready.popleft()
            elif self.stats.buyers_started - self.stats.buyers_finished < most_buyers:
                buyer = self.next_buyer()
            else:
                buyer = None
            if buyer is None:
                return False
            pending.put((due, buyer))
            return True

        async def sender(connection: Connection) -> None:
            while True:
                due, buyer = await pending.take()
                now = time.monotonic()
                await self.execute(connection, buyer, due if due < now else now)
                if buyer.call is not None:
                    ready.append(buyer)
                while waiting and place(waiting[0]):
                    waiting.popleft()

        senders = [asyncio.create_task(sender(c)) for c in connections]
        interval = 1.0 / spec.rate
        first = self.start_at + spec.first_arrival
        arrival = 0
        try:
            while True:
                now = time.monotonic()
                due = first + arrival * interval
                if due >= self.deadline:
                    break  # arrivals due in the window are all sent, however late
                if due > now + TIMER_SLACK:
                    # Never shorter than a tick: a zero-length timer would spin the CPU.
                    await asyncio.sleep(max(due - now - TIMER_SLACK, TIMER_SLACK))
                    continue
                arrival += 1
                self.stats.schedule_lag.record(now - due)
                if waiting or not place(due):
                    if self.all_buyers_started() and not ready and not self.in_flight and not pending:
                        break  # a finite scenario whose buyers are all done
                    if self.all_buyers_started():
                        self.stats.idle_arrivals += 1
                    else:
                        waiting.append(due)
            drain_until = time.monotonic() + DRAIN_SECONDS + spec.timeout
            # ASYNC110: a poll of two counters under a deadline, not a wait for one event.
            while (self.in_flight or pending) and time.monotonic() < drain_until:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        finally:
            for task in senders:
                task.cancel()
            await asyncio.gather(*senders, return_exceptions=True)
        left = len(pending) + len(waiting)
        if left:
            self.stats.op("(never sent)").errors["not-sent"] += left

    async def report_progress(self) -> None:
        """Publish counts for the parent's status line; time out requests waiting too long."""
        slot = self.spec.worker * 2
        while True:
            if self.progress is not None:
                self.progress[slot] = self.done
                self.progress[slot + 1] = self.failed
            now = time.monotonic()
            for connection in self.connections:
                connection.expire(now)
            await asyncio.sleep(_PROGRESS_EVERY)

    async def connect(self) -> None:
        """Open the connections before the start, so the start measures requests only.

        One at a time, a moment apart, as clients arrive: opened all at once, they queue
        on the listening socket and the first server worker to wake accepts nearly all of
        them (uvicorn's workers share one socket), leaving the other workers idle.
        """
        self.connections = [Connection(self.target, self.spec.timeout) for _ in range(self.spec.connections)]

        async def connect(n: int, connection: Connection) -> None:
            await asyncio.sleep(n * CONNECT_SPACING)  # started apart, awaited together: one timeout bounds all
            await connection.connect()

        results = await asyncio.gather(*(connect(n, c) for n, c in enumerate(self.connections)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if len(failures) == len(self.connections):
            raise EngineError(str(failures[0]))

    async def run(self, start_at: float) -> PhaseStats:
        """Load from ``start_at`` (time.monotonic()) on; connect() first."""
        spec, connections = self.spec, self.connections
        self.start_at = self.last_answer = start_at
        self.deadline = start_at + spec.duration
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        ticker = asyncio.create_task(self.report_progress())
        cpu_before = time.process_time()
        try:
            if spec.mode == "open":
                await self.open_loop(connections)
            else:
                await asyncio.gather(*(self.closed_connection(c) for c in connections))
        finally:
            ticker.cancel()
            for connection in connections:
                connection.close()
        wall = max(time.monotonic() - start_at, 1e-9)
        self.stats.elapsed = self.last_answer - start_at
        self.stats.generator_cpu = [(time.process_time() - cpu_before) / wall]
        self.stats.reconnects = sum(c.reconnects for c in connections)
        if self.progress is not None:
            self.progress[spec.worker * 2] = self.done
            self.progress[spec.worker * 2 + 1] = self.failed
        return self.stats
