"""The latency histogram: bounded relative error, exact merge, lossless round trip."""

from __future__ import annotations

import random

from loadtest.histogram import Histogram, bucket_bounds, bucket_of


def test_every_value_falls_in_a_bucket_that_holds_it_within_one_in_128() -> None:
    for value in [0, 1, 127, 255, 256, 257, 511, 512, 1000, 65_535, 10**6, 3 * 10**7 + 7]:
        low, high = bucket_bounds(bucket_of(value))
        assert low <= value <= high
        assert high - low <= max(value / 128, 0)


def test_buckets_are_ordered_like_their_values() -> None:
    indices = [bucket_of(v) for v in range(0, 200_000, 37)]
    assert indices == sorted(indices)


def test_percentiles_are_within_the_error_bound_of_the_exact_ones() -> None:
    rng = random.Random(7)
    values = sorted(rng.lognormvariate(-7, 1.2) for _ in range(20_000))  # seconds, ~1 ms median
    hist = Histogram.of(values)
    for p in (50, 90, 99, 99.9):
        exact = values[int(len(values) * p / 100 + 0.5) - 1] * 1e6
        assert abs(hist.percentile(p) - exact) <= exact / 128 + 1, p
    assert hist.percentile(100) == hist.max_us == int(values[-1] * 1e6)
    assert hist.min_us == int(values[0] * 1e6)


def test_merged_histograms_equal_one_fed_everything() -> None:
    rng = random.Random(3)
    a_values = [rng.expovariate(500) for _ in range(3000)]
    b_values = [rng.expovariate(50) for _ in range(1000)]
    merged = Histogram.of(a_values)
    merged.merge(Histogram.of(b_values))
    whole = Histogram.of(a_values + b_values)
    assert merged.to_dict() == whole.to_dict()


def test_round_trip_through_plain_data_keeps_everything() -> None:
    hist = Histogram.of([0.0001, 0.002, 0.002, 1.5])
    again = Histogram.from_dict(hist.to_dict())
    assert again.to_dict() == hist.to_dict()
    assert again.percentile(50) == hist.percentile(50)


def test_an_empty_histogram_reports_zeros() -> None:
    hist = Histogram()
    assert hist.percentile(99) == 0.0 and hist.mean() == 0.0 and hist.count == 0
