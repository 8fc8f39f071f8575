"""service/http/timings.py: request timings gathered in the process reach the histogram as
prometheus-client's own observe would put them there, on /metrics at once and by themselves
within a second."""

from __future__ import annotations

import asyncio
import random

from prometheus_client import CollectorRegistry, Histogram

from service.http.timings import RequestTimings
from service.metrics import HTTP_LATENCY_BUCKETS


def histogram() -> Histogram:
    return Histogram("t_seconds", "test", ("route",), buckets=HTTP_LATENCY_BUCKETS, registry=CollectorRegistry())


def samples(h: Histogram) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for m in h.collect()
        for s in m.samples
        if not s.name.endswith("_created")  # when the series was made, not what it counted
    }


async def test_flushed_timings_equal_observing_each_one():
    rng = random.Random(7)
    seconds = [
        rng.choice([0.0, 0.0005, 0.001, 3.0, 100.0]) if n % 5 == 0 else rng.expovariate(300) for n in range(5000)
    ]
    observed, gathered = histogram(), histogram()
    timings = RequestTimings(gathered, HTTP_LATENCY_BUCKETS, lambda key: (key,))
    for n, s in enumerate(seconds):
        route = ("/a", "/b")[n % 2]
        observed.labels(route).observe(s)
        timings.observe(route, s)
    assert samples(gathered) != samples(observed)  # nothing is added before a flush

    timings.flush()

    expected, got = samples(observed), samples(gathered)
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        assert abs(got[key] - value) < 1e-6, key  # counts exact; sums to float rounding
    timings.flush()  # nothing pending: nothing added twice
    assert samples(gathered) == got


async def test_timings_reach_the_histogram_by_themselves():
    gathered = histogram()
    timings = RequestTimings(gathered, HTTP_LATENCY_BUCKETS, lambda key: (key,), flush_after=0.05)
    timings.observe("/a", 0.002)
    await asyncio.sleep(0.2)  # an idle process: no request, no scrape
    assert samples(gathered)[("t_seconds_count", (("route", "/a"),))] == 1
    timings.observe("/a", 0.002)
    await asyncio.sleep(0.2)
    assert samples(gathered)[("t_seconds_count", (("route", "/a"),))] == 2
