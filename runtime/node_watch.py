"""Whether the Ray node this process started still runs.

A service that owns its Ray (ray.init(address="local")) depends on two of the processes that
call started: the GCS and the raylet. When the raylet dies (killed, or taken down by the death
of an agent it fate-shares with: the runtime-env agent, the dashboard agent), every actor host
of the node goes with it and Ray will not bring them back: the process is write-dead, however
healthy it looks. This watch notices within a second, so the service can say so on /health
and exit for its supervisor, instead of answering 503 to every write behind a green check.

It reads Ray's own record of the processes it started (the node object ray.init made), the
one place that knows them; a process that joined an existing Ray has none and is not watched.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

__all__ = ["lost_processes", "watch"]

#: the processes of a node without which nothing of it can be written
CRITICAL = ("raylet", "gcs_server")


def lost_processes() -> list[str]:
    """The critical processes of the node this process started that have exited."""
    from ray._private import worker

    node = getattr(worker, "_global_node", None)
    if node is None or not getattr(node, "head", False):
        return []
    try:
        dead = node.dead_processes()
    except Exception:  # noqa: BLE001 - Ray shutting down under us: nothing to report
        return []
    return sorted({kind for kind, _ in dead if kind in CRITICAL})


def watch(on_lost: Callable[[list[str]], None], every: float = 1.0) -> threading.Thread:
    """Call ``on_lost(processes)`` once, from a daemon thread, when a critical process of this
    process's own node has exited."""
    def run() -> None:
        while True:
            lost = lost_processes()
            if lost:
                on_lost(lost)
                return
            time.sleep(every)

    thread = threading.Thread(target=run, name="actorlog-node-watch", daemon=True)
    thread.start()
    return thread
