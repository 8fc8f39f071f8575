"""Request timings for ``tc_http_request_duration_seconds``, gathered in the process and added
to the histogram at most a second later.

prometheus-client's ``Histogram.observe`` checks its labels, takes a lock for the sum, walks
the buckets and takes another lock for the bucket: measured in process, about 2.3 us of
every request's 30 (the edge's largest single cost, docs/performance.md). Here a request
adds one to its series' bucket count (found by bisection, as ``observe`` finds it) and its
seconds to the series' sum; ``flush`` adds the gathered counts and sums to the histogram's
own values, one ``inc`` per bucket that moved. It runs a second after the first request it
has pending, and before ``/metrics`` is rendered, so the process that answers a scrape is
exact and the others (``PROMETHEUS_MULTIPROC_DIR``: each process writes its own values) are
at most a second behind. Timings of a process killed within that second are lost.

The histogram's values are read through prometheus-client's ``_sum`` and ``_buckets`` (its
observe uses the same); ``tests/http/test_timings.py`` checks the result against
``observe`` so a client that changes them fails there, not in production.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Callable, Hashable, Sequence
from typing import Any

FLUSH_AFTER_SECONDS = 1.0


class _Series:
    """One label set's timings since the last flush."""

    __slots__ = ("child", "counts", "pending", "total")

    def __init__(self, child: Any, buckets: int) -> None:
        self.child = child
        self.counts = [0] * buckets
        self.total = 0.0
        self.pending = False


class RequestTimings:
    """The timings of one histogram, by a key the caller chooses (it names the labels once)."""

    def __init__(
        self,
        histogram: Any,
        upper_bounds: Sequence[float],
        labels_of: Callable[[Any], Sequence[str]],
        *,
        flush_after: float = FLUSH_AFTER_SECONDS,
    ) -> None:
        self.histogram = histogram
        self.labels_of = labels_of  # a key's label values, asked once per key
        self.bounds = tuple(upper_bounds)  # without +Inf: a time past them all counts there
        self.flush_after = flush_after
        self._series: dict[Hashable, _Series] = {}
        self._pending: list[_Series] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    def observe(self, key: Hashable, seconds: float) -> None:
        """Count ``seconds`` in the series of ``key``."""
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(self.histogram.labels(*self.labels_of(key)), len(self.bounds) + 1)
        series.counts[bisect_left(self.bounds, seconds)] += 1
        series.total += seconds
        if not series.pending:
            series.pending = True
            self._pending.append(series)
            # (A timer on a loop closed since never fires: tests run many loops in one process.)
            if self._timer is None or self._timer_loop is None or self._timer_loop.is_closed():
                self._timer_loop = asyncio.get_running_loop()
                self._timer = self._timer_loop.call_later(self.flush_after, self.flush)

    def flush(self) -> None:
        """Add every pending count and sum to the histogram."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, []
        for series in pending:
            child, counts = series.child, series.counts
            child._sum.inc(series.total)
            for i, count in enumerate(counts):
                if count:
                    child._buckets[i].inc(count)
                    counts[i] = 0
            series.total = 0.0
            series.pending = False
