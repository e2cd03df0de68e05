"""Work a family starts with the server and that outlives any request (seeding, sweeps,
recovery at start): held until it ends, and logged if it fails. One holder for every family,
so none of them writes its own."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Coroutine

__all__ = ["start"]

log = logging.getLogger("ray.serve")
_held: set[asyncio.Task] = set()


def start(work: Coroutine[Any, Any, Any], what: str) -> asyncio.Task:
    """Run ``work`` in the background of the running loop; a failure is logged as ``what``."""
    task = asyncio.ensure_future(work)

    def done(t: asyncio.Task) -> None:
        _held.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.error("%s failed", what, exc_info=t.exception())

    _held.add(task)
    task.add_done_callback(done)
    return task
