"""Counters and latency histograms an EntityTable keeps, as plain data a host returns in its
stats, so the edge can export every host's figures in one scrape (api/metrics.py) without a
metrics library in the hosts.

Buckets are fixed and shared, so histograms from several hosts add up bucket by bucket.
"""

from __future__ import annotations

import bisect
from typing import Any

__all__ = ["BUCKETS", "Histogram"]

#: upper bounds in seconds (Prometheus' "le"); the last bucket is +Inf.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
           10.0, 30.0, 60.0)


class Histogram:
    __slots__ = ("counts", "total", "count")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds
        self.count += 1

    def to_dict(self) -> dict[str, Any]:
        return {"counts": list(self.counts), "sum": self.total, "count": self.count}
