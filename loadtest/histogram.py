"""A log-linear latency histogram in the manner of HdrHistogram, in microseconds.

Constant memory, O(1) record, exact merge across processes, and every percentile within
1/128 (< 0.8 %) of the true value. It only counts; it never decides what a latency is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# 2**SUB_BITS buckets per power of two: the relative error bound is 2**-SUB_BITS.
SUB_BITS = 7
_SUB = 1 << SUB_BITS
_SMALL = _SUB << 1  # values below this are their own bucket (exact)


def bucket_of(value_us: int) -> int:
    """Index of the bucket holding ``value_us`` (a non-negative integer)."""
    shift = value_us.bit_length() - SUB_BITS - 1
    if shift <= 0:
        return value_us
    return shift * _SUB + (value_us >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """The values [low, high] a bucket holds."""
    if index < _SMALL:
        return index, index
    shift = index // _SUB - 1
    mantissa = index % _SUB + _SUB
    low = mantissa << shift
    return low, low + (1 << shift) - 1


class Histogram:
    """Counts of latencies (µs); ``record`` is the only thing the hot path calls."""

    __slots__ = ("count", "counts", "max_us", "min_us", "total_us")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.count = 0
        self.total_us = 0
        self.min_us = 0
        self.max_us = 0

    def record(self, seconds: float) -> None:
        value = int(seconds * 1_000_000) if seconds > 0 else 0
        shift = value.bit_length() - SUB_BITS - 1  # bucket_of, inlined: once per request
        index = value if shift <= 0 else shift * _SUB + (value >> shift)
        counts = self.counts
        counts[index] = counts.get(index, 0) + 1
        if self.count == 0 or value < self.min_us:
            self.min_us = value
        if value > self.max_us:  # noqa: PLR1730 (the hot path: a compare costs less than a call to max())
            self.max_us = value
        self.count += 1
        self.total_us += value

    def merge(self, other: Histogram) -> None:
        if other.count == 0:
            return
        for index, n in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + n
        self.min_us = other.min_us if self.count == 0 else min(self.min_us, other.min_us)
        self.max_us = max(self.max_us, other.max_us)
        self.count += other.count
        self.total_us += other.total_us

    def percentile(self, p: float) -> float:
        """The value (µs) at or below which ``p`` percent of the records fall."""
        if self.count == 0:
            return 0.0
        if p >= 100:
            return float(self.max_us)
        rank = max(1, -(-self.count * p // 100))  # ceil, at least the first record
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                low, high = bucket_bounds(index)
                # The bucket's midpoint, clamped to what was really seen.
                return float(min(max((low + high) / 2, self.min_us), self.max_us))
        return float(self.max_us)

    def mean(self) -> float:
        return self.total_us / self.count if self.count else 0.0

    def to_dict(self) -> dict[str, object]:
        """Plain data for JSON and for the pipe between processes."""
        return {
            "count": self.count,
            "total_us": self.total_us,
            "min_us": self.min_us,
            "max_us": self.max_us,
            "sub_bits": SUB_BITS,
            "buckets": {str(i): n for i, n in sorted(self.counts.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Histogram:
        if data.get("sub_bits", SUB_BITS) != SUB_BITS:
            raise ValueError("histogram recorded with another precision")
        hist = cls()
        hist.counts = {int(i): int(n) for i, n in dict(data["buckets"]).items()}  # type: ignore[arg-type]
        hist.count = int(data["count"])  # type: ignore[arg-type]
        hist.total_us = int(data["total_us"])  # type: ignore[arg-type]
        hist.min_us = int(data["min_us"])  # type: ignore[arg-type]
        hist.max_us = int(data["max_us"])  # type: ignore[arg-type]
        return hist

    @classmethod
    def of(cls, values_seconds: Iterable[float]) -> Histogram:
        hist = cls()
        for value in values_seconds:
            hist.record(value)
        return hist
