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
    """A directory for one bench's data, removed when the bench process exits (a bench's
    stores are hundreds of MB; ACTORLOG_BENCH_KEEP=1 keeps them to look at)."""
    path = tempfile.mkdtemp(prefix="actorlog-bench-", dir=os.environ.get("ACTORLOG_BENCH_DIR"))
    if not os.environ.get("ACTORLOG_BENCH_KEEP"):
        import atexit
        import shutil

        atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


#: the commit before the cost-per-turn work (issue 20): what "today" means in its targets
BEFORE = "595fdc4"


def cache_dir() -> str:
    """Where what a bench makes once is kept between runs (a venv, a worktree)."""
    path = os.environ.get("ACTORLOG_BENCH_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "actorlog-bench")
    os.makedirs(path, exist_ok=True)
    return path


def worktree(rev: str = "") -> str | None:
    """A checkout of ``rev`` (ACTORLOG_BENCH_BEFORE, or BEFORE) beside this one, to run the
    code as it was in the same run as the code as it is; None where this is no git clone or
    the commit is not in it (the figure is then printed without that baseline)."""
    import subprocess

    rev = rev or os.environ.get("ACTORLOG_BENCH_BEFORE", BEFORE)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(cache_dir(), f"tree-{rev}")
    if os.path.exists(os.path.join(path, "embedded.py")):
        return path
    done = subprocess.run(["git", "-C", root, "worktree", "add", "--detach", "--force", path,
                           rev], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"  no worktree of {rev} ({done.stderr.strip()[:200]}): its rows are left out",
              flush=True)
        return None
    return path
