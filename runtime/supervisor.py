"""The placement supervisor: one detached Ray actor per namespace that keeps the hosts alive
and evenly spread while nodes come and go.

Clients already revive a host they find gone (runtime/client.py); the supervisor covers what
no single call sees: a node that joined (hosts move onto it, so scaling workers adds capacity)
and hosts left piled on the survivors after a failure. It holds no state of record; if its
own node dies Ray restarts it anywhere (no node affinity), and it looks again.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import ray

from runtime.config import Settings
from runtime.placement import rebalance, single_node_store

__all__ = ["SUPERVISOR_NAME", "Supervisor", "ensure_supervisor"]

SUPERVISOR_NAME = "actorlog-supervisor"
log = logging.getLogger(__name__)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class Supervisor:
    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = Settings.from_dict(settings)
        self.moves: list[tuple[str, str, str]] = []
        self.rounds = 0
        self._stop = threading.Event()
        # A thread, not a task: placement calls are blocking Ray API calls.
        threading.Thread(target=self._loop, name="actorlog-supervisor", daemon=True).start()

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.rebalance_seconds):
            try:
                self.moves += rebalance(self.settings)
            except Exception:  # GCS busy, a node vanishing mid-round: try next round
                log.exception("rebalance round failed")
            self.rounds += 1

    def status(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "moves": list(self.moves)}


def ensure_supervisor(settings: Settings) -> Any | None:
    """Start (or find) the namespace's supervisor; none for a single-node (SQLite) store or
    when rebalance_seconds is 0."""
    if settings.rebalance_seconds <= 0 or single_node_store(settings):
        return None
    return Supervisor.options(name=SUPERVISOR_NAME, namespace=settings.namespace,
                              lifetime="detached", get_if_exists=True
                              ).remote(settings.to_dict())
