"""Work a family declares and the platform runs beside the server: startup work (seeding,
recovery of what a crash left) and periodic work (sweeps). A family names it in its Family
(``background=``); this module starts it in the loop that serves (api/http_server.py), logs
it, runs it again after a failure (1 s, doubling to 60 s), and stops it with the server.

Why here and not in each family: three families each wrote a loop, a task holder and a log
line of their own, and none of them stopped with the server.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

__all__ = ["Work", "run_all", "stop_all"]

log = logging.getLogger("ray.serve")
#: seconds before a failed run is tried again, doubled after each failure up to RETRY_MAX
RETRY_FIRST, RETRY_MAX = 1.0, 60.0


@dataclass(frozen=True)
class Work:
    """``run(runtime)`` once at start, then again every ``every(runtime)`` seconds while the
    server serves (``every`` None, or a period <= 0: once). ``name`` is what the log calls it.
    A run that fails is logged and tried again; ``run`` should be safe to run twice."""

    name: str
    run: Callable[[Any], Awaitable[Any]]
    every: Callable[[Any], float] | None = None


async def _keep(work: Work, runtime: Any, still_serving: Callable[[], bool]) -> None:
    retry = RETRY_FIRST
    while still_serving():
        try:
            await work.run(runtime)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - logged, and tried again
            log.exception("%s failed; trying again in %g s", work.name, retry)
            await asyncio.sleep(retry)
            retry = min(retry * 2, RETRY_MAX)
            continue
        retry = RETRY_FIRST
        period = work.every(runtime) if work.every is not None else 0.0
        if period <= 0:
            return
        await asyncio.sleep(period)


def run_all(works: list[Work], runtime: Any, still_serving: Callable[[], bool]
            ) -> list[asyncio.Task]:
    """Start every work in the running loop; the caller cancels the tasks when it stops
    serving. ``still_serving`` is asked before each run (a process whose runtime was replaced
    stops the old one's work)."""
    return [asyncio.ensure_future(_keep(w, runtime, still_serving)) for w in works]


async def stop_all(tasks: list[asyncio.Task]) -> None:
    """Cancel the tasks and wait for them to end."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
