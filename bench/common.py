"""Shared bench helpers: every figure is printed with its baseline (measured in the same run,
on the same machine) and the ratio, so the numbers mean something on a noisy shared box."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Callable

ROWS: list[tuple] = []


def report(figure: str, value: float, unit: str, baseline: float | None = None,
           baseline_name: str = "", target: str = "") -> None:
    ratio = f"{value / baseline:6.2f}x" if baseline else "      -"
    fmt = ",.2f" if baseline is not None and baseline < 100 else ",.0f"
    base = f"{baseline:{fmt}} {unit} ({baseline_name})" if baseline else ""
    line = f"{figure:<48} {value:>14,.1f} {unit:<10} ratio {ratio}  baseline {base}"
    if target:
        line += f"  target {target}"
    print(line, flush=True)
    ROWS.append((figure, value, unit, baseline, baseline_name, target))


def percentiles(samples: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(samples, n=100)
    return qs[49], qs[98]


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def scratch_dir() -> str:
    return tempfile.mkdtemp(prefix="actorlog-bench-", dir=os.environ.get("ACTORLOG_BENCH_DIR"))
